//! `cargo xtask fuzz`: long runs of graceful-hyper's fuzz test (`graceful-hyper/tests/fuzz`).
//!
//! ```text
//! cargo xtask fuzz [--cases 100000] [--seed 1] [--case 0xSEED] [--profile debug|release]
//! ```
//!
//! The normal test run checks a fixed seed's first cases; this runs as many as asked from
//! any seed, through the same test (`GRACEFUL_FUZZ_CASES`, `GRACEFUL_FUZZ_SEED`), or replays
//! one failing case (`--case`, printed by a failure). The debug profile (the default) keeps
//! hyper's and graceful's debug assertions; release runs about five times as many cases a
//! second. The seed defaults to the time, printed, so that every run explores new cases.

use std::time::{SystemTime, UNIX_EPOCH};

use graceful_harness::build::cargo_command;

use crate::ci::root;
use crate::cli::Flags;
use crate::server::progress;

/// Runs the fuzz test; `args` are the flags after `fuzz`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--cases", "--seed", "--case", "--profile"])?;
    let cases: u64 = flags.num("--cases", 100_000)?;
    if cases == 0 {
        return Err("--cases must be at least 1".into());
    }
    let seed: u64 = match flags.str("--seed") {
        Some(_) => flags.num("--seed", 0)?,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1),
    };
    let release = match flags.str("--profile").unwrap_or("debug") {
        "debug" => false,
        "release" => true,
        other => return Err(format!("--profile: {other:?} is not debug or release")),
    };
    let mut command = cargo_command();
    command.args(["test", "-p", "graceful-hyper", "--test", "fuzz"]);
    if release {
        command.arg("--release");
    }
    command
        .args(["--", "--nocapture", "arbitrary_clients"])
        .current_dir(root());
    match flags.str("--case") {
        Some(case) => {
            progress("fuzz", &format!("replaying case {case}"));
            command.env("GRACEFUL_FUZZ_CASE", case);
        }
        None => {
            progress("fuzz", &format!("{cases} cases from seed {seed}"));
            command
                .env("GRACEFUL_FUZZ_CASES", cases.to_string())
                .env("GRACEFUL_FUZZ_SEED", seed.to_string());
        }
    }
    let status = command
        .status()
        .map_err(|err| format!("cannot run cargo test: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the fuzz test failed ({status}); seed {seed}"))
    }
}
