//! `hello_smol`: an HTTP server (hyper on smol) that shuts down gracefully and restarts
//! without dropping a connection.
//!
//! ```sh
//! cargo run --release -p examples --example hello_smol
//! curl localhost:3000/sleep/3000   # then Ctrl-C the server: the response still comes
//! ```
//!
//! SIGTERM or Ctrl-C drains: idle connections close, requests in flight finish, and a
//! second signal stops at once. SIGHUP hands the socket to a new process of the same binary
//! and drains this one (a hot restart). Under systemd, a socket it passes (`LISTEN_FDS`) is
//! served instead of `--addr`, and `NOTIFY_SOCKET` hears when the server is ready and how
//! its drain goes. The flags, the routes besides `/` and the progress line are plumbing the
//! examples share (`src/contract.rs`).
//!
//! `--addr` may come more than once, `NAME=` before it names the listener, `unix:/PATH` is a
//! Unix socket (`--addr web=127.0.0.1:3000 --addr admin=unix:/tmp/admin.sock`): one server
//! serves them all, one drain stops them all at once, one report counts each. A deploy
//! hands the TCP ones over (under systemd, several are told apart by their
//! `FileDescriptorName=`, the `NAME=`), never a Unix one.

use std::convert::Infallible;
use std::io;
use std::process::ExitCode;

use contract::{Body, Flags, Routes, StartError};
use graceful_smol::{Deploy, Http, Server, Smol, SmolTimer};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use smol::net::unix::UnixListener;

const NAME: &str = "hello_smol";

fn main() -> ExitCode {
    // Connections run on smol's global executor, the server's own loop under `block_on`.
    match smol::block_on(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.exit(NAME),
    }
}

async fn serve() -> Result<(), StartError> {
    let flags = Flags::from_env()?;
    contract::init_tracing();

    // The settings: how long the drain may last, how long a connection must have been
    // quiet to be closed at once, how long to serve on before draining; and zero-downtime
    // deploys (socket activation, sd_notify, hot restart on SIGHUP).
    let mut builder = Server::builder()
        .timeout(flags.timeout)
        .quiet_period(flags.quiet_period())
        .drain_delay(flags.drain_delay)
        .deploy(Deploy::new());
    if let Some(spread) = flags.close_spread {
        // Idle closes and HTTP/2 GOAWAYs spread over `--close-spread` from the drain's start.
        builder = builder.close_spread(spread);
    }
    let server = builder.build().map_err(StartError::input)?;

    // The listeners: each TCP `--addr` the socket inherited from systemd or from the
    // process this one replaces, else bound. `listen` serves the one inherited socket
    // whatever its name; `listen_all` finds each by its name (`LISTEN_FDNAMES`: systemd's
    // `FileDescriptorName=`, or the names a hot restart hands them on with). Each `unix:`
    // path is bound here, its file removed when `socket_files` drops, after the report (a
    // hot restart hands TCP sockets on, not these).
    let tcp = match flags.tcp()[..] {
        [] => Vec::new(),
        [(name, addr)] => {
            let listener = server.listen(addr);
            vec![(
                name,
                listener.map_err(|error| StartError::listen(addr, error))?,
            )]
        }
        ref several => {
            let listeners = server.listen_all(several.iter().copied());
            let listeners = listeners.map_err(StartError::system)?;
            several
                .iter()
                .map(|(name, _)| *name)
                .zip(listeners)
                .collect()
        }
    };
    let unix = flags.bind_unix(UnixListener::bind)?;

    // The service, any hyper service: `GET /` says hello, the contract answers the rest.
    let routes = Routes::new(Smol::default(), server.shutdown());
    let service = service_fn(move |request| hello(request, routes));

    // Serving every listener under one shutdown (one drain, in which they all stop
    // accepting at once; one report, by listener), with a line of progress on stderr while
    // draining. The signal handlers were registered when the server was built, so a signal
    // sent as soon as the lines below are out drains. graceful-hyper's `Http` turns the
    // service into each listener's handler.
    let progress = contract::print_progress(server.shutdown(), SmolTimer, io::stderr());
    smol::spawn(progress).detach();
    let http = Http::new(server.runtime());
    let mut server = server;
    for (name, listener) in tcp {
        let addr = listener.local_addr().map_err(StartError::system)?;
        println!("listening on http://{addr}");
        server = server.add(name, listener, http.service(service));
    }
    let mut socket_files = Vec::new();
    for (name, listener, file) in unix {
        println!("listening on {file}");
        socket_files.push(file);
        server = server.add(name, listener, http.service(service));
    }

    // The report: what became of every connection.
    let report = server.run().await;
    eprintln!("{NAME}: {report}");
    Ok(())
}

/// The service: `GET /` says hello; the contract answers the routes the drills use
/// (`POST /` among them).
async fn hello(
    request: Request<Incoming>,
    routes: Routes<Smol>,
) -> Result<Response<Body>, Infallible> {
    Ok(match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => Response::new(Body::from("hello")),
        _ => routes.answer(request).await,
    })
}
