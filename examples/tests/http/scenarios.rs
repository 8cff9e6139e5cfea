//! The behaviours every HTTP example shows, one function each, run against the example
//! named by the test.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use graceful_harness::http1::{assert_closed, connections, Conn, Failure};
use graceful_harness::looping::{drain_rounds, http1_get, Clients};
use graceful_harness::process::raise_descriptor_limit;
use graceful_harness::tcp::wait_taken;
use graceful_harness::{measured, one_at_a_time, Server};

// The scenarios of several listeners, beside these: `suites::scenarios!` names them here.
pub use super::listeners::*;

const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds for what must happen "soon": they catch hangs, not slowness.
const SOON: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> Conn {
    Conn::connect(addr, READ_TIMEOUT).expect("connect to the example")
}

/// Connections that have sent `GET path`, once the server has accepted them and read the
/// request: the requests are in flight.
fn in_flight(addr: SocketAddr, count: usize, path: &str) -> Vec<Conn> {
    let conns: Vec<Conn> = (0..count)
        .map(|_| {
            let mut conn = connect(addr);
            conn.send_get(path).expect("send");
            conn
        })
        .collect();
    let clients: Vec<SocketAddr> = conns.iter().map(Conn::local_addr).collect();
    wait_taken(addr, &clients, SOON);
    conns
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

/// A kept-alive connection that has been answered a `POST /` (the rolling restarts' load),
/// then a `GET /` on the same connection: the server read the body whole.
fn posted_conn(addr: SocketAddr) -> Conn {
    let mut conn = connect(addr);
    let post = b"POST / HTTP/1.1\r\nHost: example\r\nContent-Length: 11\r\n\r\nhello=world";
    conn.send(post).expect("send");
    let response = conn.response().expect("POST / is answered");
    assert_eq!(
        (response.status, response.body.as_slice(), response.close),
        (200, &b"hello"[..], false),
        "POST / answers hello and keeps the connection"
    );
    let response = conn.get("/").expect("and the next request too");
    assert_eq!(response.status, 200);
    conn
}

/// 1. 100 idle keep-alive connections (one of them answered a `POST /` first) and 20
///    requests of `/sleep/1500` in flight; SIGTERM
///    once the server has them: all 20 answer 200; the idle connections are closed at once;
///    a new connection is refused within 200 ms of the signal; the process exits once the
///    requests are answered.
pub fn s1_idle_and_in_flight(example: &str) {
    let server = Server::start(example, &[]);
    let addr = server.addr;
    let mut idle: Vec<Conn> = (0..99).map(|_| idle_conn(addr)).collect();
    idle.push(posted_conn(addr));
    let mut sleepers = in_flight(addr, 20, "/sleep/1500");

    let signaled = server.terminate();
    assert_closed(&mut idle, Duration::from_secs(5), "the idle connections");
    let idle_closed = signaled.elapsed();
    server.assert_refusing_by(signaled + Duration::from_millis(200));
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
        "exit {exit:?} after the signal (1.5 s of work left at most)"
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
    let mut conns = in_flight(server.addr, 5, "/sleep/10000");

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

/// 3. A second signal during the drain (once the first has closed the listener), with a
///    10 s request in flight and the default 30 s timeout: the process exits at once.
pub fn s3_second_signal(example: &str) {
    let server = Server::start(example, &[]);
    let mut conns = in_flight(server.addr, 1, "/sleep/10000");

    let exit = server.forced_by_a_second_signal(1);
    measured(example, "3", "exit after the second signal in", exit);
    assert!(
        matches!(conns[0].response(), Err(Failure::Closed)),
        "killed: no answer"
    );
}

/// 4. 16 keep-alive clients in a tight request loop, SIGTERM once each has been answered
///    a few times: zero lost requests, and the process exits soon after the signal.
///    Repeated 20 times.
pub fn s4_keep_alive_loop_loses_nothing(example: &str) {
    let _turn = one_at_a_time();
    let seen = drain_rounds(20, Duration::from_secs(2), || {
        let server = Server::start(example, &[]);
        let addr = server.addr;
        let clients = Clients::start(16, move || Conn::connect(addr, READ_TIMEOUT), http1_get);
        (server, clients)
    });
    eprintln!(
        "measured: {example} 4: 20 rounds, {} requests answered, 0 lost, {} fresh \
         connections closed unaccepted",
        seen.answered, seen.unserved
    );
    measured(
        example,
        "4",
        "worst exit after the signal in",
        seen.worst_exit,
    );
}

/// 5. 5,000 idle keep-alive connections, quiet for longer than the quiet period: all closed
///    and the process gone soon after the signal.
pub fn s5_five_thousand_idle(example: &str) {
    let _turn = one_at_a_time();
    raise_descriptor_limit(6_000);
    let server = Server::start(example, &[]);
    let addr = server.addr;
    let mut conns: Vec<Conn> = (0..5_000).map(|_| idle_conn(addr)).collect();
    // The behaviour under test: connections quiet for longer than the quiet period (250
    // ms) are closed at once. They must stay silent that long.
    thread::sleep(Duration::from_millis(400));

    let signaled = server.terminate();
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    assert_closed(
        &mut conns,
        Duration::from_secs(2),
        "the 5,000 idle connections",
    );
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
    let silent = connections(addr, 50, b"");
    let mut half = connections(addr, 50, b"GET / HTTP/1.1\r\nhost: te");
    let clients: Vec<SocketAddr> = silent.iter().chain(&half).map(Conn::local_addr).collect();
    wait_taken(addr, &clients, SOON);

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

type H2Body = http_body_util::Empty<bytes::Bytes>;
type H2Stream = tokio::task::JoinHandle<Result<(http::StatusCode, bytes::Bytes), hyper::Error>>;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `GET path` on `addr`, for hyper's HTTP/2 client.
fn h2_get(addr: SocketAddr, path: &str) -> http::Request<H2Body> {
    http::Request::get(format!("http://{addr}{path}"))
        .body(H2Body::new())
        .expect("a request")
}

/// One HTTP/2 connection (prior knowledge, hyper's client) to `addr` with a stream for each
/// of `paths` in flight: sent in order on the one connection (hyper queues a request when it
/// is handed over), then a probe (`GET /`), so once the probe is answered, the server runs
/// them all. Returns the sender, the connection's task and each stream's status and body.
async fn h2_streams_in_flight(
    addr: SocketAddr,
    paths: &[&str],
) -> (
    hyper::client::conn::http2::SendRequest<H2Body>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
    Vec<H2Stream>,
) {
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    let streams = (paths.iter())
        .map(|path| {
            let sent = sender.send_request(h2_get(addr, path));
            tokio::spawn(async move {
                let response = sent.await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            })
        })
        .collect();
    let probe = sender
        .send_request(h2_get(addr, "/"))
        .await
        .expect("the probe");
    assert_eq!(probe.status(), 200);
    (sender, conn, streams)
}

/// 7. HTTP/2 with prior knowledge (hyper's client): streams in flight complete, GOAWAY
///    refuses new ones within 100 ms of the signal, the process exits when they are done.
pub fn s7_http2(example: &str) {
    let server = Server::start(example, &[]);
    let addr = server.addr;
    let (signaled, done) = current_thread().block_on(async {
        let (mut sender, conn, streams) = h2_streams_in_flight(addr, &["/sleep/1000"; 3]).await;
        let signaled = server.terminate();
        // A stream sent before the client has the final GOAWAY is still served (the point
        // of the two-phase GOAWAY); one sent after it is refused. Ask until one is.
        // One sent 100 ms after the signal or later must be refused.
        let refused_by = signaled + Duration::from_millis(100);
        loop {
            let sent = Instant::now();
            if sender.send_request(h2_get(addr, "/")).await.is_err() {
                break;
            }
            assert!(
                sent < refused_by,
                "a new stream sent 100 ms after the signal is accepted (no GOAWAY)"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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
///    hijacked; one ignores the notice and is killed at the timeout, and counted. The
///    progress line names the one that holds the drain, hijacked, by the request it was
///    upgraded from; the report names it among the killed.
pub fn s8_upgrades(example: &str) {
    let server = Server::start(example, &["--timeout", "1"]);
    let mut polite = upgraded(server.addr, "/upgrade");
    let mut stubborn = upgraded(server.addr, "/upgrade?stubborn");

    let signaled = server.terminate();
    let line = progress_naming(&server, &[" hijacked (", "GET /upgrade?stubborn "]);
    assert!(!line.contains(" active"), "no request is in flight: {line}");
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
    let killed = killed_after(&server, "GET /upgrade?stubborn");
    assert!(
        (0.9..5.0).contains(&killed),
        "killed at the 1 s timeout, after {killed} s"
    );
}

/// The first progress line (`draining: ...`) on the server's stderr that contains each of
/// `names`; fails after [`SOON`], showing the output.
#[track_caller]
fn progress_naming(server: &Server, names: &[&str]) -> String {
    server.wait_output(
        &format!("a progress line naming {names:?}"),
        SOON,
        |output| {
            (output.stderr.iter())
                .find(|line| {
                    line.starts_with("draining: ") && names.iter().all(|name| line.contains(name))
                })
                .cloned()
        },
    )
}

/// How long the report's kill of `what` says it ran, in seconds: the report line names
/// each killed connection's work (`; killed: GET /sleep/9000 2.0 s`, several joined by
/// `, `). Call it once the report is out.
#[track_caller]
fn killed_after(server: &Server, what: &str) -> f64 {
    let line = server.wait_stderr(": timed out in ", SOON);
    let (_, kills) = line
        .split_once("; killed: ")
        .unwrap_or_else(|| panic!("the report names what it killed: {line}"));
    let needle = format!("{what} ");
    let age = (kills.split(", "))
        .find_map(|kill| kill.strip_prefix(needle.as_str()))
        .unwrap_or_else(|| panic!("the report names {what:?} among the killed: {line}"));
    let age = age.split(" s").next().unwrap_or(age);
    age.parse()
        .unwrap_or_else(|_| panic!("how long {what:?} ran, in seconds: {line}"))
}

/// 9. The drain names what holds it: `--timeout 2`, and a `GET /sleep/9000` and a `GET
///    /sleep/1200` in flight at SIGTERM. A progress line names both while they run; the
///    1200 one is answered; the 9000 one is killed at the timeout (its client sees the
///    connection end with no answer), and the report names it with how long it ran.
pub fn s9_named_and_killed(example: &str) {
    let server = Server::start(example, &["--timeout", "2"]);
    let mut stuck = connect(server.addr);
    let mut finishing = connect(server.addr);
    stuck.send_get("/sleep/9000").expect("send");
    let clients = [stuck.local_addr(), finishing.local_addr()];
    wait_taken(server.addr, &clients, SOON);
    // The short request is sent on a connection the server holds, and the signal at once:
    // waiting for the server to read it would read the kernel's whole TCP table, which
    // takes longer than the request on a machine that holds many sockets. The server reads
    // it in well under a millisecond, and the drain begins more than 5 ms after the signal
    // (the serve loop's last look at the handshakes under way): the drain's first progress
    // line has it; or, at the latest, the line a second later (1.2 s: it still runs).
    finishing.send_get("/sleep/1200").expect("send");
    let signaled = server.terminate();
    let line = progress_naming(
        &server,
        &["2 active (", "GET /sleep/9000 ", "GET /sleep/1200 "],
    );
    let response = finishing.response().expect("the short request is answered");
    assert_eq!(
        (response.status, response.body.as_slice(), response.close),
        (200, &b"slept"[..], true),
        "answered during the drain, with `Connection: close`"
    );
    assert!(
        matches!(stuck.response(), Err(Failure::Closed)),
        "killed at the timeout: the connection ends with no answer"
    );
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(example, "9", "exit after the signal (--timeout 2) in", exit);
    let report = server.report();
    assert_eq!(
        (report.outcome.as_str(), report.completed, report.killed),
        ("timed out", 1, 1),
        "{line}"
    );
    let killed = killed_after(&server, "GET /sleep/9000");
    assert!(
        (1.9..9.0).contains(&killed),
        "killed at the 2 s timeout, after it ran {killed} s"
    );
}

/// 10. HTTP/2 (prior knowledge, hyper's client): two streams in flight on one connection
///     at SIGTERM, `GET /sleep/1000` and `GET /sleep/1500`. A progress line names both,
///     on the one active connection; both complete, and nothing is killed.
pub fn s10_http2_streams_named(example: &str) {
    let server = Server::start(example, &[]);
    let addr = server.addr;
    current_thread().block_on(async {
        let (_sender, conn, streams) =
            h2_streams_in_flight(addr, &["/sleep/1000", "/sleep/1500"]).await;
        server.terminate();
        for stream in streams {
            let (status, body) = stream.await.expect("task").expect("the stream completes");
            assert_eq!((status.as_u16(), body.as_ref()), (200, &b"slept"[..]));
        }
        conn.await
            .expect("task")
            .expect("the connection ends cleanly");
    });
    // Looked for in what the server printed while the streams ran (the client's runtime
    // is not blocked on it meanwhile).
    let line = progress_naming(
        &server,
        &["1 active (", "GET /sleep/1000 ", "GET /sleep/1500 "],
    );
    let report = server.report();
    assert_eq!(
        (report.outcome.as_str(), report.completed, report.killed),
        ("drained", 1, 0),
        "{line}"
    );
}
