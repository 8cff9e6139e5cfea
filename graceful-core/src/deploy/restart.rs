//! Hot restart, the parent's side: start the program again from the path it was started
//! from, hand it the listening sockets, and wait until it says it is ready.
//!
//! # The protocol (ARCHITECTURE.md, "Hot restart", says it in full)
//!
//! 1. At start the parent resolves its executable's path, and records its arguments and
//!    environment ([`Restarter::new`]): a binary replaced on disk since is the one started.
//! 2. On a restart it binds a Unix datagram socket in a fresh private directory (mode
//!    0700) and spawns the program with descriptors 3, 4, ... the listening sockets, and
//!    `LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID=<the child's pid>`,
//!    [`RESTART_PARENT_VAR`]`=<parent pid>`, `NOTIFY_SOCKET=<private socket>`,
//!    [`NOTIFY_UPSTREAM_VAR`]`=<the service manager's socket, or empty>`, and `WATCHDOG_PID`
//!    unset. std cannot know the child's pid before it runs, and a `pre_exec` hook is
//!    `unsafe`: the program is started through `/bin/sh -c 'LISTEN_PID=$$; export
//!    LISTEN_PID; exec "$0" "$@"'`, whose `exec` keeps the pid, as systemd sets
//!    `LISTEN_PID` between `fork` and `exec`.
//! 3. The child adopts the sockets ([`adopt_tcp_listeners`](super::adopt_tcp_listeners)),
//!    serves them, and sends `READY=1` to the private socket ([`Notifier::ready`](super::Notifier::ready)).
//! 4. The parent, on `READY=1`, returns the child's pid; its caller sends `MAINPID=` to the
//!    service manager and drains as on SIGTERM. If the child exits first, or the timeout
//!    passes (the child is then killed), the restart fails and the parent serves on.
//!
//! # Invariants
//!
//! - One restart at a time, and none once one has succeeded: the parent is on its way out.
//! - The restarter's copies of the sockets live until [`Restarter::close`], which the
//!   shutdown-initiated hook calls: a server that drains without a restart must not keep
//!   its socket open (new connections would wait in a backlog no one accepts from, rather
//!   than be refused).
//! - The parent never stops serving because of a restart: every failure is an `Err`.
//! - [`Restarter::restart`] blocks the calling thread (up to the timeout): run it on a
//!   thread of its own. It reads the wall clock (`Instant`), not a runtime [`Timer`](crate::Timer):
//!   it waits on another process, which paused or virtual time cannot speed up.
//!
//! - The child's environment is the one recorded at start, with every `LISTEN_*` variable,
//!   [`RESTART_PARENT_VAR`], `NOTIFY_SOCKET` and [`NOTIFY_UPSTREAM_VAR`] set anew and
//!   `WATCHDOG_PID` removed: what this process inherited (its own adoption leaves the
//!   environment untouched) never reaches the child.
//!
//! The descriptors are placed at 3, 4, ... in the child by the command-fds crate (`dup2`
//! after `fork`, in a `pre_exec` hook: `unsafe` code our crates forbid). They are not
//! close-on-exec there, so they survive the shell's `exec`.

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};

use super::{NOTIFY_UPSTREAM_VAR, RESTART_PARENT_VAR};

/// Starts a new copy of this program on the listening sockets and waits until it is ready.
///
/// # Examples
///
/// ```
/// use graceful_core::deploy::{Notifier, RestartError, Restarter};
/// use std::time::Duration;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let restarter = Restarter::new(vec![("http".into(), &listener)], &Notifier::disabled())?
///     .timeout(Duration::from_secs(30));
/// assert_eq!(restarter.listeners(), 1);
/// // On SIGHUP, on a thread of its own: `restarter.restart()`. When the shutdown begins:
/// restarter.close();
/// assert!(matches!(restarter.restart(), Err(RestartError::Closed)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Restarter {
    exe: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    /// The copies of the listening sockets; emptied by `close`.
    listeners: Mutex<Vec<(String, OwnedFd)>>,
    manager: Option<OsString>,
    timeout: Duration,
    busy: AtomicBool,
    handed_over: AtomicBool,
    /// The new process of a restart under way, until it is ready or given up; `close`
    /// kills it, so that a shutdown during a restart leaves no second server behind.
    starting: Mutex<Option<Child>>,
}

/// A successful hand-over: the new process serves and said it is ready.
#[derive(Debug)]
pub struct Handover {
    /// The new process's id.
    pub pid: u32,
    /// How long it took from the spawn to `READY=1`.
    pub elapsed: Duration,
    /// The new process. Dropping it neither kills it nor waits for it.
    pub child: Child,
}

/// Why a hot restart did not happen; the old process serves on.
#[derive(Debug)]
#[non_exhaustive]
pub enum RestartError {
    /// Another restart is under way.
    InProgress,
    /// A restart succeeded already; this process is draining.
    HandedOver,
    /// The restarter was [closed](Restarter::close): this process is shutting down.
    Closed,
    /// The private notification socket or the descriptors could not be set up.
    Setup(io::Error),
    /// The program could not be started.
    Spawn(io::Error),
    /// The new process exited before it was ready.
    Exited(ExitStatus),
    /// The new process was not ready within the timeout, and was killed.
    NotReady(Duration),
}

impl fmt::Display for RestartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartError::InProgress => f.write_str("a restart is under way already"),
            RestartError::HandedOver => f.write_str("the sockets were handed over already"),
            RestartError::Closed => f.write_str("the server is shutting down"),
            RestartError::Setup(error) => write!(f, "cannot prepare the restart: {error}"),
            RestartError::Spawn(error) => write!(f, "cannot start the new process: {error}"),
            RestartError::Exited(status) => {
                write!(f, "the new process exited before it was ready ({status})")
            }
            RestartError::NotReady(timeout) => write!(
                f,
                "the new process was not ready within {timeout:?}, and was killed"
            ),
        }
    }
}

impl Error for RestartError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RestartError::Setup(error) | RestartError::Spawn(error) => Some(error),
            _ => None,
        }
    }
}

/// How long a hot restart's new process may take to say it is ready, unless told otherwise
/// ([`Restarter::timeout`], `Deploy::restart_timeout`): 60 s.
///
/// # Examples
///
/// ```
/// use graceful_core::deploy::{Deploy, DEFAULT_RESTART_TIMEOUT};
///
/// assert_eq!(Deploy::new(), Deploy::new().restart_timeout(DEFAULT_RESTART_TIMEOUT));
/// ```
pub const DEFAULT_RESTART_TIMEOUT: Duration = Duration::from_secs(60);

impl Restarter {
    /// Records what a restart needs, now: the path of this program, its arguments and
    /// environment, copies of the `listeners` (with their `LISTEN_FDNAMES` names), and the
    /// service manager's socket from `notifier`. Create it at start, once the inherited
    /// sockets are adopted. The variables that named them are recorded with the rest, and
    /// set anew for each restart's child.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Notifier, Restarter};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let restarter = Restarter::new(vec![("http".into(), &listener)], &Notifier::disabled())?;
    /// // Each restart hands the new process a copy of the socket, as LISTEN_FDS=1,
    /// // LISTEN_FDNAMES=http.
    /// assert_eq!(restarter.listeners(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the program's path or a listener's descriptor cannot be had.
    pub fn new(
        listeners: Vec<(String, &TcpListener)>,
        notifier: &super::Notifier,
    ) -> io::Result<Restarter> {
        let exe = std::env::current_exe()?;
        let listeners = listeners
            .into_iter()
            .map(|(name, listener)| Ok((name, OwnedFd::from(listener.try_clone()?))))
            .collect::<io::Result<_>>()?;
        Ok(Restarter {
            exe,
            args: std::env::args_os().skip(1).collect(),
            env: std::env::vars_os().collect(),
            listeners: Mutex::new(listeners),
            manager: notifier.manager_socket().map(ToOwned::to_owned),
            timeout: DEFAULT_RESTART_TIMEOUT,
            busy: AtomicBool::new(false),
            handed_over: AtomicBool::new(false),
            starting: Mutex::new(None),
        })
    }

    /// How long a new process may take to say it is ready (default
    /// [`DEFAULT_RESTART_TIMEOUT`], 60 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Notifier, Restarter};
    /// use std::time::Duration;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let restarter = Restarter::new(vec![("http".into(), &listener)], &Notifier::disabled())?
    ///     .timeout(Duration::from_secs(10));
    /// # drop(restarter);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Restarter {
        self.timeout = timeout;
        self
    }

    /// How many listening sockets a restart hands over (none once closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Notifier, Restarter};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let restarter = Restarter::new(vec![("http".into(), &listener)], &Notifier::disabled())?;
    /// assert_eq!(restarter.listeners(), 1);
    /// restarter.close();
    /// assert_eq!(restarter.listeners(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listeners(&self) -> usize {
        self.lock().len()
    }

    /// Closes the restarter's copies of the listening sockets; restarts fail from now on.
    /// Call it when the shutdown begins (the shutdown-initiated hook): once the server
    /// drops its listener, the socket must close, so that new connections are refused
    /// rather than left in a backlog no one accepts from.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Notifier, Restarter};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let restarter = Restarter::new(vec![("http".into(), &listener)], &Notifier::disabled())?;
    /// restarter.close(); // the shutdown began
    /// assert!(matches!(restarter.restart(), Err(graceful_core::deploy::RestartError::Closed)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        self.lock().clear();
        // A restart under way is given up: its new process would serve on after this one
        // was told to stop.
        if let Some(pid) = self.give_up() {
            tracing::info!(pid, "shutting down: the restart under way is given up");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(String, OwnedFd)>> {
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The program a restart starts.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Notifier, Restarter};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let restarter = Restarter::new(vec![("http".into(), &listener)], &Notifier::disabled())?;
    /// // The path this process was started from: a binary replaced there is what starts.
    /// assert_eq!(restarter.program(), std::env::current_exe()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn program(&self) -> &std::path::Path {
        &self.exe
    }

    /// Starts the program again on the listening sockets; returns once it said `READY=1`.
    /// Blocks the calling thread for up to the timeout.
    ///
    /// On success the caller should notify `MAINPID=` and drain; on failure it serves on,
    /// and may try again later.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Notifier, Restarter};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let notifier = Notifier::disabled();
    /// let restarter = Restarter::new(vec![("http".into(), &listener)], &notifier)?;
    /// # restarter.close();
    /// // On a thread of its own: it blocks until the new process is ready, or the timeout.
    /// match restarter.restart() {
    ///     Ok(handover) => {
    ///         notifier.main_pid(handover.pid);
    ///         // ... now drain, as on SIGTERM.
    ///     }
    ///     Err(error) => eprintln!("hot restart failed, serving on: {error}"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// See [`RestartError`].
    pub fn restart(&self) -> Result<Handover, RestartError> {
        if self.handed_over.load(Ordering::Acquire) {
            return Err(RestartError::HandedOver);
        }
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(RestartError::InProgress);
        }
        let result = self.try_restart();
        if result.is_ok() {
            self.handed_over.store(true, Ordering::Release);
        }
        self.busy.store(false, Ordering::Release);
        result
    }

    fn try_restart(&self) -> Result<Handover, RestartError> {
        let (mappings, names) = {
            let listeners = self.lock();
            if listeners.is_empty() {
                return Err(RestartError::Closed);
            }
            let mut mappings = Vec::with_capacity(listeners.len());
            for (index, (_, fd)) in listeners.iter().enumerate() {
                let child_fd = 3 + i32::try_from(index).unwrap_or(i32::MAX - 3);
                let parent_fd = fd.try_clone().map_err(RestartError::Setup)?;
                mappings.push(FdMapping {
                    parent_fd,
                    child_fd,
                });
            }
            let names: Vec<String> = listeners.iter().map(|(n, _)| n.clone()).collect();
            (mappings, names)
        };
        // The shell would report a missing program only by its exit status.
        executable(&self.exe).map_err(RestartError::Spawn)?;
        let private = PrivateSocket::bind().map_err(RestartError::Setup)?;
        let mut command = Command::new(SHELL);
        command
            .arg("-c")
            .arg(OWN_PID)
            .arg(&self.exe)
            .args(&self.args)
            .env_clear()
            .envs(
                (self.env.iter())
                    .filter(|(k, _)| !handed_over_variable(k))
                    .map(|(k, v)| (k, v)),
            )
            .env("LISTEN_FDS", names.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"))
            .env(RESTART_PARENT_VAR, std::process::id().to_string())
            .env("NOTIFY_SOCKET", &private.path)
            .env(
                NOTIFY_UPSTREAM_VAR,
                self.manager.clone().unwrap_or_default(),
            );
        command
            .fd_mappings(mappings)
            .map_err(|error| RestartError::Setup(io::Error::other(error)))?;
        let start = Instant::now();
        let child = command.spawn().map_err(|error| {
            // The shell is what failed to start (a system without /bin/sh).
            RestartError::Spawn(io::Error::new(error.kind(), format!("{SHELL}: {error}")))
        })?;
        drop(command); // closes the parent's copies made for the mapping
        let pid = child.id();
        *self.starting_slot() = Some(child);
        if self.lock().is_empty() {
            // Closed while it started: `close` did not see it.
            self.give_up();
            return Err(RestartError::Closed);
        }
        // A timeout past what `Instant` holds waits for `READY=1` or the exit alone.
        let deadline = start.checked_add(self.timeout);
        let mut buf = [0u8; 4096];
        loop {
            match private.socket.recv(&mut buf) {
                Ok(n) if says_ready(&buf[..n]) => {
                    return match self.starting_slot().take() {
                        Some(child) => Ok(Handover {
                            pid,
                            elapsed: start.elapsed(),
                            child,
                        }),
                        None => Err(RestartError::Closed),
                    };
                }
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => {
                    self.give_up();
                    return Err(RestartError::Setup(error));
                }
            }
            let exited = match self.starting_slot().as_mut() {
                // `close` killed it.
                None => return Err(RestartError::Closed),
                Some(child) => child.try_wait(),
            };
            if let Ok(Some(status)) = exited {
                self.starting_slot().take();
                return Err(RestartError::Exited(status));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                self.give_up();
                return Err(RestartError::NotReady(self.timeout));
            }
        }
    }

    fn starting_slot(&self) -> MutexGuard<'_, Option<Child>> {
        self.starting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Kills and reaps the new process of the restart under way, if any is left (`close`
    /// and the restart itself both give up); returns its pid.
    fn give_up(&self) -> Option<u32> {
        let mut child = self.starting_slot().take()?;
        stop(&mut child);
        Some(child.id())
    }
}

impl fmt::Debug for Restarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Restarter")
            .field("exe", &self.exe)
            .field("args", &self.args)
            .field("listeners", &self.listeners())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The shell that starts a restart's program: POSIX sh.
const SHELL: &str = "/bin/sh";

/// The shell's script: `LISTEN_PID` is its own pid, which its `exec` keeps for the program
/// (`$0`, with the arguments after it).
const OWN_PID: &str = r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#;

/// Whether the recorded variable `key` is one a restart sets anew, or removes: the
/// hand-over's own (every `LISTEN_*`, the restart's and the notification's) and
/// `WATCHDOG_PID` (systemd's watchdog is for the main process until `MAINPID=`).
fn handed_over_variable(key: &OsStr) -> bool {
    let key = key.as_encoded_bytes();
    key.starts_with(b"LISTEN_")
        || [
            RESTART_PARENT_VAR,
            NOTIFY_UPSTREAM_VAR,
            "NOTIFY_SOCKET",
            "WATCHDOG_PID",
        ]
        .iter()
        .any(|name| key == name.as_bytes())
}

/// Checks that `path` is a file someone may execute, for a clear error before the shell
/// starts (which would only exit with status 127 or 126).
fn executable(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path)
        .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))?;
    if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not an executable file", path.display()),
        ))
    }
}

/// Whether a notification datagram contains the line `READY=1`.
fn says_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|b| *b == b'\n')
        .any(|line| line == b"READY=1")
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The parent's private notification socket, in a directory only this user may enter;
/// removed on drop.
struct PrivateSocket {
    dir: PathBuf,
    path: PathBuf,
    socket: UnixDatagram,
}

impl PrivateSocket {
    /// How long one wait for a datagram lasts before the child's liveness is checked.
    const POLL: Duration = Duration::from_millis(20);

    fn bind() -> io::Result<PrivateSocket> {
        static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("graceful-restart-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("notify");
        let socket = match UnixDatagram::bind(&path) {
            Ok(socket) => socket,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error);
            }
        };
        socket.set_read_timeout(Some(PrivateSocket::POLL))?;
        Ok(PrivateSocket { dir, path, socket })
    }
}

impl Drop for PrivateSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_a_whole_line() {
        assert!(says_ready(b"READY=1\n"));
        assert!(says_ready(b"STATUS=starting\nREADY=1"));
        assert!(!says_ready(b"READY=10\n"));
        assert!(!says_ready(b"STATUS=READY=1\n"));
        assert!(!says_ready(b""));
    }

    #[test]
    fn a_program_that_exits_leaves_the_parent_serving() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut restarter = Restarter::new(
            vec![("http".into(), &listener)],
            &super::super::Notifier::disabled(),
        )
        .unwrap()
        .timeout(Duration::from_secs(20));
        restarter.exe = PathBuf::from("/bin/false");
        restarter.args.clear();
        match restarter.restart() {
            Err(RestartError::Exited(status)) => assert!(!status.success()),
            other => panic!("expected Exited, got {other:?}"),
        }
        // Not handed over: a later restart may try again.
        restarter.exe = PathBuf::from("/nonexistent/graceful-test");
        assert!(matches!(restarter.restart(), Err(RestartError::Spawn(_))));
    }

    #[test]
    fn a_program_that_never_says_ready_is_killed_at_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut restarter = Restarter::new(
            vec![("http".into(), &listener)],
            &super::super::Notifier::disabled(),
        )
        .unwrap()
        .timeout(Duration::from_millis(300));
        restarter.exe = PathBuf::from("/bin/sleep");
        restarter.args = vec!["30".into()];
        let start = Instant::now();
        assert!(matches!(
            restarter.restart(),
            Err(RestartError::NotReady(_))
        ));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_shutdown_during_a_restart_kills_the_new_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut restarter = Restarter::new(
            vec![("http".into(), &listener)],
            &super::super::Notifier::disabled(),
        )
        .unwrap()
        .timeout(Duration::from_secs(60));
        restarter.exe = PathBuf::from("/bin/sleep");
        restarter.args = vec!["30".into()];
        let restarter = std::sync::Arc::new(restarter);
        let restart = {
            let restarter = restarter.clone();
            std::thread::spawn(move || restarter.restart())
        };
        let start = Instant::now();
        let pid = loop {
            if let Some(child) = restarter.starting_slot().as_ref() {
                break child.id();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the restart began"
            );
            std::thread::yield_now();
        };
        restarter.close();
        // The new process is gone (killed and reaped) as `close` returns.
        let proc = PathBuf::from(format!("/proc/{pid}"));
        assert!(!proc.exists(), "process {pid} outlived the shutdown");
        let result = restart.join().unwrap();
        assert!(matches!(result, Err(RestartError::Closed)), "{result:?}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn one_restart_at_a_time() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut restarter = Restarter::new(
            vec![("http".into(), &listener)],
            &super::super::Notifier::disabled(),
        )
        .unwrap()
        .timeout(Duration::from_millis(500));
        restarter.exe = PathBuf::from("/bin/sleep");
        restarter.args = vec!["30".into()];
        let restarter = std::sync::Arc::new(restarter);
        let first = {
            let restarter = restarter.clone();
            std::thread::spawn(move || restarter.restart())
        };
        let start = Instant::now();
        while !restarter.busy.load(Ordering::Acquire) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the first restart began"
            );
            std::thread::yield_now();
        }
        assert!(matches!(restarter.restart(), Err(RestartError::InProgress)));
        assert!(matches!(
            first.join().unwrap(),
            Err(RestartError::NotReady(_))
        ));
        restarter.close();
        assert!(matches!(restarter.restart(), Err(RestartError::Closed)));
    }

    #[test]
    fn a_child_gets_every_socket_by_name_and_its_own_listen_pid() {
        let (web, admin) = (
            TcpListener::bind("127.0.0.1:0").unwrap(),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        );
        let mut restarter = Restarter::new(
            vec![("web".into(), &web), ("admin".into(), &admin)],
            &super::super::Notifier::disabled(),
        )
        .unwrap();
        // What this process inherited stays in its environment (adoption edits nothing):
        // none of it may reach the child.
        restarter.env.extend(
            [
                ("LISTEN_PID", "1"),
                ("LISTEN_FDS", "9"),
                ("LISTEN_FDNAMES", "old"),
                ("LISTEN_STALE", "x"),
                (RESTART_PARENT_VAR, "1"),
                ("WATCHDOG_PID", "1"),
                ("KEPT", "yes"),
            ]
            .map(|(k, v)| (k.into(), v.into())),
        );
        // A shell child checks what it inherited and answers with its exit code (a shell
        // cannot send a datagram; the deploy suites see READY=1 end to end). It runs after
        // the restart's own shell `exec`ed it: same pid, same descriptors.
        restarter.exe = PathBuf::from("/bin/sh");
        restarter.args = vec![
            "-c".into(),
            format!(
                "test \"$LISTEN_FDS\" = 2 && test \"$LISTEN_FDNAMES\" = web:admin && \
                 test \"$LISTEN_PID\" = $$ && test \"${RESTART_PARENT_VAR}\" = {} && \
                 test -z \"$LISTEN_STALE\" && test -z \"$WATCHDOG_PID\" && \
                 test \"$KEPT\" = yes && test -S \"$NOTIFY_SOCKET\" && \
                 test -S /proc/self/fd/3 && test -S /proc/self/fd/4 && \
                 test ! -e /proc/self/fd/5 && exit 7; exit 1",
                std::process::id()
            )
            .into(),
        ];
        match restarter.restart() {
            Err(RestartError::Exited(status)) => assert_eq!(status.code(), Some(7)),
            other => panic!("expected the shell's verdict, got {other:?}"),
        }
    }

    #[test]
    fn the_recorded_hand_over_variables_are_set_anew() {
        for key in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_ANY"] {
            assert!(handed_over_variable(OsStr::new(key)), "{key}");
        }
        for key in [
            RESTART_PARENT_VAR,
            NOTIFY_UPSTREAM_VAR,
            "NOTIFY_SOCKET",
            "WATCHDOG_PID",
        ] {
            assert!(handed_over_variable(OsStr::new(key)), "{key}");
        }
        for key in ["WATCHDOG_USEC", "PATH", "XLISTEN_FDS"] {
            assert!(!handed_over_variable(OsStr::new(key)), "{key}");
        }
    }
}
