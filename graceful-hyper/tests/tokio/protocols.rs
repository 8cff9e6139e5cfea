//! What a connection may speak is what was compiled in: with both features, HTTP/1 and
//! HTTP/2 with prior knowledge, told apart by the preface; with `http1` alone, HTTP/1 only
//! (an HTTP/2 preface is not sniffed, hyper's HTTP/1 parser rejects it); with `http2` alone,
//! HTTP/2 with prior knowledge only. The clients speak both protocols in every build.

use bytes::Bytes;
use graceful_core::Outcome;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::common::{settle, Client, Server};

const HTTP1: bool = cfg!(feature = "http1");
const HTTP2: bool = cfg!(feature = "http2");

#[tokio::test(start_paused = true)]
async fn http1_is_served_if_compiled_in() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/").await;
    let reply = client.reply().await;
    assert_eq!(
        reply.as_ref().map(|reply| (reply.status, &reply.body[..])),
        HTTP1.then_some((200, &b"hello"[..])),
        "{reply:?}"
    );
    settle().await;
    // Refused, the connection is closed at once; served, it waits idle for the drain.
    assert_eq!(server.shutdown.counts().total(), usize::from(HTTP1));

    server.shutdown.stop();
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.idle_closed),
        (Outcome::Drained, usize::from(HTTP1))
    );
}

#[tokio::test(start_paused = true)]
async fn http2_prior_knowledge_is_served_if_compiled_in() {
    let mut server = Server::start();
    let io = TokioIo::new(server.connect());
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    let request = Request::get("http://test/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let served = match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            Some((status, body))
        }
        Err(_) => None,
    };
    assert_eq!(served, HTTP2.then(|| (200, Bytes::from("hello"))));
    settle().await;
    assert_eq!(server.shutdown.counts().total(), usize::from(HTTP2));

    server.shutdown.stop();
    // GOAWAY, or the connection already closed: the client's connection ends either way.
    let _ = conn.await.unwrap();
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.idle_closed),
        (Outcome::Drained, usize::from(HTTP2))
    );
}

/// The default is every protocol compiled in: both (sniffed), or the one.
#[test]
fn the_default_is_what_was_compiled_in() {
    let http = graceful_hyper::Http::new(&graceful_tokio::Tokio);
    let expected = match (HTTP1, HTTP2) {
        (true, true) => "Auto",
        (true, false) => "Http1",
        _ => "Http2",
    };
    let debug = format!("{http:?}");
    assert!(debug.contains(&format!("protocols: {expected}")), "{debug}");
}
