//! HTTP/2 (prior knowledge, told apart from HTTP/1 by its preface): streams nest in the
//! connection's state; the drain sends GOAWAY and lets open streams complete.

use std::time::Duration;

use bytes::Bytes;
use graceful_core::Outcome;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use crate::common::{settle, Server};

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://test{path}"))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn open_streams_complete_after_goaway() {
    let mut server = Server::start();
    let io = TokioIo::new(server.connect());
    let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);

    let streams: Vec<_> = (0..2)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let response = sender.send_request(get("/sleep/500")).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            })
        })
        .collect();
    settle().await;
    let counts = server.shutdown.counts();
    assert_eq!(
        (counts.active, counts.total()),
        (1, 1),
        "two streams, one connection"
    );

    let start = Instant::now();
    server.shutdown.stop();
    settle().await;
    let mut late = sender.clone();
    assert!(
        late.send_request(get("/")).await.is_err(),
        "after GOAWAY no new stream is accepted"
    );
    for stream in streams {
        let (status, body) = stream.await.unwrap().unwrap();
        assert_eq!((status.as_u16(), body.as_ref()), (200, &b"slept"[..]));
    }
    conn.await.unwrap().unwrap();
    let report = server.report().await;
    assert_eq!((report.completed, report.outcome), (1, Outcome::Drained));
    let waited = Instant::now() - start;
    assert!(waited < Duration::from_millis(510), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_closes_on_the_drain() {
    let mut server = Server::start();
    let io = TokioIo::new(server.connect());
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    let response = sender.send_request(get("/")).await.unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "hello"
    );
    settle().await;
    assert_eq!(server.shutdown.counts().idle, 1, "the stream ended");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = Instant::now();
    server.shutdown.stop();
    conn.await.unwrap().unwrap();
    assert!(Instant::now() - start < Duration::from_millis(5));
    assert_eq!(server.report().await.idle_closed, 1);
}

#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn protocols_can_be_pinned() {
    let mut server = Server::start();
    let http1_only = server.http.clone().http1_only();
    let http2_only = server.http.clone().http2_only();

    // HTTP/2 prior knowledge on an HTTP/1-only server: no HTTP/2 handshake.
    let io = TokioIo::new(server.connect_with(&http1_only));
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    assert!(sender.send_request(get("/")).await.is_err());
    // HTTP/1 on an HTTP/2-only server: no answer.
    let mut client = crate::common::Client::new(server.connect_with(&http2_only));
    client.get("/").await;
    assert!(client.reply().await.is_none());
    // Both on the default, automatic one.
    let io = TokioIo::new(server.connect_with(&server.http.clone().http2_only().auto()));
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(sender.send_request(get("/")).await.unwrap().status(), 200);

    server.shutdown.stop();
    assert_eq!(server.report().await.outcome, Outcome::Drained);
}
