//! The behaviours every HTTP example shows, one function each, run against the example
//! named by the test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use graceful_harness::http1::{refused, Conn, Failure};
use graceful_harness::process::raise_descriptor_limit;
use graceful_harness::{measured, one_at_a_time, Server};

/// Sleeps until `at` (at once if it passed).
fn sleep_until(at: Instant) {
    thread::sleep(at.saturating_duration_since(Instant::now()));
}

const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> Conn {
    Conn::connect(addr, READ_TIMEOUT).expect("connect to the example")
}

/// A kept-alive connection that has been answered once.
fn idle_conn(addr: SocketAddr) -> Conn {
    let mut conn = connect(addr);
    let response = conn.get("/").expect("GET / is answered");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"hello"[..])
    );
    assert!(!response.close, "not draining: keep-alive");
    conn
}

/// 1. 100 idle keep-alive connections and 20 requests of `/sleep/1500` in flight; SIGTERM
///    300 ms after the requests start: all 20 answer 200; the idle connections are closed
///    at once; a new connection 200 ms after the signal is refused; the process exits once
///    the requests are answered.
pub fn s1_idle_and_in_flight(example: &str) {
    let server = Server::start(example, &[]);
    let addr = server.addr;
    let mut idle: Vec<Conn> = (0..100).map(|_| idle_conn(addr)).collect();
    let started = Instant::now();
    let mut sleepers: Vec<Conn> = (0..20)
        .map(|_| {
            let mut conn = connect(addr);
            conn.send_get("/sleep/1500").expect("send");
            conn
        })
        .collect();

    sleep_until(started + Duration::from_millis(300));
    let signaled = server.terminate();
    for conn in &mut idle {
        assert!(
            conn.closed_within(Duration::from_secs(5)),
            "an idle connection stays open"
        );
    }
    let idle_closed = signaled.elapsed();
    sleep_until(signaled + Duration::from_millis(200));
    assert!(
        refused(addr),
        "a new connection 200 ms after the signal is refused"
    );
    for conn in &mut sleepers {
        let response = conn.response().expect("the request in flight is answered");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"slept"[..])
        );
        assert!(
            response.close,
            "answered during the drain: `Connection: close`"
        );
    }
    let exit = server.wait_success(READ_TIMEOUT) - signaled;

    measured(
        example,
        "1",
        "100 idle connections closed after the signal in",
        idle_closed,
    );
    measured(example, "1", "exit after the signal in", exit);
    assert!(idle_closed < Duration::from_secs(1), "{idle_closed:?}");
    assert!(
        exit < Duration::from_millis(3_000),
        "exit {exit:?} after the signal (1.2 s of work left)"
    );
    let report = server.report();
    assert_eq!(report.outcome, "drained");
    assert_eq!(
        (report.completed, report.idle_closed, report.killed),
        (20, 100, 0)
    );
}

/// 2. `--timeout 1` with `/sleep/10000` requests in flight: the process exits at the
///    timeout, the requests killed.
pub fn s2_timeout_kills(example: &str) {
    let server = Server::start(example, &["--timeout", "1"]);
    let mut conns: Vec<Conn> = (0..5)
        .map(|_| {
            let mut conn = connect(server.addr);
            conn.send_get("/sleep/10000").expect("send");
            conn
        })
        .collect();
    thread::sleep(Duration::from_millis(200));

    let signaled = server.terminate();
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(example, "2", "exit after the signal (--timeout 1) in", exit);
    assert!(
        exit >= Duration::from_millis(950) && exit < Duration::from_secs(3),
        "{exit:?}"
    );
    for conn in &mut conns {
        assert!(
            matches!(conn.response(), Err(Failure::Closed)),
            "killed: no answer"
        );
    }
    let report = server.report();
    assert_eq!((report.outcome.as_str(), report.killed), ("timed out", 5));
}

/// 3. A second signal 300 ms after the first, with a 10 s request in flight and the default
///    30 s timeout: the process exits at once.
pub fn s3_second_signal(example: &str) {
    let server = Server::start(example, &[]);
    let mut conn = connect(server.addr);
    conn.send_get("/sleep/10000").expect("send");
    thread::sleep(Duration::from_millis(200));

    let first = server.terminate();
    sleep_until(first + Duration::from_millis(300));
    let second = server.terminate();
    let exit = server.wait_success(READ_TIMEOUT) - second;
    measured(example, "3", "exit after the second signal in", exit);
    assert!(exit < Duration::from_millis(1_500), "{exit:?}");
    assert!(
        matches!(conn.response(), Err(Failure::Closed)),
        "killed: no answer"
    );
    let report = server.report();
    assert_eq!((report.outcome.as_str(), report.killed), ("forced", 1));
}

/// What one looping client saw.
#[derive(Debug, Default)]
struct Tally {
    answered: usize,
    /// A fresh connection closed before its first answer: it was never accepted (it sat in
    /// the backlog when the listener closed), like a refused one.
    fresh_closed: usize,
    /// Each request lost: written on a kept-alive connection and met by a close without an
    /// answer, or answered with a response cut short.
    losses: Vec<String>,
}

fn loop_client(addr: SocketAddr, signaled: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    'connect: while Instant::now() < deadline {
        let mut conn = match Conn::connect(addr, READ_TIMEOUT) {
            Ok(conn) => conn,
            Err(_) if signaled.load(Ordering::SeqCst) => return tally,
            Err(err) => panic!("connect before the signal: {err}"),
        };
        let mut answered_here = 0;
        loop {
            match conn.get("/") {
                Ok(response) => {
                    assert_eq!(response.status, 200);
                    tally.answered += 1;
                    answered_here += 1;
                    if response.close {
                        continue 'connect;
                    }
                }
                Err(Failure::Closed) if answered_here > 0 => {
                    tally.losses.push(format!(
                        "closed without an answer after {answered_here} answers (signaled: {})",
                        signaled.load(Ordering::SeqCst)
                    ));
                    continue 'connect;
                }
                Err(Failure::Closed) => {
                    tally.fresh_closed += 1;
                    continue 'connect;
                }
                Err(Failure::Truncated) => {
                    tally
                        .losses
                        .push(format!("truncated after {answered_here} answers"));
                    continue 'connect;
                }
                Err(Failure::Io(err)) => panic!("client: {err}"),
            }
        }
    }
    panic!("the server was still accepting 20 s later");
}

/// 4. 16 keep-alive clients in a tight request loop, SIGTERM half way: zero lost requests,
///    and the process exits soon after the signal. Repeated 20 times.
pub fn s4_keep_alive_loop_loses_nothing(example: &str) {
    let _turn = one_at_a_time();
    let (mut worst_exit, mut answered, mut fresh_closed) = (Duration::ZERO, 0, 0);
    for round in 0..20 {
        let server = Server::start(example, &[]);
        let addr = server.addr;
        let signaled = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..16)
            .map(|_| {
                let signaled = signaled.clone();
                thread::spawn(move || loop_client(addr, &signaled))
            })
            .collect();
        thread::sleep(Duration::from_millis(150));
        signaled.store(true, Ordering::SeqCst);
        let at = server.terminate();
        let exit = server.wait_success(READ_TIMEOUT) - at;
        let mut losses = Vec::new();
        for client in clients {
            let tally = client.join().expect("a client thread panicked");
            losses.extend(tally.losses);
            answered += tally.answered;
            fresh_closed += tally.fresh_closed;
        }
        assert!(
            losses.is_empty(),
            "round {round}: requests lost: {losses:#?}"
        );
        assert!(
            exit < Duration::from_secs(2),
            "round {round}: exit {exit:?}"
        );
        worst_exit = worst_exit.max(exit);
        let report = server.report();
        assert_eq!((report.outcome.as_str(), report.killed), ("drained", 0));
    }
    eprintln!(
        "measured: {example} 4: 20 rounds, {answered} requests answered, 0 lost, \
         {fresh_closed} fresh connections closed unaccepted"
    );
    measured(example, "4", "worst exit after the signal in", worst_exit);
}

/// 5. 5,000 idle keep-alive connections, quiet for longer than the quiet period: all closed
///    and the process gone soon after the signal.
pub fn s5_five_thousand_idle(example: &str) {
    let _turn = one_at_a_time();
    raise_descriptor_limit(6_000);
    let server = Server::start(example, &[]);
    let addr = server.addr;
    let mut conns: Vec<Conn> = (0..5_000).map(|_| idle_conn(addr)).collect();
    thread::sleep(Duration::from_millis(400));

    let signaled = server.terminate();
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    for conn in &mut conns {
        assert!(conn.closed_within(Duration::from_secs(2)));
    }
    measured(example, "5", "5000 idle: exit after the signal in", exit);
    assert!(exit < Duration::from_secs(2), "{exit:?}");
    let report = server.report();
    assert_eq!(
        (report.outcome.as_str(), report.idle_closed),
        ("drained", 5_000)
    );
}

/// 6. 50 silent connections and 50 that sent half a request head, `--timeout 3`: the
///    process exits after the header grace (1 s), well before the timeout.
pub fn s6_silent_and_half_heads(example: &str) {
    let server = Server::start(example, &["--timeout", "3"]);
    let addr = server.addr;
    let silent: Vec<Conn> = (0..50).map(|_| connect(addr)).collect();
    let mut half: Vec<Conn> = (0..50)
        .map(|_| {
            let mut conn = connect(addr);
            conn.send(b"GET / HTTP/1.1\r\nhost: te").expect("send");
            conn
        })
        .collect();
    thread::sleep(Duration::from_millis(400));

    let signaled = server.terminate();
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(example, "6", "exit after the signal (--timeout 3) in", exit);
    assert!(
        exit >= Duration::from_millis(900) && exit < Duration::from_millis(2_500),
        "{exit:?}: expected the 1 s header grace, not the 3 s timeout"
    );
    for conn in &mut half {
        assert!(matches!(conn.response(), Err(Failure::Closed)));
    }
    drop(silent);
    let report = server.report();
    assert_eq!(
        (report.outcome.as_str(), report.idle_closed),
        ("drained", 100)
    );
}

/// 7. HTTP/2 with prior knowledge (hyper's client): streams in flight complete, GOAWAY
///    refuses new ones, the process exits when they are done.
pub fn s7_http2(example: &str) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let server = Server::start(example, &[]);
    let addr = server.addr;
    let get = |path: &str| {
        http::Request::get(format!("http://{addr}{path}"))
            .body(Empty::<bytes::Bytes>::new())
            .expect("a request")
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (signaled, done) = runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        let conn = tokio::spawn(conn);
        let streams: Vec<_> = (0..3)
            .map(|_| {
                let mut sender = sender.clone();
                let request = get("/sleep/1000");
                tokio::spawn(async move {
                    let response = sender.send_request(request).await?;
                    let status = response.status();
                    let body = response.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>((status, body))
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let signaled = server.terminate();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut late = sender.clone();
        assert!(
            late.send_request(get("/")).await.is_err(),
            "after GOAWAY no new stream is accepted"
        );
        for stream in streams {
            let (status, body) = stream.await.expect("task").expect("the stream completes");
            assert_eq!((status.as_u16(), body.as_ref()), (200, &b"slept"[..]));
        }
        let done = Instant::now();
        conn.await
            .expect("task")
            .expect("the connection ends cleanly");
        (signaled, done)
    });
    let exit = server.wait_success(READ_TIMEOUT);
    measured(
        example,
        "7",
        "HTTP/2: exit after the signal in",
        exit - signaled,
    );
    measured(
        example,
        "7",
        "HTTP/2: exit after the last stream in",
        exit.saturating_duration_since(done),
    );
    assert!(exit - signaled < Duration::from_secs(3));
    let report = server.report();
    assert_eq!((report.outcome.as_str(), report.completed), ("drained", 1));
}

fn upgraded(addr: SocketAddr, path: &str) -> Conn {
    let mut conn = connect(addr);
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n"
    );
    conn.send(request.as_bytes()).expect("send");
    assert_eq!(conn.response().expect("an answer").status, 101);
    conn.send(b"ping\n").expect("send");
    assert_eq!(conn.read_exact(5).expect("the echo"), b"ping\n");
    conn
}

/// 8. Upgraded connections: one is told of the drain, says goodbye, closes and is counted
///    hijacked; one ignores the notice and is killed at the timeout, and counted.
pub fn s8_upgrades(example: &str) {
    let server = Server::start(example, &["--timeout", "1"]);
    let mut polite = upgraded(server.addr, "/upgrade");
    let mut stubborn = upgraded(server.addr, "/upgrade?stubborn");

    let signaled = server.terminate();
    assert_eq!(polite.read_exact(4).expect("a goodbye"), b"bye\n");
    assert!(polite.closed_within(Duration::from_secs(2)));
    let polite_closed = signaled.elapsed();
    assert!(stubborn.closed_within(Duration::from_secs(5)));
    let stubborn_closed = signaled.elapsed();
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(
        example,
        "8",
        "upgrade told and closed after the signal in",
        polite_closed,
    );
    measured(
        example,
        "8",
        "stubborn upgrade killed after the signal in",
        stubborn_closed,
    );
    measured(example, "8", "exit after the signal (--timeout 1) in", exit);
    assert!(
        polite_closed < Duration::from_millis(900),
        "{polite_closed:?}"
    );
    assert!(
        stubborn_closed >= Duration::from_millis(950),
        "{stubborn_closed:?}"
    );
    let report = server.report();
    assert_eq!(report.outcome, "timed out");
    assert_eq!((report.hijacked, report.killed), (1, 1));
}
