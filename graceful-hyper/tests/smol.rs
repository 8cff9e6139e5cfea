//! graceful-hyper on smol, over loopback TCP, connections accepted by hand and served with
//! graceful-hyper's futures-io glue (`HyperIo`) on graceful-smol's runtime: the crate names
//! no runtime. smol has no virtual clock, so the timings here use short real durations and
//! generous bounds; the client is blocking `std::net`, on the test thread.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use graceful_core::serve::Runtime;
use graceful_core::{Graceful, Outcome, Shutdown, ShutdownReport};
use graceful_harness::wait_until;
use graceful_hyper::{Http, HyperIo, Watch};
use graceful_smol::Smol;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

/// Bounds for what must happen "soon": they catch hangs, not slowness.
const SOON: Duration = Duration::from_secs(5);

async fn route(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/watch" {
        // The connection's id, found in the response future's poll on smol's executor.
        let id = Watch::current().map(|watch| watch.conn_id().to_string());
        let id = id.unwrap_or_else(|| "-".to_owned());
        return Ok(Response::new(Full::new(Bytes::from(id))));
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        smol::Timer::after(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    if path == "/upgrade" {
        let upgrade = graceful_hyper::upgrade::on(&mut req);
        smol::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let (mut io, watch) = upgraded.into_parts();
            watch.drain_requested().await;
            // hyper's IO traits, used directly: a 4-byte write goes out whole.
            let _ = std::future::poll_fn(|cx| {
                hyper::rt::Write::poll_write(std::pin::Pin::new(&mut io), cx, b"bye\n")
            })
            .await;
            drop((io, watch));
        })
        .detach();
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert(http::header::UPGRADE, http::HeaderValue::from_static("bye"));
        return Ok(response);
    }
    if path == "/stubborn" {
        // Plain hyper: an application that keeps the upgraded IO and never looks at it.
        let upgrade = hyper::upgrade::on(&mut req);
        smol::spawn(async move {
            let Ok(io) = upgrade.await else { return };
            std::future::pending::<()>().await;
            drop(io);
        })
        .detach();
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert(http::header::UPGRADE, http::HeaderValue::from_static("bye"));
        return Ok(response);
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    report: smol::Task<ShutdownReport>,
}

/// A server on smol's global executor: a 5 s timeout, a 100 ms quiet period (and linger)
/// and a 200 ms header grace.
fn start() -> Server {
    start_with(Duration::from_millis(100))
}

fn start_with(quiet_period: Duration) -> Server {
    start_full(quiet_period, Duration::from_secs(5))
}

fn start_full(quiet_period: Duration, timeout: Duration) -> Server {
    let graceful = Graceful::builder()
        .timeout(timeout)
        .quiet_period(quiet_period)
        .build(Smol::default().timer())
        .unwrap();
    let shutdown = graceful.shutdown();
    let acceptor = graceful.acceptor();
    // The keep-alive linger is the quiet period above, read from each `Conn`.
    let http = Http::new(&Smol::default()).header_grace(Duration::from_millis(200));
    let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    smol::spawn(async move {
        while let Some(slot) = acceptor.reserve().await {
            let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
                acceptor.stopped().await;
                None
            })
            .await;
            let Some(Ok((stream, _))) = accepted else {
                break;
            };
            let conn = slot.register();
            let service = hyper::service::service_fn(route);
            smol::spawn(http.serve_connection(HyperIo::new(stream), conn, service)).detach();
        }
    })
    .detach();
    let report = smol::spawn(graceful.run());
    Server {
        addr,
        shutdown,
        report,
    }
}

impl Server {
    fn connect(&self) -> BufReader<TcpStream> {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        BufReader::new(stream)
    }

    fn report(self) -> ShutdownReport {
        let report = smol::block_on(self.report);
        assert_eq!(self.shutdown.illegal_transitions(), 0);
        report
    }
}

/// Writes a GET and reads its response: (status, closes, body). `None` if the connection
/// ended first.
fn get(client: &mut BufReader<TcpStream>, path: &str) -> Option<(u16, bool, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n");
    client.get_mut().write_all(request.as_bytes()).ok()?;
    read_reply(client)
}

fn read_reply(client: &mut BufReader<TcpStream>) -> Option<(u16, bool, String)> {
    let mut line = String::new();
    if client.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status = line.split(' ').nth(1)?.parse().ok()?;
    let (mut closes, mut len) = (false, 0);
    loop {
        line.clear();
        client.read_line(&mut line).ok()?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        closes |= header == "connection: close";
        if let Some(value) = header.strip_prefix("content-length: ") {
            len = value.parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    client.read_exact(&mut body).ok()?;
    Some((status, closes, String::from_utf8(body).ok()?))
}

fn at_eof(client: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    match client.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn a_keep_alive_client_is_answered_with_close_then_closed() {
    let server = start_with(Duration::from_millis(500));
    // Quiet for longer than the quiet period when the drain begins: closed at once, which
    // tells the test that the drain has begun.
    let mut canary = server.connect();
    std::thread::sleep(Duration::from_millis(600));
    let mut client = server.connect();
    assert_eq!(get(&mut client, "/"), Some((200, false, "hello".into())));

    server.shutdown.stop();
    assert!(at_eof(&mut canary));
    // Within the client's quiet period: answered, with `Connection: close`.
    assert_eq!(get(&mut client, "/"), Some((200, true, "hello".into())));
    assert!(at_eof(&mut client));
    let report = server.report();
    assert_eq!((report.completed, report.idle_closed), (1, 1));
    assert_eq!(report.outcome, Outcome::Drained);
}

#[test]
fn an_active_request_completes_and_a_partial_head_is_cut_after_the_grace() {
    let server = start();
    let mut active = server.connect();
    let mut partial = server.connect();
    partial
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nho")
        .unwrap();
    active
        .get_mut()
        .write_all(b"GET /sleep/300 HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    wait_until("the two connections, one active", SOON, || {
        let counts = server.shutdown.counts();
        (counts.total(), counts.active) == (2, 1)
    });

    let start = Instant::now();
    server.shutdown.stop();
    assert_eq!(read_reply(&mut active), Some((200, true, "hello".into())));
    assert!(at_eof(&mut partial), "cut without an answer");
    let cut = start.elapsed();
    assert!(
        cut >= Duration::from_millis(190) && cut < Duration::from_secs(3),
        "{cut:?}"
    );
    let report = server.report();
    assert_eq!((report.completed, report.idle_closed), (1, 1));
    assert_eq!(report.outcome, Outcome::Drained);
}

#[test]
fn an_upgraded_connection_is_told_and_counted() {
    let server = start();
    let mut client = server.connect();
    client
        .get_mut()
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: bye\r\n\r\n",
        )
        .unwrap();
    assert_eq!(read_reply(&mut client).map(|r| r.0), Some(101));
    wait_until("the upgrade to be hijacked", SOON, || {
        server.shutdown.counts().hijacked == 1
    });

    server.shutdown.stop();
    let mut bye = String::new();
    client.read_to_string(&mut bye).unwrap();
    assert_eq!(bye, "bye\n");
    let report = server.report();
    assert_eq!((report.hijacked, report.outcome), (1, Outcome::Drained));
}

#[test]
fn a_stubborn_upgrade_is_closed_at_the_socket_when_killed() {
    let server = start_full(Duration::from_millis(100), Duration::from_millis(300));
    let mut client = server.connect();
    client
        .get_mut()
        .write_all(
            b"GET /stubborn HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: bye\r\n\r\n",
        )
        .unwrap();
    assert_eq!(read_reply(&mut client).map(|r| r.0), Some(101));
    wait_until("the upgrade to be hijacked", SOON, || {
        server.shutdown.counts().hijacked == 1
    });

    server.shutdown.stop();
    let report = server.report();
    assert_eq!((report.killed, report.outcome), (1, Outcome::TimedOut));
    // The report is out: the socket is closed, though the application still holds the IO.
    let _ = client.get_mut().write_all(b"anyone?");
    assert!(at_eof(&mut client), "the killed upgrade is still open");
}

#[test]
fn a_handler_finds_its_connection_on_smol() {
    let server = start();
    assert!(Watch::current().is_none());
    let mut first = server.connect();
    let mut second = server.connect();
    let mut ids = Vec::new();
    for _ in 0..2 {
        for client in [&mut first, &mut second] {
            ids.push(get(client, "/watch").expect("a response").2);
        }
    }
    assert!(!ids.contains(&"-".to_owned()), "{ids:?}");
    assert_eq!(
        (&ids[0], &ids[1]),
        (&ids[2], &ids[3]),
        "keep-alive: the same connection"
    );
    assert_ne!(ids[0], ids[1], "two connections");
    drop((first, second));
    server.shutdown.stop();
    assert_eq!(server.report().outcome, Outcome::Drained);
}
