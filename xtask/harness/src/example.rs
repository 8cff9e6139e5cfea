//! The example servers as a user runs them, started as child processes ([`Server`]), and
//! the shutdown report they print ([`Report`]).
//!
//! An example keeps one contract the suites rely on: `--addr HOST:PORT`, a
//! `listening on http://ADDR` line on stdout once it accepts connections, and on exit a
//! report line on stderr (`NAME: OUTCOME in ELAPSED: A completed, B idle closed, C hijacked,
//! D killed`).

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::build::example_binary;
use crate::process::{Launch, Process, START_BOUND};

impl Launch {
    /// Runs the example binary `name` (see [`example_binary`], which builds it if need be).
    pub fn example(name: &str) -> Launch {
        Launch::program(example_binary(name)).named(name)
    }

    /// Starts the child and waits until it says where it listens ([`Process::listening`]).
    pub fn start(self) -> Server {
        let mut process = self.spawn();
        let addr = process.listening(START_BOUND);
        Server { process, addr }
    }
}

/// A server that listens: a [`Process`] (which it dereferences to) and its address.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use graceful_harness::Server;
///
/// let mut server = Server::start("hello_tokio", &["--timeout", "1"]);
/// println!("serving on {}", server.addr);
/// server.terminate();
/// assert_eq!(server.report().outcome, "drained");
/// ```
#[derive(Debug)]
pub struct Server {
    process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts example `name` with `args` and `--addr 127.0.0.1:0`; returns once it listens.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Launch::example(name)
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .start()
    }

    /// Waits for the exit, and asserts that it is a success; returns when it was seen.
    #[track_caller]
    pub fn wait_success(&self, bound: Duration) -> Instant {
        let (at, status) = self.wait_exit(bound);
        assert!(
            status.success(),
            "{} exited with {status}; stderr: {:#?}",
            self.name(),
            self.stderr()
        );
        at
    }

    /// Asserts that by `by` (an instant after the signal) the server has closed its
    /// listener, and a new connection is refused.
    #[track_caller]
    pub fn assert_refusing_by(&self, by: Instant) {
        let bound = by.saturating_duration_since(Instant::now());
        crate::tcp::wait_not_listening(self.addr, bound);
        assert!(
            crate::http1::refused(self.addr),
            "a new connection is refused once the listener is closed"
        );
    }

    /// The second-signal scenario: SIGTERM, then SIGTERM again once the drain has begun
    /// (the listener closed). The process must exit with success within 1.5 s of the
    /// second, its report saying `forced` with `killed` connections killed. Returns how
    /// long after the second it exited.
    #[track_caller]
    pub fn forced_by_a_second_signal(&self, killed: usize) -> Duration {
        let bound = Duration::from_secs(10);
        self.terminate();
        crate::tcp::wait_not_listening(self.addr, bound);
        let second = self.terminate();
        let exit = self.wait_success(bound) - second;
        assert!(exit < Duration::from_millis(1_500), "{exit:?}");
        let report = self.report();
        assert_eq!((report.outcome.as_str(), report.killed), ("forced", killed));
        exit
    }

    /// The report, which must say the server drained and killed nothing.
    #[track_caller]
    pub fn drained(&self) -> Report {
        let report = self.report();
        assert_eq!(
            (report.outcome.as_str(), report.killed),
            ("drained", 0),
            "{report:?}"
        );
        report
    }

    /// The report the server printed on stderr, once it has exited with success.
    #[track_caller]
    pub fn report(&self) -> Report {
        self.wait_success(Duration::from_secs(30));
        self.wait_output(
            "a shutdown report on stderr",
            Duration::from_secs(5),
            |output| output.stderr.iter().rev().find_map(|l| Report::parse(l)),
        )
    }
}

impl Deref for Server {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// The shutdown report, as an example prints it on stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// `drained`, `timed out` or `forced`.
    pub outcome: String,
    /// Connections whose work completed.
    pub completed: usize,
    /// Connections closed while idle.
    pub idle_closed: usize,
    /// Connections taken over by their application (upgrades).
    pub hijacked: usize,
    /// Connections killed at the end.
    pub killed: usize,
    /// Connections cut for a stalled write (`; N cut for a stalled write`, 0 in a report
    /// without it).
    pub stalled: usize,
}

impl Report {
    /// Parses `NAME: OUTCOME in ELAPSED: A completed, B idle closed, C hijacked, D killed`,
    /// each count found by its name (a count it does not know is skipped), and the
    /// `; N cut for a stalled write` that may follow.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_harness::Report;
    ///
    /// let line = "hello_tokio: timed out in 1.002s: 3 completed, 100 idle closed, 1 hijacked, 2 killed";
    /// let report = Report::parse(line).unwrap();
    /// assert_eq!(report.outcome, "timed out");
    /// assert_eq!((report.completed, report.idle_closed, report.hijacked, report.killed), (3, 100, 1, 2));
    /// let line = "hello_tokio: forced in 1.0s: 0 completed, 0 idle closed, 0 hijacked, 2 killed (1 active, 1 idle); slowest 0ns";
    /// assert_eq!(Report::parse(line).unwrap().killed, 2);
    /// assert_eq!(Report::parse("hello_tokio: listening"), None);
    /// let line = "hello_tokio: drained in 0.9s: 0 completed, 1 idle closed, 0 hijacked, 0 killed; slowest 1ms; 4 cut for a stalled write";
    /// assert_eq!(Report::parse(line).unwrap().stalled, 4);
    /// ```
    pub fn parse(line: &str) -> Option<Report> {
        let (_, rest) = line.split_once(": ")?;
        let (outcome, rest) = rest.split_once(" in ")?;
        let (_, counts) = rest.split_once(": ")?;
        let mut parts = counts.split("; ");
        let counts = parts.next()?;
        let mut report = Report {
            outcome: outcome.to_owned(),
            ..Report::default()
        };
        for part in parts {
            if let Some(n) = part.strip_suffix(" cut for a stalled write") {
                report.stalled = n.parse().ok()?;
            }
        }
        let mut seen = 0;
        for part in counts.split(", ") {
            let (n, name) = part.trim().split_once(' ')?;
            let n = n.parse().ok()?;
            // `2 killed (1 active, 1 idle)`: the states of the killed ones are skipped.
            let name = name.split(" (").next().unwrap_or(name);
            let count = match name {
                "completed" => &mut report.completed,
                "idle closed" => &mut report.idle_closed,
                "hijacked" => &mut report.hijacked,
                "killed" => &mut report.killed,
                _ => continue,
            };
            *count = n;
            seen += 1;
        }
        (seen == 4).then_some(report)
    }
}
