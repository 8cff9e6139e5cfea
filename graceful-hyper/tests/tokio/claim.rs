//! Idle HTTP/1 connections the drain claims (graceful-core's `Conn::offer_close`): counted
//! closed idle without their task, which then drops them without another byte; and those it
//! must not claim: bytes read since the last response, a response not flushed yet.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use graceful_core::serve::{ConnectionTask, Handler, Runtime, Watcher};
use graceful_core::{Conn, Outcome, Shutdown};
use graceful_hyper::{Http, HttpRuntime};
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::time::Instant;

use crate::common::{since, Client, Server};

/// tokio, its in-memory streams taken for plain sockets (`HttpRuntime::closes_plainly`):
/// dropping one ends the stream with nothing owed, as a TCP socket's close does.
#[derive(Clone, Copy, Debug)]
struct Plain;

impl Runtime for Plain {
    type Timer = graceful_tokio::TokioTimer;

    fn timer(&self) -> graceful_tokio::TokioTimer {
        graceful_tokio::Tokio.timer()
    }

    fn spawn(&self, task: ConnectionTask) {
        tokio::spawn(task);
    }

    fn signals(&self, _: Shutdown) -> io::Result<Watcher> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl HttpRuntime<DuplexStream> for Plain {
    fn hyper_io(
        io: DuplexStream,
    ) -> impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {
        TokioIo::new(io)
    }

    fn closes_plainly() -> bool {
        true
    }
}

/// Serves `conn` on `io` as a listener's handler does, on the [`Plain`] runtime.
async fn handle(io: DuplexStream, conn: Conn) {
    let handler = Http::new(&Plain).service(hyper::service::service_fn(service));
    handler.call(io, conn).await
}

/// Answers `/big` with 256 KiB (four times the in-memory socket's room), anything else with
/// `hello`.
async fn service(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.uri().path() {
        "/big" => Bytes::from(vec![b'x'; 256 * 1024]),
        _ => Bytes::from_static(b"hello"),
    };
    Ok(Response::new(Full::new(body)))
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_counted_closed_while_its_task_is_not_polled() {
    let server = Server::start();
    let (client, io) = tokio::io::duplex(64 * 1024);
    let conn = server.acceptor.try_reserve().expect("accepting").register();
    let serve = handle(io, conn);
    let mut serve = Box::pin(serve);
    let mut client = Client::new(client);
    let reply = async {
        client.get("/").await;
        client.reply().await
    };
    let reply = tokio::select! {
        reply = reply => reply.expect("a reply"),
        _ = &mut serve => panic!("the connection ended"),
    };
    assert!(!reply.closes());
    // Quiet for longer than the quiet period, the serving task polled meanwhile.
    let waited = tokio::time::timeout(Duration::from_secs(1), &mut serve).await;
    assert!(waited.is_err(), "still serving");

    // From here the serving task is not polled: the drain must not need it.
    server.shutdown.stop();
    let report = server.run.await.expect("manager task");
    assert_eq!(
        (report.idle_closed, report.killed, report.outcome),
        (1, 0, Outcome::Drained)
    );
    // Polled again, it drops the connection at once, with nothing more written.
    let start = Instant::now();
    serve.await;
    assert_eq!(since(start), Duration::ZERO);
    assert!(
        client.closed().await,
        "the end of the stream, no more bytes"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_connections_served_by_their_tasks_close_at_once_and_count_once() {
    let server = Server::start();
    let mut clients = Vec::new();
    let mut served = Vec::new();
    for _ in 0..3 {
        let (client, io) = tokio::io::duplex(64 * 1024);
        let conn = server.acceptor.try_reserve().expect("accepting").register();
        served.push(tokio::spawn(handle(io, conn)));
        let mut client = Client::new(client);
        client.get("/").await;
        client.reply().await.expect("a reply");
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    server.shutdown.stop();
    for client in &mut clients {
        assert!(client.closed().await);
    }
    assert!(
        since(start) < Duration::from_millis(5),
        "{:?}",
        since(start)
    );
    let report = server.report().await;
    assert_eq!((report.idle_closed, report.total()), (3, 3));
    for task in served {
        task.await.expect("serving task");
    }
}

/// A stream handed to `Http::serve_connection` by hand may owe its peer a close handshake
/// (a TLS stream's close_notify): it is never offered, and the drain waits for its task.
#[tokio::test(start_paused = true)]
async fn a_connection_served_by_hand_is_not_claimed() {
    let mut server = Server::start();
    let (client, io) = tokio::io::duplex(64 * 1024);
    let conn = server.acceptor.try_reserve().expect("accepting").register();
    let service = hyper::service::service_fn(service);
    let mut serve = Box::pin(
        server
            .http
            .serve_connection(TokioIo::new(io), conn, service),
    );
    let mut client = Client::new(client);
    let reply = async {
        client.get("/").await;
        client.reply().await
    };
    tokio::select! {
        reply = reply => assert!(reply.is_some()),
        _ = &mut serve => panic!("the connection ended"),
    };
    let waited = tokio::time::timeout(Duration::from_secs(1), &mut serve).await;
    assert!(waited.is_err(), "still serving");

    server.shutdown.stop();
    let waited = tokio::time::timeout(Duration::from_millis(100), &mut server.run).await;
    assert!(waited.is_err(), "the drain waits for the connection's task");
    assert!(serve.await.is_ok());
    let report = server.report().await;
    assert_eq!((report.idle_closed, report.killed), (1, 0));
    assert!(client.closed().await);
}

#[tokio::test(start_paused = true)]
async fn a_head_begun_after_the_last_response_is_not_claimed() {
    let server = Server::start();
    let (client, io) = tokio::io::duplex(64 * 1024);
    let conn = server.acceptor.try_reserve().expect("accepting").register();
    let serving = tokio::spawn(handle(io, conn));
    let mut client = Client::new(client);
    client.get("/").await;
    client.reply().await.expect("a reply");
    // The next request's head, half sent: read since the last response.
    client.send(b"GET / HTTP/1.1\r\nHo").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = Instant::now();
    server.shutdown.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.send(b"st: test\r\n\r\n").await;
    let reply = client
        .reply()
        .await
        .expect("answered within the header grace");
    assert_eq!((reply.status, reply.closes()), (200, true));
    assert!(client.closed().await);
    assert!(since(start) >= Duration::from_millis(500));
    serving.await.expect("serving task");
    let report = server.report().await;
    assert_eq!((report.completed, report.idle_closed), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_response_not_flushed_yet_is_not_claimed() {
    let server = Server::start();
    let (client, io) = tokio::io::duplex(64 * 1024);
    let conn = server.acceptor.try_reserve().expect("accepting").register();
    let serving = tokio::spawn(handle(io, conn));
    let mut client = Client::new(client);
    // The response's body ends at once (the connection is idle), but the client reads
    // nothing yet: most of it waits in hyper's buffer for room in the socket.
    client.get("/big").await;
    // Quiet for longer than the quiet period (250 ms), stalled for less than the header
    // grace that bounds a stalled write once draining (1 s).
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.shutdown.stop();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let reply = client.reply().await.expect("the whole response");
    assert_eq!(reply.body.len(), 256 * 1024);
    assert!(client.closed().await);
    serving.await.expect("serving task");
    let report = server.run.await.expect("manager task");
    assert_eq!(
        (report.idle_closed, report.stalled, report.killed),
        (1, 0, 0)
    );
}
