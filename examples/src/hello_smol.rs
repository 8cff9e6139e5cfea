//! The `hello_smol` example: hyper on smol, one `serve` call with graceful-hyper's handler,
//! with hot restart on SIGHUP, socket activation and `sd_notify` (graceful-smol's `deploy`
//! setting, through [`http::deploying`]).
//!
//! The server body is shared with `hello_async_std` ([`serve_on`]): async-std runs on the
//! same reactor (async-io), so only the executor differs (a [`Smol`] runtime with a
//! spawner).

use std::future::Future;
use std::pin::Pin;

use graceful_smol::{Server, Smol};
use hyper::service::service_fn;

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
    let deploying: http::Adjust<Smol> = http::deploying;
    let server: Server = match http::server_on(name, &args, Some(deploying), runtime.clone()) {
        Ok(server) => server,
        Err(code) => return code,
    };
    block_on(Box::pin(async move {
        // The socket inherited from systemd or a hot restart's parent, or `--addr` bound.
        let listener = match server.listen(&args.addr) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("{name}: cannot listen on {}: {error}", args.addr);
                return 1;
            }
        };
        let local = listener.local_addr();
        http::watch_progress(&runtime, server.shutdown());
        let service = service_fn(move |request| http::route(request, runtime.clone()));
        // The signal handlers were set when the server was built: a signal sent as soon as
        // the line is out drains instead of killing the process.
        let http = graceful_smol::Http::new(server.runtime());
        let serving = server.serve(listener, http.service(service));
        http::announce(local, &args.addr);
        http::finish(name, serving.await)
    }))
}
