//! graceful-tokio's own tests: what the cross-runtime suite (examples/tests) cannot show.
//! Paused time for the timer and the accept backoff, Unix sockets, socket options.

use std::collections::VecDeque;
use std::future::pending;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graceful_tokio::{Conn, Listener, Outcome, Server, Timer, Tokio, TokioTimer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn the_timer_runs_on_paused_time() {
    let timer = TokioTimer;
    let start = timer.now();
    assert_eq!(
        start,
        Instant::now().into_std(),
        "the timer reads tokio's clock"
    );
    timer.sleep_until(start + Duration::from_secs(3600)).await;
    let slept = timer.now() - start;
    assert!(slept >= Duration::from_secs(3600) && slept < Duration::from_secs(3601));
}

/// A listener that fails with the given errors, then yields connection `7` once, then waits
/// forever; it notes when each accept was called.
struct Scripted {
    errors: VecDeque<io::Error>,
    endless: Option<i32>,
    accepted: bool,
    calls: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    fn new(errors: impl IntoIterator<Item = io::Error>) -> (Scripted, Arc<Mutex<Vec<Instant>>>) {
        let calls = Arc::default();
        let listener = Scripted {
            errors: errors.into_iter().collect(),
            endless: None,
            accepted: false,
            calls: Arc::clone(&calls),
        };
        (listener, calls)
    }
}

impl Listener<Tokio> for Scripted {
    type Io = u32;

    async fn accept(&mut self) -> io::Result<u32> {
        self.calls.lock().unwrap().push(Instant::now());
        if let Some(code) = self.endless {
            return Err(io::Error::from_raw_os_error(code));
        }
        if let Some(error) = self.errors.pop_front() {
            return Err(error);
        }
        if !self.accepted {
            self.accepted = true;
            return Ok(7);
        }
        pending().await
    }
}

fn emfile() -> io::Error {
    io::Error::from_raw_os_error(libc::EMFILE)
}

#[tokio::test(start_paused = true)]
async fn running_out_of_descriptors_backs_off_and_recovers() {
    let errors = (0..10).map(|_| emfile());
    let reset = io::Error::from(io::ErrorKind::ConnectionReset);
    let (listener, calls) = Scripted::new(errors.chain([reset]));
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let (served, mut served_rx) = mpsc::unbounded_channel();
    let serving = tokio::spawn(server.serve(listener, move |id, conn| {
        let served = served.clone();
        async move {
            let _ = served.send(id);
            drop(conn);
        }
    }));

    assert_eq!(
        served_rx.recv().await,
        Some(7),
        "served once the errors are over"
    );
    let calls = calls.lock().unwrap().clone();
    let gaps: Vec<u64> = calls
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    // Ten EMFILEs wait 5 ms doubling up to 1 s; the reset after the last is skipped at once.
    // (The loop then waits in a next accept.)
    let expected = [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 0];
    assert!(gaps.len() >= expected.len(), "{gaps:?}");
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(
            (want..=want + 1).contains(gap),
            "gaps {gaps:?}, expected {expected:?}"
        );
    }

    shutdown.stop();
    let report = serving.await.unwrap();
    assert_eq!((report.outcome, report.total()), (Outcome::Drained, 0));
}

#[tokio::test(start_paused = true)]
async fn a_stop_interrupts_the_backoff() {
    let (mut listener, calls) = Scripted::new([]);
    listener.endless = Some(libc::EMFILE);
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let serving = tokio::spawn(server.serve(listener, |_, _conn| async {}));

    // 5 + 10 + ... + 640 ms = 1275 ms: by 1.5 s the loop is in a 1 s backoff.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(calls.lock().unwrap().len(), 9);
    let stopped_at = Instant::now();
    shutdown.stop();
    let report = serving.await.unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_millis(1000),
        "the backoff was cut short"
    );
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!(calls.lock().unwrap().len(), 9, "no accept after the stop");
}

#[tokio::test(start_paused = true)]
async fn the_drain_timeout_runs_on_paused_time() {
    let (listener, _calls) = Scripted::new([]);
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let serving = tokio::spawn(server.serve(listener, |_, conn: Conn| async move {
        conn.mark_active();
        pending::<()>().await // work that never ends
    }));
    for _ in 0..10_000 {
        if shutdown.counts().active == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(shutdown.counts().active, 1);
    let stopped_at = Instant::now();
    shutdown.stop();
    let report = serving.await.unwrap();
    assert_eq!((report.outcome, report.killed), (Outcome::TimedOut, 1));
    let default_timeout = Duration::from_secs(30);
    assert!(report.elapsed >= default_timeout, "{report:?}");
    assert!(stopped_at.elapsed() >= default_timeout, "on tokio's clock");
}

#[tokio::test]
async fn a_panic_in_the_handler_call_itself_is_contained() {
    let (listener, _calls) = Scripted::new([]);
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let called = Arc::new(AtomicBool::new(false));
    let handler_called = called.clone();
    let serving = tokio::spawn(
        server.serve(listener, move |_, _conn| -> std::future::Ready<()> {
            handler_called.store(true, Ordering::SeqCst);
            panic!("the handler panics before it returns a future")
        }),
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while !called.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the handler is called");
    assert_eq!(shutdown.counts().total(), 0, "its connection is gone");
    shutdown.stop();
    let report = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server stops")
        .expect("the serve task did not panic");
    assert_eq!((report.outcome, report.total()), (Outcome::Drained, 0));
}

#[cfg(unix)]
#[tokio::test]
async fn unix_sockets_are_served() {
    let path = std::env::temp_dir().join(format!("graceful-tokio-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let serving = tokio::spawn(server.serve(
        listener,
        |stream: tokio::net::UnixStream, conn: Conn| async move {
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

    let mut client = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
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
    let report = serving.await.unwrap();
    assert_eq!(report.outcome, Outcome::Drained);
    let _ = std::fs::remove_file(&path);
}

/// Serves one connection with `builder`'s options and returns what the accepted socket says
/// of them: (SO_KEEPALIVE, TCP_KEEPIDLE if keep-alive is on, TCP_NODELAY).
async fn accepted_socket_options(
    builder: graceful_tokio::Builder,
) -> (bool, Option<Duration>, bool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = builder.signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let serving = tokio::spawn(server.serve(listener, move |stream, _conn| {
        let socket = socket2::SockRef::from(&stream);
        let keepalive = socket.keepalive().unwrap();
        let idle = keepalive.then(|| socket.tcp_keepalive_time().unwrap());
        let _ = tx.send((keepalive, idle, socket.tcp_nodelay().unwrap()));
        async move { drop(stream) }
    }));
    let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let options = rx.recv().await.unwrap();
    shutdown.stop();
    serving.await.unwrap();
    options
}

#[tokio::test]
async fn accepted_sockets_get_keepalive_and_nodelay() {
    let custom = Server::builder()
        .tcp_keepalive(Duration::from_secs(7))
        .tcp_nodelay(true);
    assert_eq!(
        accepted_socket_options(custom).await,
        (true, Some(Duration::from_secs(7)), true)
    );
    assert_eq!(
        accepted_socket_options(Server::builder()).await,
        (true, Some(Duration::from_secs(180)), false),
        "Go's default: keep-alive every 3 minutes"
    );
    let off = Server::builder().no_tcp_keepalive();
    assert_eq!(accepted_socket_options(off).await, (false, None, false));
}

#[tokio::test]
async fn a_trigger_future_stops_the_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (trigger, triggered) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .signals(false)
        .shutdown_on(async move {
            let _ = triggered.await;
        })
        .build()
        .unwrap();
    let shutdown = server.shutdown();
    let serving = tokio::spawn(server.serve(listener, |_stream, _conn| async {}));
    tokio::task::yield_now().await;
    assert!(!shutdown.is_shutting_down());
    trigger.send(()).unwrap();
    let report = serving.await.unwrap();
    assert_eq!(report.outcome, Outcome::Drained);
}

#[test]
fn bad_settings_are_reported_by_build() {
    let err = Server::builder().listen_limit(0).build().unwrap_err();
    assert_eq!(err, graceful_tokio::ConfigError::ZeroListenLimit);
}

/// Answers each line with `pong`, marking the connection active meanwhile, until the
/// client's end of stream.
async fn pong(stream: tokio::net::TcpStream, conn: Conn) {
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
/// may not replay a POST. The runtime is idle while the client connects, so the connection
/// waits in the kernel's queue when the loop, next polled, sees the stop first.
#[test]
fn a_connection_queued_at_the_stop_is_served() {
    use graceful_harness::line::{Client, Read};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let mut serving = Box::pin(server.serve(listener, pong));
    // The loop serves a first connection, then waits in its accept. Its task ends in the
    // poll that reads the client's end of stream, before the client sees the close.
    let first = rt.block_on(async {
        let client = tokio::task::spawn_blocking(move || {
            let mut client = Client::connect(addr);
            client.send_last("ping");
            (client.read(), client.read())
        });
        tokio::select! {
            read = client => read.unwrap(),
            _ = &mut serving => panic!("the server stopped by itself"),
        }
    });
    assert_eq!(first, (Read::Line("pong".into()), Read::Closed));

    let mut queued = Client::connect(addr);
    queued.send_last("ping");
    shutdown.stop();
    let report = rt.block_on(serving);
    assert_eq!(
        queued.read(),
        Read::Line("pong".into()),
        "served, not reset"
    );
    assert_eq!(
        (report.outcome, report.total()),
        (Outcome::Drained, 1),
        "the queued connection, served during the drain"
    );
}

/// Answers a connection's first line with `got`, holds it active until the second, and
/// answers that with `bye`: a request in flight across a stop.
async fn two_lines<S>(stream: S, conn: Conn)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
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
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.get_mut().write_all(line.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_line(&mut answer).await.unwrap();
    answer
}

/// Waits (bounded) until `connect` is refused, which is when the listener has closed.
async fn until_refused<F: std::future::Future<Output = io::Result<()>>>(
    mut connect: impl FnMut() -> F,
) {
    for _ in 0..2_000 {
        match connect().await {
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => return,
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    panic!("the listener was still open 2,000 connects after the stop");
}

/// A TCP and a Unix listener under one server: a request in flight on each at the stop
/// completes; both stop accepting at the stop; one report counts both, line by line.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_and_a_unix_listener_share_one_drain_and_one_report() {
    let path = std::env::temp_dir().join(format!("graceful-tokio-two-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let unix = tokio::net::UnixListener::bind(&path).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let server = Server::builder().signals(false).build().unwrap();
    let shutdown = server.shutdown();
    let serving = tokio::spawn(
        server
            .add("tcp", tcp, two_lines::<tokio::net::TcpStream>)
            .add("unix", unix, two_lines::<tokio::net::UnixStream>)
            .run(),
    );

    let mut over_tcp = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let mut over_unix = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    assert_eq!(ask(&mut over_tcp, "hello\n").await, "got\n");
    assert_eq!(ask(&mut over_unix, "hello\n").await, "got\n");
    assert_eq!(shutdown.counts().active, 2);

    shutdown.stop();
    until_refused(|| async { tokio::net::TcpStream::connect(addr).await.map(drop) }).await;
    until_refused(|| async { tokio::net::UnixStream::connect(&path).await.map(drop) }).await;
    assert!(shutdown.report().is_none(), "both requests still in flight");

    assert_eq!(ask(&mut over_tcp, "done\n").await, "bye\n");
    assert_eq!(ask(&mut over_unix, "done\n").await, "bye\n");
    drop((over_tcp, over_unix));
    let report = serving.await.unwrap();
    assert_eq!((report.outcome, report.completed), (Outcome::Drained, 2));
    // A probe that connected just before a listener closed is served and idle closed.
    let lines: Vec<_> = (report.listeners.iter())
        .map(|listener| (listener.name.as_str(), listener.completed, listener.killed))
        .collect();
    assert_eq!(lines, [("tcp", 1, 0), ("unix", 1, 0)]);
    let _ = std::fs::remove_file(&path);
}

/// Every connection the report counts as killed is closed when the report is out, on a
/// multi-thread runtime, whose workers run the killed tasks beside the manager: its client
/// reads the end of the stream (or a reset) at once, never "would block".
#[test]
fn killed_connections_are_closed_when_the_report_is_out() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..20 {
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = Server::builder()
                .signals(false)
                .timeout(Duration::from_millis(20))
                .quiet_period(Duration::from_millis(5))
                .build()
                .unwrap();
            let shutdown = server.shutdown();
            let serving = tokio::spawn(server.serve(listener, two_lines::<tokio::net::TcpStream>));
            let mut clients = Vec::new();
            for _ in 0..16 {
                let mut client =
                    BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
                assert_eq!(ask(&mut client, "hold\n").await, "got\n");
                clients.push(client.into_inner().into_std().unwrap());
            }
            shutdown.stop();
            let report = serving.await.unwrap();
            assert_eq!(
                (report.outcome, report.killed),
                (Outcome::TimedOut, 16),
                "round {round}"
            );
            for client in &mut clients {
                client.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 16];
                match std::io::Read::read(client, &mut buf) {
                    Ok(0) => {}
                    Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
                    other => panic!("round {round}: a killed connection is still open: {other:?}"),
                }
            }
        });
    }
}
