//! The `hello_smol` example: hyper on smol through graceful-hyper and graceful-smol.
//!
//! The server body is shared with `hello_async_std` ([`serve_on`]): async-std runs on the
//! same reactor (async-io), so only the executor differs ([`AsyncIo`]).

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use graceful_hyper::Http;
use hyper::service::service_fn;
use smol::net::TcpListener;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::http::{self, Runtime, Task};

/// The runtimes on async-io's reactor the examples run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncIo {
    /// smol's global executor.
    Smol,
    /// async-std's executor.
    AsyncStd,
}

impl Runtime for AsyncIo {
    fn sleep(&self, duration: Duration) -> Task {
        match self {
            AsyncIo::Smol => Box::pin(async move {
                smol::Timer::after(duration).await;
            }),
            AsyncIo::AsyncStd => Box::pin(async_std::task::sleep(duration)),
        }
    }

    fn spawn(&self, task: Task) {
        match self {
            AsyncIo::Smol => smol::spawn(task).detach(),
            AsyncIo::AsyncStd => drop(async_std::task::spawn(task)),
        }
    }
}

/// hyper runs HTTP/2 streams with it.
impl<F> hyper::rt::Executor<F> for AsyncIo
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        match self {
            AsyncIo::Smol => smol::spawn(future).detach(),
            AsyncIo::AsyncStd => drop(async_std::task::spawn(future)),
        }
    }
}

/// Runs the `hello_smol` server with these command-line arguments (the program name left
/// out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    serve_on(
        "hello_smol",
        args,
        AsyncIo::Smol,
        |builder| builder,
        smol::block_on,
    )
}

/// The server of `hello_smol` and `hello_async_std`, on `runtime`, with
/// graceful-smol's builder adjusted by `adjust` (to set a spawner) and the whole run under
/// `block_on`.
pub fn serve_on(
    name: &'static str,
    args: impl IntoIterator<Item = String>,
    runtime: AsyncIo,
    adjust: impl FnOnce(graceful_smol::Builder) -> graceful_smol::Builder,
    block_on: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = u8>>>) -> u8,
) -> u8 {
    let args = match http::parse_args(args) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{name}: {error}\n{}", http::USAGE);
            return 2;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    let Some(mut deploy) = crate::deploy::Deploy::start(name) else {
        return 1;
    };
    let builder = graceful_smol::Server::builder()
        .timeout(args.timeout)
        .quiet_period(args.quiet_period())
        .on_shutdown(deploy.on_shutdown());
    let server = match adjust(builder).build() {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{name}: {error}");
            return 2;
        }
    };
    block_on(Box::pin(async move {
        let listener = match deploy.listen(&args.addr).and_then(TcpListener::try_from) {
            Ok(listener) => deploy.gated(listener),
            Err(error) => {
                eprintln!("{name}: cannot listen on {}: {error}", args.addr);
                return 1;
            }
        };
        let hangups = crate::deploy::async_io_hangups(name);
        http::announce(listener.local_addr(), &args.addr);
        runtime.spawn(Box::pin(deploy.run(
            server.shutdown(),
            graceful_smol::SmolTimer,
            args.timeout,
            hangups,
        )));

        let hyper = Http::new(SmolTimer::new(), runtime);
        let report = server
            .serve(listener, move |stream, conn| {
                let service = service_fn(move |req| http::route(req, runtime));
                // A client that breaks the protocol or vanishes concerns only itself. `map`
                // rather than an `async` block, which would hold the future twice over.
                hyper
                    .serve_connection(FuturesIo::new(stream), conn, service)
                    .map(drop)
            })
            .await;
        eprintln!("{name}: {report}");
        0
    }))
}
