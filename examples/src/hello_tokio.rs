//! The `hello_tokio` example: hyper on tokio, one `serve` call with graceful-hyper's handler,
//! with hot restart on SIGHUP, socket activation and `sd_notify` (graceful-tokio's `deploy`
//! setting, through [`http::deploying`]).
//!
//! The example binary is a thin `main` around [`main_with`], so that the `http_tokio` tests
//! can run the very same server in a child process.

use graceful_tokio::{Server, Tokio};
use hyper::service::service_fn;

use crate::http;

/// Runs the `hello_tokio` server with these command-line arguments (the program name left
/// out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    main_on(
        "hello_tokio",
        args,
        tokio::runtime::Builder::new_multi_thread(),
    )
}

/// [`main_with`] as `name`, on a runtime of the given flavor (`hello_tokio_current` runs it
/// on a current-thread runtime: every connection then shares the thread of the accept loop).
pub fn main_on(
    name: &'static str,
    args: impl IntoIterator<Item = String>,
    mut flavor: tokio::runtime::Builder,
) -> u8 {
    let args = match http::start(name, args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let server: Server = match http::server(name, &args, Some(http::deploying)) {
        Ok(server) => server,
        Err(code) => return code,
    };
    let runtime = match flavor.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start tokio: {error}");
            return 1;
        }
    };
    runtime.block_on(async {
        // The socket inherited from systemd or a hot restart's parent, or `--addr` bound.
        let listener = match server.listen(&args.addr) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("{name}: cannot listen on {}: {error}", args.addr);
                return 1;
            }
        };
        let local = listener.local_addr();
        http::watch_progress(&Tokio, server.shutdown());
        let service = service_fn(|request| http::route(request, Tokio));
        // The signal handlers were set when the server was built: a signal sent as soon as
        // the line is out drains instead of killing the process.
        let http = graceful_tokio::Http::new(server.runtime());
        let serving = server.serve(listener, http.service(service));
        http::announce(local, &args.addr);
        http::finish(name, serving.await)
    })
}
