//! `axum_tokio`: an axum `Router` on tokio, shutting down gracefully.
//!
//! ```sh
//! cargo run --release -p examples --example axum_tokio
//! curl localhost:3000/sleep/3000   # then Ctrl-C the server: the response still comes
//! ```
//!
//! The router is served as it is. axum's own `serve` knows nothing of its connections'
//! states; here graceful-hyper serves each connection and knows them exactly, so idle ones
//! close at once and busy ones finish. SIGTERM or Ctrl-C drains, a second signal stops at
//! once. The flags and the progress line are plumbing the examples share
//! (`src/contract.rs`).
//!
//! `--addr` may come more than once, `NAME=` before it names the listener, `unix:/PATH` is a
//! Unix socket (`--addr web=127.0.0.1:3000 --addr admin=unix:/tmp/admin.sock`): one server
//! serves them all, one drain stops them all at once, one report counts each.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use contract::{Flags, StartError};
use graceful_tokio::{Http, Server, TokioTimer};
use tokio::net::UnixListener;

const NAME: &str = "axum_tokio";

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.exit(NAME),
    }
}

async fn serve() -> Result<(), StartError> {
    let flags = Flags::from_env()?;
    contract::init_tracing();

    // The settings: how long the drain may last, how long a connection must have been
    // quiet to be closed at once, how long to serve on before draining.
    let mut builder = Server::builder()
        .timeout(flags.timeout)
        .quiet_period(flags.quiet_period())
        .drain_delay(flags.drain_delay);
    if let Some(spread) = flags.close_spread {
        // Idle closes and HTTP/2 GOAWAYs spread over `--close-spread` from the drain's start.
        builder = builder.close_spread(spread);
    }
    let server = builder.build().map_err(StartError::input)?;

    // The listeners: each TCP `--addr` bound by the server, which then closes it without
    // resetting a connection that completes as it stops (on Linux); each `unix:` path
    // bound here, its file removed when `socket_files` drops, after the report.
    let mut tcp = Vec::new();
    for (name, addr) in flags.tcp() {
        let listener = server
            .listen(addr)
            .map_err(|error| StartError::listen(addr, error))?;
        tcp.push((name, listener));
    }
    let unix = flags.bind_unix(UnixListener::bind)?;

    // The service: the router, its handlers made into routes once (as `axum::serve` does).
    // `POST /` is the contract's (`hello`, once the body is read), and so is `/bytes/{n}`
    // (`n` bytes, streamed).
    let app = Router::new()
        .route(
            "/",
            get(|| async { "hello" }).post(contract::hello_posted::<axum::body::Body>),
        )
        .route("/sleep/{ms}", get(sleep))
        .route("/bytes/{n}", get(bytes))
        .with_state(());

    // Serving every listener under one shutdown (one drain, in which they all stop
    // accepting at once; one report, by listener), with a line of progress on stderr while
    // draining. The signal handlers were registered when the server was built, so a signal
    // sent as soon as the lines below are out drains. graceful-hyper's `Http` turns the
    // service into each listener's handler.
    tokio::spawn(contract::print_progress(
        server.shutdown(),
        TokioTimer,
        io::stderr(),
    ));
    let http = Http::new(server.runtime());
    let mut server = server;
    for (name, listener) in tcp {
        let addr = listener.local_addr().map_err(StartError::system)?;
        println!("listening on http://{addr}");
        server = server.add(name, listener, http.service(app.clone()));
    }
    let mut socket_files = Vec::new();
    for (name, listener, file) in unix {
        println!("listening on {file}");
        socket_files.push(file);
        server = server.add(name, listener, http.service(app.clone()));
    }

    // The report: what became of every connection.
    let report = server.run().await;
    eprintln!("{NAME}: {report}");
    Ok(())
}

/// `GET /sleep/{ms}`: work in flight for `ms` milliseconds.
async fn sleep(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slept"
}

/// `GET /bytes/{n}`: `n` bytes, streamed (the contract's body); `400` unless `n` is a number.
async fn bytes(Path(n): Path<String>) -> http::Response<contract::Body> {
    contract::bytes(&n)
}
