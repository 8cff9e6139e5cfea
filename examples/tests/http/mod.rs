//! The HTTP examples, tried as a new user would: each server runs in a child process (it
//! needs real signals), and blocking `std::net` clients speak HTTP/1.1 by hand, so that a
//! request lost or a response cut short cannot go unseen.
//!
//! The child is this very test binary: a test re-runs it with `--exact child` and
//! [`CHILD`] naming the example, and the `child` test, seeing the variable, runs that
//! example's `main_with` (the same code as the example binary) and exits with its code. No
//! `cargo build` from a test.
//!
//! Every duration is measured with the real clock and printed (`measured:` lines, shown
//! with `--nocapture`); the bounds asserted are generous, as the suite runs on small loaded
//! machines: they catch a hang or a missing feature, not a slowness. The tight figures of
//! issue 4 are for the benchmarks.

#![allow(dead_code)] // Each test binary runs some of the examples and scenarios.

pub mod client;
pub mod scenarios;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// Names the example the child runs.
pub const CHILD: &str = "GRACEFUL_HTTP_CHILD";
/// The example's arguments, separated by spaces.
pub const CHILD_ARGS: &str = "GRACEFUL_HTTP_CHILD_ARGS";

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
    raise_descriptor_limit(6_000);
    let args: Vec<String> = std::env::var(CHILD_ARGS)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    std::process::exit(i32::from(main(args.into_iter())));
}

/// Raises the soft limit on open descriptors to the hard limit; fails clearly if that
/// leaves fewer than `needed`.
pub fn raise_descriptor_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).expect("raise the soft RLIMIT_NOFILE");
    }
    let have = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        have >= needed,
        "this test needs {needed} open descriptors, but the hard RLIMIT_NOFILE is {have}: \
         raise it (ulimit -Hn) to run the HTTP suite"
    );
}

/// Heavy scenarios (many threads or descriptors) take turns, so that they do not skew the
/// timings of one another.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shutdown report, as the example prints it on stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub outcome: String,
    pub completed: usize,
    pub idle_closed: usize,
    pub hijacked: usize,
    pub killed: usize,
}

impl Report {
    /// Parses `NAME: OUTCOME in ELAPSED: A completed, B idle closed, C hijacked, D killed`.
    fn parse(line: &str) -> Option<Report> {
        let (_, rest) = line.split_once(": ")?;
        let (outcome, rest) = rest.split_once(" in ")?;
        let (_, counts) = rest.split_once(": ")?;
        let mut numbers = counts
            .split(", ")
            .map(|part| part.split(' ').next().and_then(|n| n.parse().ok()));
        Some(Report {
            outcome: outcome.to_owned(),
            completed: numbers.next()??,
            idle_closed: numbers.next()??,
            hijacked: numbers.next()??,
            killed: numbers.next()??,
        })
    }
}

/// An example server running in a child process.
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pid: Pid,
    exited: mpsc::Receiver<(Instant, ExitStatus)>,
    exit: Option<(Instant, ExitStatus)>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `example` with `args` (and `--addr 127.0.0.1:0`); returns once it listens.
    pub fn start(example: &str, args: &[&str]) -> Server {
        let mut args = args.join(" ");
        args.push_str(" --addr 127.0.0.1:0");
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args(["child", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD, example)
            .env(CHILD_ARGS, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let pid = Pid::from_child(&child);
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");

        let (listening, addr) = mpsc::channel();
        thread::spawn(move || {
            // `http://` or, for the HTTPS examples, `https://`.
            const MARKER: &str = "listening on http";
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find(MARKER) {
                    let rest = line[at + MARKER.len()..].trim_start_matches('s');
                    let addr = rest.trim_start_matches("://").trim().to_owned();
                    let _ = listening.send(addr);
                }
            }
        });
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let (exited_tx, exited) = mpsc::channel();
        thread::spawn(move || {
            let status = child.wait().expect("wait for the child");
            let _ = exited_tx.send((Instant::now(), status));
        });

        let addr = match addr.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr
                .parse()
                .expect("an address after `listening on http://`"),
            Err(_) => panic!(
                "{example} printed no `listening on http://` line; stderr: {:#?}",
                lines.lock().unwrap()
            ),
        };
        Server {
            name: example.to_owned(),
            addr,
            pid,
            exited,
            exit: None,
            stderr: lines,
        }
    }

    /// Sends SIGTERM; returns the instant just before.
    pub fn terminate(&self) -> Instant {
        let at = Instant::now();
        rustix::process::kill_process(self.pid, Signal::TERM).expect("signal the child");
        at
    }

    /// The child's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends SIGHUP (the HTTPS examples reload their certificate).
    pub fn hangup(&self) {
        rustix::process::kill_process(self.pid, Signal::HUP).expect("signal the child");
    }

    /// Waits for the child to exit; returns when it did. Fails after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Instant {
        if let Some((at, _)) = self.exit {
            return at;
        }
        match self.exited.recv_timeout(within) {
            Ok((at, status)) => {
                self.exit = Some((at, status));
                assert!(
                    status.success(),
                    "{} exited with {status}; stderr: {:#?}",
                    self.name,
                    self.stderr.lock().unwrap()
                );
                at
            }
            Err(_) => panic!(
                "{} did not exit within {within:?}; stderr: {:#?}",
                self.name,
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// What the example printed on stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The report the example printed on stderr (once it exited).
    pub fn report(&mut self) -> Report {
        self.wait_exit(Duration::from_secs(30));
        // The reader thread may still be collecting the last lines.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find_map(|line| Report::parse(line));
            if let Some(report) = found {
                return report;
            }
            assert!(
                Instant::now() < deadline,
                "{} printed no report; stderr: {:#?}",
                self.name,
                self.stderr.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit.is_none() && self.exited.try_recv().is_err() {
            let _ = rustix::process::kill_process(self.pid, Signal::KILL);
        }
    }
}

/// Prints a measurement, for the record (shown with `--nocapture`).
pub fn measured(example: &str, scenario: &str, what: &str, value: Duration) {
    let ms = value.as_secs_f64() * 1e3;
    eprintln!("measured: {example} {scenario}: {what} {ms:.1} ms");
}

/// Sleeps until `at` (at once if it passed).
pub fn sleep_until(at: Instant) {
    thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// Instantiates the scenarios for an example: `http_suite!(hello_tokio: s1, s2, ...)`.
macro_rules! http_suite {
    ($example:ident: $($scenario:ident),+ $(,)?) => {
        mod $example {
            $(
                #[test]
                fn $scenario() {
                    super::http::scenarios::$scenario(stringify!($example));
                }
            )+
        }
    };
}
pub(crate) use http_suite;

#[cfg(test)]
mod tests {
    use super::Report;

    #[test]
    fn reports_are_parsed() {
        let line =
            "hello_tokio: timed out in 1.002s: 3 completed, 100 idle closed, 1 hijacked, 2 killed";
        let report = Report::parse(line).unwrap();
        assert_eq!(report.outcome, "timed out");
        assert_eq!(
            (
                report.completed,
                report.idle_closed,
                report.hijacked,
                report.killed
            ),
            (3, 100, 1, 2)
        );
    }
}
