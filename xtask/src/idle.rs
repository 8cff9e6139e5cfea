//! `cargo xtask idle`: exit time after SIGTERM with many idle keep-alive connections.
//!
//! ```text
//! cargo xtask idle [--conns 5000] [--rounds 5] [--servers NAME,NAME...]
//! ```
//!
//! The bench's idle round alone (see `bench.rs`): for each server, `--conns` keep-alive
//! connections each serve one request and stay open, quiet for longer than graceful's quiet
//! period; then SIGTERM, and the time until the process has exited. For graceful's servers
//! the report must say every connection was closed idle and none killed. Rounds are
//! interleaved (every round runs every server once, the order rotated each round); it
//! prints each round, then the median and the worst per server.

use std::time::Duration;

use crate::bench::{idle_round, EXIT_BOUND};
use crate::cli::Flags;
use crate::loadgen;
use crate::report::ms;
use crate::server;

/// Runs the measurement; `args` are the flags after `idle`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(result) = crate::cli::in_release("idle", args) {
        return result;
    }
    let flags = Flags::parse(args, &["--conns", "--rounds", "--servers"])?;
    let conns = flags.num("--conns", 5000usize)?;
    let rounds = flags.num("--rounds", 5usize)?;
    if !(1..=50_000).contains(&conns) || !(1..=100).contains(&rounds) {
        return Err("--conns must be 1..=50000 and --rounds 1..=100".into());
    }
    let limit = server::raise_nofile_limit().unwrap_or(u64::MAX);
    if limit < conns as u64 + 256 {
        return Err(format!(
            "the open-file limit ({limit}) is too low for --conns {conns}; raise the hard limit"
        ));
    }
    let names = flags
        .str("--servers")
        .unwrap_or("hyper-auto,hello_tokio,hyper-smol,hello_smol");
    let specs = server::build(&server::select(Some(names))?)?;
    let rt = loadgen::runtime(1)?;
    let mut exits: Vec<Vec<Duration>> = vec![Vec::new(); specs.len()];
    for round in 0..rounds {
        for i in 0..specs.len() {
            let i = (i + round) % specs.len();
            let step = format!("idle {}/{rounds}", round + 1);
            let measured = idle_round(&rt, specs[i], conns, &step)?;
            exits[i].push(measured.shutdown.unwrap_or(EXIT_BOUND));
        }
    }
    println!();
    println!("exit after SIGTERM with {conns} idle connections, {rounds} rounds");
    println!(
        "{:<20} {:>10} {:>10} {:>10}",
        "server", "median", "min", "max"
    );
    for (spec, times) in specs.iter().zip(&mut exits) {
        times.sort();
        let median = times[times.len() / 2];
        let (min, max) = (times[0], times[times.len() - 1]);
        println!(
            "{:<20} {:>10} {:>10} {:>10}",
            spec.name,
            ms(median),
            ms(min),
            ms(max)
        );
    }
    Ok(())
}
