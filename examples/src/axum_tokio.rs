//! The `axum_tokio` example: an axum `Router` on tokio through graceful-hyper and
//! graceful-tokio.
//!
//! axum's own `serve` knows nothing of connection states; here each connection is served by
//! graceful-hyper, with the router adapted by hyper-util's `TowerToHyperService`.

use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures::FutureExt;
use graceful_hyper::Http;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::http;

/// The example's routes: `GET /` and `GET /sleep/{ms}`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower::ServiceExt;
///
/// let request = http::Request::get("/sleep/5").body(axum::body::Body::empty())?;
/// let response = examples::axum_tokio::router().oneshot(request).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(()) }
/// ```
pub fn router() -> Router {
    Router::new().route("/", get(|| async { "hello" })).route(
        "/sleep/{ms}",
        get(|Path(ms): Path<u64>| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            "slept"
        }),
    )
}

/// Runs the `axum_tokio` server with these command-line arguments (the program name left
/// out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    const NAME: &str = "axum_tokio";
    let args = match http::parse_args(args) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{NAME}: {error}\n{}", http::USAGE);
            return 2;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    let server = graceful_tokio::Server::builder()
        .timeout(args.timeout)
        .quiet_period(args.quiet_period())
        .build();
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{NAME}: {error}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{NAME}: cannot start tokio: {error}");
            return 1;
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind(&args.addr).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("{NAME}: cannot listen on {}: {error}", args.addr);
                return 1;
            }
        };
        http::announce(listener.local_addr(), &args.addr);

        let hyper = Http::new(TokioTimer::new(), TokioExecutor::new());
        let router = router();
        let report = server
            .serve(listener, move |stream, conn| {
                let service = TowerToHyperService::new(router.clone());
                // A client that breaks the protocol or vanishes concerns only itself. `map`
                // rather than an `async` block, which would hold the future twice over.
                hyper
                    .serve_connection(TokioIo::new(stream), conn, service)
                    .map(drop)
            })
            .await;
        eprintln!("{NAME}: {report}");
        0
    })
}
