//! `grpc_tokio`: a gRPC server (tonic on tokio) that shuts down gracefully: its health turns
//! NOT_SERVING as soon as the drain (or the drain delay) begins, unary calls in flight get
//! their answers, and server streams end with UNAVAILABLE after a grace instead of holding
//! the process.
//!
//! ```sh
//! cargo run --release -p examples --example grpc_tokio -- --drain-delay 5
//! grpcurl -plaintext localhost:3000 grpc.health.v1.Health/Watch   # then Ctrl-C the server
//! ```
//!
//! It serves `grpc.health.v1.Health` (tonic-health) and `graceful.example.Ticker`, a unary
//! call and a server stream (`src/ticker.rs`). SIGTERM or Ctrl-C: every service's health is
//! NOT_SERVING at once, to `Check` and to open `Watch` streams, and everything is still
//! served during `--drain-delay`, so that a load balancer or a Kubernetes gRPC probe stops
//! routing here first; then the drain: GOAWAY on every connection, calls in flight complete,
//! and streams still open get graceful-hyper's stream grace (1 s), then end with trailers
//! `grpc-status: 14` (UNAVAILABLE: a client retries elsewhere). A second signal stops at
//! once; SIGHUP is a hot restart, as in `hello_tokio`. The flags and the progress line are plumbing the examples share (`src/contract.rs`).

use std::io;
use std::process::ExitCode;

use contract::ticker::{self, TickerServer};
use contract::{Flags, StartError};
use graceful_tokio::graceful_core::Shutdown;
use graceful_tokio::{Deploy, Http, Server, TokioTimer};
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

const NAME: &str = "grpc_tokio";

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

    // The settings: how long the drain may last, how long to serve on (NOT_SERVING) before
    // draining; and zero-downtime deploys (socket activation, sd_notify, hot restart on
    // SIGHUP).
    let server = Server::builder()
        .timeout(flags.timeout)
        .quiet_period(flags.quiet_period())
        .drain_delay(flags.drain_delay)
        .deploy(Deploy::new())
        .build()
        .map_err(StartError::input)?;
    // The listener: the socket inherited from systemd or from the process this one
    // replaces, else `--addr` bound (a socket the server bound itself closes without
    // resetting a connection that completes as it closes).
    let at = flags.one_tcp()?;
    let listener = server
        .listen(at)
        .map_err(|error| StartError::listen(at, error))?;
    let addr = listener.local_addr().map_err(StartError::system)?;

    // The services: health, and the example's own. Every service is SERVING, the server as
    // a whole ("") too, until the shutdown begins.
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TickerServer>().await;
    tokio::spawn(not_serving_on_shutdown(
        server.shutdown(),
        health,
        vec!["".to_owned(), ticker::SERVICE.to_owned()],
    ));
    let routes = Routes::new(health_service).add_service(TickerServer);

    // Serving: tonic's routes are a tower service; graceful-hyper serves them over HTTP/2
    // (and answers HTTP/1 clients too), with the stream grace for gRPC responses.
    tokio::spawn(contract::print_progress(
        server.shutdown(),
        TokioTimer,
        io::stderr(),
    ));
    let http = Http::new(server.runtime());
    let serving = server.serve(listener, http.service(routes));
    println!("listening on http://{addr}");

    let report = serving.await;
    eprintln!("{NAME}: {report}");
    Ok(())
}

/// Health that follows the shutdown: NOT_SERVING for each of `services` from the moment the
/// drain delay (or, without one, the drain) begins. `Check` answers it, and open `Watch`
/// streams are sent it.
async fn not_serving_on_shutdown(
    shutdown: Shutdown,
    health: HealthReporter,
    services: Vec<String>,
) {
    loop {
        // Taken before the look: a shutdown beginning in between is not missed.
        let changed = shutdown.changed();
        if shutdown.is_shutting_down() {
            break;
        }
        changed.await;
    }
    for service in services {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
}
