//! tonic's services on smol, through graceful-smol: tonic's server side (its `Routes`, the
//! codecs, tonic-health, whose state is tokio's `sync` types, which need no tokio runtime)
//! runs on any executor; graceful-hyper serves it there as on tokio. The clients are tonic's
//! own, on a tokio runtime of their own (tonic's channel needs tokio).
//!
//! What holds on smol as on tokio: `Check` and `Tick` are answered; on a stop, health turns
//! NOT_SERVING (the recipe of `grpc_tokio`, on smol's executor), an open `Watch` is told and
//! then ended with UNAVAILABLE after the stream grace, and the report counts it.

use std::net::SocketAddr;
use std::time::Duration;

use contract::ticker::{TickerClient, TickerServer};
use graceful_core::Outcome;
use graceful_smol::{Http, Server};
use tonic::service::Routes;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus as Status;

#[test]
fn tonic_services_serve_and_drain_on_smol() {
    let server = Server::builder()
        .signals(false)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a server");
    let shutdown = server.shutdown();
    let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).expect("bound");
    let addr: SocketAddr = listener.local_addr().expect("an address");
    let (health, health_service) = tonic_health::server::health_reporter();
    let routes = Routes::new(health_service).add_service(TickerServer);
    let http = Http::new(server.runtime());
    let watched = shutdown.clone();
    let serving = std::thread::spawn(move || {
        smol::block_on(async move {
            // The health recipe, on smol's executor.
            smol::spawn(async move {
                loop {
                    let changed = watched.changed();
                    if watched.is_shutting_down() {
                        break;
                    }
                    changed.await;
                }
                health.set_service_status("", Status::NotServing).await;
            })
            .detach();
            server.serve(listener, http.service(routes)).await
        })
    });

    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    clients.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("a URI")
            .connect()
            .await
            .expect("connected");
        let mut health = HealthClient::new(channel.clone());
        let check = || HealthCheckRequest {
            service: String::new(),
        };
        let answer = health.check(check()).await.expect("an answer");
        assert_eq!(answer.into_inner().status(), ServingStatus::Serving);
        let mut ticker = TickerClient::new(channel);
        assert_eq!(ticker.tick().await.expect("a tick").n, 0);

        let mut watch = health.watch(check()).await.expect("a Watch").into_inner();
        let first = watch.message().await.expect("a status").expect("a message");
        assert_eq!(first.status(), ServingStatus::Serving);
        shutdown.stop();
        let told = watch.message().await.expect("a status").expect("a message");
        assert_eq!(told.status(), ServingStatus::NotServing);
        let end = watch
            .message()
            .await
            .expect_err("ended by the stream grace");
        assert_eq!(end.code(), Code::Unavailable, "{end:?}");
        assert_eq!(end.message(), graceful_hyper::StreamEnd::GRPC_MESSAGE);
    });
    let report = serving.join().expect("the server thread");
    assert_eq!(
        (report.outcome, report.killed, report.streams_ended),
        (Outcome::Drained, 0, 1)
    );
}
