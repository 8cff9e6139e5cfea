//! Upgraded connections: counted `Hijacked`, told of the drain, killed at the timeout.

use std::time::Duration;

use graceful_core::{Graceful, Outcome};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{settle, Client, Server};

const UPGRADE: &[u8] =
    b"GET /upgrade HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";

#[tokio::test(start_paused = true)]
async fn an_upgraded_connection_is_told_closes_politely_and_is_counted() {
    let mut server = Server::start();
    let mut client = Client::new(server.connect());
    client.send(UPGRADE).await;
    assert_eq!(client.reply().await.unwrap().status, 101);
    let upgrade = server.upgrades.recv().await.unwrap();
    let app = tokio::spawn(async move {
        let (io, hijack) = upgrade.await.unwrap().into_parts();
        let mut io = TokioIo::new(io);
        let mut line = [0u8; 5];
        tokio::select! {
            read = io.read_exact(&mut line) => { read.unwrap(); io.write_all(&line).await.unwrap(); }
            () = hijack.drained() => unreachable!("not draining yet"),
        }
        hijack.drained().await;
        io.write_all(b"bye\n").await.unwrap();
        io.shutdown().await.unwrap();
        drop((io, hijack));
    });
    client.send(b"ping\n").await;
    let mut echoed = [0u8; 5];
    client.io.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping\n");
    settle().await;
    assert_eq!(server.shutdown.counts().hijacked, 1);

    server.shutdown.stop();
    let mut rest = Vec::new();
    client.io.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"bye\n");
    app.await.unwrap();
    let report = server.report().await;
    assert_eq!((report.hijacked, report.total()), (1, 1));
    assert_eq!(report.outcome, Outcome::Drained);
}

#[tokio::test(start_paused = true)]
async fn an_upgraded_connection_that_ignores_the_drain_is_killed_and_counted() {
    let mut server = Server::with(Graceful::builder().timeout(Some(Duration::from_secs(1))));
    let mut client = Client::new(server.connect());
    client.send(UPGRADE).await;
    assert_eq!(client.reply().await.unwrap().status, 101);
    let upgrade = server.upgrades.recv().await.unwrap();
    let app = tokio::spawn(async move {
        let (io, hijack) = upgrade.await.unwrap().into_parts();
        let killed = hijack.killed();
        killed.await;
        assert!(hijack.is_killed() && hijack.is_drain_requested());
        drop((io, hijack));
    });
    settle().await;

    server.shutdown.stop();
    let report = server.report().await;
    assert_eq!((report.killed, report.outcome), (1, Outcome::TimedOut));
    assert_eq!(report.elapsed, Duration::from_secs(1));
    app.await.unwrap();
    assert!(client.closed().await);
}

#[tokio::test(start_paused = true)]
async fn upgrade_on_a_plain_request_is_an_error() {
    let mut request = http::Request::new(());
    let err = graceful_hyper::upgrade::on(&mut request).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the request offers no upgrade served by graceful-hyper"
    );
}
