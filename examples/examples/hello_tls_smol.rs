//! The `hello_tls_smol` HTTPS example on smol (see `examples::hello_tls` for its contract).
//!
//! ```sh
//! cargo run --release -p examples --example hello_tls_smol -- --addr 127.0.0.1:3443
//! curl -k --http2 https://localhost:3443/          # hello, over HTTP/2 by ALPN
//! ```
//!
//! SIGTERM or Ctrl-C starts a graceful shutdown, a second one stops at once; SIGHUP reloads
//! the certificate files. The report goes to stderr.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(examples::hello_tls_smol::main_with(
        std::env::args().skip(1),
    ))
}
