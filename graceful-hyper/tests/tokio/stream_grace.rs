//! The stream grace: a gRPC response still streaming when the drain reaches its connection
//! ends after the grace with `grpc-status: 14`; a response that opted in (Server-Sent
//! Events) ends cleanly; every other response is left alone, to its end or the timeout.

use std::time::Duration;

use bytes::Bytes;
use graceful_core::Outcome;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::common::{settle, since, Server};

/// How a response body ended: its data, its trailers, and whether it ended cleanly.
#[derive(Debug)]
struct Ended {
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
    clean: bool,
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://test{path}"))
        .body(Empty::new())
        .unwrap()
}

/// Opens `path` on a new connection of `server` (HTTP/2, or HTTP/1 with `http1`) and
/// returns a task reading its body to the end, once the head and the first chunk are in.
async fn open(server: &mut Server, path: &str, http1: bool) -> JoinHandle<Ended> {
    let io = TokioIo::new(server.connect());
    let response = if http1 {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(get(path)).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(get(path)).await.unwrap()
    };
    assert_eq!(response.status(), 200);
    let mut body: Incoming = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    tokio::spawn(async move {
        let mut ended = Ended {
            data: Vec::new(),
            trailers: None,
            clean: false,
        };
        loop {
            match body.frame().await {
                None => {
                    ended.clean = true;
                    return ended;
                }
                Some(Err(_)) => return ended,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => ended.data.extend_from_slice(&data),
                    Err(frame) => ended.trailers = frame.into_trailers().ok(),
                },
            }
        }
    })
}

#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn a_grpc_stream_ends_with_unavailable_after_the_grace() {
    let mut server = Server::start();
    let stream = open(&mut server, "/forever/grpc", false).await;

    let start = Instant::now();
    server.shutdown.stop();
    let ended = stream.await.unwrap();
    let waited = since(start);
    assert!(ended.clean, "ended by its trailers, not a reset: {ended:?}");
    let trailers = ended.trailers.expect("trailers");
    assert_eq!(trailers["grpc-status"], "14");
    assert_eq!(
        trailers["grpc-message"],
        graceful_hyper::StreamEnd::GRPC_MESSAGE
    );
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1010),
        "the default grace, 1 s: {waited:?}"
    );
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.completed, report.streams_ended),
        (Outcome::Drained, 1, 1)
    );
    assert!(report
        .to_string()
        .contains("; 1 stream ended after its grace"));
}

#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn the_grace_is_set_on_http_and_starts_after_the_drain_delay() {
    let mut server = Server::with(
        graceful_core::Graceful::builder()
            .timeout(Duration::from_secs(10))
            .drain_delay(Duration::from_secs(2)),
    );
    server.http = server.http.clone().stream_grace(Duration::from_secs(3));
    let stream = open(&mut server, "/forever/grpc", false).await;

    let start = Instant::now();
    server.shutdown.stop();
    let ended = stream.await.unwrap();
    let waited = since(start);
    assert_eq!(ended.trailers.expect("trailers")["grpc-status"], "14");
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_millis(5010),
        "2 s of drain delay, then 3 s of grace: {waited:?}"
    );
    assert_eq!(server.report().await.streams_ended, 1);
}

#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn server_sent_events_that_opted_in_end_cleanly() {
    let mut server = Server::start();
    let stream = open(&mut server, "/forever/sse", true).await;

    let start = Instant::now();
    server.shutdown.stop();
    let ended = stream.await.unwrap();
    let waited = since(start);
    assert!(ended.clean && ended.trailers.is_none(), "{ended:?}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1010),
        "{waited:?}"
    );
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.streams_ended, report.killed),
        (Outcome::Drained, 1, 0)
    );
}

/// The grace applies only to what it is meant for: a plain long response keeps streaming
/// until the timeout, and so does a gRPC one without a grace.
#[tokio::test(start_paused = true)]
async fn other_streams_are_left_to_the_timeout() {
    for (path, no_grace) in [("/forever/plain", false), ("/forever/grpc", true)] {
        let mut server = Server::start();
        if no_grace {
            server.http = server.http.clone().no_stream_grace();
        }
        let http1 = !cfg!(feature = "http2");
        if http1 && path.ends_with("grpc") {
            continue; // gRPC is HTTP/2's
        }
        let stream = open(&mut server, path, http1).await;
        let start = Instant::now();
        server.shutdown.stop();
        tokio::time::sleep(Duration::from_millis(9990)).await;
        assert!(
            !stream.is_finished(),
            "{path}: still streaming near the timeout"
        );
        let ended = stream.await.unwrap();
        assert!(
            !ended.clean && ended.trailers.is_none(),
            "{path}: cut by the kill"
        );
        assert!(since(start) >= Duration::from_secs(10));
        let report = server.report().await;
        assert_eq!(
            (report.outcome, report.killed, report.streams_ended),
            (Outcome::TimedOut, 1, 0),
            "{path}"
        );
    }
    settle().await;
}

/// A handler that watches the drain ends its stream itself, before the grace: its last
/// message and its own end go out, and nothing is counted as ended by graceful-hyper.
#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn a_handler_watching_the_drain_ends_its_stream_first() {
    let mut server = Server::start();
    let stream = open(&mut server, "/forever/grpc-watch", false).await;

    let start = Instant::now();
    server.shutdown.stop();
    let ended = stream.await.unwrap();
    assert!(ended.clean && ended.trailers.is_none(), "{ended:?}");
    assert_eq!(ended.data, b"bye");
    assert!(
        since(start) < Duration::from_millis(10),
        "{:?}",
        since(start)
    );
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.completed, report.streams_ended),
        (Outcome::Drained, 1, 0)
    );
}
