//! What holds a drain, as graceful-hyper names it: every connection describes its requests
//! in flight (`METHOD PATH`, how long they have run, the protocol, on HTTP/1 the bytes sent
//! for the request), which the drain's progress (`Progress::holders`) and the report's kills
//! (`ShutdownReport::kills`) show. Without the describer these lists are empty.

use std::time::Duration;

use bytes::Bytes;
#[cfg(feature = "http1")]
use graceful_core::{ConnState, Graceful};
use graceful_core::{Holder, Outcome, Progress, ShutdownPhase};

#[cfg(feature = "http1")]
use crate::common::Client;
use crate::common::{settle, Server};

/// The progress once the drain has begun (the manager runs in a task of its own).
async fn draining(server: &Server) -> Progress {
    settle().await;
    let progress = server.shutdown.progress();
    assert_eq!(progress.phase, ShutdownPhase::Draining);
    progress
}

/// Each holder as `STATE WHAT PROTOCOL`, in the progress's order.
fn named(holders: &[Holder]) -> Vec<String> {
    (holders.iter())
        .map(|holder| {
            let protocol = holder.work.protocol.as_deref().unwrap_or("-");
            format!("{:?} {} {protocol}", holder.state, holder.work.what)
        })
        .collect()
}

/// A request in flight on an HTTP/1 connection is named by its method and path, with how
/// long it has run and the bytes sent for it (not those of the connection's earlier
/// responses).
#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn an_http1_request_in_flight_is_named_with_its_age_and_bytes_sent() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.get("/").await;
    assert_eq!(client.reply().await.unwrap().body, b"hello");
    client.get("/stream?part=1").await;
    let chunks = server.chunks.take().unwrap();
    chunks.send(Bytes::from(vec![b'x'; 1_000])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    server.shutdown.stop();
    let progress = draining(&server).await;
    assert_eq!(
        named(&progress.holders),
        ["Active GET /stream?part=1 HTTP/1"]
    );
    let work = &progress.holders[0].work;
    assert!(
        work.age >= Duration::from_secs(2) && work.age < Duration::from_millis(2_100),
        "{work:?}"
    );
    // The head, the chunk's size line and the chunk went out; not the first response.
    let sent = work.sent.expect("HTTP/1 counts the bytes sent");
    assert!((1_000..1_200).contains(&sent), "{work:?}");
    assert_eq!(progress.holders_left, 0);

    drop(chunks);
    let reply = client.reply().await.unwrap();
    assert_eq!((reply.status, reply.body.len()), (200, 1_000));
    let report = server.report().await;
    assert_eq!((report.outcome, report.completed), (Outcome::Drained, 1));
    assert!(report.kills.is_empty());
}

/// The report names each request it killed, with how long it ran, in its text too.
#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn the_report_names_the_killed_request() {
    let mut server = Server::with(Graceful::builder().timeout(Duration::from_secs(1)));
    let mut client = Client::new(server.connect());
    client.get("/sleep/9000").await;
    settle().await;

    server.shutdown.stop();
    let report = server.report().await;
    assert_eq!((report.outcome, report.killed), (Outcome::TimedOut, 1));
    let [kill] = &report.kills[..] else {
        panic!("one kill: {:?}", report.kills);
    };
    assert_eq!(kill.state, ConnState::Active);
    let [work] = &kill.work[..] else {
        panic!("one request: {kill:?}");
    };
    assert_eq!(
        (work.what.as_str(), work.protocol.as_deref()),
        ("GET /sleep/9000", Some("HTTP/1"))
    );
    assert!(
        work.age >= Duration::from_secs(1) && work.age < Duration::from_millis(1_100),
        "{work:?}"
    );
    assert!(
        report
            .to_string()
            .contains("; killed: GET /sleep/9000 1.0 s;"),
        "{report}"
    );
    assert!(client.closed().await);
}

/// An upgraded connection is named by the request it was upgraded from, its protocol the
/// `Upgrade` header it asked for; killed at the timeout, the report names it so.
#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn an_upgraded_connection_is_named_by_its_request_and_upgrade() {
    let mut server = Server::with(Graceful::builder().timeout(Duration::from_secs(1)));
    let mut client = Client::new(server.connect());
    client
        .send(b"GET /upgrade?room=7 HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await;
    assert_eq!(client.reply().await.unwrap().status, 101);
    // An application that keeps the upgraded IO and ignores the drain.
    let upgraded = server.upgrades.recv().await.unwrap().await.unwrap();
    settle().await;
    assert_eq!(server.shutdown.counts().hijacked, 1);

    server.shutdown.stop();
    let progress = draining(&server).await;
    assert_eq!(
        named(&progress.holders),
        ["Hijacked GET /upgrade?room=7 echo"]
    );
    let report = server.report().await;
    assert_eq!((report.outcome, report.killed), (Outcome::TimedOut, 1));
    let kill = &report.kills[0];
    assert_eq!(kill.state, ConnState::Hijacked);
    assert_eq!(
        (kill.work.iter())
            .map(|work| (work.what.as_str(), work.protocol.as_deref()))
            .collect::<Vec<_>>(),
        [("GET /upgrade?room=7", Some("echo"))]
    );
    drop(upgraded);
    assert!(client.closed().await);
}

/// HTTP/2: each stream in flight is named on its own, on the one active connection; a
/// stream that ended is no longer named.
#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn http2_streams_in_flight_are_named_each() {
    use http_body_util::{BodyExt, Empty};
    use hyper::client::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mut server = Server::start();
    let io = TokioIo::new(server.connect());
    let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    let streams: Vec<_> = ["/sleep/500", "/sleep/700"]
        .into_iter()
        .map(|path| {
            let mut sender = sender.clone();
            let request = http::Request::get(format!("http://test{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            tokio::spawn(async move {
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            })
        })
        .collect();
    settle().await;

    server.shutdown.stop();
    let progress = draining(&server).await;
    let mut holders = named(&progress.holders);
    holders.sort();
    assert_eq!(
        holders,
        ["Active GET /sleep/500 h2", "Active GET /sleep/700 h2"]
    );
    assert!(
        progress.holders.iter().all(|h| h.conn == server.ids[0]),
        "two streams of one connection: {:?}",
        progress.holders
    );
    assert_eq!(progress.counts.active, 1);

    tokio::time::sleep(Duration::from_millis(600)).await;
    let progress = server.shutdown.progress();
    assert_eq!(named(&progress.holders), ["Active GET /sleep/700 h2"]);

    for stream in streams {
        let (status, body) = stream.await.unwrap().unwrap();
        assert_eq!((status.as_u16(), body.as_ref()), (200, &b"slept"[..]));
    }
    conn.await.unwrap().unwrap();
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.completed, report.killed),
        (Outcome::Drained, 1, 0)
    );
}
