//! The HTTPS examples' plain-HTTP listener (`--redirect-addr`), in the same server.

use std::time::Duration;

use graceful_harness::http1::Conn;
use graceful_harness::tcp::wait_taken;
use graceful_harness::tls::{config, Cert, TlsConn};
use graceful_harness::{tools, Launch};

const SOON: Duration = Duration::from_secs(10);

/// Runs curl with `args` (and `-sS`, and `--resolve` for `localhost` on both ports),
/// bounded; returns what it printed, once it succeeded.
#[track_caller]
fn curl(ports: [u16; 2], args: &[&str]) -> String {
    let resolve: Vec<String> = ports
        .iter()
        .map(|port| format!("localhost:{port}:127.0.0.1"))
        .collect();
    let mut all = vec!["-sS", "--resolve", &resolve[0], "--resolve", &resolve[1]];
    all.extend(args);
    let (ok, out) = tools::run("curl", &all, SOON);
    assert!(ok, "curl {args:?}: {out}");
    out
}

/// r1. `--addr https=... --redirect-addr ...`: the plain port answers every request with
/// `308` to the same host and path on the HTTPS port (curl, which follows it with the same
/// method: a POST is answered `hello` over HTTPS); the HTTPS port answers; a request in
/// flight on each at SIGTERM is answered, and the one report counts both, by listener.
pub fn r1_plain_http_redirects_to_https(example: &str) {
    let cert = Cert::new(&format!("redirect-{example}"));
    let mut server = Launch::example(example)
        .args(cert.args())
        .args([
            "--addr",
            "https=127.0.0.1:0",
            "--redirect-addr",
            "127.0.0.1:0",
        ])
        .start();
    let https = server.addr;
    let http = server.listening(SOON);
    let ports = [https.port(), http.port()];
    let cacert = cert.cert.display().to_string();

    let plain = format!("http://localhost:{}/a/b?c=d", http.port());
    let seen = curl(
        ports,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            &plain,
        ],
    );
    assert_eq!(
        seen,
        format!("308 https://localhost:{}/a/b?c=d", https.port())
    );
    let h2 = curl(
        ports,
        &[
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            &plain,
        ],
    );
    assert_eq!(h2, seen, "HTTP/2 on the plain port too (its :authority)");
    let root = format!("http://localhost:{}/", http.port());
    assert_eq!(curl(ports, &["-L", "--cacert", &cacert, &root]), "hello");
    let posted = curl(
        ports,
        &["-L", "--cacert", &cacert, "-d", "hello=world", &root],
    );
    assert_eq!(
        posted, "hello",
        "a 308 keeps the method: POST / answers hello"
    );

    // A request in flight on the HTTPS listener, and a kept-alive connection answered
    // once (a redirect is answered at once) on the plain one, at SIGTERM.
    let client = config(&[&cert.der], &[b"http/1.1"]);
    let mut secure = TlsConn::connect(https, &client, SOON).expect("connect and handshake");
    secure.send_get("/sleep/1500").expect("send");
    wait_taken(https, &[secure.local_addr()], SOON);
    let mut redirected = Conn::connect(http, SOON).expect("connect");
    let answered = redirected.get("/x").expect("answered");
    assert_eq!((answered.status, answered.close), (308, false));
    server.terminate();
    assert!(
        redirected.closed_within(Duration::from_secs(5)),
        "the idle one is closed"
    );
    let answered = secure
        .response()
        .expect("the HTTPS request in flight is answered");
    assert_eq!((answered.status, &answered.body[..]), (200, &b"slept"[..]));
    let report = server.drained();
    assert_eq!((report.completed, report.idle_closed), (1, 1), "{report:?}");
    let line = server.wait_stderr("by listener:", SOON);
    assert!(
        line.contains("; by listener: https: 1 completed, http: 1 idle closed"),
        "{line}"
    );
}
