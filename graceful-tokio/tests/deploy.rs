//! The `deploy` setting used directly, as a library user writes it (not through the
//! examples): a tiny server, this very test binary re-run as a child, that answers each
//! connection with its pid. A test-owned `NOTIFY_SOCKET` hears its life; SIGHUP hot
//! restarts it; a socket handed over as `LISTEN_FDS` is served; a new process that never
//! says ready is given up at the restart timeout.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use graceful_tokio::{Deploy, Server};
use rustix::process::{Pid, Signal};
use tokio::io::AsyncWriteExt;

/// Set in the child's environment: run the server.
const CHILD: &str = "GRACEFUL_TOKIO_DEPLOY_CHILD";
/// Set in the child's environment to the test's pid: a hot restart's new process (whose
/// restart parent is another) never says ready.
const HANG_WHEN_RESTARTED: &str = "GRACEFUL_TOKIO_DEPLOY_HANG";
const LONG: Duration = Duration::from_secs(30);

/// The server, in three lines of deploy: plays it when re-run as a child.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let parent = std::env::var("GRACEFUL_RESTART_PARENT").ok();
    if std::env::var(HANG_WHEN_RESTARTED).is_ok_and(|test| Some(test) != parent) {
        thread::sleep(LONG * 2); // never ready: the parent kills it at its timeout
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let code = runtime.block_on(async {
        let deploy = Deploy::new().restart_timeout(Duration::from_secs(2));
        let server = Server::builder().deploy(deploy).build().expect("settings");
        let listener = match server.listen("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cannot listen: {error}");
                return 1;
            }
        };
        let serving = server.serve(listener, |mut stream, conn| async move {
            conn.mark_active();
            let pid = format!("{}\n", std::process::id());
            let _ = stream.write_all(pid.as_bytes()).await;
            conn.mark_idle();
        });
        println!("listening"); // the listener is bound or adopted; serving starts now
        let report = serving.await;
        eprintln!("report: {report}");
        0
    });
    std::process::exit(code);
}

/// A test-owned `NOTIFY_SOCKET`, collecting lines.
struct Notify {
    dir: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Notify {
    fn bind(tag: &str) -> Notify {
        let dir = std::env::temp_dir().join(format!(
            "graceful-tokio-deploy-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = UnixDatagram::bind(dir.join("notify")).unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                kept.lock().unwrap().extend(text.lines().map(String::from));
            }
        });
        Notify { dir, lines }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("notify")
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    /// Waits for a line starting with `prefix`; returns it.
    fn wait(&self, prefix: &str) -> String {
        let mut found = None;
        wait_for(&format!("a {prefix} notification"), || {
            found = self.lines().into_iter().find(|l| l.starts_with(prefix));
            found.is_some()
        });
        found.unwrap_or_default()
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `done` every 5 ms; fails after [`LONG`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LONG, "not within {LONG:?}: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The child server, its stderr lines, and a line per `listening` on its stdout (its
/// restarted successors share the pipes).
struct ChildServer {
    child: Child,
    listening: mpsc::Receiver<()>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn spawn(env: &[(&str, String)], fd: Option<OwnedFd>) -> ChildServer {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child", "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .env_remove("NOTIFY_SOCKET")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(parent_fd) = fd {
        command
            .fd_mappings(vec![FdMapping {
                parent_fd,
                child_fd: 3,
            }])
            .unwrap();
    }
    let mut child = command.spawn().expect("spawn the child server");
    let stdout = child.stdout.take().unwrap();
    let (tx, listening) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print `test child ... ` on the same line first.
            if line.ends_with("listening") {
                let _ = tx.send(());
            }
        }
    });
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let kept = stderr.clone();
    let pipe = child.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    ChildServer {
        child,
        listening,
        stderr,
    }
}

impl ChildServer {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn listening(&self) {
        self.listening
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("not listening: {:#?}", self.stderr()));
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_stderr(&self, text: &str) {
        wait_for(&format!("{text:?} on stderr"), || {
            self.stderr().iter().any(|l| l.contains(text))
        });
    }

    fn exit_code(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(start.elapsed() < LONG, "no exit: {:#?}", self.stderr());
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, signal).expect("signal the server");
}

/// Whether `pid` is alive (a zombie is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// The pid the server at `addr` answers with.
fn pid_at(addr: SocketAddr) -> u32 {
    let mut stream = TcpStream::connect_timeout(&addr, LONG).expect("connect");
    stream.set_read_timeout(Some(LONG)).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the pid");
    answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{answer:?}"))
}

/// A listening socket to hand the child as `LISTEN_FDS`, and its address.
fn listener_for_child() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Hot restart with the setting's defaults: `READY=1` and watchdog pings to the manager,
/// SIGHUP starts the program again on the same socket, the new process serves, the old
/// one hands `MAINPID=` on, drains and exits; the new one's SIGTERM says `STOPPING=1`.
#[test]
fn sighup_hot_restarts_a_library_server() {
    let notify = Notify::bind("restart");
    let (listener, addr) = listener_for_child();
    let mut server = spawn(
        &[
            ("NOTIFY_SOCKET", notify.path().display().to_string()),
            ("WATCHDOG_USEC", "200000".into()),
            ("LISTEN_FDS", "1".into()),
            ("GRACEFUL_RESTART_PARENT", std::process::id().to_string()),
        ],
        Some(listener.into()),
    );
    server.listening();
    notify.wait("READY=1");
    notify.wait("WATCHDOG=1");
    let old = server.pid();
    assert_eq!(pid_at(addr), old, "the handed socket is served");

    let sighup = Instant::now();
    signal(old, Signal::HUP);
    let mainpid = notify.wait("MAINPID=");
    let new: u32 = mainpid["MAINPID=".len()..].parse().unwrap();
    assert_ne!(new, old);
    let mut answered = old;
    wait_for("the new process answers", || {
        answered = pid_at(addr);
        answered == new
    });
    println!(
        "measured: SIGHUP to the new process serving: {:?}",
        sighup.elapsed()
    );
    assert_eq!(server.exit_code(), Some(0), "{:#?}", server.stderr());
    server.wait_stderr("hot restart: process");
    assert_eq!(
        notify.count("READY=1"),
        1,
        "the new one said READY=1 to its parent"
    );
    assert_eq!(pid_at(addr), new, "the socket outlived the old process");

    signal(new, Signal::TERM);
    wait_for("the new process exits", || !alive(new));
    wait_for("the new process's STOPPING=1", || {
        notify.count("STOPPING=1") == 1
    });
    assert!(
        TcpStream::connect(addr).is_err(),
        "the socket closed with its last server"
    );
}

/// A new process that never says `READY=1` is killed at the restart timeout (2 s here);
/// the old one logs why and serves on.
#[test]
fn a_new_process_that_is_never_ready_is_given_up_at_the_timeout() {
    let (listener, addr) = listener_for_child();
    let mut server = spawn(
        &[
            ("LISTEN_FDS", "1".into()),
            ("GRACEFUL_RESTART_PARENT", std::process::id().to_string()),
            (HANG_WHEN_RESTARTED, std::process::id().to_string()),
        ],
        Some(listener.into()),
    );
    server.listening();
    let old = server.pid();
    let sighup = Instant::now();
    signal(old, Signal::HUP);
    server.wait_stderr("hot restart failed: the new process was not ready within 2s");
    let waited = sighup.elapsed();
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert_eq!(pid_at(addr), old, "the old process serves on");
    signal(old, Signal::TERM);
    assert_eq!(server.exit_code(), Some(0), "{:#?}", server.stderr());
}

/// `LISTEN_FDS` naming a UDP socket: a clear error from `Server::listen`, no serving.
#[test]
fn a_socket_of_the_wrong_type_is_refused() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut server = spawn(
        &[
            ("LISTEN_FDS", "1".into()),
            ("GRACEFUL_RESTART_PARENT", std::process::id().to_string()),
        ],
        Some(udp.into()),
    );
    assert_eq!(server.exit_code(), Some(1));
    server.wait_stderr("cannot listen: inherited descriptor 3 (LISTEN_FDS) is not a TCP");
}

/// `Server::listen` outside a tokio runtime: an error, and nothing kept: no copy of the
/// socket left listening (the hot restart's), and a later call inside the runtime works.
#[test]
fn a_listen_the_runtime_refuses_keeps_nothing() {
    // 127.0.0.2: no other test of this binary binds or connects there.
    let addr = TcpListener::bind("127.0.0.2:0")
        .and_then(|probe| probe.local_addr())
        .unwrap();
    let server = Server::builder().deploy(Deploy::new()).build().unwrap();
    server.listen(addr).expect_err("no tokio runtime: refused");
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "nobody may listen on {addr}: {refused:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(async { server.listen(addr) });
    assert_eq!(listener.unwrap().local_addr().unwrap(), addr);
}
