//! `grpc_tokio` against tonic's own clients, as a tonic user would run it: health checks in a
//! loop, `Watch` streams held open, a server stream for ever; SIGTERM in the middle.
//!
//! What must hold, every round: no unary call breaks (an answer, or UNAVAILABLE for a call
//! the server did not take), each `Watch` sees NOT_SERVING then ends with OK or UNAVAILABLE,
//! and with `--timeout 10` the server exits within 1.5 s of SIGTERM, its report saying it
//! drained, killed nothing and ended its open streams after their grace. During a drain
//! delay, `Check` answers NOT_SERVING while other calls still succeed. And an HTTP/2 peer
//! that writes after the final GOAWAY is not reset.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use contract::ticker::{TickRequest, TickerClient};
use graceful_harness::Server;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const EXAMPLE: &str = "grpc_tokio";
const UNARY_CLIENTS: usize = 16;
const WATCHERS: usize = 2;
const ROUNDS: usize = 3;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a URI")
        .connect()
        .await
        .expect("connected")
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

/// How a unary call that did not get an answer failed, if that is a broken call: any code
/// but UNAVAILABLE, except hyper's own cancel of a request it never wrote (see
/// `never_sent`), which the server cannot see.
fn broken(status: &Status) -> Option<String> {
    (status.code() != Code::Unavailable && !never_sent(status))
        .then(|| format!("{:?}: {}", status.code(), status.message()))
}

/// hyper's client cancels a request it never wrote to the socket: one still queued for a
/// connection whose task ended on the GOAWAY (`connection closed`, from its dispatch queue's
/// drop), or handed to a connection that had just closed (`connection was not ready`); tonic
/// maps hyper's cancel to CANCELLED. The server never sees these calls. See the README's
/// gRPC section.
fn never_sent(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            let why = std::error::Error::source(hyper).map(ToString::to_string);
            return status.code() == Code::Cancelled
                && hyper.is_canceled()
                && matches!(
                    why.as_deref(),
                    Some("connection closed" | "connection was not ready")
                );
        }
        source = error.source();
    }
    false
}

/// What the unary clients saw: calls answered, refused with UNAVAILABLE, cancelled by hyper
/// before they were sent, and the broken ones.
#[derive(Debug, Default)]
struct Calls {
    answered: AtomicUsize,
    unavailable: AtomicUsize,
    never_sent: AtomicUsize,
    broken: std::sync::Mutex<Vec<String>>,
}

/// One round of the measured scenario; returns how long after SIGTERM the server exited.
fn round() -> Duration {
    let server = Server::start(EXAMPLE, &["--timeout", "10"]);
    let addr = server.addr;
    let runtime = runtime();
    let calls = Arc::new(Calls::default());
    let (stop, stopped) = watch::channel(false);

    let (unary, watchers) = runtime.block_on(async {
        // Health checks in a loop, each client on a connection of its own (a new one after
        // a GOAWAY, as tonic's channel reconnects), until the server refuses them.
        let unary: Vec<_> = (0..UNARY_CLIENTS)
            .map(|_| {
                let calls = calls.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    let mut client = HealthClient::new(channel(addr).await);
                    loop {
                        match client.check(check("")).await {
                            Ok(_) => calls.answered.fetch_add(1, Ordering::Relaxed),
                            Err(status) if never_sent(&status) => {
                                calls.never_sent.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(status) => {
                                if let Some(broken) = broken(&status) {
                                    calls.broken.lock().unwrap().push(broken);
                                }
                                calls.unavailable.fetch_add(1, Ordering::Relaxed);
                                if *stopped.borrow() {
                                    return;
                                }
                                0
                            }
                        };
                    }
                })
            })
            .collect();
        // Watch streams, each seeing SERVING first.
        let mut watchers = Vec::new();
        for _ in 0..WATCHERS {
            let mut client = HealthClient::new(channel(addr).await);
            let mut stream = client.watch(check("")).await.expect("a Watch").into_inner();
            let first = stream
                .message()
                .await
                .expect("a status")
                .expect("a message");
            assert_eq!(first.status(), ServingStatus::Serving);
            watchers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                let end = loop {
                    match stream.message().await {
                        Ok(Some(message)) => seen.push(message.status()),
                        Ok(None) => break Code::Ok,
                        Err(status) => break status.code(),
                    }
                };
                (seen, end)
            }));
        }
        (unary, watchers)
    });

    // Every unary client has had answers: then SIGTERM.
    graceful_harness::wait::wait_for("answers", Duration::from_secs(10), || {
        (calls.answered.load(Ordering::Relaxed) >= 10 * UNARY_CLIENTS).then_some(())
    });
    let _ = stop.send(true);
    let signalled = server.terminate();
    let exited = server.wait_success(Duration::from_secs(10));

    runtime.block_on(async {
        for client in unary {
            tokio::time::timeout(Duration::from_secs(10), client)
                .await
                .expect("the unary clients stop once refused")
                .expect("a client task");
        }
        for watcher in watchers {
            let (seen, end) = watcher.await.expect("a watcher task");
            assert_eq!(seen, [ServingStatus::NotServing], "each Watch is told");
            assert!(
                matches!(end, Code::Ok | Code::Unavailable),
                "a Watch ends with OK or UNAVAILABLE, not {end:?}"
            );
        }
    });
    eprintln!(
        "round: exit {:?} after SIGTERM; {calls:?}",
        exited - signalled
    );
    let broken = calls.broken.lock().unwrap().clone();
    assert!(broken.is_empty(), "broken unary calls: {broken:?}");

    let report = server.drained();
    assert_eq!(report.stalled, 0);
    let line = server.wait_stderr(&format!("{EXAMPLE}: drained"), Duration::from_secs(5));
    assert!(
        line.contains(&format!("{WATCHERS} streams ended after their grace")),
        "the Watch streams, ended after their grace: {line}"
    );
    exited - signalled
}

#[test]
fn checks_watches_and_sigterm() {
    for _ in 0..ROUNDS {
        let exit = round();
        assert!(
            exit < Duration::from_millis(1_500),
            "exits within 1.5 s of SIGTERM with --timeout 10: {exit:?}"
        );
    }
}

/// During the drain delay: `Check` says NOT_SERVING, for the server and for each service,
/// while `Tick` and a whole `Ticks` stream still succeed, also on a new connection; a `Watch`
/// opened before is told.
#[test]
fn the_drain_delay_serves_with_not_serving_health() {
    let server = Server::start(EXAMPLE, &["--timeout", "10", "--drain-delay", "3"]);
    let addr = server.addr;
    let runtime = runtime();
    let signalled = runtime.block_on(async {
        let shared = channel(addr).await;
        let mut health = HealthClient::new(shared.clone());
        let status = |response: tonic::Response<tonic_health::pb::HealthCheckResponse>| {
            response.into_inner().status()
        };
        for service in ["", contract::ticker::SERVICE] {
            let answer = health.check(check(service)).await.expect("an answer");
            assert_eq!(status(answer), ServingStatus::Serving, "{service:?}");
        }
        let mut watch = health.watch(check("")).await.expect("a Watch").into_inner();
        let first = watch.message().await.expect("a status").expect("a message");
        assert_eq!(first.status(), ServingStatus::Serving);

        let signalled = server.terminate();
        let told = watch.message().await.expect("a status").expect("a message");
        assert_eq!(
            told.status(),
            ServingStatus::NotServing,
            "the Watch is told"
        );
        for service in ["", contract::ticker::SERVICE] {
            let answer = health.check(check(service)).await.expect("an answer");
            assert_eq!(status(answer), ServingStatus::NotServing, "{service:?}");
        }
        // Other calls succeed, on this connection and on a new one.
        let mut ticker = TickerClient::new(shared);
        assert_eq!(ticker.tick().await.expect("a tick").n, 0);
        let mut fresh = TickerClient::new(channel(addr).await);
        let request = TickRequest {
            interval_ms: 10,
            count: 3,
        };
        let mut ticks = fresh.ticks(request).await.expect("a stream");
        let mut numbers = Vec::new();
        while let Some(tick) = ticks.message().await.expect("a tick") {
            numbers.push(tick.n);
        }
        assert_eq!(numbers, [0, 1, 2]);
        assert!(
            signalled.elapsed() < Duration::from_secs(3),
            "all of it within the drain delay"
        );
        signalled
    });
    let exited = server.wait_success(Duration::from_secs(15));
    assert!(
        exited - signalled >= Duration::from_secs(3),
        "the delay was served"
    );
    server.drained();
}

/// A peer that still writes after the final GOAWAY (as a balancer opening a stream while the
/// GOAWAY crosses it does) gets a clean end of the connection, not a reset: the server reads
/// and drops what comes after it until the peer closes (for the header grace at most), since
/// a close with bytes unread would reset the connection, and the reset would make the peer's
/// kernel drop the end of the responses it had not read yet.
#[test]
fn a_peer_writing_after_the_final_goaway_is_not_reset() {
    use graceful_harness::http2::{kind, H2Conn, Window};

    /// A PING frame (`ack`: its acknowledgement) with `payload`.
    fn ping(ack: bool, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0, 0, 8, kind::PING, u8::from(ack), 0, 0, 0, 0];
        frame.extend_from_slice(payload);
        frame
    }

    for _ in 0..ROUNDS {
        let server = Server::start(EXAMPLE, &["--timeout", "10"]);
        let mut peer = H2Conn::connect(server.addr, Duration::from_secs(10)).expect("connected");
        peer.preface(Window::Default).expect("a preface");
        peer.get(1, "/").expect("a request");
        peer.read_answer(1).expect("an answer");
        server.terminate();
        // The first GOAWAY comes with a PING; its ACK brings the final GOAWAY.
        let mut last = None;
        while last.is_none() {
            let frame = peer
                .read_frame()
                .expect("a frame")
                .expect("not the end yet");
            if frame.kind == kind::PING && frame.flags & 1 == 0 {
                peer.send(&ping(true, &frame.payload))
                    .expect("the PING's ACK");
            }
            last = frame.last_stream_id().filter(|&id| id != 0x7fff_ffff);
        }
        assert_eq!(last, Some(1), "the final GOAWAY names the one stream");
        // Bytes the server will not act on, written as the connection ends.
        peer.send(&ping(false, b"late....")).expect("a late PING");
        while peer.read_frame().expect("frames, then the end").is_some() {}
        assert!(!peer.received.reset, "a clean end, not a reset");
        let error = peer.socket_error().expect("the socket's error");
        assert!(error.is_none(), "no reset after the end either: {error:?}");
        server.wait_success(Duration::from_secs(5));
        server.drained();
    }
}
