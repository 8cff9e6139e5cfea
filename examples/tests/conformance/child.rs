//! Scenarios that need a process of their own (a lowered descriptor limit, signals): the
//! test re-runs its own binary for itself with [`ROLE`] set, and the child, seeing the
//! variable, plays the server; the two talk over the child's stdio.

use std::io::BufRead;
use std::time::Duration;

use graceful_harness::{Launch, Process};

/// The environment variable that makes a test binary play the child's part.
pub const ROLE: &str = "GRACEFUL_CONFORMANCE_CHILD";

/// The part this process plays, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Runs `test` of this binary in a child process, in `role`, with a stdin to tell it to
/// stop.
pub fn spawn(test: &str, role: &str) -> Process {
    Launch::this_test(test).env(ROLE, role).with_stdin().spawn()
}

/// Waits for a line on the child's stdout, after those already read, that contains
/// `marker`; returns what follows it. (The marker need not start the line: libtest prints
/// `test <name> ... ` before the test's own output.)
#[track_caller]
pub fn expect_out(child: &mut Process, marker: &str, within: Duration) -> String {
    child.next_stdout(&format!("a `{marker}` line"), within, |line| {
        line.find(marker)
            .map(|at| line[at + marker.len()..].to_owned())
    })
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
