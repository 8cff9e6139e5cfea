//! Real clients the suites run as programs: curl, h2load and wrk, each bounded in time, and
//! the figures they print. They must be installed (`.ci/run` installs them): a test fails,
//! rather than skips, without them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::process::{Launch, Process};
use crate::tcp;

/// Runs `program` with `args` to its end, within `bound`; returns whether it succeeded and
/// its output (stdout then stderr, lines joined by newlines).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let (ok, out) = graceful_harness::tools::run("echo", &["hello"], Duration::from_secs(10));
/// assert!(ok);
/// assert_eq!(out, "hello");
/// ```
#[track_caller]
pub fn run(program: &str, args: &[&str], bound: Duration) -> (bool, String) {
    let process = Launch::program(program).args(args).spawn();
    let status = process.wait_exit_and_output(bound);
    (status.success(), all_output(&process))
}

fn all_output(process: &Process) -> String {
    let mut lines = process.stdout();
    lines.extend(process.stderr());
    lines.join("\n")
}

/// A wrk load running in the background.
#[derive(Debug)]
pub struct Wrk {
    process: Process,
    /// How many connections it keeps open.
    connections: u32,
    /// How long it runs.
    secs: u32,
}

impl Wrk {
    /// `wrk -t{threads} -c{connections} -d{secs}s url`.
    pub fn start(url: &str, threads: u32, connections: u32, secs: u32) -> Wrk {
        let args = [
            format!("-t{threads}"),
            format!("-c{connections}"),
            format!("-d{secs}s"),
            url.to_owned(),
        ];
        let process = Launch::program("wrk").args(args).spawn();
        Wrk {
            process,
            connections,
            secs,
        }
    }

    /// Waits until the server on `server` holds wrk's connections: the load is on.
    #[track_caller]
    pub fn wait_connected(&self, server: SocketAddr, bound: Duration) {
        let connections = self.connections as usize;
        let what = format!("wrk's {connections} connections to {server}");
        crate::wait_until(&what, bound, || tcp::connections_to(server) >= connections);
    }

    /// Waits for wrk to end (bounded: 30 s past its duration) and reads its report.
    #[track_caller]
    pub fn finish(self) -> WrkReport {
        let bound = Duration::from_secs(u64::from(self.secs) + 30);
        let status = self.process.wait_exit_and_output(bound);
        let text = all_output(&self.process);
        assert!(status.success(), "wrk failed: {text}");
        WrkReport::parse(text)
    }
}

/// What wrk reported.
#[derive(Debug)]
pub struct WrkReport {
    /// Requests completed.
    pub requests: u64,
    /// The `Socket errors:` line, if any.
    pub socket_errors: Option<SocketErrors>,
    /// The `Non-2xx or 3xx responses:` count.
    pub non_2xx: u64,
    /// Everything wrk printed.
    pub output: String,
}

/// wrk's `Socket errors: connect C, read R, write W, timeout T`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketErrors {
    /// Connections that could not be made (refused, once a server stopped listening).
    pub connect: u64,
    /// Reads that failed (a connection reset or closed under a request).
    pub read: u64,
    /// Writes that failed.
    pub write: u64,
    /// Requests that timed out.
    pub timeout: u64,
}

impl WrkReport {
    /// Reads wrk's output.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_harness::tools::{SocketErrors, WrkReport};
    ///
    /// let text = "  1000 requests in 3.00s, 90.00KB read\n  \
    ///             Socket errors: connect 2, read 0, write 0, timeout 0\nRequests/sec: 333.3";
    /// let report = WrkReport::parse(text.to_owned());
    /// assert_eq!((report.requests, report.non_2xx), (1000, 0));
    /// let errors = SocketErrors { connect: 2, ..SocketErrors::default() };
    /// assert_eq!(report.socket_errors, Some(errors));
    /// ```
    #[track_caller]
    pub fn parse(output: String) -> WrkReport {
        let requests = output
            .lines()
            .find_map(|line| line.trim().split_once(" requests in ").map(|(n, _)| n))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `requests in` line: {output}"));
        let socket_errors = output.lines().find_map(|line| {
            let counts = line.trim().strip_prefix("Socket errors:")?;
            let mut errors = SocketErrors::default();
            for count in counts.split(',') {
                let (what, n) = count.trim().split_once(' ')?;
                let n = n.parse().ok()?;
                match what {
                    "connect" => errors.connect = n,
                    "read" => errors.read = n,
                    "write" => errors.write = n,
                    "timeout" => errors.timeout = n,
                    _ => {}
                }
            }
            Some(errors)
        });
        let non_2xx = output
            .lines()
            .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .map_or(0, |n| n.trim().parse().unwrap_or(u64::MAX));
        WrkReport {
            requests,
            socket_errors,
            non_2xx,
            output,
        }
    }
}

/// h2load's summary: its `requests:` and `status codes:` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct H2loadSummary {
    /// Requests h2load meant to make.
    pub total: u64,
    /// Streams it started.
    pub started: u64,
    /// Streams that ended, one way or another.
    pub done: u64,
    /// Streams answered.
    pub succeeded: u64,
    /// Streams that failed.
    pub failed: u64,
    /// Answers with a 2xx status.
    pub status_2xx: u64,
    /// The `requests:` line, for messages.
    pub line: String,
}

impl H2loadSummary {
    /// Reads h2load's output; `None` without a summary.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_harness::tools::H2loadSummary;
    ///
    /// let text = "requests: 100 total, 90 started, 90 done, 88 succeeded, 12 failed, 2 errored, 0 timeout\n\
    ///             status codes: 88 2xx, 0 3xx, 0 4xx, 0 5xx";
    /// let summary = H2loadSummary::parse(text).unwrap();
    /// assert_eq!((summary.total, summary.started, summary.done), (100, 90, 90));
    /// assert_eq!((summary.succeeded, summary.failed, summary.status_2xx), (88, 12, 88));
    /// ```
    pub fn parse(output: &str) -> Option<H2loadSummary> {
        let line = output.lines().find(|l| l.starts_with("requests:"))?;
        let codes = output.lines().find(|l| l.starts_with("status codes:"))?;
        let count = |line: &str, what: &str| -> Option<u64> {
            line.split([':', ','])
                .find_map(|part| part.trim().strip_suffix(what)?.trim().parse().ok())
        };
        Some(H2loadSummary {
            total: count(line, " total")?,
            started: count(line, " started")?,
            done: count(line, " done")?,
            succeeded: count(line, " succeeded")?,
            failed: count(line, " failed")?,
            status_2xx: count(codes, " 2xx")?,
            line: line.to_owned(),
        })
    }
}
