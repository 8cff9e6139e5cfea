//! Peer for the bench: raw hyper 1.x with hyper-util's auto builder (HTTP/1 and HTTP/2) on
//! smol, with no shutdown tracking.
//!
//! It runs the way `hello_smol` does (the accept loop under `smol::block_on`, connections
//! on smol's global executor), so that graceful's cost on smol can be told apart from the
//! cost of smol itself. A signal ends the process at once, dropping whatever was in flight.

#[path = "../peer.rs"]
mod peer;

use std::convert::Infallible;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use async_signal::{Signal, Signals};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::server::conn::auto;
use smol::stream::StreamExt;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::peer::Route;

/// hyper runs HTTP/2 streams on smol's global executor.
#[derive(Clone, Copy, Debug)]
struct SmolSpawn;

impl<F> hyper::rt::Executor<F> for SmolSpawn
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        smol::spawn(future).detach();
    }
}

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = peer::route(&req);
    if let Route::Sleep(duration) = route {
        smol::Timer::after(duration).await;
    }
    peer::respond(route)
}

fn main() -> ExitCode {
    let args = match peer::Args::parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("peer_hyper_smol: {err}");
            return ExitCode::from(2);
        }
    };
    let served = smol::block_on(async {
        let mut signals = Signals::new([Signal::Term, Signal::Int])
            .map_err(|err| format!("cannot handle signals: {err}"))?;
        let listener = smol::net::TcpListener::bind(args.addr)
            .await
            .map_err(|err| format!("cannot listen on {}: {err}", args.addr))?;
        let local = listener
            .local_addr()
            .map_err(|err| format!("no local address: {err}"))?;
        peer::announce(local);
        let header_read_timeout = args.header_read_timeout;
        let accept = async {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        // The builder lives in the connection's task, as with tokio.
                        smol::spawn(async move {
                            let mut http = auto::Builder::new(SmolSpawn);
                            if let Some(timeout) = header_read_timeout {
                                http.http1()
                                    .timer(SmolTimer::new())
                                    .header_read_timeout(timeout);
                            }
                            let io = FuturesIo::new(stream);
                            let _ = http.serve_connection(io, service_fn(hello)).await;
                        })
                        .detach();
                    }
                    Err(_) => {
                        smol::Timer::after(Duration::from_millis(10)).await;
                    }
                }
            }
        };
        let signal = async {
            signals.next().await;
            eprintln!("peer_hyper_smol: signal, exiting");
        };
        smol::future::or(accept, signal).await;
        Ok::<(), String>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("peer_hyper_smol: {err}");
            ExitCode::FAILURE
        }
    }
}
