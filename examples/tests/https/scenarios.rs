//! The behaviours of the HTTPS examples, one function each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use graceful_harness::http1::{assert_closed, connections, Conn};
use graceful_harness::looping::{drain_rounds, tls_get, Clients};
use graceful_harness::tcp::{self, wait_not_listening, wait_taken};
use graceful_harness::tls::{client_hello, config, Cert, Failure, TlsConn};
use graceful_harness::tools::{self, H2loadSummary, Wrk};
use graceful_harness::{measured, one_at_a_time, wait_until, Launch, Server};
use rustls::ClientConfig;

use super::url;

// The plain-HTTP listener's scenario, beside these: `suites::scenarios!` names it here.
pub use super::redirect::*;

/// Runs curl with `args` (and `-sS`, and the HTTP version after the body), bounded;
/// returns what it printed, once it succeeded.
#[track_caller]
fn curl(args: &[&str]) -> String {
    let mut all = vec!["-sS", "-w", " %{http_version}"];
    all.extend(args);
    let (ok, out) = tools::run("curl", &all, Duration::from_secs(10));
    assert!(ok, "curl {args:?}: {out}");
    out
}

const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds for what must happen "soon": they catch hangs, not slowness.
const SOON: Duration = Duration::from_secs(10);
const H2_H1: &[&[u8]] = &[b"h2", b"http/1.1"];
const H1: &[&[u8]] = &[b"http/1.1"];

/// Starts the example on a new certificate; returns it, the certificate and a client
/// configuration that trusts it (offering HTTP/1.1 only: the client speaks HTTP/1.1).
fn start(example: &str, extra: &[&str]) -> (Server, Cert, Arc<ClientConfig>) {
    let cert = Cert::new(example);
    let mut args: Vec<String> = cert.args();
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(example, &args);
    let client = config(&[&cert.der], H1);
    (server, cert, client)
}

fn connect(addr: SocketAddr, client: &Arc<ClientConfig>) -> TlsConn {
    TlsConn::connect(addr, client, READ_TIMEOUT).expect("connect and handshake")
}

/// Connections that have sent `GET path`, once the server has accepted them and read the
/// request: the requests are in flight.
fn in_flight(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
    count: usize,
    path: &str,
) -> Vec<TlsConn> {
    let conns: Vec<TlsConn> = (0..count)
        .map(|_| {
            let mut conn = connect(addr, client);
            conn.send_get(path).expect("send");
            conn
        })
        .collect();
    let clients: Vec<SocketAddr> = conns.iter().map(TlsConn::local_addr).collect();
    wait_taken(addr, &clients, SOON);
    conns
}

/// A kept-alive HTTPS connection that has been answered once.
fn idle_conn(addr: SocketAddr, client: &Arc<ClientConfig>) -> TlsConn {
    let mut conn = connect(addr, client);
    let response = conn.get("/").expect("GET / is answered");
    assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
    assert!(!response.close, "not draining: keep-alive");
    conn
}

/// The server serves a new client on; stopped, its handshake counters (the last
/// `NAME: TLS handshakes: ...` line of its stderr) end with `counts`.
#[track_caller]
fn serves_on_and_counts(server: &Server, client: &Arc<ClientConfig>, counts: &str) {
    idle_conn(server.addr, client);
    server.terminate();
    server.report();
    // The counters follow the report on stderr, and may reach the pipe's reader after
    // the exit was seen: wait for the line, as for any other output.
    let counters = server.wait_output(
        "the TLS handshake counters",
        Duration::from_secs(5),
        |output| {
            let mut lines = output.stderr.iter().rev();
            lines.find(|line| line.contains("TLS handshakes:")).cloned()
        },
    );
    assert!(counters.ends_with(counts), "{counters}");
}

/// 1. curl `--http2` and `--http1.1` over TLS get `hello` in the protocol asked; ALPN
///    offers `h2` and `http/1.1`; without `--cert` the self-signed certificate serves curl
///    `-k`.
pub fn t1_curl_protocols(example: &str) {
    let (server, cert, _) = start(example, &[]);
    let (link, resolve) = url(server.addr, "/");
    let cacert = cert.cert.display().to_string();
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = curl(&[flag, "--cacert", &cacert, "--resolve", &resolve, &link]);
        assert_eq!(out, format!("hello {version}"), "curl {flag}");
    }
    let h2 = connect(server.addr, &config(&[&cert.der], H2_H1));
    assert_eq!(h2.alpn().as_deref(), Some(&b"h2"[..]));
    let h1 = connect(server.addr, &config(&[&cert.der], H1));
    assert_eq!(h1.alpn().as_deref(), Some(&b"http/1.1"[..]));
    drop((h1, h2));
    server.terminate();
    assert_eq!(server.report().outcome, "drained");

    let server = Server::start(example, &[]);
    let (link, resolve) = url(server.addr, "/");
    let out = curl(&["-k", "--http2", "--resolve", &resolve, &link]);
    assert_eq!(
        out, "hello 2",
        "curl -k on the self-signed certificate: {out}"
    );
    server.terminate();
    assert_eq!(server.report().outcome, "drained");
}

/// 2. 20 idle HTTPS keep-alive connections and 20 `/sleep/1500` in flight; SIGTERM once
///    the server has them: the idle ones are closed at once with close_notify, a new
///    connection is refused within 200 ms, the 20 answer 200 and then close with
///    close_notify; the process exits drained.
pub fn t2_idle_and_in_flight(example: &str) {
    let (server, _cert, client) = start(example, &[]);
    let addr = server.addr;
    let mut idle: Vec<TlsConn> = (0..20).map(|_| idle_conn(addr, &client)).collect();
    let mut sleepers = in_flight(addr, &client, 20, "/sleep/1500");
    let signaled = server.terminate();
    for conn in &mut idle {
        let closed = conn.closed_within(Duration::from_secs(5));
        assert_eq!(
            closed,
            Some(true),
            "an idle connection: closed with close_notify"
        );
    }
    measured(example, "t2", "20 idle closed in", signaled.elapsed());
    server.assert_refusing_by(signaled + Duration::from_millis(200));
    for conn in &mut sleepers {
        let response = conn.response().expect("the request in flight is answered");
        assert_eq!((response.status, &response.body[..]), (200, &b"slept"[..]));
        assert!(response.close, "draining: Connection: close");
        let closed = conn.closed_within(Duration::from_secs(5));
        assert_eq!(closed, Some(true), "after the response: close_notify");
    }
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(example, "t2", "exit after the signal in", exit);
    server.drained();
}

/// 3. A second signal (once the first has closed the listener) stops at once: the request
///    in flight is killed.
pub fn t3_second_signal(example: &str) {
    let (server, _cert, client) = start(example, &[]);
    let mut conns = in_flight(server.addr, &client, 1, "/sleep/10000");
    let exit = server.forced_by_a_second_signal(1);
    measured(example, "t3", "exit after the second signal in", exit);
    assert!(
        matches!(conns[0].response(), Err(Failure::Closed { .. })),
        "killed: no answer"
    );
}

/// 4. 16 HTTPS keep-alive clients in a tight request loop, SIGTERM once each has been
///    answered a few times: not one request lost, counted exactly; the process exits soon
///    after. 10 rounds.
pub fn t4_keep_alive_loop_loses_nothing(example: &str) {
    let _turn = one_at_a_time();
    let seen = drain_rounds(10, Duration::from_secs(3), || {
        // The certificate's files may go once the server has read them.
        let (server, _cert, client) = start(example, &[]);
        let addr = server.addr;
        let connect = move || TlsConn::connect(addr, &client, READ_TIMEOUT);
        (server, Clients::start(16, connect, tls_get))
    });
    eprintln!(
        "measured: {example} t4: 10 rounds, {} requests answered, 0 lost, {} connections \
         unserved after the signal",
        seen.answered, seen.unserved
    );
    measured(
        example,
        "t4",
        "worst exit after the signal in",
        seen.worst_exit,
    );
}

/// 5. h2load over TLS (HTTP/2 by ALPN), SIGTERM after 1 s of load on its 8 connections:
///    every stream it started ends
///    (none hangs), nearly all succeed, and the process exits drained. h2load counts as
///    failed the few streams the final GOAWAY refuses (submitted just before the client saw
///    the first GOAWAY, sent after its PING ack; never processed, RFC 9113 6.8) since it
///    does not retry them; t14 tells those apart exactly and finds no stream lost.
pub fn t5_h2load(example: &str) {
    let _turn = one_at_a_time();
    let (server, _cert, _) = start(example, &[]);
    let link = format!("https://127.0.0.1:{}/", server.addr.port());
    let h2load = Launch::program("h2load")
        .args(["-n", "1000000", "-c", "8", "-m", "10", "-t", "1", &link])
        .spawn();
    wait_until("h2load's 8 connections", SOON, || {
        tcp::connections_to(server.addr) >= 8
    });
    // The behaviour under test: the signal lands in the middle of a run.
    thread::sleep(Duration::from_secs(1));
    server.terminate();
    h2load.wait_exit_and_output(Duration::from_secs(60));
    let out = h2load.stdout().join("\n");
    let summary = H2loadSummary::parse(&out).unwrap_or_else(|| panic!("no h2load summary: {out}"));
    let (started, done, succeeded) = (summary.started, summary.done, summary.succeeded);
    let line = &summary.line;
    eprintln!("measured: {example} t5: h2load over TLS, SIGTERM at 1 s: {line}");
    assert!(started > 0 && started < 1_000_000, "{line}");
    assert_eq!(done, started, "a started stream never ended: {line}");
    // h2load counts as failed the streams nghttp2 refused itself after the GOAWAY, never
    // sent: at most the 10 each of the 8 connections may have outstanding (`-m 10`). A
    // share of the started ones would be a bound that a loaded machine (fewer started)
    // breaks without anything lost.
    assert!(
        started - succeeded <= 8 * 10,
        "more streams failed than the connections had outstanding: {line}"
    );
    server.drained();
}

/// 6. wrk over TLS (keep-alive HTTP/1.1), SIGTERM half way (after 1.5 s of load on its 16
///    connections): no read, write or timeout
///    error, no non-2xx answer (connect errors after the listener closed are refusals).
pub fn t6_wrk(example: &str) {
    let _turn = one_at_a_time();
    let (server, _cert, _) = start(example, &[]);
    let link = format!("https://127.0.0.1:{}/", server.addr.port());
    let wrk = Wrk::start(&link, 1, 16, 3);
    wrk.wait_connected(server.addr, SOON);
    // The behaviour under test: the signal lands in the middle of the run.
    thread::sleep(Duration::from_millis(1_500));
    server.terminate();
    let report = wrk.finish();
    let out = &report.output;
    eprintln!("measured: {example} t6: wrk over TLS, SIGTERM at 1.5 s:\n{out}");
    assert_eq!(report.non_2xx, 0, "{out}");
    if let Some(errors) = report.socket_errors {
        assert_eq!(
            (errors.read, errors.write, errors.timeout),
            (0, 0, 0),
            "{out}"
        );
    }
    server.drained();
}

/// 7. 50 silent TCP connections and 50 that sent half a ClientHello, `--timeout 3`: the
///    silent ones are closed at once, the half-hellos at the end of the header grace (1 s),
///    and the process exits then, well before the timeout.
pub fn t7_silent_and_half_hellos(example: &str) {
    let (server, _cert, client) = start(example, &["--timeout", "3"]);
    let addr = server.addr;
    let hello = client_hello(&client);
    let mut silent = connections(addr, 50, b"");
    let half = connections(addr, 50, &hello[..hello.len() / 2]);
    let clients: Vec<SocketAddr> = silent.iter().chain(&half).map(Conn::local_addr).collect();
    wait_taken(addr, &clients, SOON);
    let signaled = server.terminate();
    assert_closed(
        &mut silent,
        Duration::from_secs(5),
        "the silent connections",
    );
    let silent_closed = signaled.elapsed();
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(example, "t7", "50 silent closed in", silent_closed);
    measured(
        example,
        "t7",
        "exit after the signal (--timeout 3) in",
        exit,
    );
    assert!(
        silent_closed < Duration::from_millis(700),
        "{silent_closed:?}"
    );
    assert!(
        exit >= Duration::from_millis(900) && exit < Duration::from_millis(2_500),
        "{exit:?}: expected the 1 s header grace, not the 3 s timeout"
    );
    drop(half);
    server.drained();
}

/// 8. `--handshake-timeout 0.5`: a client that stops half way through its ClientHello is
///    closed after the deadline, counted, and the server serves on.
pub fn t8_handshake_deadline(example: &str) {
    let (server, _cert, client) = start(example, &["--handshake-timeout", "0.5"]);
    let addr = server.addr;
    let hello = client_hello(&client);
    let mut stalled = connections(addr, 1, &hello[..hello.len() / 2]).remove(0);
    let sent = Instant::now();
    assert!(
        stalled.closed_within(Duration::from_secs(5)),
        "the deadline closes it"
    );
    let closed = sent.elapsed();
    measured(example, "t8", "a stalled handshake closed in", closed);
    assert!(closed >= Duration::from_millis(400), "{closed:?}");
    serves_on_and_counts(&server, &client, "1 completed, 0 failed, 1 timed out");
}

/// 9. Bad input on the TLS port: plain HTTP, a garbage ClientHello, a client that rejects
///    the certificate: each fails its own handshake, is counted, and the server serves on.
pub fn t9_bad_input(example: &str) {
    let (server, _cert, client) = start(example, &[]);
    let addr = server.addr;
    let mut plain = Conn::connect(addr, READ_TIMEOUT).expect("connect");
    let _ = plain.get("/");
    let mut garbage = Conn::connect(addr, READ_TIMEOUT).expect("connect");
    garbage
        .send(b"\x16\x03\x01\x00\x10not a client hello")
        .expect("send");
    assert!(garbage.closed_within(Duration::from_secs(5)));
    let stranger = config(&[&Cert::new("stranger").der], H1);
    assert!(
        TlsConn::connect(addr, &stranger, READ_TIMEOUT).is_err(),
        "the certificate is rejected"
    );
    serves_on_and_counts(&server, &client, "1 completed, 3 failed, 0 timed out");
}

/// 10. A certificate that cannot be used is a clear error at start: exit 2.
pub fn t10_bad_certificates(example: &str) {
    let (a, b) = (Cert::new("a"), Cert::new("b"));
    let empty = a.cert.with_file_name("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let missing = a.cert.with_file_name("missing.pem").display().to_string();
    let (a_cert, a_key) = (a.cert.display().to_string(), a.key.display().to_string());
    let b_key = b.key.display().to_string();
    let empty = empty.display().to_string();
    let cases = [
        (&missing, &a_key, "cannot read"),
        (&a_cert, &b_key, "does not match"),
        (&empty, &a_key, "no certificate"),
        (&a_cert, &a_cert, "no private key"),
    ];
    for (cert, key, expected) in cases {
        let failing = Launch::example(example)
            .args(["--cert", cert, "--key", key, "--addr", "127.0.0.1:0"])
            .spawn();
        let status = failing.wait_exit_and_output(READ_TIMEOUT);
        let stderr = failing.stderr().join("\n");
        assert_eq!(status.code(), Some(2), "{expected}: {stderr}");
        assert!(stderr.contains(expected), "expected `{expected}`: {stderr}");
    }
}

/// 11. SIGHUP reloads the certificate files: a client after the reload sees the new
///     certificate; one connected before keeps its own, and keeps working.
pub fn t11_reload(example: &str) {
    let (server, cert, _) = start(example, &[]);
    let addr = server.addr;
    let old = cert.der.clone();
    let cert = cert.rewrite();
    let both = config(&[&old, &cert.der], H1);
    // Connected before the reload (the files already hold the new certificate: only the
    // signal loads it).
    let mut before = idle_conn(addr, &both);
    assert_eq!(before.peer_cert(), old.to_vec());
    server.hangup();
    wait_until("the new certificate to be served", SOON, || {
        // A new configuration each time: one with a session cached would resume the session
        // of an earlier connection, which the old certificate authenticated.
        let mut after = idle_conn(addr, &config(&[&old, &cert.der], H1));
        let new = after.peer_cert() == cert.der.to_vec();
        if new {
            assert_eq!(after.get("/").expect("answered").status, 200);
        }
        new
    });
    let response = before.get("/").expect("the old connection keeps working");
    assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
    assert_eq!(before.peer_cert(), old.to_vec());
    server.terminate();
    assert_eq!(server.report().outcome, "drained");
}

/// 12. HTTP/2 over TLS with requests in flight (3 curls `--http2`): they complete after the
///     signal.
pub fn t12_http2_in_flight(example: &str) {
    let (server, cert, _) = start(example, &[]);
    let (link, resolve) = url(server.addr, "/sleep/1500");
    let cacert = cert.cert.display().to_string();
    let curls: Vec<_> = (0..3)
        .map(|_| {
            Launch::program("curl")
                .args(["-sS", "-v", "--http2", "--cacert", &cacert, "--resolve"])
                .args([&resolve, "-w", " %{http_version}", &link])
                .spawn()
        })
        .collect();
    // curl says when it sends its request (`-v`); then the server has it once it has read
    // all its connections sent.
    for curl in &curls {
        curl.wait_stderr("> GET /sleep/1500", SOON);
    }
    wait_until("the server to read the 3 requests", SOON, || {
        tcp::connections_to(server.addr) == 3 && tcp::quiet(server.addr)
    });
    let signaled = server.terminate();
    for curl in curls {
        let status = curl.wait_exit_and_output(Duration::from_secs(20));
        let out = curl.stdout().join("\n");
        assert!(status.success(), "{out} {:?}", curl.stderr());
        assert_eq!(out, "slept 2");
    }
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(
        example,
        "t12",
        "HTTP/2 over TLS: exit after the signal in",
        exit,
    );
    server.drained();
}

/// 13. A handshake under way when the drain begins gets the header grace to finish, and its
///     first request is answered (with `Connection: close`); a second one that finishes
///     after the grace is not served.
pub fn t13_handshake_across_the_drain(example: &str) {
    let (server, _cert, client) = start(example, &["--timeout", "5"]);
    let addr = server.addr;
    let on_time = TlsConn::half_hello(addr, &client, READ_TIMEOUT).expect("half a hello");
    let late = TlsConn::half_hello(addr, &client, READ_TIMEOUT).expect("half a hello");
    wait_taken(addr, &[on_time.local_addr(), late.local_addr()], SOON);
    let signaled = server.terminate();
    // The drain has begun: the handshake now finishes within its grace.
    wait_not_listening(addr, SOON);
    let mut conn = on_time
        .finish()
        .expect("the handshake completes within the grace");
    let response = conn.get("/").expect("the first request is answered");
    assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
    assert!(response.close, "draining: Connection: close");
    // The behaviour under test: a client silent until after the 1 s grace is cut.
    thread::sleep(
        (signaled + Duration::from_millis(1_500)).saturating_duration_since(Instant::now()),
    );
    assert!(late.finish().is_err(), "past the header grace: closed");
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(example, "t13", "exit after the signal in", exit);
    assert!(exit < Duration::from_millis(2_500), "{exit:?}");
    server.drained();
}

/// What the HTTP/2 clients of t14 saw.
#[derive(Debug, Default)]
struct Streams {
    answered: usize,
    /// Refused by the server's GOAWAY (their id above its last stream id): never processed,
    /// safe to retry on a new connection (RFC 9113, 6.8).
    refused: usize,
    /// Not sent: the connection had already been told to go away.
    not_sent: usize,
    /// Failed any other way: lost.
    lost: Vec<String>,
}

/// Whether `error` is a stream refused by GOAWAY (never processed by the server).
fn refused_by_goaway(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        source = err.source();
    }
    false
}

/// How many answers each stream loop of t14 has before the signal.
const WARM_STREAMS: usize = 5;

/// 14. HTTP/2 over TLS, counted exactly: 8 connections with 10 streams each in a request
///     loop, SIGTERM once each loop has been answered a few times: every stream the server
///     took is answered; the others are refused by GOAWAY (h2load counts those as failed:
///     it does not retry them).
pub fn t14_http2_streams_counted(example: &str) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let _turn = one_at_a_time();
    let (server, cert, _) = start(example, &[]);
    let addr = server.addr;
    let connector = tokio_rustls::TlsConnector::from(config(&[&cert.der], H2_H1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let streams = runtime.block_on(async {
        // Each stream loop says when it has been answered a few times.
        let (warmed, mut warm) = tokio::sync::mpsc::unbounded_channel();
        let mut loops = Vec::new();
        let mut conns = Vec::new();
        for _ in 0..8 {
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, tcp).await.expect("handshake");
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .expect("HTTP/2 handshake");
            conns.push(tokio::spawn(conn));
            for _ in 0..10 {
                let (mut sender, warmed) = (sender.clone(), warmed.clone());
                loops.push(tokio::spawn(async move {
                    let mut seen = Streams::default();
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                    while tokio::time::Instant::now() < deadline {
                        if sender.ready().await.is_err() {
                            seen.not_sent += 1;
                            return seen;
                        }
                        let request = http::Request::get("https://localhost/")
                            .body(Empty::<bytes::Bytes>::new())
                            .expect("a request");
                        match sender.send_request(request).await {
                            Ok(response) => {
                                let status = response.status();
                                let body = response.into_body().collect().await;
                                match body.map(|body| body.to_bytes()) {
                                    Ok(body) if status == 200 && body == "hello" => {
                                        seen.answered += 1;
                                        if seen.answered == WARM_STREAMS {
                                            let _ = warmed.send(());
                                        }
                                    }
                                    other => seen.lost.push(format!("{status}: {other:?}")),
                                }
                            }
                            Err(error) if refused_by_goaway(&error) => {
                                seen.refused += 1;
                                return seen;
                            }
                            Err(error) if error.is_canceled() => {
                                seen.not_sent += 1;
                                return seen;
                            }
                            Err(error) => {
                                seen.lost.push(format!("{error:?}"));
                                return seen;
                            }
                        }
                    }
                    panic!("still answering 20 s later");
                }));
            }
        }
        let every_loop_warm = async {
            for _ in 0..loops.len() {
                warm.recv().await.expect("the loops run");
            }
        };
        tokio::time::timeout(SOON, every_loop_warm)
            .await
            .expect("every stream loop answered a few times");
        server.terminate();
        let mut total = Streams::default();
        for each in loops {
            // Each loop ends by its own deadline; a bound on the wait names a hang.
            let seen = tokio::time::timeout(Duration::from_secs(30), each)
                .await
                .expect("a stream loop still waiting 30 s after the signal")
                .expect("a stream loop panicked");
            total.answered += seen.answered;
            total.refused += seen.refused;
            total.not_sent += seen.not_sent;
            total.lost.extend(seen.lost);
        }
        // The client's connections end with the server's; what they say is not counted.
        for conn in conns {
            let _ = tokio::time::timeout(SOON, conn).await;
        }
        total
    });
    eprintln!(
        "measured: {example} t14: HTTP/2 over TLS, 80 streams looping, SIGTERM once warm: \
         {} answered, {} refused by GOAWAY, {} not sent, {} lost",
        streams.answered,
        streams.refused,
        streams.not_sent,
        streams.lost.len()
    );
    assert!(streams.lost.is_empty(), "streams lost: {:#?}", streams.lost);
    assert!(streams.answered > 0);
    server.drained();
}
