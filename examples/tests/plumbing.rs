//! The examples' shared plumbing (`src/contract.rs`), alone: the flags, the routes, the
//! progress line on graceful-core's manual timer, and the certificate fingerprint. The
//! examples that use them run as child processes in the other suites.

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use contract::{fingerprint, print_progress, progress_line, Flags, Routes};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use graceful_core::{Graceful, ManualTimer};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn flags_have_defaults_and_values() {
    let flags = Flags::parse::<&str>([], false).unwrap();
    assert_eq!(flags.tcp(), [("127.0.0.1_3000", "127.0.0.1:3000")]);
    assert!(flags.unix().is_empty() && flags.redirect.is_none());
    assert_eq!(
        (flags.timeout, flags.drain_delay, flags.quiet_period()),
        (Duration::from_secs(30), Duration::ZERO, ms(250))
    );
    assert_eq!(
        (flags.cert, flags.handshake_timeout, flags.close_spread),
        (None, Duration::from_secs(10), None)
    );

    let given = ["--addr", "[::1]:0", "--timeout", "0.1", "--drain-delay=2.5"];
    let flags = Flags::parse(given, false).unwrap();
    assert_eq!(flags.tcp(), [("[__1]_0", "[::1]:0")]);
    assert_eq!((flags.timeout, flags.drain_delay), (ms(100), ms(2500)));
    assert_eq!(flags.quiet_period(), ms(50), "half of a short timeout");
    let flags = Flags::parse(["--close-spread", "1.5"], false).unwrap();
    assert_eq!(flags.close_spread, Some(ms(1500)));

    let tls = [
        "--cert",
        "c.pem",
        "--key",
        "k.pem",
        "--handshake-timeout",
        "0.5",
    ];
    let flags = Flags::parse(tls, true).unwrap();
    assert_eq!(flags.cert, Some(("c.pem".into(), "k.pem".into())));
    assert_eq!(flags.handshake_timeout, ms(500));
}

#[test]
fn addr_is_given_once_per_listener() {
    let given = [
        "--addr=web=127.0.0.1:0",
        "--addr",
        "unix:/tmp/a=b.sock",
        "--addr",
        "127.0.0.1:0",
        "--addr",
        "admin=unix:/run/admin.sock",
    ];
    let flags = Flags::parse(given, false).unwrap();
    assert_eq!(
        flags.tcp(),
        [("web", "127.0.0.1:0"), ("127.0.0.1_0", "127.0.0.1:0")],
        "named, else named for the address; port 0 twice is two ports"
    );
    let unix: Vec<_> = (flags.unix().into_iter())
        .map(|(name, path)| (name.to_owned(), path.to_owned()))
        .collect();
    assert_eq!(
        unix,
        [
            ("unix:/tmp/a=b.sock".to_owned(), "/tmp/a=b.sock".into()),
            ("admin".to_owned(), "/run/admin.sock".into()),
        ],
        "a `=` after a `:` or a `/` is the path's"
    );
    assert!(flags.one_tcp().is_err(), "the line protocol serves one");
    let one = Flags::parse(["--addr", "127.0.0.1:7"], false).unwrap();
    assert_eq!(one.one_tcp().unwrap(), "127.0.0.1:7");

    let tls = [
        "--addr",
        "https=127.0.0.1:0",
        "--redirect-addr",
        "127.0.0.1:0",
    ];
    let flags = Flags::parse(tls, true).unwrap();
    assert_eq!(flags.redirect, Some(("http".into(), "127.0.0.1:0".into())));
    let tls = ["--redirect-addr", "plain=127.0.0.1:80"];
    let flags = Flags::parse(tls, true).unwrap();
    assert_eq!(
        flags.redirect,
        Some(("plain".into(), "127.0.0.1:80".into()))
    );
}

#[test]
fn bytes_are_streamed_in_chunks_of_a_static_buffer() {
    use hyper::body::Body as _;
    let n = 3 * 65_536 + 7;
    let mut body = contract::Body::bytes(n);
    let mut frames = Vec::new();
    while let Some(frame) = smol::block_on(body.frame()) {
        frames.push(frame.unwrap().into_data().unwrap().len());
        assert_eq!(
            body.size_hint().exact(),
            Some(n - frames.iter().sum::<usize>() as u64)
        );
    }
    assert_eq!(frames, [65_536, 65_536, 65_536, 7]);
    assert!(body.is_end_stream());
    let whole = contract::Body::from("hello");
    assert_eq!(
        (whole.size_hint().exact(), whole.is_end_stream()),
        (Some(5), false)
    );
    assert!(contract::Body::from("").is_end_stream());
}

#[test]
fn bad_command_lines_are_refused() {
    let cases: &[(&[&str], bool, &str)] = &[
        (&["--port", "80"], true, "invalid option '--port'"),
        (&["--cert", "c.pem"], false, "invalid option '--cert'"),
        (&["extra"], false, "unexpected argument"),
        (&["--addr"], false, "missing argument for option '--addr'"),
        (&["--timeout", "soon"], false, "expected seconds"),
        (&["--timeout", "0"], false, "expected a positive number"),
        (&["--timeout", "-1"], false, "expected seconds"),
        (&["--timeout", "inf"], false, "expected seconds"),
        (&["--drain-delay", "NaN"], false, "expected seconds"),
        (
            &["--close-spread", "0"],
            false,
            "expected a positive number",
        ),
        (&["--close-spread", "soon"], true, "expected seconds"),
        (&["--cert", "c.pem"], true, "--cert and --key go together"),
        (
            &["--addr", "a=:1", "--addr", "a=:2"],
            false,
            "two listeners named \"a\"",
        ),
        (
            &["--addr", ":1", "--addr", "b=:1"],
            false,
            ":1 is given twice",
        ),
        (
            &["--addr", "unix:/x", "--addr", "unix:/x"],
            false,
            "unix:/x is given twice",
        ),
        (&["--addr", "=:1"], false, "a name before `=`"),
        (&["--addr", "unix:"], false, "expected unix:/PATH"),
        (&["--addr", "a="], false, "expected HOST:PORT"),
        (
            &["--redirect-addr", ":80"],
            false,
            "invalid option '--redirect-addr'",
        ),
        (
            &["--redirect-addr", "unix:/x"],
            true,
            "--redirect-addr takes HOST:PORT",
        ),
        (
            &["--addr", "http=:1", "--redirect-addr", ":2"],
            true,
            "two listeners named \"http\"",
        ),
    ];
    for (args, tls, expected) in cases {
        let error = Flags::parse(args.iter(), *tls).unwrap_err().to_string();
        assert!(error.contains(expected), "{args:?}: {error}");
    }
}

#[test]
fn redirects_keep_the_host_and_the_path_on_the_https_port() {
    let location = |uri: &str, host: Option<&str>, port: u16| {
        let mut request = http::Request::get(uri);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = contract::redirect(&request.body(()).unwrap(), port);
        let location = response.headers().get("location");
        let location = location.map(|value| value.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    };
    let to = |location: &str| (308, Some(location.to_owned()));
    assert_eq!(
        location("/a/b?c=d", Some("example.com:8080"), 8443),
        to("https://example.com:8443/a/b?c=d")
    );
    assert_eq!(
        location("/", Some("example.com"), 443),
        to("https://example.com/")
    );
    assert_eq!(
        location("/x", Some("[::1]:80"), 8443),
        to("https://[::1]:8443/x")
    );
    assert_eq!(
        location("http://h2.example:80/p?q", None, 8443),
        to("https://h2.example:8443/p?q"),
        "HTTP/2's :authority"
    );
    assert_eq!(location("/", None, 8443), (400, None), "no host");
    assert_eq!(location("/", Some("a b"), 8443), (400, None), "no host");
}

#[test]
fn the_routes_answer_the_drills() {
    let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    let shutdown = graceful.shutdown();
    let routes = Routes::new(graceful_smol::Smol::default(), shutdown.clone());
    let get = |path: &str| {
        let request = http::Request::get(path).body(Empty::<bytes::Bytes>::new());
        let response = smol::block_on(routes.answer(request.unwrap()));
        let status = response.status().as_u16();
        let body = smol::block_on(response.into_body().collect()).unwrap();
        (status, String::from_utf8(body.to_bytes().to_vec()).unwrap())
    };
    assert_eq!(get("/sleep/10"), (200, "slept".to_owned()));
    assert_eq!(get("/pid"), (200, std::process::id().to_string()));
    assert_eq!(get("/ready"), (200, "ready".to_owned()));
    assert_eq!(get("/upgrade").0, 400, "no `upgrade` header");
    assert_eq!(get("/sleep/soon").0, 400);
    assert_eq!(get("/bytes/5"), (200, "xxxxx".to_owned()));
    assert_eq!(get("/bytes/0"), (200, String::new()));
    assert_eq!(get("/bytes/-1").0, 400);
    assert_eq!(get("/bytes/many").0, 400);
    assert_eq!(get("/nothing").0, 404);

    // `POST /` reads the body to its end before it answers: one that fails at its end
    // gets no `hello`.
    let post = |last: Result<&'static str, &'static str>| {
        let chunks = [Ok("hello="), last].map(|chunk| chunk.map(|c| Frame::data(Bytes::from(c))));
        let body = StreamBody::new(futures::stream::iter(chunks));
        let response = smol::block_on(routes.answer(http::Request::post("/").body(body).unwrap()));
        let status = response.status().as_u16();
        let body = smol::block_on(response.into_body().collect()).unwrap();
        (status, String::from_utf8(body.to_bytes().to_vec()).unwrap())
    };
    assert_eq!(post(Ok("world")), (200, "hello".to_owned()));
    assert_eq!(
        post(Err("cut short")).0,
        400,
        "the body was read to its end"
    );

    shutdown.stop();
    futures::executor::block_on(graceful.run());
    assert_eq!(get("/ready"), (503, "draining".to_owned()));
}

/// The progress line of a server draining with these counts, `left` of its 30 s timeout left
/// (`None`: no timeout).
fn draining(active: usize, idle: usize, hijacked: usize, left: Option<Duration>) -> String {
    let timer = ManualTimer::new();
    let builder = match left {
        Some(_) => Graceful::builder().timeout(Duration::from_secs(30)),
        None => Graceful::builder().no_timeout(),
    };
    let graceful = builder.build(timer.clone()).unwrap();
    let acceptor = graceful.acceptor();
    let conns: Vec<_> = (0..active + idle + hijacked)
        .map(|_| acceptor.try_reserve().unwrap().register())
        .collect();
    for (i, conn) in conns.iter().enumerate() {
        match i {
            i if i < active => conn.mark_active(),
            i if i < active + idle => {
                conn.mark_active();
                conn.mark_idle();
            }
            _ => conn.mark_hijacked(),
        }
    }
    let shutdown = graceful.shutdown();
    let mut run = std::pin::pin!(graceful.run());
    shutdown.stop();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(run.as_mut().poll(&mut cx).is_pending());
    timer.advance(Duration::from_secs(30) - left.unwrap_or_default());
    progress_line(&shutdown.progress()).unwrap()
}

#[test]
fn the_progress_line_names_the_busy_states_and_the_time_left() {
    assert_eq!(
        draining(2, 0, 1, Some(ms(27_500))),
        "draining: 2 active, 1 hijacked, 27.5 s left (signal again to stop now)"
    );
    assert_eq!(
        draining(1, 3, 0, Some(ms(12_049))),
        "draining: 1 active, 3 idle, 12.0 s left (signal again to stop now)"
    );
    assert_eq!(
        draining(0, 0, 1, None),
        "draining: 1 hijacked, no timeout (signal again to stop now)"
    );

    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .drain_delay(Duration::from_secs(5))
        .build(timer.clone())
        .unwrap();
    let shutdown = graceful.shutdown();
    assert_eq!(
        progress_line(&shutdown.progress()),
        None,
        "serving: no line"
    );
    let conn = graceful.acceptor().try_reserve().unwrap().register();
    conn.mark_active();
    let mut run = std::pin::pin!(graceful.run());
    shutdown.signal();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(run.as_mut().poll(&mut cx).is_pending());
    timer.advance(ms(1000));
    assert_eq!(
        progress_line(&shutdown.progress()).as_deref(),
        Some("serving on before the drain: 1 active, 4.0 s to go (signal again to stop now)")
    );
}

#[test]
fn the_progress_line_names_what_the_close_spread_has_left_to_close() {
    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .close_spread(Duration::from_secs(1))
        .build(timer.clone())
        .unwrap();
    let acceptor = graceful.acceptor();
    let conns: Vec<_> = (0..4)
        .map(|_| acceptor.try_reserve().unwrap().register())
        .collect();
    timer.advance(Duration::from_secs(5));
    let shutdown = graceful.shutdown();
    let mut run = std::pin::pin!(graceful.run());
    shutdown.stop();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(run.as_mut().poll(&mut cx).is_pending());
    timer.advance(ms(250));
    assert!(run.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        progress_line(&shutdown.progress()).as_deref(),
        Some("draining: 4 new, 2 to close over the next 0.8 s, 29.8 s left (signal again to stop now)")
    );
    drop(conns);
}

/// The lines written, shared with the test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// The lines written since the last call.
    fn take(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn progress_comes_at_once_then_at_most_a_line_a_second_and_a_heartbeat() {
    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .timeout(Duration::from_secs(30))
        .build(timer.clone())
        .unwrap();
    let shutdown = graceful.shutdown();
    let acceptor = graceful.acceptor();
    let conns: Vec<_> = (0..3)
        .map(|_| acceptor.try_reserve().unwrap().register())
        .collect();
    conns.iter().for_each(|conn| conn.mark_active());

    let mut pool = LocalPool::new();
    let lines = Lines::default();
    let done = Rc::new(Cell::new(false));
    let spawner = pool.spawner();
    spawner
        .spawn_local(async move {
            graceful.run().await;
        })
        .unwrap();
    let (progress, finished) = (
        print_progress(shutdown.clone(), timer.clone(), lines.clone()),
        done.clone(),
    );
    spawner
        .spawn_local(async move {
            progress.await;
            finished.set(true);
        })
        .unwrap();
    let mut advance = |by: Duration| {
        timer.advance(by);
        pool.run_until_stalled();
        lines.take()
    };

    assert!(advance(Duration::ZERO).is_empty(), "serving: nothing");
    shutdown.signal();
    assert_eq!(
        advance(Duration::ZERO),
        ["draining: 3 active, 30.0 s left (signal again to stop now)"]
    );
    conns[0].mark_idle();
    conns[1].mark_idle();
    assert!(advance(ms(500)).is_empty(), "at most a line a second");
    assert_eq!(
        advance(ms(500)),
        ["draining: 1 active, 2 idle, 29.0 s left (signal again to stop now)"]
    );
    assert!(advance(ms(4999)).is_empty(), "nothing new");
    assert_eq!(
        advance(ms(1)),
        ["draining: 1 active, 2 idle, 24.0 s left (signal again to stop now)"],
        "the heartbeat"
    );

    drop(conns);
    assert!(advance(Duration::ZERO).is_empty(), "drained: no line");
    assert!(advance(ms(1000)).is_empty(), "the report is out: no line");
    assert!(done.get(), "ended with the shutdown");
}

#[test]
fn the_fingerprint_is_sha256_as_openssl_prints_it() {
    let print = fingerprint(b"");
    assert!(print.starts_with("E3:B0:C4:42:98:FC:1C:14:"), "{print}");
    assert_eq!(print.len(), 32 * 3 - 1);
}
