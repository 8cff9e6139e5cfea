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
        let (io, watch) = upgrade.await.unwrap().into_parts();
        let mut io = TokioIo::new(io);
        let mut line = [0u8; 5];
        tokio::select! {
            read = io.read_exact(&mut line) => { read.unwrap(); io.write_all(&line).await.unwrap(); }
            () = watch.drain_requested() => unreachable!("not draining yet"),
        }
        watch.drain_requested().await;
        io.write_all(b"bye\n").await.unwrap();
        io.shutdown().await.unwrap();
        drop((io, watch));
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
    let mut server = Server::with(Graceful::builder().timeout(Duration::from_secs(1)));
    let mut client = Client::new(server.connect());
    client.send(UPGRADE).await;
    assert_eq!(client.reply().await.unwrap().status, 101);
    let upgrade = server.upgrades.recv().await.unwrap();
    let app = tokio::spawn(async move {
        let (io, watch) = upgrade.await.unwrap().into_parts();
        let killed = watch.killed();
        killed.await;
        assert!(watch.is_killed() && watch.is_drain_requested());
        drop((io, watch));
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

/// The manager is polled here, by the test itself: no other task runs between the kill and
/// the report, so only the kill's own waker can have closed the socket.
#[tokio::test(start_paused = true)]
async fn a_killed_upgrade_is_closed_at_the_socket_before_the_report_even_if_its_io_is_kept() {
    use futures::FutureExt;
    let graceful = Graceful::builder()
        .timeout(Duration::from_secs(1))
        .build(crate::common::Clock)
        .unwrap();
    let (shutdown, acceptor) = (graceful.shutdown(), graceful.acceptor());
    let mut run = Box::pin(graceful.run());
    let http = graceful_hyper::Http::new(&graceful_tokio::Tokio);
    let (upgrades_tx, mut upgrades) = tokio::sync::mpsc::unbounded_channel();
    let service = hyper::service::service_fn(move |mut req: http::Request<_>| {
        // Plain hyper: graceful-hyper tracks the upgrade all the same.
        let _ = upgrades_tx.send(hyper::upgrade::on(&mut req));
        async {
            let mut response = http::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
            *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
            response.headers_mut().insert(
                http::header::UPGRADE,
                http::HeaderValue::from_static("echo"),
            );
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let (client, server_io) = tokio::io::duplex(1024);
    let conn = acceptor.try_reserve().unwrap().register();
    tokio::spawn(http.serve_connection(TokioIo::new(server_io), conn, service));
    let mut client = Client::new(client);
    client.send(UPGRADE).await;
    assert_eq!(client.reply().await.unwrap().status, 101);
    // An application that keeps the upgraded IO and never looks at it again.
    let mut io = TokioIo::new(upgrades.recv().await.unwrap().await.unwrap());
    settle().await;
    assert_eq!(shutdown.counts().hijacked, 1);

    shutdown.stop();
    assert!(
        run.as_mut().now_or_never().is_none(),
        "the drain waits for the upgrade"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let report = (0..64)
        .find_map(|_| run.as_mut().now_or_never())
        .expect("the report, after the manager's bounded yields");
    assert_eq!((report.killed, report.outcome), (1, Outcome::TimedOut));
    // No task ran since the kill: the kill's waker closed the socket before the report.
    let mut buf = [0u8; 8];
    let read = client.io.read(&mut buf).now_or_never();
    assert!(matches!(read, Some(Ok(0)) | Some(Err(_))), "{read:?}");
    // The application's IO fails at once.
    let err = io.write_all(b"late").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    let err = io.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
}
