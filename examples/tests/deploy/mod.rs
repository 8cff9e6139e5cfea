//! Zero-downtime deploys of the HTTP examples (issue 12), tried with real tools on
//! loopback: hot restart under a wrk load, a broken binary on disk, systemd's
//! `systemd-socket-activate`, and a test-owned `NOTIFY_SOCKET`.
//!
//! As in the `http_*` suites, the server is this very test binary re-run as a child (the
//! `child` test, with [`CHILD`] naming the example). A hot restart starts the binary again
//! from its path with the same arguments and environment, so the new process is the same
//! example again. Figures are printed as `measured:` lines (`--nocapture`).

#![allow(dead_code)] // Each test binary runs the scenarios on its own runtime.

pub mod scenarios;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// Names the example the child runs.
pub const CHILD: &str = "GRACEFUL_DEPLOY_CHILD";
/// The example's arguments, separated by spaces.
pub const CHILD_ARGS: &str = "GRACEFUL_DEPLOY_CHILD_ARGS";
/// The arguments that make the test binary run only the `child` test.
pub const CHILD_TEST: [&str; 5] = ["child", "--exact", "--nocapture", "--test-threads", "1"];

/// An example's server body, as `examples::*::main_with`.
pub type Main = fn(std::vec::IntoIter<String>) -> u8;

/// In the `child` test: if this process is a child, runs the example it names and exits.
pub fn run_child(examples: &[(&str, Main)]) {
    let Ok(name) = std::env::var(CHILD) else {
        return;
    };
    let Some((_, main)) = examples.iter().find(|(n, _)| *n == name) else {
        eprintln!("no example named {name}");
        std::process::exit(3);
    };
    let args: Vec<String> = std::env::var(CHILD_ARGS)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    std::process::exit(i32::from(main(args.into_iter())));
}

/// The scenarios take turns: wrk's load would skew the others' timings, and a binary
/// copied while another thread forks may be "busy" (ETXTBSY) when it is executed, as long
/// as the forked child holds the copy's write descriptor.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Polls `done` every 5 ms until it holds; fails with `what` after `within`. Returns how
/// long it took.
pub fn wait_for(within: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("graceful-deploy-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process started by the test: the example in the test binary at `exe`.
pub struct Server {
    pub pid: Pid,
    pub addr: SocketAddr,
    /// Every `listening on` address printed, by this process and the ones it restarted.
    listening: mpsc::Receiver<SocketAddr>,
    exited: mpsc::Receiver<ExitStatus>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// Says when stderr is closed (by this process and every one it started).
    stderr_closed: mpsc::Receiver<()>,
}

/// A last change to a server's command.
pub type Adjust<'a> = Box<dyn FnOnce(&mut Command) + 'a>;

/// How to start a [`Server`].
pub struct Start<'a> {
    pub example: &'a str,
    pub args: &'a str,
    pub exe: Option<&'a Path>,
    pub env: Vec<(String, String)>,
    /// A program and its arguments to run the server under (`systemd-socket-activate`).
    pub wrapper: Vec<String>,
    /// Adjusts the command last (to hand it descriptors).
    pub adjust: Option<Adjust<'a>>,
}

impl<'a> Start<'a> {
    pub fn new(example: &'a str) -> Start<'a> {
        Start {
            example,
            args: "--addr 127.0.0.1:0 --timeout 20",
            exe: None,
            env: Vec::new(),
            wrapper: Vec::new(),
            adjust: None,
        }
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Start<'a> {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Spawns the server; returns it and a receiver of its exit status, without waiting
    /// for it to listen.
    pub fn spawn(self) -> (Pid, Server) {
        let own = std::env::current_exe().expect("the test binary's path");
        let exe = self.exe.map_or(own, Path::to_path_buf);
        let mut command = match self.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        command
            .args(CHILD_TEST)
            .env(CHILD, self.example)
            .env(CHILD_ARGS, self.args)
            .env_remove("NOTIFY_SOCKET")
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(adjust) = self.adjust {
            adjust(&mut command);
        }
        let mut child = command.spawn().expect("spawn the server");
        let pid = Pid::from_child(&child);
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (listening_tx, listening) = mpsc::channel();
        thread::spawn(move || {
            const MARKER: &str = "listening on http://";
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find(MARKER) {
                    if let Ok(addr) = line[at + MARKER.len()..].trim().parse() {
                        let _ = listening_tx.send(addr);
                    }
                }
            }
        });
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        let (closed_tx, stderr_closed) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
            let _ = closed_tx.send(());
        });
        let (exited_tx, exited) = mpsc::channel();
        thread::spawn(move || {
            let status = child.wait().expect("wait for the server");
            let _ = exited_tx.send(status);
        });
        let server = Server {
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            listening,
            exited,
            stderr: lines,
            stderr_closed,
        };
        (pid, server)
    }

    /// Spawns the server and waits until it listens.
    pub fn start(self) -> Server {
        let (_, mut server) = self.spawn();
        server.addr = server.next_listening(Duration::from_secs(30));
        server
    }
}

impl Server {
    /// The next `listening on` address printed (by this process or one it restarted).
    pub fn next_listening(&self, within: Duration) -> SocketAddr {
        match self.listening.recv_timeout(within) {
            Ok(addr) => addr,
            Err(_) => panic!("no `listening on` line; stderr: {:#?}", self.stderr()),
        }
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a stderr line containing `text`.
    pub fn wait_stderr(&self, within: Duration, text: &str) {
        let start = Instant::now();
        while !self.stderr().iter().any(|line| line.contains(text)) {
            assert!(
                start.elapsed() < within,
                "no stderr line with {text:?} within {within:?}: {:#?}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn signal(&self, signal: Signal) {
        rustix::process::kill_process(self.pid, signal).expect("signal the server");
    }

    /// Waits for the process to exit; returns its status.
    pub fn wait_exit(&self, within: Duration) -> ExitStatus {
        match self.exited.recv_timeout(within) {
            Ok(status) => status,
            Err(_) => panic!("the server did not exit; stderr: {:#?}", self.stderr()),
        }
    }

    /// Waits for the process to exit and its stderr to be read to the end; returns its
    /// status.
    pub fn wait_exit_and_stderr(&self, within: Duration) -> ExitStatus {
        let status = self.wait_exit(within);
        if self.stderr_closed.recv_timeout(within).is_err() {
            panic!("stderr stays open; {:#?}", self.stderr());
        }
        status
    }

    /// Whether it has exited (without waiting).
    pub fn has_exited(&self) -> Option<ExitStatus> {
        self.exited.try_recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.pid, Signal::KILL);
    }
}

/// Whether process `pid` is alive (a zombie is not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// A process the test did not start (a hot restart's new process): SIGTERM it and wait
/// until it is gone. A process that outlives the test would hold its port and pipes.
pub fn terminate(pid: u32, within: Duration) {
    let pid_ = Pid::from_raw(pid as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid_, Signal::TERM);
    let gone = Instant::now();
    while alive(pid) {
        if gone.elapsed() > within {
            let _ = rustix::process::kill_process(pid_, Signal::KILL);
            panic!("process {pid} did not exit within {within:?} of SIGTERM");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A `GET path` on a fresh connection: the status and body.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The pid `GET /pid` reports.
pub fn pid_of(addr: SocketAddr) -> u32 {
    let (status, body) = get(addr, "/pid").expect("GET /pid");
    assert_eq!(status, 200, "GET /pid: {body}");
    body.trim().parse().expect("a pid")
}

/// What wrk reported.
#[derive(Debug)]
pub struct WrkReport {
    pub requests: u64,
    /// The `Socket errors:` line, if any.
    pub socket_errors: Option<String>,
    /// The `Non-2xx or 3xx responses:` count.
    pub non_2xx: u64,
    pub output: String,
}

/// A wrk load running in the background.
pub struct Wrk(std::process::Child);

impl Wrk {
    /// `wrk -t2 -c{connections} -d{secs}s http://addr/`.
    pub fn start(addr: SocketAddr, connections: u32, secs: u32) -> Wrk {
        let child = Command::new("wrk")
            .args(["-t2", &format!("-c{connections}"), &format!("-d{secs}s")])
            .arg(format!("http://{addr}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk (apt-get install wrk)");
        Wrk(child)
    }

    pub fn finish(self) -> WrkReport {
        let output = self.0.wait_with_output().expect("wait for wrk");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "wrk failed: {text}");
        let requests = text
            .lines()
            .find_map(|line| {
                line.trim()
                    .split_once(" requests in ")
                    .map(|(n, _)| n.to_owned())
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `requests in` line: {text}"));
        let socket_errors = text
            .lines()
            .find(|line| line.contains("Socket errors"))
            .map(|line| line.trim().to_owned());
        let non_2xx = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .map_or(0, |n| n.trim().parse().unwrap_or(u64::MAX));
        WrkReport {
            requests,
            socket_errors,
            non_2xx,
            output: text,
        }
    }
}

/// A test-owned `NOTIFY_SOCKET`: collects the datagrams it receives.
pub struct NotifySocket {
    pub path: PathBuf,
    messages: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl NotifySocket {
    pub fn bind(tag: &str) -> NotifySocket {
        let dir = TempDir::new(tag);
        let path = dir.0.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                let mut kept = kept.lock().unwrap();
                kept.extend(text.lines().map(String::from));
            }
        });
        NotifySocket {
            path,
            messages,
            _dir: dir,
        }
    }

    /// The lines received so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits for a line for which `matches` holds; returns its index.
    pub fn wait_line(&self, within: Duration, what: &str, matches: impl Fn(&str) -> bool) -> usize {
        let start = Instant::now();
        loop {
            if let Some(at) = self.lines().iter().position(|line| matches(line)) {
                return at;
            }
            assert!(
                start.elapsed() < within,
                "no notification {what} within {within:?}; got {:#?}",
                self.lines()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The deploy scenarios, one `#[test]` each, for `$example`.
#[macro_export]
macro_rules! deploy_suite {
    ($example:ident: $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                let _turn = deploy::one_at_a_time();
                deploy::scenarios::$scenario(stringify!($example));
            }
        )*
    };
}
