//! The `hello_smol` example: hyper on smol, one `serve_http` call, with hot restart on
//! SIGHUP, socket activation and `sd_notify` (see [`deploy`]).
//!
//! The server body is shared with `hello_async_std` ([`serve_on`]): async-std runs on the
//! same reactor (async-io), so only the executor differs (a [`Smol`] runtime with a
//! spawner).

use std::future::Future;
use std::pin::Pin;

use graceful_smol::{Runtime as _, Server, Smol, SmolTimer};
use hyper::service::service_fn;
use smol::net::TcpListener;

use crate::deploy::{self, Deploy};
use crate::http;

/// Runs the `hello_smol` server with these command-line arguments (the program name left
/// out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    serve_on("hello_smol", args, Smol::default(), smol::block_on)
}

/// The server of `hello_smol` and `hello_async_std`: serves on `runtime`, the whole run
/// under `block_on`.
pub fn serve_on(
    name: &'static str,
    args: impl IntoIterator<Item = String>,
    runtime: Smol,
    block_on: impl FnOnce(Pin<Box<dyn Future<Output = u8>>>) -> u8,
) -> u8 {
    let args = match http::start(name, args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    // Before any thread starts: it clears the `LISTEN_*` variables.
    let Some(mut deploy) = Deploy::start(name) else {
        return 1;
    };
    let server: Server = match http::server_on(name, &args, Some(&deploy), runtime.clone()) {
        Ok(server) => server,
        Err(code) => return code,
    };
    block_on(Box::pin(async move {
        let listener = match deploy.listen(&args.addr).and_then(TcpListener::try_from) {
            Ok(listener) => deploy.gated(listener),
            Err(error) => {
                eprintln!("{name}: cannot listen on {}: {error}", args.addr);
                return 1;
            }
        };
        let local = listener.local_addr();
        let hangups = deploy::async_io_hangups(name);
        let bound = http::drain_bound(&args);
        runtime.spawn(Box::pin(deploy.run(
            server.shutdown(),
            SmolTimer,
            bound,
            hangups,
        )));
        http::watch_progress(&runtime, server.shutdown());
        let service = service_fn(move |request| http::route(request, runtime.clone()));
        // Made before the announcement: it sets the signal handlers, so that a signal sent
        // as soon as the line is out drains instead of killing the process.
        let serving = server.serve_http(listener, service);
        http::announce(local, &args.addr);
        http::finish(name, serving.await)
    }))
}
