//! The header read timeout, kept with one timer per connection: silent, slow and idle
//! keep-alive clients are cut on time, busy ones never, on tokio's paused clock.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::{settle, since, Client, Server};

/// A server whose connections may stay quiet for 2 s.
fn two_seconds(server: &Server) -> graceful_hyper::Http<graceful_tokio::Tokio> {
    server
        .http
        .clone()
        .header_read_timeout(Duration::from_secs(2))
}

/// Whether the client's stream ends within a minute (of paused time): a connection left open
/// fails the test instead of hanging it.
async fn closed<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    client: &mut Client<S>,
) -> bool {
    tokio::time::timeout(Duration::from_secs(60), client.closed())
        .await
        .unwrap_or(false)
}

fn within(waited: Duration, expected: Duration) -> bool {
    waited >= expected && waited < expected + Duration::from_millis(10)
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_cut_one_timeout_after_its_last_response() {
    let mut server = Server::start();
    let http = two_seconds(&server).http1_only();
    let mut client = Client::new(server.connect_with(&http));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client.get("/").await;
    assert!(client.reply().await.is_some());
    let answered = Instant::now();
    assert!(closed(&mut client).await, "cut");
    let waited = since(answered);
    assert!(within(waited, Duration::from_secs(2)), "{waited:?}");
    server.shutdown.stop();
    assert_eq!(server.report().await.total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_half_sent_head_is_cut_at_the_timeout() {
    let mut server = Server::start();
    let http = two_seconds(&server).http1_only();
    let mut client = Client::new(server.connect_with(&http));
    let start = Instant::now();
    client.send(b"GET / HTTP/1.1\r\nhost: exa").await;
    assert!(closed(&mut client).await, "cut");
    let waited = since(start);
    assert!(within(waited, Duration::from_secs(2)), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_cut_at_the_timeout_in_automatic_mode_too() {
    let mut server = Server::start();
    let http = two_seconds(&server);
    let mut client = Client::new(server.connect_with(&http));
    let start = Instant::now();
    assert!(closed(&mut client).await, "cut");
    let waited = since(start);
    assert!(within(waited, Duration::from_secs(2)), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_busy_connection_outlives_many_timeouts() {
    let mut server = Server::start();
    let http = two_seconds(&server);
    let mut client = Client::new(server.connect_with(&http));
    // 10 s of requests, each after 1.5 s of quiet: never quiet for 2 s.
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        client.get("/").await;
        assert!(client.reply().await.is_some(), "still served");
    }
    settle().await;
    assert_eq!(server.shutdown.counts().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn a_long_response_is_not_cut_and_its_quiet_counts_from_its_end() {
    let mut server = Server::start();
    let http = two_seconds(&server).http1_only();
    let mut client = Client::new(server.connect_with(&http));
    client.get("/sleep/5000").await;
    assert!(client.reply().await.is_some(), "active for 5 s: not cut");
    let answered = Instant::now();
    assert!(closed(&mut client).await, "cut");
    let waited = since(answered);
    assert!(within(waited, Duration::from_secs(2)), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn no_header_read_timeout_lets_a_silent_client_stay() {
    let mut server = Server::start();
    let http = server.http.clone().no_header_read_timeout();
    let _client = Client::new(server.connect_with(&http));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(server.shutdown.counts().new, 1, "still open after an hour");
}
