//! `cargo xtask matrix`: the conformance suite once per runtime, as a runtime × scenario
//! table.
//!
//! ```text
//! cargo xtask matrix [--runtimes tokio_multi,tokio_current,smol,async_std]
//! ```
//!
//! For each runtime it runs `cargo test -p examples --test conformance_<runtime> --
//! --format pretty`, prints every `test NAME ... ok|FAILED|ignored` line as it comes, and
//! at the end a table with a row per scenario (the last path segment of the test name, in
//! alphabetical order) and a column per runtime. It fails if any scenario fails or a
//! runtime's suite does not run.
//!
//! # Invariants
//!
//! Each runtime's `cargo test` runs in its own process group and is bounded in time; past
//! the bound the whole group is killed and reaped.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use graceful_harness::build::cargo_command;
use rustix::process::{Pid, Signal};

use crate::ci::root;
use crate::cli::Flags;
use crate::report::Table;
use crate::server::progress;

/// The runtimes, as named by the test files `examples/tests/conformance_<runtime>.rs`.
const RUNTIMES: &[&str] = &["tokio_multi", "tokio_current", "smol", "async_std"];
/// How long one runtime's `cargo test` (build included) may take.
const RUN_BOUND: Duration = Duration::from_secs(20 * 60);

/// The result of one test on one runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    Ignored,
}

/// One runtime's run.
#[derive(Debug)]
struct Run {
    runtime: String,
    tests: Vec<(String, Verdict)>,
    /// Why the suite did not run to completion, if it did not.
    problem: Option<String>,
    elapsed: Duration,
}

/// Runs the matrix; `args` are the flags after `matrix`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--runtimes"])?;
    let runtimes: Vec<String> = match flags.str("--runtimes") {
        Some(list) => list.split(',').map(|rt| rt.trim().to_string()).collect(),
        None => RUNTIMES.iter().map(|rt| rt.to_string()).collect(),
    };
    let mut runs = Vec::new();
    for (i, runtime) in runtimes.iter().enumerate() {
        let step = format!("matrix {}/{} {runtime}", i + 1, runtimes.len());
        runs.push(run_suite(runtime, &step));
    }

    let mut scenarios: Vec<String> = Vec::new();
    for run in &runs {
        for (name, _) in &run.tests {
            if !scenarios.contains(name) {
                scenarios.push(name.clone());
            }
        }
    }
    scenarios.sort();
    let mut header = vec!["scenario".to_string()];
    header.extend(runs.iter().map(|run| run.runtime.clone()));
    let mut table = Table::new(header);
    for scenario in &scenarios {
        let mut row = vec![scenario.clone()];
        for run in &runs {
            let verdict = run.tests.iter().find(|(name, _)| name == scenario);
            row.push(
                match verdict.map(|(_, v)| *v) {
                    Some(Verdict::Pass) => "pass",
                    Some(Verdict::Fail) => "FAIL",
                    Some(Verdict::Ignored) => "ignored",
                    None => "-",
                }
                .to_string(),
            );
        }
        table.row(row);
    }
    let mut time_row = vec!["(time, build included)".to_string()];
    time_row.extend(
        runs.iter()
            .map(|run| format!("{:.1} s", run.elapsed.as_secs_f64())),
    );
    table.row(time_row);
    println!();
    print!("{table}");

    let mut problems = Vec::new();
    for run in &runs {
        let failed = run
            .tests
            .iter()
            .filter(|(_, v)| *v == Verdict::Fail)
            .count();
        if failed > 0 {
            problems.push(format!("{}: {failed} failed", run.runtime));
        }
        if let Some(problem) = &run.problem {
            problems.push(format!("{}: {problem}", run.runtime));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Runs one runtime's suite, streaming its results as progress lines.
fn run_suite(runtime: &str, step: &str) -> Run {
    let started = Instant::now();
    let test = format!("conformance_{runtime}");
    progress(step, &format!("cargo test -p examples --test {test}"));
    let mut run = Run {
        runtime: runtime.to_string(),
        tests: Vec::new(),
        problem: None,
        elapsed: Duration::ZERO,
    };
    let child = cargo_command()
        .args([
            "test", "-p", "examples", "--test", &test, "--", "--format", "pretty",
        ])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn();
    let mut group = match child {
        Ok(child) => Group(child),
        Err(err) => {
            run.problem = Some(format!("cannot run cargo: {err}"));
            return run;
        }
    };
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = group.0.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let deadline = started + RUN_BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some((name, verdict)) = parse_line(&line) {
                    progress(step, &line);
                    run.tests.push((name, verdict));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                run.problem = Some(format!("still running after {RUN_BOUND:?}, killed"));
                break;
            }
        }
    }
    drop(rx);
    if run.problem.is_none() {
        match group.wait_until(deadline) {
            Some(status) if status.success() => {}
            Some(status) if run.tests.is_empty() => {
                run.problem = Some(format!("no test ran (cargo test: {status})"));
            }
            Some(status) if !run.tests.iter().any(|(_, v)| *v == Verdict::Fail) => {
                run.problem = Some(format!("cargo test failed ({status})"));
            }
            Some(_) => {}
            None => run.problem = Some(format!("still running after {RUN_BOUND:?}, killed")),
        }
    }
    drop(group);
    run.elapsed = started.elapsed();
    run
}

/// `test a::b ... ok` → `("b", Pass)`.
fn parse_line(line: &str) -> Option<(String, Verdict)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let verdict = match result.trim() {
        "ok" => Verdict::Pass,
        "FAILED" => Verdict::Fail,
        result if result.starts_with("ignored") => Verdict::Ignored,
        _ => return None,
    };
    let scenario = name.trim().rsplit("::").next().unwrap_or(name).to_string();
    Some((scenario, verdict))
}

/// A child leading its own process group; dropping it kills the group and reaps the child.
struct Group(Child);

impl Group {
    fn wait_until(&mut self, deadline: Instant) -> Option<std::process::ExitStatus> {
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pid = Pid::from_child(&self.0);
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_lines() {
        assert_eq!(
            parse_line("test scenarios::in_flight_completes ... ok"),
            Some(("in_flight_completes".into(), Verdict::Pass))
        );
        assert_eq!(
            parse_line("test second_trigger_kills ... FAILED"),
            Some(("second_trigger_kills".into(), Verdict::Fail))
        );
        assert_eq!(
            parse_line("test x ... ignored, slow"),
            Some(("x".into(), Verdict::Ignored))
        );
        assert_eq!(parse_line("test result: ok. 3 passed"), None);
        assert_eq!(parse_line("running 3 tests"), None);
    }
}
