//! `cargo xtask grpc`: the gRPC shutdown drill, graceful before and after its stream grace
//! and health recipe, and tonic's own server, side by side.
//!
//! ```text
//! cargo xtask grpc [--rounds 5]
//! ```
//!
//! Builds, in release mode, the `grpc_tokio` example and the package `xtask/grpc`
//! (`graceful-grpc-drill`: the peers and the tonic clients, kept out of xtask, which stays
//! light), then runs its `grpc_drill`: for each server, `--rounds` rounds of 16 clients
//! calling `Health/Check` in a loop and 2 holding `Watch` streams, SIGTERM 1.5 s in; it
//! prints each round and a table (unary calls broken, what the `Watch` streams saw and how
//! they ended, the exit after SIGTERM per round). See `xtask/grpc/src/bin/grpc_drill.rs`.

use graceful_harness::build::cargo_command;

use crate::ci::root;
use crate::cli::Flags;
use crate::server::{progress, target_dir};

/// Runs the drill; `args` are the flags after `grpc`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["--rounds"])?;
    let rounds = flags.num("--rounds", 5usize)?;
    if !(1..=100).contains(&rounds) {
        return Err("--rounds must be 1..=100".into());
    }
    for what in [
        &["-p", "examples", "--example", "grpc_tokio"][..],
        &["-p", "graceful-grpc-drill", "--bins"][..],
    ] {
        progress(
            "build",
            &format!("cargo build --release {}", what.join(" ")),
        );
        let status = cargo_command()
            .args(["build", "--release"])
            .args(what)
            .current_dir(root())
            .status()
            .map_err(|err| format!("cannot run cargo: {err}"))?;
        if !status.success() {
            return Err(format!("building {} failed: {status}", what.join(" ")));
        }
    }
    let release = target_dir().join("release");
    let status = std::process::Command::new(release.join("grpc_drill"))
        .arg("--bin-dir")
        .arg(&release)
        .args(["--rounds", &rounds.to_string()])
        .status()
        .map_err(|err| format!("cannot run grpc_drill: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("grpc_drill failed: {status}"))
    }
}
