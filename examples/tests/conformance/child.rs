//! Scenarios that need a process of their own (a lowered descriptor limit, signals): the
//! test re-runs its own binary with `--exact <test> --nocapture` and [`ROLE`] set, and the
//! child, seeing the variable, plays the server; the two talk over the child's stdio.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The environment variable that makes a test binary play the child's part.
pub const ROLE: &str = "GRACEFUL_CONFORMANCE_CHILD";

/// The part this process plays, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// A line the child printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Out(String),
    Err(String),
}

/// A child process running one test of this binary in the given role.
pub struct Child {
    process: std::process::Child,
    lines: mpsc::Receiver<Line>,
    /// Everything read so far, for failure messages.
    seen: Vec<Line>,
}

impl Child {
    pub fn spawn(test: &str, role: &str) -> Child {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut process = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads", "1"])
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let (tx, lines) = mpsc::channel();
        let stdout = process.stdout.take().expect("piped");
        let stderr = process.stderr.take().expect("piped");
        let out = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out.send(Line::Out(line));
            }
        });
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(Line::Err(line));
            }
        });
        Child {
            process,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one gives `Some`; fails after `within`.
    pub fn expect<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut find: impl FnMut(&Line) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = find(&line);
                    self.seen.push(line);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(_) => panic!(
                    "no {what} from the child within {within:?}; it printed: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits for a line on stdout with `marker`; returns what follows it. (The marker need
    /// not start the line: libtest prints `test <name> ... ` before the test's own output.)
    pub fn expect_out(&mut self, marker: &str, within: Duration) -> String {
        self.expect(&format!("`{marker}` line"), within, |line| match line {
            Line::Out(text) => text
                .find(marker)
                .map(|at| text[at + marker.len()..].to_owned()),
            Line::Err(_) => None,
        })
    }

    /// Waits for a line on stderr that contains `needle`.
    pub fn expect_err_containing(&mut self, needle: &str, within: Duration) {
        self.expect(
            &format!("stderr line with `{needle}`"),
            within,
            |line| match line {
                Line::Err(text) if text.contains(needle) => Some(()),
                _ => None,
            },
        )
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// Sends SIGINT or SIGTERM.
    #[cfg(unix)]
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.process);
        rustix::process::kill_process(pid, signal).expect("signal the child");
    }

    /// Writes one line to the child's stdin.
    pub fn tell(&mut self, line: &str) {
        let stdin = self.process.stdin.as_mut().expect("piped");
        writeln!(stdin, "{line}").expect("the child reads its stdin");
    }

    /// Waits for the child to exit; fails after `within`.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.process.try_wait().expect("wait for the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the child did not exit within {within:?}; it printed: {:#?}",
                self.seen
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// In the child: reads stdin until a `stop` line or its end.
pub fn wait_for_stop() {
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(line) if line.trim() == "stop" => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// In the child: the descriptor limit that leaves exactly `free` descriptor numbers free
/// (new descriptors take the lowest free number below the limit; open ones above it stay).
#[cfg(unix)]
pub fn limit_leaving(free: u64) -> u64 {
    let open: Vec<u64> = ["/proc/self/fd", "/dev/fd"]
        .iter()
        .find_map(|dir| std::fs::read_dir(dir).ok())
        .expect("list the open descriptors")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..)
        .find(|&limit| limit - open.iter().filter(|&&fd| fd < limit).count() as u64 >= free)
        .expect("a limit exists")
}
