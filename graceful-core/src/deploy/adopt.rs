//! Adopting listening sockets a process inherited: systemd socket activation, and the
//! sockets a hot-restarting parent hands its child.
//!
//! # Invariants
//!
//! - A socket is served only if it is a listening TCP socket (IPv4 or IPv6): a UDP socket,
//!   a Unix socket, a file, a closed descriptor or a socket that never called `listen` is
//!   an error, never served.
//! - The sockets are for this process only: `LISTEN_PID` is our pid, as systemd sets it
//!   between `fork` and `exec`, and as a hot restart's child has it (see ARCHITECTURE.md,
//!   "Hot restart"). Sockets meant for another process are left alone.
//! - The environment is never edited: no `set_var`, no `remove_var` (another thread may
//!   read it meanwhile; glibc's `getenv` racing `unsetenv` is undefined behaviour). In its
//!   stead, the inherited descriptors are taken at most once per process (a process-wide flag), and
//!   each adopted socket is made close-on-exec, so that no child inherits it by mistake;
//!   a hot restart sets every variable of the hand-over in its child's environment.
//! - A descriptor that fails the checks is never closed by us: `LISTEN_FDS` may have
//!   counted a number that is not open, which another part of the process may open later.
//! - Adopted listeners are non-blocking (tokio and async-io require it).
//!
//! The descriptors are taken over by the sd-listen-fds crate (no dependencies, no edit of
//! the environment): wrapping descriptor 3, 4, ... in an `OwnedFd` is an `unsafe` call that
//! our crates forbid. It reads `LISTEN_FDS` on Linux only.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, SockRef, Type};

use super::RESTART_PARENT_VAR;

/// Whether this process took its inherited descriptors already: `sd_listen_fds::get` hands
/// out an owner for each listed number on every call, so a second call would make two
/// owners of one descriptor (and close it twice).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The inherited listeners, in `LISTEN_FDS` order, with their `LISTEN_FDNAMES` names.
#[derive(Debug, Default)]
pub struct Adopted {
    /// The listeners (descriptors 3, 4, ...) and their names (`None` when unnamed: no
    /// `LISTEN_FDNAMES`, fewer names than sockets, or an empty name).
    pub listeners: Vec<(Option<String>, TcpListener)>,
    /// Whether a hot-restarting parent handed them over (rather than systemd):
    /// [`RESTART_PARENT_VAR`] names our parent.
    pub from_restart: bool,
}

/// Why inherited sockets cannot be served.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdoptError {
    /// `LISTEN_FDS` is not a number of descriptors.
    BadCount(String),
    /// `LISTEN_FDS` names sockets this platform cannot adopt (sd-listen-fds reads them on
    /// Linux only).
    Unsupported {
        /// How many sockets `LISTEN_FDS` names.
        count: usize,
    },
    /// Descriptor `fd` is not a TCP socket (not a socket at all, or UDP, or Unix).
    NotTcp {
        /// The descriptor.
        fd: i32,
        /// What was found wrong.
        source: io::Error,
    },
    /// Descriptor `fd` is a TCP socket that is not listening.
    NotListening {
        /// The descriptor.
        fd: i32,
    },
    /// Descriptor `fd` could not be inspected, made close-on-exec or made non-blocking.
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
            AdoptError::Unsupported { count } => write!(
                f,
                "LISTEN_FDS names {count} sockets, which cannot be adopted on this platform \
                 (Linux only)"
            ),
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
            AdoptError::BadCount(_)
            | AdoptError::Unsupported { .. }
            | AdoptError::NotListening { .. } => None,
        }
    }
}

/// Who the inherited sockets are for, from the environment's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Addressee {
    /// No `LISTEN_FDS`: nothing inherited.
    Nobody,
    /// `LISTEN_PID` is ours.
    Us,
    /// Another process (a parent's, most likely), or no `LISTEN_PID`: leave them alone.
    Other,
}

/// Decides who `LISTEN_FDS` is for: a pure function of the variables and our pid.
fn addressee(listen_fds: Option<&str>, listen_pid: Option<&str>, pid: u32) -> Addressee {
    match (listen_fds, listen_pid) {
        (None, _) => Addressee::Nobody,
        (Some(_), Some(listen_pid)) if listen_pid.trim().parse::<u32>().ok() == Some(pid) => {
            Addressee::Us
        }
        (Some(_), _) => Addressee::Other,
    }
}

/// Takes the listening TCP sockets this process inherited, if any, once per process.
///
/// With no `LISTEN_FDS`, sockets meant for another process (the latter is logged), or a
/// second call in the same process, the result is empty: bind as usual. The environment is
/// left as it is; the adopted sockets are close-on-exec, so no child inherits them.
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
    let Some(listen_fds) = var("LISTEN_FDS") else {
        return Ok(Adopted::default());
    };
    let listen_pid = var("LISTEN_PID");
    if addressee(Some(&listen_fds), listen_pid.as_deref(), std::process::id()) != Addressee::Us {
        tracing::warn!(
            %listen_fds,
            listen_pid = listen_pid.as_deref().unwrap_or("unset"),
            "LISTEN_FDS is set for another process (LISTEN_PID is not ours); ignoring it"
        );
        return Ok(Adopted::default());
    }
    let count: usize = listen_fds
        .trim()
        .parse()
        .map_err(|_| AdoptError::BadCount(listen_fds.clone()))?;
    if TAKEN.swap(true, Ordering::AcqRel) {
        tracing::debug!("LISTEN_FDS: the inherited sockets were taken already");
        return Ok(Adopted::default());
    }
    let fds = sd_listen_fds::get().map_err(|_| AdoptError::BadCount(listen_fds.clone()))?;
    if fds.len() != count {
        forget_all(fds);
        return Err(AdoptError::Unsupported { count });
    }
    let from_restart = var(RESTART_PARENT_VAR).is_some_and(|parent| {
        parent.trim().parse().ok() == Some(std::os::unix::process::parent_id())
    });
    let mut listeners = Vec::with_capacity(count);
    let mut fds = fds.into_iter().enumerate();
    while let Some((index, (name, fd))) = fds.next() {
        let number = 3 + i32::try_from(index).unwrap_or(i32::MAX - 3);
        match check(number, fd.into_std()) {
            Ok(listener) => listeners.push((name.filter(|name| !name.is_empty()), listener)),
            Err(error) => {
                // The rest were never checked: not ours to close either.
                forget_all(fds.map(|(_, fd)| fd).collect());
                return Err(error);
            }
        }
    }
    Ok(Adopted {
        listeners,
        from_restart,
    })
}

/// Checks that `fd` is a listening TCP socket; makes it close-on-exec and non-blocking.
fn check(number: i32, fd: OwnedFd) -> Result<TcpListener, AdoptError> {
    let verdict = inspect(number, &SockRef::from(&fd));
    match verdict {
        Ok(()) => Ok(TcpListener::from(fd)),
        Err(error) => {
            // Never closed on an error path: a number `LISTEN_FDS` counted but nobody
            // passed (not open, or open as something else by now) is not ours to close;
            // closing it would pull a descriptor from under whoever holds that number.
            std::mem::forget(fd);
            Err(error)
        }
    }
}

fn inspect(fd: i32, socket: &SockRef<'_>) -> Result<(), AdoptError> {
    let not_tcp = |what: String| AdoptError::NotTcp {
        fd,
        source: io::Error::new(io::ErrorKind::InvalidInput, what),
    };
    let kind = socket
        .r#type()
        .map_err(|error| not_tcp(format!("fd {fd} is not a socket ({error})")))?;
    let domain = socket
        .domain()
        .map_err(|source| AdoptError::Io { fd, source })?;
    if kind != Type::STREAM || (domain != Domain::IPV4 && domain != Domain::IPV6) {
        let what = match (domain, kind) {
            (Domain::UNIX, _) => "a Unix socket",
            (_, Type::DGRAM) => "a datagram socket",
            _ => "another kind of socket",
        };
        return Err(not_tcp(format!(
            "fd {fd} is not a valid tcp socket ({what})"
        )));
    }
    let listening = socket
        .is_listener()
        .map_err(|source| AdoptError::Io { fd, source })?;
    if !listening {
        return Err(AdoptError::NotListening { fd });
    }
    socket
        .set_cloexec(true)
        .and_then(|()| socket.set_nonblocking(true))
        .map_err(|source| AdoptError::Io { fd, source })
}

/// Leaves descriptors we did not check open (see [`check`]).
fn forget_all(fds: Vec<(Option<String>, sd_listen_fds::OwnedFd)>) {
    for (_, fd) in fds {
        std::mem::forget(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_the_sockets_are_for() {
        use Addressee::*;
        let pid = 200;
        type Vars = (Option<&'static str>, Option<&'static str>);
        let cases: &[(Vars, Addressee)] = &[
            ((None, None), Nobody),
            ((None, Some("200")), Nobody),
            ((Some("1"), Some("200")), Us),
            ((Some("1"), Some(" 200\n")), Us),
            ((Some("1"), Some("201")), Other),
            ((Some("1"), Some("")), Other),
            ((Some("1"), None), Other),
            ((Some("1"), Some("junk")), Other),
        ];
        for &((fds, listen_pid), expected) in cases {
            assert_eq!(
                addressee(fds, listen_pid, pid),
                expected,
                "LISTEN_FDS={fds:?} LISTEN_PID={listen_pid:?}"
            );
        }
    }

    /// Whether `fd` has `FD_CLOEXEC`, from `/proc/self/fdinfo` (`O_CLOEXEC` in its flags).
    fn close_on_exec(fd: &impl std::os::fd::AsRawFd) -> bool {
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .map(|flags| u32::from_str_radix(flags.trim(), 8).unwrap())
            .unwrap();
        flags & 0o2_000_000 != 0
    }

    #[test]
    fn only_listening_tcp_sockets_pass_and_are_made_close_on_exec() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Inherited descriptors are not close-on-exec (their parent cleared the flag).
        let fd = OwnedFd::from(listener.try_clone().unwrap());
        SockRef::from(&fd).set_cloexec(false).unwrap();
        assert!(!close_on_exec(&fd));
        let adopted = check(3, fd).unwrap();
        assert!(close_on_exec(&adopted), "a child must not inherit it");
        assert_eq!(
            adopted.local_addr().unwrap(),
            listener.local_addr().unwrap()
        );
        assert_eq!(
            adopted.accept().map(drop).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "non-blocking"
        );

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let error = check(3, OwnedFd::from(udp)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is not a valid tcp socket (a datagram socket)"),
            "{error}"
        );
        let connected = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let error = check(4, OwnedFd::from(connected)).unwrap_err();
        assert!(
            matches!(error, AdoptError::NotListening { fd: 4 }),
            "{error}"
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        let number = std::os::fd::AsRawFd::as_raw_fd(&file);
        let error = check(5, OwnedFd::from(file)).unwrap_err();
        // Refused, and left open: a descriptor that fails the checks may not be ours.
        let link = std::fs::read_link(format!("/proc/self/fd/{number}"));
        assert_eq!(link.unwrap(), std::path::Path::new("/dev/null"));
        assert!(
            error.to_string().contains("fd 5 is not a socket"),
            "{error}"
        );
    }
}
