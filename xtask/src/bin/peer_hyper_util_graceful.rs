//! Peer for the bench: hyper-util's `GracefulShutdown` around the auto builder (HTTP/1 and
//! HTTP/2), wrapped in a timeout: the graceful shutdown most Rust users would write.
//!
//! Written the way hyper-util's own example does it: on the first signal, stop accepting,
//! ask every connection to shut down gracefully, and wait for them until `--timeout`. It
//! has no notion of a second signal (tokio keeps the handler installed, so later signals
//! are swallowed), no quiet period and no header grace.

#[path = "../peer.rs"]
mod peer;
#[path = "../peer_tokio.rs"]
mod peer_tokio;

use std::process::ExitCode;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match peer::Args::parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("peer_hyper_util_graceful: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match peer_tokio::bind(args.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("peer_hyper_util_graceful: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut server = auto::Builder::new(TokioExecutor::new());
    if let Some(timeout) = args.header_read_timeout {
        server
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout);
    }
    let graceful = GracefulShutdown::new();
    let mut signal = std::pin::pin!(peer_tokio::shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        peer_tokio::accept_error_pause().await;
                        continue;
                    }
                };
                let conn = server.serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    service_fn(peer_tokio::hello),
                );
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut signal => break,
        }
    }
    drop(listener);
    eprintln!("peer_hyper_util_graceful: signal, shutting down gracefully");
    match tokio::time::timeout(args.timeout, graceful.shutdown()).await {
        Ok(()) => eprintln!("peer_hyper_util_graceful: all connections closed"),
        Err(_) => eprintln!("peer_hyper_util_graceful: timed out, dropping the rest"),
    }
    ExitCode::SUCCESS
}
