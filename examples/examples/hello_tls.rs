//! The `hello_tls` HTTPS example on tokio (see `examples::hello_tls` for its contract).
//!
//! ```sh
//! cargo run --release -p examples --example hello_tls -- --addr 127.0.0.1:3443
//! curl -k --http2 https://localhost:3443/          # hello, over HTTP/2 by ALPN
//! curl -k https://localhost:3443/sleep/3000        # then Ctrl-C the server: it still comes
//! ```
//!
//! Without `--cert PEM --key PEM` it serves a self-signed certificate for `localhost` made at
//! start. SIGTERM or Ctrl-C starts a graceful shutdown, a second one stops at once; SIGHUP
//! reloads the certificate files. The report goes to stderr.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(examples::hello_tls::main_with(std::env::args().skip(1)))
}
