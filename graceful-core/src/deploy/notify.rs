//! `sd_notify`: telling a service manager (systemd, or a hot-restarting parent) how the
//! server is doing, one datagram at a time.
//!
//! # Invariants
//!
//! - Notifying never fails the server: without `NOTIFY_SOCKET` it does nothing; an
//!   unreachable socket is logged once as a warning and notifications go on being tried.
//! - The environment is read once, by [`Notifier::from_env`], and never written: a
//!   hand-over child sends `READY=1` to its parent's private socket and everything after it
//!   to the service manager's, by address, rather than by rewriting `NOTIFY_SOCKET` in a
//!   process whose other threads may read the environment.
//! - [`Monitor`] (in `monitor.rs`) reads the clock only through its
//!   [`Timer`](crate::Timer).
//!
//! The datagrams are sent with std's `UnixDatagram` (abstract `@` addresses too), not the
//! sd-notify crate: sd-notify sends only to `$NOTIFY_SOCKET` as it reads it at every call,
//! and a hand-over child must talk to two sockets in turn.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use super::monitor::{draining_status, Monitor};
use super::NOTIFY_UPSTREAM_VAR;

/// Sends notifications to the service manager named by `NOTIFY_SOCKET`.
///
/// Clones share the one warning: an unreachable socket is reported once.
///
/// # Examples
///
/// ```
/// use graceful_core::deploy::Notifier;
///
/// // With no `NOTIFY_SOCKET` every notification is a no-op.
/// let notifier = Notifier::disabled();
/// notifier.ready();
/// notifier.status("serving");
/// assert!(notifier.manager_socket().is_none());
/// ```
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// The service manager's socket.
    manager: Option<OsString>,
    /// A hot-restarting parent's private socket, for `READY=1` only; taken by `ready`.
    parent: Mutex<Option<OsString>>,
    /// `WATCHDOG_USEC`, when it is meant for this process.
    watchdog: Option<Duration>,
    /// Whether a failed send was logged already.
    warned: AtomicBool,
    /// Whether `STOPPING=1` was sent already.
    stopping: AtomicBool,
    /// Whether `MAINPID=` named another process: this one says nothing more.
    handed_over: AtomicBool,
}

impl Notifier {
    /// The notifier the environment asks for: `NOTIFY_SOCKET`, `WATCHDOG_USEC` (when
    /// `WATCHDOG_PID` is unset or ours), and in a hot restart's child, the parent's socket
    /// for `READY=1` and the service manager's for the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::Notifier;
    ///
    /// // NOTIFY_SOCKET unset (as outside systemd): the notifier sends nothing.
    /// let notifier = Notifier::from_env();
    /// if notifier.manager_socket().is_none() {
    ///     notifier.ready(); // a no-op
    /// }
    /// ```
    pub fn from_env() -> Notifier {
        let notify_socket = non_empty(std::env::var_os("NOTIFY_SOCKET"));
        let (manager, parent) = match std::env::var_os(NOTIFY_UPSTREAM_VAR) {
            Some(upstream) => (non_empty(Some(upstream)), notify_socket),
            None => (notify_socket, None),
        };
        let watchdog_pid = std::env::var("WATCHDOG_PID").ok();
        let ours = watchdog_pid.is_none_or(|pid| pid.parse() == Ok(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|usec| ours && *usec > 0)
            .map(Duration::from_micros);
        Notifier::new(manager, parent, watchdog)
    }

    /// A notifier that sends to `socket` (a path, or `@name` for an abstract address).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::Notifier;
    /// use std::os::unix::net::UnixDatagram;
    ///
    /// let dir = std::env::temp_dir().join(format!("notify-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("notify");
    /// let _ = std::fs::remove_file(&path);
    /// let manager = UnixDatagram::bind(&path)?;
    ///
    /// Notifier::to_socket(&path).ready();
    /// let mut buf = [0; 64];
    /// let n = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"READY=1\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn to_socket(socket: impl AsRef<OsStr>) -> Notifier {
        Notifier::new(Some(socket.as_ref().to_owned()), None, None)
    }

    /// A notifier that sends nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::disabled();
    /// notifier.ready();
    /// assert!(notifier.manager_socket().is_none());
    /// assert_eq!(notifier.watchdog_interval(), None);
    /// ```
    pub fn disabled() -> Notifier {
        Notifier::new(None, None, None)
    }

    fn new(
        manager: Option<OsString>,
        parent: Option<OsString>,
        watchdog: Option<Duration>,
    ) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                manager,
                parent: Mutex::new(parent),
                watchdog,
                warned: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                handed_over: AtomicBool::new(false),
            }),
        }
    }

    /// Whether a hot-restarting parent waits for this process's `READY=1`.
    pub(crate) fn parent_waits(&self) -> bool {
        self.inner
            .parent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }

    /// The service manager's socket, if any: what a hot restart hands on to its child.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::to_socket("@graceful-doc");
    /// assert_eq!(notifier.manager_socket(), Some(std::ffi::OsStr::new("@graceful-doc")));
    /// ```
    pub fn manager_socket(&self) -> Option<&OsStr> {
        self.inner.manager.as_deref()
    }

    /// How often to send [`watchdog`](Notifier::watchdog) pings: half the service manager's
    /// `WATCHDOG_USEC`, or `None` when it asks for none.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::Notifier;
    ///
    /// // Only `from_env` reads WATCHDOG_USEC; a notifier made by hand pings on no schedule.
    /// assert_eq!(Notifier::to_socket("@graceful-doc").watchdog_interval(), None);
    /// ```
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.inner.watchdog.map(|usec| usec / 2)
    }

    /// `READY=1`: the server accepts connections. In a hot restart's child it goes to the
    /// parent (which then hands the service over) and only there.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::os::unix::net::UnixDatagram;
    /// # let dir = std::env::temp_dir().join(format!("notify-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("notify");
    /// # let _ = std::fs::remove_file(&path);
    /// # let manager = UnixDatagram::bind(&path)?;
    /// # let mut buf = [0; 256];
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::to_socket(&path); // the service manager's socket
    /// notifier.ready();
    /// let n = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"READY=1\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ready(&self) {
        let parent = self
            .inner
            .parent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match parent {
            Some(parent) => self.warn_on(send_to(&parent, "READY=1\n"), &parent),
            None => self.send("READY=1\n"),
        }
    }

    /// `STOPPING=1`: the shutdown has begun. Sent once, however often it is called (from
    /// the shutdown-initiated hook, which runs before the drain, and from [`Monitor`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::os::unix::net::UnixDatagram;
    /// # let dir = std::env::temp_dir().join(format!("notify-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("notify");
    /// # let _ = std::fs::remove_file(&path);
    /// # let manager = UnixDatagram::bind(&path)?;
    /// # let mut buf = [0; 256];
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::to_socket(&path); // the service manager's socket
    /// notifier.stopping();
    /// notifier.stopping(); // sent once
    /// let n = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"STOPPING=1\n");
    /// manager.set_nonblocking(true)?;
    /// assert!(manager.recv(&mut buf).is_err());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stopping(&self) {
        if !self.inner.stopping.swap(true, Ordering::AcqRel) {
            self.send("STOPPING=1\n");
        }
    }

    /// `STATUS=...`: a line of free text for `systemctl status`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::os::unix::net::UnixDatagram;
    /// # let dir = std::env::temp_dir().join(format!("notify-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("notify");
    /// # let _ = std::fs::remove_file(&path);
    /// # let manager = UnixDatagram::bind(&path)?;
    /// # let mut buf = [0; 256];
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::to_socket(&path); // the service manager's socket
    /// notifier.status("draining: 3 active");
    /// let n = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"STATUS=draining: 3 active\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn status(&self, status: &str) {
        let status = status.replace('\n', " ");
        self.send(&format!("STATUS={status}\n"));
    }

    /// `MAINPID=...`: the service's main process is now `pid` (after a hot restart).
    ///
    /// Once another process is named, this notifier sends nothing more: the service
    /// manager heeds the new main process, and this one's `STOPPING=1` would stop the
    /// service if the manager took it (systemd does, with `NotifyAccess=all`).
    ///
    /// With a watchdog on, the datagram carries a `WATCHDOG=1` too: the service manager
    /// takes it from the main process that was (it checks the sender once per datagram),
    /// and the new main process, whose first ping came before it was main, pings next
    /// within half the watchdog's period; without it, the gap between the old process's
    /// last ping and the new one's first accepted ping can reach the whole period.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::os::unix::net::UnixDatagram;
    /// # let dir = std::env::temp_dir().join(format!("notify-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("notify");
    /// # let _ = std::fs::remove_file(&path);
    /// # let manager = UnixDatagram::bind(&path)?;
    /// # let mut buf = [0; 256];
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::to_socket(&path); // the service manager's socket
    /// notifier.main_pid(4242); // the new process after a hot restart
    /// let n = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"MAINPID=4242\n");
    /// notifier.status("ignored"); // handed over: nothing more is sent
    /// manager.set_nonblocking(true)?;
    /// assert!(manager.recv(&mut buf).is_err());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn main_pid(&self, pid: u32) {
        let ping = if self.inner.watchdog.is_some() {
            "WATCHDOG=1\n"
        } else {
            ""
        };
        self.send(&format!("MAINPID={pid}\n{ping}"));
        if pid != std::process::id() {
            self.inner.handed_over.store(true, Ordering::Release);
        }
    }

    /// `WATCHDOG=1`: the keep-alive ping.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::os::unix::net::UnixDatagram;
    /// # let dir = std::env::temp_dir().join(format!("notify-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("notify");
    /// # let _ = std::fs::remove_file(&path);
    /// # let manager = UnixDatagram::bind(&path)?;
    /// # let mut buf = [0; 256];
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::to_socket(&path); // the service manager's socket
    /// notifier.watchdog();
    /// let n = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"WATCHDOG=1\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1\n");
    }

    /// Sends `message` (lines of `KEY=VALUE\n`) to the service manager, if any.
    ///
    /// # Errors
    ///
    /// When the socket is unreachable. The named notifications log this instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::os::unix::net::UnixDatagram;
    /// # let dir = std::env::temp_dir().join(format!("notify-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("notify");
    /// # let _ = std::fs::remove_file(&path);
    /// # let manager = UnixDatagram::bind(&path)?;
    /// # let mut buf = [0; 256];
    /// use graceful_core::deploy::Notifier;
    ///
    /// let notifier = Notifier::to_socket(&path); // the service manager's socket
    /// notifier.try_send("EXTEND_TIMEOUT_USEC=5000000\n")?;
    /// let n = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"EXTEND_TIMEOUT_USEC=5000000\n");
    /// // An unreachable socket is an error here, where `ready` and the others log it.
    /// assert!(Notifier::to_socket(dir.join("nobody")).try_send("READY=1\n").is_err());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send(&self, message: &str) -> io::Result<()> {
        match &self.inner.manager {
            Some(socket) => send_to(socket, message),
            None => Ok(()),
        }
    }

    fn send(&self, message: &str) {
        if self.inner.handed_over.load(Ordering::Acquire) {
            return;
        }
        if let Some(socket) = &self.inner.manager {
            self.warn_on(send_to(socket, message), socket);
        }
    }

    fn warn_on(&self, sent: io::Result<()>, socket: &OsStr) {
        if let Err(error) = sent {
            if !self.inner.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    socket = ?socket,
                    %error,
                    "cannot notify the service manager (NOTIFY_SOCKET); going on without"
                );
            }
        }
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("manager", &self.inner.manager)
            .field("watchdog", &self.inner.watchdog)
            .finish_non_exhaustive()
    }
}

fn non_empty(value: Option<OsString>) -> Option<OsString> {
    value.filter(|value| !value.is_empty())
}

fn send_to(socket: &OsStr, message: &str) -> io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    let bytes = socket.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(name) => {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sender.send_to_addr(message.as_bytes(), &addr)?
        }
        _ => sender.send_to(message.as_bytes(), socket)?,
    };
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::ErrorKind::WriteZero.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Graceful, ManualTimer};
    use futures::FutureExt;
    use std::future::Future;
    use std::pin::Pin;

    /// A bound notification socket in a fresh directory, read without blocking.
    struct Manager {
        dir: std::path::PathBuf,
        socket: UnixDatagram,
    }

    impl Manager {
        fn bind(tag: &str) -> Manager {
            let dir =
                std::env::temp_dir().join(format!("graceful-notify-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let socket = UnixDatagram::bind(dir.join("notify")).unwrap();
            socket.set_nonblocking(true).unwrap();
            Manager { dir, socket }
        }

        fn notifier(&self) -> Notifier {
            Notifier::to_socket(self.dir.join("notify"))
        }

        /// The datagrams received so far.
        fn received(&self) -> Vec<String> {
            let mut buf = [0u8; 1024];
            let mut got = Vec::new();
            while let Ok(n) = self.socket.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            got
        }
    }

    impl Drop for Manager {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn poll(future: &mut Pin<Box<dyn Future<Output = ()> + Send>>) -> bool {
        future.as_mut().now_or_never().is_some()
    }

    #[test]
    fn the_monitor_reports_the_drain_on_the_timers_clock() {
        let manager = Manager::bind("monitor");
        let timer = ManualTimer::new();
        let graceful = Graceful::builder()
            .timeout(Duration::from_secs(10))
            .build(timer.clone())
            .unwrap();
        let shutdown = graceful.shutdown();
        let acceptor = graceful.acceptor();
        let mut run = graceful.run();
        let busy = acceptor.try_reserve().unwrap().register();
        busy.mark_active();
        let mut monitor: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(
            Monitor::new(manager.notifier(), shutdown.clone(), timer.clone())
                .timeout(Duration::from_secs(10))
                .run(),
        );
        let step = |monitor: &mut Pin<Box<dyn Future<Output = ()> + Send>>| {
            timer.advance(Monitor::TICK);
            poll(monitor)
        };

        assert!(!poll(&mut monitor));
        assert!(!step(&mut monitor));
        assert_eq!(
            manager.received(),
            Vec::<String>::new(),
            "serving: nothing to say"
        );

        shutdown.stop();
        assert!(
            (&mut run).now_or_never().is_none(),
            "draining the busy connection"
        );
        assert!(!step(&mut monitor));
        assert_eq!(
            manager.received(),
            [
                "STOPPING=1\n",
                "STATUS=draining: 1 active, 0 idle, 0 hijacked, 10 s left\n"
            ]
        );
        for _ in 0..9 {
            assert!(!step(&mut monitor));
        }
        assert_eq!(
            manager.received(),
            Vec::<String>::new(),
            "one status a second"
        );
        assert!(!step(&mut monitor));
        assert_eq!(
            manager.received(),
            ["STATUS=draining: 1 active, 0 idle, 0 hijacked, 9 s left\n"]
        );

        busy.mark_idle();
        drop(busy);
        assert!((&mut run).now_or_never().is_some(), "drained");
        assert!(step(&mut monitor), "the monitor ends with the shutdown");
        assert_eq!(manager.received(), Vec::<String>::new());
    }

    #[test]
    fn stopping_is_said_once_and_an_unreachable_socket_is_an_error_not_a_panic() {
        let manager = Manager::bind("once");
        let notifier = manager.notifier();
        notifier.stopping();
        notifier.clone().stopping();
        assert_eq!(manager.received(), ["STOPPING=1\n"]);

        let nowhere = Notifier::to_socket("/nonexistent/graceful/notify");
        assert!(nowhere.try_send("READY=1\n").is_err());
        nowhere.ready(); // logged once, never a panic
        nowhere.status("still going");
        assert!(Notifier::disabled().try_send("READY=1\n").is_ok());
    }

    #[test]
    fn a_hand_over_child_says_ready_to_its_parent_then_talks_to_the_manager() {
        let parent = Manager::bind("parent");
        let manager = Manager::bind("upstream");
        let notifier = Notifier::new(
            Some(manager.dir.join("notify").into_os_string()),
            Some(parent.dir.join("notify").into_os_string()),
            Some(Duration::from_secs(10)),
        );
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(5)));
        notifier.ready();
        notifier.status("serving");
        notifier.ready();
        assert_eq!(parent.received(), ["READY=1\n"]);
        assert_eq!(manager.received(), ["STATUS=serving\n", "READY=1\n"]);
    }

    #[test]
    fn mainpid_carries_a_watchdog_ping_when_the_watchdog_is_on() {
        let manager = Manager::bind("mainpid-ping");
        let socket = manager.dir.join("notify").into_os_string();
        let notifier = Notifier::new(Some(socket), None, Some(Duration::from_secs(10)));
        notifier.main_pid(1);
        notifier.watchdog();
        assert_eq!(manager.received(), ["MAINPID=1\nWATCHDOG=1\n"]);
    }

    #[test]
    fn after_handing_mainpid_over_nothing_more_is_said() {
        let manager = Manager::bind("handover");
        let notifier = manager.notifier();
        notifier.main_pid(std::process::id());
        notifier.status("still main");
        notifier.main_pid(1);
        notifier.stopping();
        notifier.status("draining");
        notifier.watchdog();
        assert_eq!(
            manager.received(),
            [
                format!("MAINPID={}\n", std::process::id()),
                "STATUS=still main\n".to_owned(),
                "MAINPID=1\n".to_owned(),
            ]
        );
    }
}
