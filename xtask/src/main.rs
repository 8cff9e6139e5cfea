//! Project automation, run as `cargo xtask <task>`.
//!
//! - `ci`: exactly what CI runs (`.ci/run`).
//! - `bench`: graceful against raw hyper and hyper-util: throughput, CPU and memory per
//!   connection, shutdown latency (see `bench.rs`).
//! - `drill`: the shutdown drills against every server, side by side (see `drill.rs`).
//! - `stall`: exit time after SIGTERM when HTTP/2 peers stop short or readers never read,
//!   every server (see `stall.rs`).
//! - `matrix`: the conformance suite on every runtime (see `matrix.rs`).
//! - `micro`: graceful-core's per-request hot path, alone (see `micro.rs`).
//! - `instructions`: instructions per request under callgrind, every server (see
//!   `instructions.rs`).
//! - `soak`: the shutdown drills many times over with random signal timing, per runtime
//!   (see `soak.rs`); `chaos`: the same with resetting clients and EMFILE.
//! - `rolling`: rolling restarts behind nginx and HAProxy under a POST load, with exact
//!   counts from the clients and the balancers' logs (see `rolling.rs`).
//! - `grpc`: the gRPC drill: health, `Watch` streams and unary calls across a SIGTERM, graceful
//!   before and after its stream grace and tonic's own server (see `grpc.rs`).
//! - `idle`: exit time after SIGTERM with many idle connections, and memory per connection
//!   (see `idle.rs`); `idle-clients` is its client processes.
//! - `walks`: graceful-core's walks over every connection, timed at a million connections
//!   (see `walks.rs`).
//! - `fuzz`: long runs of graceful-hyper's fuzz test (see `fuzz.rs`).
//! - `load`: the bench's load generator alone, against a server started by hand (see
//!   `loadgen.rs`).
//! - `docs-audit`: the library crates' public functions without an `# Examples` section
//!   (see `docs_audit.rs`).

mod balancer;
mod bench;
mod ci;
mod cli;
mod client;
mod docs_audit;
mod drill;
mod fuzz;
mod grpc;
mod idle;
mod instructions;
mod loadgen;
mod machine;
mod matrix;
mod micro;
mod report;
mod rolling;
mod rolling_load;
mod server;
mod soak;
mod soak_clients;
mod stall;
mod tls;
mod walks;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("drill") => drill::run(&args[1..]),
        Some("matrix") => matrix::run(&args[1..]),
        Some("micro") => micro::run(&args[1..]),
        Some("instructions") => instructions::run(&args[1..]),
        Some("load") => loadgen::task(&args[1..]),
        Some("soak") => soak::run(&args[1..], false),
        Some("chaos") => soak::run(&args[1..], true),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("docs-audit") => docs_audit::run(&args[1..]),
        Some("grpc") => grpc::run(&args[1..]),
        Some("idle") => idle::run(&args[1..]),
        // `idle`'s client processes.
        Some("idle-clients") => idle::clients(&args[1..]),
        Some("rolling") => rolling::run(&args[1..]),
        Some("stall") => stall::run(&args[1..]),
        Some("walks") => walks::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|bench|drill|stall|idle|walks|matrix|micro|instructions|load|soak|chaos|rolling|grpc|fuzz|docs-audit> [flags]"
            );
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
