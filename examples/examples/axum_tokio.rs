//! The `axum_tokio` HTTP example (see `examples::http` for the contract every HTTP example keeps).
//!
//! ```sh
//! cargo run --release -p examples --example axum_tokio -- --addr 127.0.0.1:3000 --timeout 30
//! curl http://127.0.0.1:3000/sleep/3000   # then Ctrl-C the server: the response still comes
//! ```
//!
//! SIGTERM or Ctrl-C starts a graceful shutdown; a second one stops at once. The report goes
//! to stderr.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(examples::axum_tokio::main_with(std::env::args().skip(1)))
}
