//! Project automation, run as `cargo xtask <task>`.
//!
//! - `ci`: exactly what CI runs (`.ci/run`).
//! - `bench`: benchmarks (see `bench.rs`).

mod ci;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        _ => {
            eprintln!("usage: cargo xtask <ci>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}
