//! `Watch::current`: a handler finds its own connection's `Watch` in the service's call, its
//! response future and its response body, HTTP/1 and HTTP/2 (each test where its protocol is
//! compiled in); nowhere else, and in the request's extensions only when asked.

use graceful_core::Outcome;
use graceful_hyper::Watch;

#[cfg(feature = "http1")]
use crate::common::Client;
use crate::common::{show, Server};

/// What `/watch` answers for a handler that found connection `id` where it should.
fn found(id: graceful_core::ConnId, ext: &str) -> String {
    let id = show(Some(id));
    format!("call={id} poll={id} spawned=- ext={ext}")
}

#[cfg(feature = "http1")]
async fn text(client: &mut Client<tokio::io::DuplexStream>, path: &str) -> String {
    client.get(path).await;
    let reply = client.reply().await.expect("a response");
    assert_eq!(reply.status, 200, "{path}");
    String::from_utf8(reply.body).expect("utf-8")
}

#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn an_http1_handler_finds_its_connection() {
    let mut server = Server::start();
    assert!(Watch::current().is_none(), "outside a request");
    let mut first = Client::new(server.connect());
    let mut second = Client::new(server.connect());
    let (a, b) = (server.ids[0], server.ids[1]);
    assert_ne!(a, b);
    for _ in 0..2 {
        // Keep-alive: each request of each connection finds its own.
        assert_eq!(text(&mut first, "/watch").await, found(a, "-"));
        assert_eq!(text(&mut second, "/watch").await, found(b, "-"));
    }
    // The tasks serving them ran on this thread: nothing is left current.
    assert!(Watch::current().is_none(), "after the requests");
    server.shutdown.stop();
    assert_eq!(server.report().await.outcome, Outcome::Drained);
}

#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn an_http1_body_finds_its_connection_in_its_poll() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    let id = show(Some(server.ids[0]));
    let body = text(&mut client, "/watch/stream").await;
    assert_eq!(body, format!("body={id};body={id};"));
    assert!(Watch::current().is_none());
    server.shutdown.stop();
    assert_eq!(server.report().await.outcome, Outcome::Drained);
}

#[cfg(feature = "http2")]
fn get(path: &str) -> http::Request<http_body_util::Empty<bytes::Bytes>> {
    http::Request::get(format!("http://test{path}"))
        .body(http_body_util::Empty::new())
        .unwrap()
}

#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn an_http2_handler_and_body_find_their_connection() {
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mut server = Server::start();
    let io = TokioIo::new(server.connect());
    let id = server.ids[0];
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    // Streams run on tasks of their own, concurrently.
    let streams: Vec<_> = ["/watch", "/watch/stream", "/watch"]
        .into_iter()
        .map(|path| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let response = sender.send_request(get(path)).await?;
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>(String::from_utf8(body.to_vec()).expect("utf-8"))
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for stream in streams {
        bodies.push(stream.await.unwrap().unwrap());
    }
    let shown = show(Some(id));
    assert_eq!(
        bodies,
        [
            found(id, "-"),
            format!("body={shown};body={shown};"),
            found(id, "-")
        ]
    );
    assert!(Watch::current().is_none());
    drop(sender);
    server.shutdown.stop();
    conn.await.unwrap().unwrap();
    assert_eq!(server.report().await.outcome, Outcome::Drained);
}

#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn watch_in_extensions_puts_it_in_every_request() {
    let mut server = Server::start();
    let mut plain = Client::new(server.connect());
    let http = server.http.clone().watch_in_extensions(true);
    let mut with = Client::new(server.connect_with(&http));
    let (a, b) = (server.ids[0], server.ids[1]);
    for _ in 0..2 {
        assert_eq!(text(&mut plain, "/watch").await, found(a, "-"));
        assert_eq!(text(&mut with, "/watch").await, found(b, &show(Some(b))));
    }
    server.shutdown.stop();
    assert_eq!(server.report().await.outcome, Outcome::Drained);
}

#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn a_panicking_handler_leaves_nothing_current() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/watch/panic").await;
    // hyper's connection task dies with the panic: the connection ends without a response.
    assert!(client.reply().await.is_none());
    crate::common::settle().await;
    assert!(
        Watch::current().is_none(),
        "the panic left a connection current"
    );
    let counts = server.shutdown.counts();
    assert_eq!((counts.active, counts.total()), (0, 0), "{counts:?}");
    // Other connections are served as before.
    let mut other = Client::new(server.connect());
    assert_eq!(text(&mut other, "/watch").await, found(server.ids[1], "-"));
    server.shutdown.stop();
    assert_eq!(server.report().await.outcome, Outcome::Drained);
}
