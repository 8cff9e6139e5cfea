//! HTTP/1: exact states, `Connection: close` while draining, the quiet period, the header
//! grace, the keep-alive linger, pipelining, the kill.

use std::time::Duration;

use bytes::Bytes;
use graceful_core::{Graceful, Outcome};
use tokio::time::Instant;

use crate::common::{settle, since, Client, Server};

#[tokio::test(start_paused = true)]
async fn states_follow_requests_and_streaming_bodies() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    settle().await;
    assert_eq!(server.shutdown.counts().new, 1, "nothing sent yet");

    client.get("/stream").await;
    settle().await;
    assert_eq!(server.shutdown.counts().active, 1, "head read");
    let chunks = server.chunks.take().unwrap();
    chunks.send(Bytes::from_static(b"part")).await.unwrap();
    settle().await;
    assert_eq!(server.shutdown.counts().active, 1, "body still streaming");
    drop(chunks);
    let reply = client.reply().await.unwrap();
    assert_eq!(reply.body, b"part");
    settle().await;
    assert_eq!(server.shutdown.counts().idle, 1, "body ended");

    client.get("/").await;
    assert_eq!(client.reply().await.unwrap().body, b"hello");
    settle().await;
    assert_eq!(server.shutdown.counts().idle, 1);

    tokio::time::sleep(Duration::from_secs(1)).await;
    server.shutdown.stop();
    assert!(client.closed().await);
    let report = server.report().await;
    assert_eq!((report.idle_closed, report.total()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failing_service_releases_its_request() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/fail").await;
    assert!(
        client.reply().await.is_none(),
        "hyper closes on a service error"
    );
    settle().await;
    assert_eq!(server.shutdown.counts().total(), 0);
    let served = server.served.pop().unwrap().await.unwrap();
    assert!(served.is_err(), "the service error is reported");
    server.shutdown.stop();
    assert_eq!(server.report().await.total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_request_in_the_quiet_window_is_answered_with_close() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/").await;
    let reply = client.reply().await.unwrap();
    assert!(!reply.closes(), "not draining yet: keep-alive");

    server.shutdown.stop();
    settle().await;
    let start = Instant::now();
    client.get("/").await;
    let reply = client.reply().await.unwrap();
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"hello"[..]));
    assert!(reply.closes(), "draining: the response says close");
    assert!(client.closed().await, "and the connection closes after it");
    assert!(
        since(start) < Duration::from_millis(10),
        "without waiting for the quiet period"
    );

    let report = server.report().await;
    assert_eq!((report.completed, report.total()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn long_quiet_connections_close_at_once() {
    let mut server = Server::start();
    let mut fresh = Client::new(server.connect());
    let mut used = Client::new(server.connect());
    used.get("/").await;
    used.reply().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = Instant::now();
    server.shutdown.stop();
    assert!(fresh.closed().await);
    assert!(used.closed().await);
    assert!(
        since(start) < Duration::from_millis(5),
        "{:?}",
        since(start)
    );
    let report = server.report().await;
    assert_eq!((report.idle_closed, report.outcome), (2, Outcome::Drained));
}

#[tokio::test(start_paused = true)]
async fn a_recently_quiet_connection_closes_at_the_end_of_its_quiet_period() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/").await;
    client.reply().await.unwrap();
    let quiet_since = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.shutdown.stop();
    assert!(client.closed().await);
    let quiet = since(quiet_since);
    assert!(
        quiet >= Duration::from_millis(250) && quiet < Duration::from_millis(260),
        "{quiet:?}"
    );
    assert_eq!(server.report().await.idle_closed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_partial_head_gets_the_header_grace_then_is_closed() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.send(b"GET / HTTP/1.1\r\nHo").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = Instant::now();
    server.shutdown.stop();
    assert!(client.reply().await.is_none(), "closed without an answer");
    let waited = since(start);
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1010),
        "{waited:?}"
    );
    let report = server.report().await;
    assert_eq!((report.idle_closed, report.outcome), (1, Outcome::Drained));
}

#[tokio::test(start_paused = true)]
async fn a_head_completed_within_the_grace_is_served_with_close() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.send(b"GET / HTTP/1.1\r\nHo").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    server.shutdown.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.send(b"st: test\r\n\r\n").await;
    let reply = client.reply().await.unwrap();
    assert_eq!((reply.status, reply.closes()), (200, true));
    assert!(client.closed().await);
    assert_eq!(server.report().await.completed, 1);
}

#[tokio::test(start_paused = true)]
async fn an_active_request_completes_with_close() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/sleep/500").await;
    settle().await;

    let start = Instant::now();
    server.shutdown.stop();
    let reply = client.reply().await.unwrap();
    assert_eq!(
        (reply.body.as_slice(), reply.closes()),
        (&b"slept"[..], true)
    );
    assert!(client.closed().await);
    let report = server.report().await;
    assert_eq!((report.completed, report.outcome), (1, Outcome::Drained));
    assert!(
        report.elapsed < Duration::from_millis(510),
        "{:?}",
        since(start)
    );
}

/// The pitfall: the drain reaches a connection whose response head already went out
/// promising keep-alive. The client reads that response and at once sends its next
/// request; closing right after the response would meet that request with a closed socket.
#[tokio::test(start_paused = true)]
async fn a_keep_alive_response_in_flight_lets_the_next_request_in() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/stream").await;
    let chunks = server.chunks.take().unwrap();
    chunks
        .send(Bytes::from_static(b"head is out"))
        .await
        .unwrap();
    settle().await;

    server.shutdown.stop();
    settle().await;
    drop(chunks);
    let reply = client.reply().await.unwrap();
    assert!(!reply.closes(), "its head went out before the drain");
    client.get("/").await;
    let reply = client.reply().await.expect("the next request is answered");
    assert_eq!(
        (reply.body.as_slice(), reply.closes()),
        (&b"hello"[..], true)
    );
    assert!(client.closed().await);
    assert_eq!(server.report().await.completed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_linger_ends_after_the_quiet_period() {
    let lingered = linger(Server::start()).await;
    assert!(
        lingered >= Duration::from_millis(249) && lingered < Duration::from_millis(260),
        "{lingered:?}"
    );
}

/// The linger is the server's quiet period, read from the connection: not a default of
/// graceful-hyper's own.
#[tokio::test(start_paused = true)]
async fn the_keep_alive_linger_follows_the_servers_quiet_period() {
    let builder = Graceful::builder()
        .timeout(Duration::from_secs(10))
        .quiet_period(Duration::from_millis(600));
    let lingered = linger(Server::with(builder)).await;
    assert!(
        lingered >= Duration::from_millis(599) && lingered < Duration::from_millis(610),
        "{lingered:?}"
    );
}

/// How long a connection stays open after a response whose head promised keep-alive before
/// the drain and whose body ended after it, when the client sends nothing more.
async fn linger(mut server: Server) -> Duration {
    let mut client = Client::new(server.connect());
    client.get("/stream").await;
    let chunks = server.chunks.take().unwrap();
    chunks
        .send(Bytes::from_static(b"head is out"))
        .await
        .unwrap();
    settle().await;

    server.shutdown.stop();
    settle().await;
    drop(chunks);
    client.reply().await.unwrap();
    let ended = Instant::now();
    assert!(
        client.closed().await,
        "a client that sends nothing more is closed"
    );
    let lingered = since(ended);
    assert_eq!(server.report().await.completed, 1);
    lingered
}

/// What the crate docs say of pipelining: the request being answered completes with
/// `Connection: close`; the requests pipelined after it are not answered.
#[tokio::test(start_paused = true)]
async fn pipelined_requests_after_the_one_in_flight_are_not_answered() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client
        .send(
            b"GET /sleep/300 HTTP/1.1\r\nhost: t\r\n\r\n\
              GET / HTTP/1.1\r\nhost: t\r\n\r\n\
              GET / HTTP/1.1\r\nhost: t\r\n\r\n",
        )
        .await;
    settle().await;
    server.shutdown.stop();
    let reply = client.reply().await.unwrap();
    assert_eq!(
        (reply.body.as_slice(), reply.closes()),
        (&b"slept"[..], true)
    );
    assert!(
        client.reply().await.is_none(),
        "the pipelined requests get no answer"
    );
    assert_eq!(server.report().await.completed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_still_running_at_the_timeout_is_killed() {
    let mut server = Server::with(Graceful::builder().timeout(Duration::from_secs(1)));
    let mut client = Client::new(server.connect());
    client.get("/sleep/5000").await;
    settle().await;

    server.shutdown.stop();
    assert!(client.reply().await.is_none(), "dropped without an answer");
    let report = server.report().await;
    assert_eq!((report.killed, report.outcome), (1, Outcome::TimedOut));
    assert_eq!(report.elapsed, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_meets_the_default_header_read_timeout() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    let start = Instant::now();
    assert!(client.closed().await);
    let waited = since(start);
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_millis(30_010),
        "{waited:?}"
    );
    server.shutdown.stop();
    assert_eq!(server.report().await.total(), 0);
}

/// Without the sniffing of the automatic mode, a connection that never sent a byte is
/// closed by hyper's own `graceful_shutdown` (which would not close one that sent part of a
/// head: see the header grace tests).
#[tokio::test(start_paused = true)]
async fn an_http1_only_server_closes_silent_connections_at_once() {
    let mut server = Server::start();
    let http1_only = server.http.clone().http1_only();
    let mut client = Client::new(server.connect_with(&http1_only));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = Instant::now();
    server.shutdown.stop();
    assert!(client.closed().await);
    assert!(
        since(start) < Duration::from_millis(5),
        "{:?}",
        since(start)
    );
    assert_eq!(server.report().await.idle_closed, 1);
}
