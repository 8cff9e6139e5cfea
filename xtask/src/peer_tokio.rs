//! The tokio side of the peers: listener, service, signals (see `peer.rs` for the contract).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use crate::peer::{self, Route};

/// Binds the listener and announces it on stdout.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    let local = listener
        .local_addr()
        .map_err(|err| format!("no local address: {err}"))?;
    peer::announce(local);
    Ok(listener)
}

/// The service: `/` and `/sleep/{ms}`.
pub async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = peer::route(&req);
    if let Route::Sleep(duration) = route {
        tokio::time::sleep(duration).await;
    }
    peer::respond(route)
}
/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Accept errors other than per-connection ones mean "out of descriptors": back off a
/// little instead of spinning, as a careful user would.
pub async fn accept_error_pause() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}
