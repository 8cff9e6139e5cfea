//! Peer for the bench: axum's own `serve` with `with_graceful_shutdown`, the way axum's
//! documentation writes it, wrapped in a timeout: what an axum user runs instead of graceful.
//!
//! The router is the one `axum_tokio` serves (`/`, `/sleep/{ms}` and `/bytes/{n}`), so the
//! two compare like for like. axum's `serve` has no timeout of its own, no second signal
//! and no header read timeout.

#[path = "../peer.rs"]
#[allow(dead_code)] // the routes are axum's here, but `/bytes/{n}`
mod peer;
#[path = "../peer_tokio.rs"]
#[allow(dead_code)]
mod peer_tokio;

use std::process::ExitCode;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match peer::Args::parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("peer_axum_serve: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match peer_tokio::bind(args.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("peer_axum_serve: {err}");
            return ExitCode::FAILURE;
        }
    };
    let router = Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/sleep/{ms}",
            get(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "slept"
            }),
        )
        .route(
            "/bytes/{n}",
            get(|request: axum::extract::Request| async move {
                peer::respond(peer::route(&request))
                    .map(|response| response.map(axum::body::Body::new))
            }),
        );
    // axum's `serve` cannot bound its drain: `--timeout` is not honoured.
    let _ = args.timeout;
    let serving = axum::serve(listener, router).with_graceful_shutdown(async {
        peer_tokio::shutdown_signal().await;
        eprintln!("peer_axum_serve: signal, shutting down gracefully");
    });
    match serving.await {
        Ok(()) => eprintln!("peer_axum_serve: all connections closed"),
        Err(err) => eprintln!("peer_axum_serve: {err}"),
    }
    ExitCode::SUCCESS
}
