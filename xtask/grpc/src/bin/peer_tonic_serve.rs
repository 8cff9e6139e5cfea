//! `peer_tonic_serve`: the same services (health and the example's ticker) on tonic's own
//! server, `serve_with_incoming_shutdown`, stopped by SIGTERM or SIGINT. It has no timeout:
//! it exits once every connection has ended. `--addr`, `listening on http://ADDR`, and
//! `peer_tonic_serve: stopped` on stderr.

use std::process::ExitCode;

use contract::ticker::TickerServer;
use contract::Flags;
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::wrappers::TcpListenerStream;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(flags) = Flags::from_env() else {
        return ExitCode::from(2);
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
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
    let serving = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(TickerServer)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
    println!("listening on http://{addr}");
    let result = serving.await;
    eprintln!("peer_tonic_serve: stopped ({result:?})");
    ExitCode::SUCCESS
}
