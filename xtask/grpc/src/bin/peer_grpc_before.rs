//! `peer_grpc_before`: tonic's routes (health and the example's ticker) served by graceful as
//! a tonic user could before the stream grace: `serve_http`'s `Http` with
//! `no_stream_grace()`, and a health service that is never told of the shutdown. The
//! examples' contract: `--addr`, `--timeout`, `listening on http://ADDR`, the report on
//! stderr.

use std::process::ExitCode;

use contract::ticker::TickerServer;
use contract::Flags;
use graceful_tokio::{Http, Server};
use tonic::service::Routes;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(flags) = Flags::from_env() else {
        return ExitCode::from(2);
    };
    let Ok(server) = Server::builder().timeout(flags.timeout).build() else {
        return ExitCode::FAILURE;
    };
    let Ok(at) = flags.one_tcp() else {
        return ExitCode::from(2);
    };
    let Ok(listener) = tokio::net::TcpListener::bind(at).await else {
        return ExitCode::FAILURE;
    };
    let Ok(addr) = listener.local_addr() else {
        return ExitCode::FAILURE;
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TickerServer>().await;
    let routes = Routes::new(health_service).add_service(TickerServer);
    let http = Http::new(server.runtime()).no_stream_grace();
    let serving = server.serve(listener, http.service(routes));
    println!("listening on http://{addr}");
    let report = serving.await;
    eprintln!("peer_grpc_before: {report}");
    ExitCode::SUCCESS
}
