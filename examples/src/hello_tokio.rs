//! The `hello_tokio` example: hyper on tokio through graceful-hyper and graceful-tokio.
//!
//! The example binary is a thin `main` around [`main_with`], so that the `http_tokio` tests
//! can run the very same server in a child process.

use std::time::Duration;

use futures::FutureExt;
use graceful_hyper::Http;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::http::{self, Runtime, Task};

/// Spawns and sleeps on tokio.
#[derive(Clone, Copy, Debug)]
pub struct Tokio;

impl Runtime for Tokio {
    fn sleep(&self, duration: Duration) -> Task {
        Box::pin(tokio::time::sleep(duration))
    }

    fn spawn(&self, task: Task) {
        drop(tokio::spawn(task));
    }
}

/// Runs the `hello_tokio` server with these command-line arguments (the program name left
/// out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    const NAME: &str = "hello_tokio";
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
    let Some(mut deploy) = crate::deploy::Deploy::start(NAME) else {
        return 1;
    };
    let server = graceful_tokio::Server::builder()
        .timeout(args.timeout)
        .quiet_period(args.quiet_period())
        .on_shutdown(deploy.on_shutdown())
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
        let listener = match deploy.listen(&args.addr).and_then(TcpListener::from_std) {
            Ok(listener) => deploy.gated(listener),
            Err(error) => {
                eprintln!("{NAME}: cannot listen on {}: {error}", args.addr);
                return 1;
            }
        };
        let hangups = crate::deploy::tokio_hangups(NAME);
        http::announce(listener.local_addr(), &args.addr);
        Tokio.spawn(Box::pin(deploy.run(
            server.shutdown(),
            graceful_tokio::TokioTimer,
            args.timeout,
            hangups,
        )));

        // The keep-alive linger is the server's quiet period, which hyper reads from `conn`.
        let hyper = Http::new(TokioTimer::new(), TokioExecutor::new());
        let report = server
            .serve(listener, move |stream, conn| {
                let service = service_fn(|req| http::route(req, Tokio));
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
