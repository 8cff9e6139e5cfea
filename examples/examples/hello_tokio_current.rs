//! `hello_tokio` on tokio's current-thread runtime: the server, every connection and every
//! HTTP/2 stream on one thread (the soak's `tokio_current` runtime).
//!
//! ```sh
//! cargo run --release -p examples --example hello_tokio_current -- --addr 127.0.0.1:3000
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let flavor = tokio::runtime::Builder::new_current_thread();
    let args = std::env::args().skip(1);
    ExitCode::from(examples::hello_tokio::main_on(
        "hello_tokio_current",
        args,
        flavor,
    ))
}
