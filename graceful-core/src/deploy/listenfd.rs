//! Adopting listening sockets a process inherited: systemd socket activation, and the
//! sockets a hot-restarting parent hands its child.
//!
//! # Invariants
//!
//! - A socket is served only if it is a listening TCP socket: a UDP socket, a Unix socket,
//!   a closed descriptor or a socket that never called `listen` is an error, never served.
//! - The sockets are for this process only: `LISTEN_PID` is our pid, or `LISTEN_PID` is
//!   unset and [`RESTART_PARENT_VAR`] names our parent (see ARCHITECTURE.md, "Hot restart").
//!   Sockets meant for another process are left alone.
//! - `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES` and [`RESTART_PARENT_VAR`] are cleared,
//!   whatever the outcome, so that children do not inherit them by mistake.
//! - Adopted listeners are non-blocking (tokio and async-io require it).
//!
//! The descriptors are taken over by the listenfd crate, which checks the
//! socket's type and address family before it wraps the descriptor: that needs
//! `FromRawFd`, an `unsafe` call that our crates forbid.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::TcpListener;

use super::RESTART_PARENT_VAR;

/// The inherited listeners, in `LISTEN_FDS` order, with their `LISTEN_FDNAMES` names.
#[derive(Debug, Default)]
pub struct Adopted {
    /// The listeners (descriptors 3, 4, ...) and their names (`""` when unnamed).
    pub listeners: Vec<(String, TcpListener)>,
    /// Whether a hot-restarting parent handed them over (rather than systemd).
    pub from_restart: bool,
}

/// Why inherited sockets cannot be served.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdoptError {
    /// `LISTEN_FDS` is not a number.
    BadCount(String),
    /// Descriptor `fd` is not a TCP socket (not a socket at all, or UDP, or Unix).
    NotTcp {
        /// The descriptor.
        fd: i32,
        /// What listenfd found wrong.
        source: io::Error,
    },
    /// Descriptor `fd` is a TCP socket that is not listening.
    NotListening {
        /// The descriptor.
        fd: i32,
    },
    /// Descriptor `fd` could not be inspected or made non-blocking.
    Io {
        /// The descriptor.
        fd: i32,
        /// The system's error.
        source: io::Error,
    },
}

impl fmt::Display for AdoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdoptError::BadCount(count) => {
                write!(f, "LISTEN_FDS={count:?} is not a number of descriptors")
            }
            AdoptError::NotTcp { fd, source } => write!(
                f,
                "inherited descriptor {fd} (LISTEN_FDS) is not a TCP listening socket: {source}"
            ),
            AdoptError::NotListening { fd } => write!(
                f,
                "inherited descriptor {fd} (LISTEN_FDS) is a TCP socket that is not listening"
            ),
            AdoptError::Io { fd, source } => {
                write!(f, "inherited descriptor {fd} (LISTEN_FDS): {source}")
            }
        }
    }
}

impl Error for AdoptError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AdoptError::NotTcp { source, .. } | AdoptError::Io { source, .. } => Some(source),
            AdoptError::BadCount(_) | AdoptError::NotListening { .. } => None,
        }
    }
}

/// Who the inherited sockets are for, from the environment's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Addressee {
    /// No `LISTEN_FDS`: nothing inherited.
    Nobody,
    /// systemd's `LISTEN_PID` is ours.
    Systemd,
    /// A hot-restarting parent handed them to us.
    Restart,
    /// Another process (a parent's, most likely): leave them alone.
    Other,
}

/// Decides who `LISTEN_FDS` is for: a pure function of the variables and our ids.
fn addressee(
    listen_fds: Option<&str>,
    listen_pid: Option<&str>,
    restart_parent: Option<&str>,
    pid: u32,
    parent: u32,
) -> Addressee {
    let ours = |value: &str, id: u32| value.trim().parse::<u32>().ok() == Some(id);
    match (listen_fds, listen_pid, restart_parent) {
        (None, _, _) => Addressee::Nobody,
        (Some(_), Some(listen_pid), _) if !listen_pid.is_empty() => {
            if ours(listen_pid, pid) {
                Addressee::Systemd
            } else {
                Addressee::Other
            }
        }
        (Some(_), _, Some(restart_parent)) if ours(restart_parent, parent) => Addressee::Restart,
        (Some(_), _, _) => Addressee::Other,
    }
}

/// Takes the listening TCP sockets this process inherited, if any, and clears the
/// variables that named them.
///
/// With no `LISTEN_FDS`, or sockets meant for another process, the result is empty (the
/// latter is logged): bind as usual. Call it early, before other threads read the
/// environment, since it removes variables from it.
///
/// # Errors
///
/// When `LISTEN_FDS` is not a number or names a descriptor that is not a listening TCP
/// socket. The server should then refuse to start: serving another socket than the one the
/// service manager meant would be wrong in silence.
///
/// # Examples
///
/// ```
/// // Not started by systemd nor by a restart: nothing is inherited.
/// let adopted = graceful_core::deploy::adopt_tcp_listeners()?;
/// assert!(adopted.listeners.is_empty());
/// # Ok::<(), graceful_core::deploy::AdoptError>(())
/// ```
pub fn adopt_tcp_listeners() -> Result<Adopted, AdoptError> {
    let var = |name: &str| std::env::var(name).ok();
    let listen_fds = var("LISTEN_FDS");
    let names = var("LISTEN_FDNAMES").unwrap_or_default();
    let who = addressee(
        listen_fds.as_deref(),
        var("LISTEN_PID").as_deref(),
        var(RESTART_PARENT_VAR).as_deref(),
        std::process::id(),
        std::os::unix::process::parent_id(),
    );
    // listenfd reads (and clears) LISTEN_PID and LISTEN_FDS itself, and accepts an unset
    // LISTEN_PID: it runs only once the checks above have passed.
    let mut fds = match who {
        Addressee::Systemd | Addressee::Restart => ::listenfd::ListenFd::from_env(),
        Addressee::Nobody | Addressee::Other => ::listenfd::ListenFd::empty(),
    };
    clear_env();
    let Some(count) = listen_fds else {
        return Ok(Adopted::default());
    };
    if who == Addressee::Other {
        tracing::warn!(
            listen_fds = %count,
            "LISTEN_FDS is set for another process (LISTEN_PID is not ours); ignoring it"
        );
        return Ok(Adopted::default());
    }
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| AdoptError::BadCount(count.clone()))?;
    let mut names = names.split(':');
    let mut listeners = Vec::with_capacity(count);
    for index in 0..count {
        let fd = 3 + i32::try_from(index).unwrap_or(i32::MAX - 3);
        let listener = match fds.take_tcp_listener(index) {
            Ok(Some(listener)) => listener,
            Ok(None) => return Err(AdoptError::BadCount(count.to_string())),
            Err(source) => return Err(AdoptError::NotTcp { fd, source }),
        };
        let listening = socket2::SockRef::from(&listener)
            .is_listener()
            .map_err(|source| AdoptError::Io { fd, source })?;
        if !listening {
            return Err(AdoptError::NotListening { fd });
        }
        listener
            .set_nonblocking(true)
            .map_err(|source| AdoptError::Io { fd, source })?;
        let name = names.next().unwrap_or_default().to_owned();
        listeners.push((name, listener));
    }
    Ok(Adopted {
        listeners,
        from_restart: who == Addressee::Restart,
    })
}

fn clear_env() {
    for name in [
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        RESTART_PARENT_VAR,
    ] {
        std::env::remove_var(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_the_sockets_are_for() {
        use Addressee::*;
        let (pid, parent) = (200, 100);
        type Vars = (
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: &[(Vars, Addressee)] = &[
            ((None, None, None), Nobody),
            ((None, Some("200"), None), Nobody),
            ((Some("1"), Some("200"), None), Systemd),
            ((Some("1"), Some("201"), None), Other),
            ((Some("1"), Some("201"), Some("100")), Other),
            ((Some("1"), None, Some("100")), Restart),
            ((Some("1"), Some(""), Some("100")), Restart),
            ((Some("1"), None, Some("99")), Other),
            ((Some("1"), None, None), Other),
            ((Some("1"), Some("junk"), None), Other),
        ];
        for &((fds, listen_pid, restart), expected) in cases {
            assert_eq!(
                addressee(fds, listen_pid, restart, pid, parent),
                expected,
                "LISTEN_FDS={fds:?} LISTEN_PID={listen_pid:?} parent={restart:?}"
            );
        }
    }
}
