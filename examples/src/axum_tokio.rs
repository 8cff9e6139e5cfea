//! The `axum_tokio` example: an axum `Router` on tokio, served as it is by graceful-hyper's
//! handler.
//!
//! axum's own `serve` knows nothing of connection states; here each connection is served by
//! graceful-hyper, which reports them exactly.

use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use graceful_tokio::Server;
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
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/sleep/{ms}",
            get(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "slept"
            }),
        )
        // As `axum::serve` does: the handlers become routes once, not on every request.
        .with_state(())
}

/// Runs the `axum_tokio` server with these command-line arguments (the program name left
/// out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    const NAME: &str = "axum_tokio";
    let args = match http::start(NAME, args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let server: Server = match http::server(NAME, &args, None) {
        Ok(server) => server,
        Err(code) => return code,
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        eprintln!("{NAME}: cannot start tokio");
        return 1;
    };
    runtime.block_on(async {
        let Ok(listener) = TcpListener::bind(&args.addr).await else {
            eprintln!("{NAME}: cannot listen on {}", args.addr);
            return 1;
        };
        let local = listener.local_addr();
        http::watch_progress(&graceful_tokio::Tokio, server.shutdown());
        // The signal handlers were set when the server was built.
        let http = graceful_tokio::Http::new(server.runtime());
        let serving = server.serve(listener, http.service(router()));
        http::announce(local, &args.addr);
        http::finish(NAME, serving.await)
    })
}
