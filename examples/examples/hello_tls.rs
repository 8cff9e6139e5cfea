//! `hello_tls`: an HTTPS server (hyper over rustls on tokio; HTTP/1.1 or HTTP/2 as ALPN
//! chooses) that shuts down gracefully and reloads its certificate on SIGHUP.
//!
//! ```sh
//! cargo run --release -p examples --example hello_tls
//! curl -k --http2 https://localhost:3000/       # hello, over HTTP/2
//! curl -k https://localhost:3000/sleep/3000     # then Ctrl-C the server: it still comes
//! ```
//!
//! Without `--cert PEM --key PEM` it serves a certificate for `localhost` made at start.
//! Each TLS handshake runs in its connection's task, bounded by `--handshake-timeout`; a
//! drain tells a handshake under way from a silent client, and a drained connection sends
//! close_notify. SIGTERM or Ctrl-C drains, a second signal stops at once; SIGHUP reloads
//! the certificate files: new handshakes present the new certificate, established
//! connections keep theirs. After the report, the handshake counters. The flags, the
//! routes besides `/` and the progress line are plumbing the examples share
//! (`src/contract.rs`).
//!
//! `--addr` may come more than once, `NAME=` before it names the listener, `unix:/PATH` is a
//! Unix socket: one server serves them all, one drain stops them all at once, one report
//! counts each. `--redirect-addr HOST:PORT` adds a plain-HTTP listener to the same server
//! that redirects every request to HTTPS (`308`, the same host and path on the first
//! `--addr`'s port): `curl -i localhost:8080/x` with `--redirect-addr 127.0.0.1:8080`.

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use contract::{Body, Flags, Routes, StartError};
use graceful_tokio::tls::{server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
use graceful_tokio::{Http, Server, Tokio, TokioTimer};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

const NAME: &str = "hello_tls";

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.exit(NAME),
    }
}

async fn serve() -> Result<(), StartError> {
    let flags = Flags::from_env_tls()?;
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

    // The certificate, reloadable, and the TLS settings (ALPN: h2, http/1.1).
    let certs = Arc::new(match &flags.cert {
        Some((cert, key)) => CertResolver::from_pem_files(cert, key).map_err(StartError::input)?,
        None => contract::self_signed()?,
    });
    let config = server_config(certs.clone(), ALPN_H2_HTTP1).map_err(StartError::input)?;
    // SIGHUP loads the files again: new handshakes present the new certificate,
    // established connections keep theirs.
    let mut hangups = signal(SignalKind::hangup()).map_err(StartError::system)?;
    let files = flags.cert.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            reload(&certs, &files);
        }
    });

    // The listeners: each TCP `--addr` the server binds (and closes without resetting a
    // connection that completes as it stops, on Linux), each `unix:` path bound here (its
    // file removed when `socket_files` drops, after the report), TLS over each; and
    // `--redirect-addr`, plain HTTP.
    let mut tcp = Vec::new();
    for (name, addr) in flags.tcp() {
        let listener = server
            .listen(addr)
            .map_err(|error| StartError::listen(addr, error))?;
        tcp.push((name, listener));
    }
    let unix = flags.bind_unix(UnixListener::bind)?;
    let mut plain = None;
    if let Some((name, addr)) = &flags.redirect {
        let listener = server
            .listen(addr)
            .map_err(|error| StartError::listen(addr, error))?;
        plain = Some((name, listener));
    }

    // The services, any hyper services: `GET /` says hello, the contract answers the rest;
    // on plain HTTP, every request is redirected to the same path on the first HTTPS port.
    let routes = Routes::new(Tokio, server.shutdown());
    let service = service_fn(move |request| hello(request, routes));
    let https_port = match tcp.first() {
        Some((_, listener)) => listener.local_addr().map_err(StartError::system)?.port(),
        None => 443,
    };
    let to_https = service_fn(move |request: Request<Incoming>| async move {
        Ok::<_, Infallible>(contract::redirect(&request, https_port))
    });

    // Serving every listener under one shutdown (one drain, in which they all stop
    // accepting at once; one report, by listener), with a line of progress on stderr while
    // draining. The signal handlers were registered when the server was built, so a signal
    // sent as soon as the lines below are out drains. A TLS listener accepts at once; each
    // handshake happens in its connection's task, within the handshake timeout, and is
    // counted. graceful-hyper's `Http` turns a service into a listener's handler.
    tokio::spawn(contract::print_progress(
        server.shutdown(),
        TokioTimer,
        io::stderr(),
    ));
    let http = Http::new(server.runtime());
    let (mut server, mut handshakes) = (server, Vec::new());
    for (name, listener) in tcp {
        let addr = listener.local_addr().map_err(StartError::system)?;
        let listener = TlsListener::new(listener, config.clone());
        let listener = listener.handshake_timeout(flags.handshake_timeout);
        handshakes.push(listener.counters());
        println!("listening on https://{addr}");
        server = server.add(name, listener, http.service(service));
    }
    let mut socket_files = Vec::new();
    for (name, listener, file) in unix {
        let listener = TlsListener::new(listener, config.clone());
        let listener = listener.handshake_timeout(flags.handshake_timeout);
        handshakes.push(listener.counters());
        println!("listening on {file}");
        socket_files.push(file);
        server = server.add(name, listener, http.service(service));
    }
    if let Some((name, listener)) = plain {
        let addr = listener.local_addr().map_err(StartError::system)?;
        println!("listening on http://{addr}");
        server = server.add(name, listener, http.service(to_https));
    }

    // The report: what became of every connection, then of every handshake.
    let report = server.run().await;
    eprintln!("{NAME}: {report}");
    eprintln!(
        "{NAME}: TLS handshakes: {}",
        contract::handshakes(&handshakes)
    );
    Ok(())
}

/// The service: `GET /` says hello; the contract answers the routes the drills use
/// (`POST /` among them).
async fn hello(
    request: Request<Incoming>,
    routes: Routes<Tokio>,
) -> Result<Response<Body>, Infallible> {
    Ok(match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => Response::new(Body::from("hello")),
        _ => routes.answer(request).await,
    })
}

/// On SIGHUP: loads the certificate files again, for the handshakes to come.
fn reload(certs: &CertResolver, files: &Option<(PathBuf, PathBuf)>) {
    let Some((cert, key)) = files else {
        return eprintln!("{NAME}: SIGHUP: no --cert and --key to reload");
    };
    match certs.reload_pem_files(cert, key) {
        Ok(()) => eprintln!("{NAME}: certificate reloaded"),
        Err(error) => eprintln!("{NAME}: certificate not reloaded: {error}"),
    }
}
