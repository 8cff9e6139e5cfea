//! Zero-downtime deploys, tried for real on loopback: a test-owned `NOTIFY_SOCKET`,
//! temporary directories, and the scenarios that graceful-tokio and graceful-smol both prove
//! on a library server of their own: the hot restart, and several named listeners under
//! the real `systemd-socket-activate`.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{stop_pid, Launch, Process, START_BOUND};
use crate::wait_until;

/// A temporary directory, unique to this process and call, removed on drop.
///
/// # Examples
///
/// ```
/// let dir = graceful_harness::deploy::TempDir::new("example");
/// std::fs::write(dir.path().join("file"), "text").unwrap();
/// let kept = dir.path().to_path_buf();
/// drop(dir);
/// assert!(!kept.exists());
/// ```
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes a new empty directory under the system's temporary directory, `tag` in its
    /// name.
    pub fn new(tag: &str) -> TempDir {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let name = format!("graceful-{tag}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test-owned `NOTIFY_SOCKET`: collects the lines of the datagrams it receives, as a
/// service manager would.
#[derive(Debug)]
pub struct NotifySocket {
    path: PathBuf,
    heard: Arc<(Mutex<Vec<String>>, Condvar)>,
    _dir: TempDir,
}

impl NotifySocket {
    /// Binds a new socket in a temporary directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use graceful_harness::deploy::NotifySocket;
    ///
    /// let notify = NotifySocket::bind("example");
    /// let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
    /// client.send_to(b"READY=1\nSTATUS=serving", notify.path()).unwrap();
    /// notify.wait_line("READY=1", Duration::from_secs(10), |l| l == "READY=1");
    /// assert_eq!(notify.lines(), ["READY=1", "STATUS=serving"]);
    /// ```
    pub fn bind(tag: &str) -> NotifySocket {
        let dir = TempDir::new(tag);
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        // Looks now and then whether the test still listens, so the thread ends with it.
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let heard = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let kept = Arc::downgrade(&heard);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Some(heard) = kept.upgrade() {
                let Ok(n) = socket.recv(&mut buf) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..n]);
                let mut lines = heard.0.lock().unwrap_or_else(|p| p.into_inner());
                lines.extend(text.lines().map(String::from));
                heard.1.notify_all();
            }
        });
        NotifySocket {
            path,
            heard,
            _dir: dir,
        }
    }

    /// The socket's path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lines heard so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.heard
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many times `line` was heard.
    pub fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    /// Waits for a line for which `matches` holds; returns its index in [`lines`]. Panics
    /// after `bound`, naming `what` it waited for.
    ///
    /// [`lines`]: NotifySocket::lines
    #[track_caller]
    pub fn wait_line(&self, what: &str, bound: Duration, matches: impl Fn(&str) -> bool) -> usize {
        let (lines, heard) = &*self.heard;
        let deadline = Instant::now() + bound;
        let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(at) = lines.iter().position(|line| matches(line)) {
                return at;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no notification {what} within {bound:?}; heard {lines:#?}"
            );
            lines = heard
                .wait_timeout(lines, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The pid a library server of the adapters' deploy tests answers each connection with
/// (it writes its pid and closes).
#[track_caller]
pub fn pid_at(addr: SocketAddr, bound: Duration) -> u32 {
    let mut stream = TcpStream::connect_timeout(&addr, bound).expect("connect");
    stream
        .set_read_timeout(Some(bound))
        .expect("a read timeout");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the pid");
    answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a pid: {answer:?}"))
}

/// Hot restart of a library server with the `deploy` setting's defaults, the scenario each
/// adapter proves on its runtime: `READY=1` and watchdog pings to the manager; SIGHUP
/// starts the program again on the same socket, the new process serves, the old one hands
/// `MAINPID=` on, drains and exits; the new one's SIGTERM says `STOPPING=1`.
///
/// `server` launches the adapter's server: it serves a socket handed as `LISTEN_FDS`,
/// answers each connection with its pid ([`pid_at`]) and prints `listening` once it serves.
pub fn sighup_hot_restarts_a_library_server(server: Launch, bound: Duration) {
    let notify = NotifySocket::bind("restart");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a socket to hand over");
    let addr = listener.local_addr().expect("its address");
    let mut server = server
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "200000")
        .env("LISTEN_FDS", "1")
        .env("GRACEFUL_RESTART_PARENT", std::process::id().to_string())
        .fd(3, listener)
        .spawn();
    server.next_stdout("a `listening` line", bound, |line| {
        line.ends_with("listening").then_some(())
    });
    notify.wait_line("READY=1", bound, |l| l == "READY=1");
    notify.wait_line("WATCHDOG=1", bound, |l| l == "WATCHDOG=1");
    let old = server.id();
    assert_eq!(pid_at(addr, bound), old, "the handed socket is served");

    let sighup = Instant::now();
    server.hangup();
    let at = notify.wait_line("MAINPID=", bound, |l| l.starts_with("MAINPID="));
    let new: u32 = notify.lines()[at]["MAINPID=".len()..]
        .parse()
        .expect("a pid");
    server.owns(new);
    assert_ne!(new, old);
    wait_until("the new process to answer", bound, || {
        pid_at(addr, bound) == new
    });
    println!(
        "measured: SIGHUP to the new process serving: {:?}",
        sighup.elapsed()
    );
    let (_, status) = server.wait_exit(bound);
    assert_eq!(status.code(), Some(0), "{:#?}", server.stderr());
    server.wait_stderr("hot restart: process", bound);
    assert_eq!(
        notify.count("READY=1"),
        1,
        "the new one said READY=1 to its parent"
    );
    assert_eq!(
        pid_at(addr, bound),
        new,
        "the socket outlived the old process"
    );

    stop_pid(new, bound);
    notify.wait_line("STOPPING=1", bound, |l| l == "STOPPING=1");
    assert_eq!(notify.count("STOPPING=1"), 1, "{:#?}", notify.lines());
    assert!(
        TcpStream::connect(addr).is_err(),
        "the socket closed with its last server"
    );
}

/// A free address on 127.0.0.3, where no other test binds or connects.
pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.3:0")
        .and_then(|probe| probe.local_addr())
        .expect("a free port on 127.0.0.3")
}

/// This test binary's `test`, under the real `systemd-socket-activate` listening on `addrs`
/// with `--fdname=fdnames`, with `env` (the tool passes on none of its own environment, only
/// what `--setenv` says); returns once the tool listens. The server itself starts at the
/// first connection (the tool's default), with the same pid (the tool `exec`s it).
pub fn socket_activated(
    test: &str,
    env: &[(&str, &str)],
    addrs: &[SocketAddr],
    fdnames: &str,
) -> Process {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut launch = Launch::program("systemd-socket-activate").named(test);
    for addr in addrs {
        launch = launch.arg("-l").arg(addr.to_string());
    }
    launch = launch.arg(format!("--fdname={fdnames}"));
    for (key, value) in env {
        launch = launch.arg(format!("--setenv={key}={value}"));
    }
    let server = launch
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .spawn();
    let last = addrs.last().expect("an address");
    let fd = addrs.len() + 2;
    server.wait_stderr(&format!("Listening on {last} as {fd}"), START_BOUND);
    server
}

/// The server of the named-listener scenarios, on any runtime: `Server::listen_all` of the
/// `:`-separated `names` (each on `127.0.0.1:0` when not socket activated), each added to
/// `server` with `handler`; prints what the scenarios read (see
/// [`named_sockets_are_served_and_handed_over_together`]). Returns the exit code.
#[cfg(feature = "deploy")]
pub async fn serve_named<R, H>(server: graceful_core::Server<R>, names: &str, handler: H) -> i32
where
    R: graceful_core::deploy::DeployRuntime,
    H: graceful_core::serve::Handler<<R::TcpListener as graceful_core::serve::Listener<R>>::Io>
        + Clone,
{
    let wanted = names.split(':').map(|name| (name, "127.0.0.1:0"));
    let listeners = match server.listen_all(wanted) {
        Ok(listeners) => listeners,
        Err(error) => {
            eprintln!("cannot listen: {error}");
            return 1;
        }
    };
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    println!(
        "environment: LISTEN_FDS={} LISTEN_PID={} LISTEN_FDNAMES={} pid={}",
        var("LISTEN_FDS"),
        var("LISTEN_PID"),
        var("LISTEN_FDNAMES"),
        std::process::id()
    );
    let again = graceful_core::deploy::adopt_tcp_listeners().map(|a| a.listeners.len());
    println!("adopted again: {again:?}");
    let mut server = server;
    for (name, listener) in names.split(':').zip(listeners) {
        server = server.add(name, listener, handler.clone());
    }
    let serving = server.run();
    println!("listening");
    let report = serving.await;
    eprintln!("report: {report}");
    0
}

/// Several named listeners, the scenario each adapter proves on its runtime: two sockets
/// named `http` and `admin` by `systemd-socket-activate`, served by `Server::listen_all`
/// (asked for in the other order: each takes its own), with no environment variable edited
/// and nothing for a second adoption; `STATUS=` names both before `READY=1`; SIGHUP hands
/// both over, with their names, to a new process that finds them; the old one's report
/// counts each listener.
///
/// `test` with `env` plays the server: with `names_var` set to `:`-separated names, it
/// runs `serve_named` (feature `deploy`) on a deploying server (restart timeout 10 s)
/// with a handler that answers with the pid ([`pid_at`]) and exits with its code.
pub fn named_sockets_are_served_and_handed_over_together(
    test: &str,
    env: &[(&str, &str)],
    names_var: &str,
    bound: Duration,
) {
    let (http, admin) = (free_address(), free_address());
    let notify = NotifySocket::bind("named");
    let notify_path = notify.path().display().to_string();
    let mut env = env.to_vec();
    env.extend([(names_var, "admin:http"), ("NOTIFY_SOCKET", &notify_path)]);
    let mut server = socket_activated(test, &env, &[http, admin], "http:admin");
    let old = server.id();
    assert_eq!(
        pid_at(http, bound),
        old,
        "the first connection starts the server"
    );
    assert_eq!(pid_at(admin, bound), old);
    let environment =
        format!("environment: LISTEN_FDS=2 LISTEN_PID={old} LISTEN_FDNAMES=http:admin pid={old}");
    server.next_stdout("the environment, untouched", bound, |line| {
        line.ends_with(&environment).then_some(())
    });
    server.next_stdout("a second adoption", bound, |line| {
        (line == "adopted again: Ok(0)").then_some(())
    });
    let status = format!("STATUS=serving admin on {admin}, http on {http}");
    let at = notify.wait_line(&status, bound, |line| line == status);
    let ready = notify.wait_line("READY=1", bound, |line| line == "READY=1");
    assert_eq!(ready, at + 1, "{:#?}", notify.lines());

    server.hangup();
    let (_, status) = server.wait_exit(bound);
    assert_eq!(status.code(), Some(0), "{:#?}", server.stderr());
    server.wait_stderr("hot restart: process", bound);
    // One server, one drain: its report counts each listener.
    let report = server.wait_stderr("report: ", bound);
    assert!(report.contains("; by listener: admin: "), "{report}");
    assert!(report.contains(", http: "), "{report}");
    let new = pid_at(http, bound);
    server.owns(new);
    assert_ne!(new, old);
    assert_eq!(pid_at(admin, bound), new, "admin was handed over too");
    // The new process prints to the same pipes: it found both by name, and its LISTEN_PID
    // is its own.
    let environment =
        format!("environment: LISTEN_FDS=2 LISTEN_PID={new} LISTEN_FDNAMES=admin:http pid={new}");
    server.next_stdout("the new process's environment", bound, |line| {
        line.ends_with(&environment).then_some(())
    });
    stop_pid(new, bound);
    for addr in [http, admin] {
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} closed with its last server"
        );
    }
}

/// Inherited sockets and names that do not match (an unnamed socket no name claims, a
/// name no socket has): the server of [`named_sockets_are_served_and_handed_over_together`]
/// says what is wrong, exits 1 without saying `READY=1`, and leaves nothing listening.
pub fn sockets_and_names_that_do_not_match_are_refused(
    test: &str,
    env: &[(&str, &str)],
    names_var: &str,
    bound: Duration,
) {
    let cases = [
        (
            3,
            "http:admin",
            "http:admin",
            "no listener claims inherited fd 5 unnamed; LISTEN_FDS passes fd 3 \"http\", \
             fd 4 \"admin\", fd 5 unnamed",
        ),
        (
            1,
            "http",
            "http:admin",
            "no inherited socket is named \"admin\"",
        ),
    ];
    for (sockets, fdnames, names, message) in cases {
        let addrs: Vec<SocketAddr> = (0..sockets).map(|_| free_address()).collect();
        let notify = NotifySocket::bind("unmatched");
        let notify_path = notify.path().display().to_string();
        let mut env = env.to_vec();
        env.extend([(names_var, names), ("NOTIFY_SOCKET", &notify_path)]);
        let server = socket_activated(test, &env, &addrs, fdnames);
        let starts = TcpStream::connect(addrs[0]).expect("the tool listens");
        let (_, status) = server.wait_exit(bound);
        assert_eq!(status.code(), Some(1), "{names}: {:#?}", server.stderr());
        server.wait_stderr(&format!("cannot listen: {message}"), bound);
        drop(starts);
        assert_eq!(notify.count("READY=1"), 0, "never ready");
        for addr in &addrs {
            assert!(
                TcpStream::connect(addr).is_err(),
                "{names}: nothing may listen on {addr}"
            );
        }
    }
}
