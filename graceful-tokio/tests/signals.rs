//! No signal sent after the server is built is lost, however the application wraps its call
//! to `serve`: this test binary, re-run as a child, builds the server before its runtime
//! exists, then serves inside an `async fn` that prints a line and yields first; the test
//! sends SIGTERM as soon as it reads the line, and the child must drain and exit 0 with its
//! report (before the signals were registered at build, it died of the SIGTERM, exit 143).

#![cfg(unix)]

use std::time::Duration;

use graceful_harness::Launch;
use graceful_tokio::{Conn, Server, ShutdownReport};

/// Set in the child's environment: serve.
const CHILD: &str = "GRACEFUL_TOKIO_SIGNALS_CHILD";
const LONG: Duration = Duration::from_secs(30);

/// The application: wrapped in an `async fn` that says it listens, and yields, before it
/// awaits `serve`.
async fn app(server: Server) -> ShutdownReport {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("listening");
    tokio::task::yield_now().await;
    server.serve(listener, |_, _conn: Conn| async {}).await
}

/// The server: plays it when re-run as a child.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let server = Server::new(); // the signals are registered here, outside any runtime
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(app(server));
    eprintln!("report: {report}");
    std::process::exit(0);
}

#[test]
fn a_sigterm_as_soon_as_the_server_is_built_drains_it() {
    let server = || Launch::this_test("child").env(CHILD, "1");
    graceful_harness::process::sigterm_once_listening_drains(server, 20, LONG);
}
