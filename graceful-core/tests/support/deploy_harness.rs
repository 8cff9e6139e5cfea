//! The harness of the adapters' `tests/deploy.rs` (graceful-tokio's and graceful-smol's
//! include it with `#[path]`): the `deploy` setting is graceful-core's, written once, and
//! each adapter proves it on its runtime the same way. The including file defines `CHILD`
//! (the variable that makes its test binary play the server), `RUNTIME` (a name for temp
//! files) and `LONG`, and a `child` test that serves when `CHILD` is set: a tiny server
//! that answers each connection with its pid.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use rustix::process::{Pid, Signal};

use super::{CHILD, LONG};

/// Held while this process starts a child: until the child's `exec`, it holds a copy of
/// every descriptor of this process, listening sockets included. A test that checks that
/// nothing listens on a socket it closed holds it too.
pub(super) static FORKING: Mutex<()> = Mutex::new(());

/// A test-owned `NOTIFY_SOCKET`, collecting lines.
pub(super) struct Notify {
    dir: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Notify {
    pub(super) fn bind(tag: &str) -> Notify {
        let dir = std::env::temp_dir().join(format!(
            "graceful-{}-deploy-{tag}-{}",
            super::RUNTIME,
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

    pub(super) fn path(&self) -> PathBuf {
        self.dir.join("notify")
    }

    pub(super) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub(super) fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    /// Waits for a line starting with `prefix`; returns it.
    pub(super) fn wait(&self, prefix: &str) -> String {
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
pub(super) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LONG, "not within {LONG:?}: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The child server, its stderr lines, and a line per `listening` on its stdout (its
/// restarted successors share the pipes).
pub(super) struct ChildServer {
    child: Child,
    listening: mpsc::Receiver<()>,
    stderr: Arc<Mutex<Vec<String>>>,
}

pub(super) fn spawn(env: &[(&str, String)], fd: Option<OwnedFd>) -> ChildServer {
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
    let mut child = {
        let _forking = FORKING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        command.spawn().expect("spawn the child server")
    };
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
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn listening(&self) {
        self.listening
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("not listening: {:#?}", self.stderr()));
    }

    pub(super) fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub(super) fn wait_stderr(&self, text: &str) {
        wait_for(&format!("{text:?} on stderr"), || {
            self.stderr().iter().any(|l| l.contains(text))
        });
    }

    pub(super) fn exit_code(&mut self) -> Option<i32> {
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

pub(super) fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, signal).expect("signal the server");
}

/// Whether `pid` is alive (a zombie is not).
pub(super) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// The pid the server at `addr` answers with.
pub(super) fn pid_at(addr: SocketAddr) -> u32 {
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
pub(super) fn listener_for_child() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Hot restart with the setting's defaults: `READY=1` and watchdog pings to the manager,
/// SIGHUP starts the program again on the same socket, the new process serves, the old
/// one hands `MAINPID=` on, drains and exits; the new one's SIGTERM says `STOPPING=1`.
#[test]
pub(super) fn sighup_hot_restarts_a_library_server() {
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
