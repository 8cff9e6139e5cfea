//! graceful-smol's own tests: what the cross-runtime suite (examples/tests) cannot show.
//! The spawner, triggers, Unix sockets, socket options.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use graceful_smol::{Conn, Outcome, Server, Smol};
use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[test]
fn connections_run_on_the_given_spawner() {
    async_std::task::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spawned = Arc::new(AtomicUsize::new(0));
        let counter = spawned.clone();
        let server = Server::builder()
            .signals(false)
            .runtime(Smol::spawner(move |task| {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(async_std::task::spawn(task));
            }))
            .build()
            .unwrap();
        let shutdown = server.shutdown();
        let (tx, mut rx) = mpsc::unbounded();
        let serving = async_std::task::spawn(server.serve(listener, move |_stream, _conn| {
            let tx = tx.clone();
            async move {
                let _ = tx.unbounded_send(async_std::task::try_current().is_some());
            }
        }));
        for _ in 0..2 {
            let _client = smol::net::TcpStream::connect(addr).await.unwrap();
            let on_async_std = async_std::future::timeout(Duration::from_secs(10), rx.next()).await;
            assert_eq!(
                on_async_std,
                Ok(Some(true)),
                "an async-std task runs the handler"
            );
        }
        assert_eq!(spawned.load(Ordering::SeqCst), 2);
        shutdown.stop();
        assert_eq!(serving.await.outcome, Outcome::Drained);
    });
}

#[test]
fn a_trigger_future_stops_the_server() {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (trigger, triggered) = oneshot::channel::<()>();
        let server = Server::builder()
            .signals(false)
            .shutdown_on(async move {
                let _ = triggered.await;
            })
            .build()
            .unwrap();
        let shutdown = server.shutdown();
        let serving = smol::spawn(server.serve(listener, |_stream, _conn| async {}));
        smol::future::yield_now().await;
        assert!(!shutdown.is_shutting_down());
        trigger.send(()).unwrap();
        assert_eq!(serving.await.outcome, Outcome::Drained);
    });
}

#[cfg(unix)]
#[test]
fn unix_sockets_are_served() {
    smol::block_on(async {
        let path = std::env::temp_dir().join(format!("graceful-smol-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = smol::net::unix::UnixListener::bind(&path).unwrap();
        let server = Server::builder().signals(false).build().unwrap();
        let shutdown = server.shutdown();
        let serving = smol::spawn(server.serve(
            listener,
            |stream: smol::net::unix::UnixStream, conn: Conn| async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                while stream.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                    conn.mark_active();
                    let _ = stream.get_mut().write_all(line.as_bytes()).await;
                    conn.mark_idle();
                    line.clear();
                }
            },
        ));

        let stream = smol::net::unix::UnixStream::connect(&path).await.unwrap();
        let mut client = BufReader::new(stream);
        client
            .get_mut()
            .write_all(b"over a unix socket\n")
            .await
            .unwrap();
        let mut echo = String::new();
        client.read_line(&mut echo).await.unwrap();
        assert_eq!(echo, "over a unix socket\n");
        drop(client);

        shutdown.stop();
        assert_eq!(serving.await.outcome, Outcome::Drained);
        let _ = std::fs::remove_file(&path);
    });
}

/// Serves one connection with `builder`'s options and returns what the accepted socket says
/// of them: (SO_KEEPALIVE, TCP_KEEPIDLE if keep-alive is on, TCP_NODELAY).
fn accepted_socket_options(builder: graceful_smol::Builder) -> (bool, Option<Duration>, bool) {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = builder.signals(false).build().unwrap();
        let shutdown = server.shutdown();
        let (tx, mut rx) = mpsc::unbounded();
        let serving = smol::spawn(server.serve(listener, move |stream, _conn| {
            let socket = socket2::SockRef::from(&stream);
            let keepalive = socket.keepalive().unwrap();
            let idle = keepalive.then(|| socket.tcp_keepalive_time().unwrap());
            let _ = tx.unbounded_send((keepalive, idle, socket.tcp_nodelay().unwrap()));
            async move { drop(stream) }
        }));
        let _client = smol::net::TcpStream::connect(addr).await.unwrap();
        let options = rx.next().await.unwrap();
        shutdown.stop();
        serving.await;
        options
    })
}

#[test]
fn accepted_sockets_get_keepalive_and_nodelay() {
    let custom = Server::builder()
        .tcp_keepalive(Duration::from_secs(7))
        .tcp_nodelay(true);
    assert_eq!(
        accepted_socket_options(custom),
        (true, Some(Duration::from_secs(7)), true)
    );
    assert_eq!(
        accepted_socket_options(Server::builder()),
        (true, Some(Duration::from_secs(180)), false),
        "Go's default: keep-alive every 3 minutes"
    );
    let off = Server::builder().no_tcp_keepalive();
    assert_eq!(accepted_socket_options(off), (false, None, false));
}

/// Answers each line with `pong`, marking the connection active meanwhile, until the
/// client's end of stream.
async fn pong(stream: smol::net::TcpStream, conn: Conn) {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    while stream.read_line(&mut line).await.is_ok_and(|n| n > 0) {
        conn.mark_active();
        let _ = stream.get_mut().write_all(b"pong\n").await;
        conn.mark_idle();
        line.clear();
    }
}

/// A connection the kernel completed before the stop but the loop had not accepted yet (a
/// balancer's, its request already sent) is served, not reset with the listener: a balancer
/// may not replay a POST. The serve loop is not polled while the client connects, so the
/// connection waits in the kernel's queue when the loop, next polled, sees the stop first.
#[test]
fn a_connection_queued_at_the_stop_is_served() {
    use graceful_harness::line::{Client, Read};

    let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let mut serving = Box::pin(server.serve(listener, pong));
    // The loop serves a first connection, then waits in its accept.
    let first = smol::block_on(async {
        let client = smol::unblock(move || {
            let mut client = Client::connect(addr);
            client.send_last("ping");
            (client.read(), client.read())
        });
        match futures::future::select(Box::pin(client), &mut serving).await {
            futures::future::Either::Left((read, _)) => read,
            futures::future::Either::Right(_) => panic!("the server stopped by itself"),
        }
    });
    assert_eq!(first, (Read::Line("pong".into()), Read::Closed));
    // Its task ends on smol's threads, just after it closed the socket: wait for it to
    // leave, so that the report counts only the queued connection.
    graceful_harness::wait_until(
        "the first connection to leave",
        Duration::from_secs(10),
        || shutdown.counts().total() == 0,
    );

    let mut queued = Client::connect(addr);
    queued.send_last("ping");
    shutdown.stop();
    let report = smol::block_on(serving);
    assert_eq!(
        queued.read(),
        Read::Line("pong".into()),
        "served, not reset"
    );
    // Counted when its task was still open as the drain began: smol serves it on another
    // thread, which may have answered it and seen its end by then.
    assert_eq!(report.outcome, Outcome::Drained);
    assert!(report.total() <= 1, "{report}");
    assert_eq!(report.killed, 0, "{report}");
}

/// Answers a connection's first line with `got`, holds it active until the second, and
/// answers that with `bye`: a request in flight across a stop.
async fn two_lines<S>(stream: S, conn: Conn)
where
    S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    if stream.read_line(&mut line).await.is_ok_and(|n| n > 0) {
        conn.mark_active();
        let _ = stream.get_mut().write_all(b"got\n").await;
        line.clear();
        if stream.read_line(&mut line).await.is_ok_and(|n| n > 0) {
            let _ = stream.get_mut().write_all(b"bye\n").await;
        }
        conn.mark_idle();
    }
}

/// Sends `line` and returns the answer's line.
async fn ask<S>(stream: &mut BufReader<S>, line: &str) -> String
where
    S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin,
{
    stream.get_mut().write_all(line.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_line(&mut answer).await.unwrap();
    answer
}

/// Waits (bounded) until `connect` is refused, which is when the listener has closed.
async fn until_refused<F: std::future::Future<Output = std::io::Result<()>>>(
    mut connect: impl FnMut() -> F,
) {
    for _ in 0..2_000 {
        match connect().await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ => {
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        }
    }
    panic!("the listener was still open 2,000 connects after the stop");
}

/// A TCP and a Unix listener under one server: a request in flight on each at the stop
/// completes; both stop accepting at the stop; one report counts both, line by line.
#[cfg(unix)]
#[test]
fn a_tcp_and_a_unix_listener_share_one_drain_and_one_report() {
    use smol::net::unix::{UnixListener, UnixStream};
    use smol::net::{TcpListener, TcpStream};

    smol::block_on(async {
        let path =
            std::env::temp_dir().join(format!("graceful-smol-two-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let unix = UnixListener::bind(&path).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let server = Server::builder().signals(false).build().unwrap();
        let shutdown = server.shutdown();
        let serving = smol::spawn(
            server
                .add("tcp", tcp, two_lines::<TcpStream>)
                .add("unix", unix, two_lines::<UnixStream>)
                .run(),
        );

        let mut over_tcp = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let mut over_unix = BufReader::new(UnixStream::connect(&path).await.unwrap());
        assert_eq!(ask(&mut over_tcp, "hello\n").await, "got\n");
        assert_eq!(ask(&mut over_unix, "hello\n").await, "got\n");
        assert_eq!(shutdown.counts().active, 2);

        shutdown.stop();
        until_refused(|| async { TcpStream::connect(addr).await.map(drop) }).await;
        until_refused(|| async { UnixStream::connect(&path).await.map(drop) }).await;
        assert!(shutdown.report().is_none(), "both requests still in flight");

        assert_eq!(ask(&mut over_tcp, "done\n").await, "bye\n");
        assert_eq!(ask(&mut over_unix, "done\n").await, "bye\n");
        drop((over_tcp, over_unix));
        let report = serving.await;
        assert_eq!((report.outcome, report.completed), (Outcome::Drained, 2));
        // A probe that connected just before a listener closed is served and idle closed.
        let lines: Vec<_> = (report.listeners.iter())
            .map(|listener| (listener.name.as_str(), listener.completed, listener.killed))
            .collect();
        assert_eq!(lines, [("tcp", 1, 0), ("unix", 1, 0)]);
        let _ = std::fs::remove_file(&path);
    });
}
