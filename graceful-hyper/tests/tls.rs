//! A connection whose `Conn` carries a handshake (as the serve loop attaches a TLS
//! listener's): drained while the handshake is under way (the flag up), it gets the header
//! grace; one whose client sent nothing (the flag down) is closed at once. In memory, on
//! tokio's paused clock; the IO is a pipe that stays silent, as a TLS stream does while it
//! handshakes, and the test raises the flag as the stream would when the client's first
//! bytes arrive.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use graceful_core::serve::Runtime;
use graceful_core::{Graceful, HandshakeFlag};
use graceful_hyper::{Http, DEFAULT_HEADER_GRACE};
use graceful_tokio::Tokio;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;

/// Serves one silent connection with the flag up or down (`before`) for a second, then as
/// `at_stop` when the drain begins; returns how long after the stop the connection closed.
async fn closed_after_stop(
    http: Http<graceful_tokio::Tokio>,
    before: bool,
    at_stop: bool,
) -> Duration {
    let graceful = Graceful::builder()
        .timeout(Duration::from_secs(10))
        .build(Tokio.timer())
        .unwrap();
    let shutdown = graceful.shutdown();
    let acceptor = graceful.acceptor();
    let run = tokio::spawn(graceful.run());
    let (mut client, server) = tokio::io::duplex(4096);
    let mut conn = acceptor.try_reserve().unwrap().register();
    let flag = HandshakeFlag::new();
    conn.set_handshake(flag.handshake());
    if before {
        flag.raise();
    }
    let service = hyper::service::service_fn(|_req| async {
        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
            b"hello",
        ))))
    });
    let served = tokio::spawn(http.serve_connection(TokioIo::new(server), conn, service));
    tokio::time::sleep(Duration::from_secs(1)).await;
    match at_stop {
        true => flag.raise(),
        false => flag.lower(),
    }
    let stopped = tokio::time::Instant::now();
    shutdown.stop();
    let mut buf = [0u8; 16];
    assert_eq!(
        client.read(&mut buf).await.unwrap(),
        0,
        "closed, nothing sent"
    );
    let closed = stopped.elapsed();
    served.await.unwrap().unwrap();
    let report = run.await.unwrap();
    assert_eq!((report.total(), report.killed), (1, 0));
    closed
}

#[tokio::test(start_paused = true)]
async fn a_drain_mid_handshake_gives_the_header_grace() {
    let auto = Http::new(&graceful_tokio::Tokio);
    let http1 = auto.clone().http1_only();
    for (name, http) in [("auto", auto), ("http1_only", http1)] {
        let silent = closed_after_stop(http.clone(), false, false).await;
        assert_eq!(
            silent,
            Duration::ZERO,
            "{name}: nothing sent: closed at once"
        );
        let handshaking = closed_after_stop(http, true, true).await;
        assert_eq!(
            handshaking, DEFAULT_HEADER_GRACE,
            "{name}: mid handshake: the grace"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_handshake_that_ended_before_the_drain_gets_no_grace() {
    // The flag was up while serving, and down (the handshake over) when the drain began.
    let http = Http::new(&graceful_tokio::Tokio);
    assert_eq!(closed_after_stop(http, true, false).await, Duration::ZERO);
}
