//! Peer for the bench: raw hyper 1.x, HTTP/1 only, on tokio, with no shutdown tracking.
//!
//! The floor graceful is measured against: a signal ends the process at once, dropping
//! whatever was in flight.

#[path = "../peer.rs"]
mod peer;
#[path = "../peer_tokio.rs"]
mod peer_tokio;

use std::process::ExitCode;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match peer::Args::parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("peer_hyper_http1: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match peer_tokio::bind(args.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("peer_hyper_http1: {err}");
            return ExitCode::FAILURE;
        }
    };
    let header_read_timeout = args.header_read_timeout;
    let accept = async {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    peer_tokio::accept_error_pause().await;
                    continue;
                }
            };
            // The builder lives in the connection's task, as in hyper's own example.
            tokio::spawn(async move {
                let mut http = http1::Builder::new();
                if let Some(timeout) = header_read_timeout {
                    http.timer(TokioTimer::new()).header_read_timeout(timeout);
                }
                let io = TokioIo::new(stream);
                let _ = http
                    .serve_connection(io, service_fn(peer_tokio::hello))
                    .await;
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = peer_tokio::shutdown_signal() => eprintln!("peer_hyper_http1: signal, exiting"),
    }
    ExitCode::SUCCESS
}
