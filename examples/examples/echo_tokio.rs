//! The line-protocol server of `examples::line` on tokio, shutting down gracefully.
//!
//! ```sh
//! cargo run -p examples --example echo_tokio -- --addr 127.0.0.1:4000 --timeout 10
//! printf 'PING\nSLEEP 3000\n' | nc 127.0.0.1 4000   # then Ctrl-C the server: DONE still comes
//! ```
//!
//! Ctrl-C (or SIGTERM) starts a graceful shutdown; a second one kills what is left. The
//! report goes to stderr.

use std::process::ExitCode;

use examples::args::{Args, USAGE};
use examples::line;
use graceful_tokio::{Server, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::TokioAsyncReadCompatExt;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::from_env() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("echo_tokio: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();

    let server = Server::builder()
        .quiet_period(args.quiet_period())
        .timeout(
            args.timeout
                .unwrap_or(graceful_core::Builder::DEFAULT_TIMEOUT),
        )
        .build();
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            eprintln!("echo_tokio: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&args.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("echo_tokio: cannot listen on {}: {error}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(_) => println!("listening on {}", args.addr),
    }

    let report = server
        .serve(listener, |stream: TcpStream, conn| {
            line::serve(stream.compat(), conn, TokioTimer)
        })
        .await;
    eprintln!("echo_tokio: {report}");
    ExitCode::SUCCESS
}
