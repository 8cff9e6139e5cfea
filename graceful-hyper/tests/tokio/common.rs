//! A graceful-core server on tokio's paused clock, serving in-memory connections, and a raw
//! HTTP/1 client that sees every byte.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use graceful_core::{ConnId, Graceful, Shutdown, ShutdownReport, Sleep, Timer};
use graceful_hyper::{Http, Watch};
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// graceful-core's clock on tokio's (paused) clock.
#[derive(Debug)]
pub struct Clock;

impl Timer for Clock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

pub type Body = BoxBody<Bytes, Infallible>;

/// What the test server answers:
/// - `/` : `hello`
/// - `/sleep/{ms}`: `slept` after `ms`
/// - `/stream`: a chunked body whose chunks the test sends through `Server::chunks`
/// - `/bytes/{n}`: `n` bytes, streamed in chunks of 16 KiB made as they are sent
/// - `/fail`: the service fails
/// - `/upgrade`: 101, then hands the upgraded connection to the test (`Server::upgrades`)
/// - `/watch`: which connection's `Watch` the service found: `call=` in the service's call,
///   `poll=` in the response future, `spawned=` in a task it spawned, `ext=` in the
///   request's extensions (`-` for none)
/// - `/watch/panic`: the response future panics
/// - `/watch/stream`: a body whose every frame is made in its poll, from `Watch::current`:
///   `body=<id>` twice, then the end
/// - `/forever/{grpc,sse,plain}`: one chunk (`first`), then a body that never ends, as a gRPC
///   response (content-type `application/grpc`), as Server-Sent Events that opted in to the
///   stream grace (`StreamEnd::Clean`), or as plain text; `/forever/grpc-watch`: a gRPC one
///   that ends itself with `bye` when its `Watch` sees the drain
pub async fn route(
    req: Request<Incoming>,
    chunks: Arc<tokio::sync::Mutex<Option<mpsc::Receiver<Bytes>>>>,
    upgrades: mpsc::UnboundedSender<graceful_hyper::upgrade::OnUpgrade>,
    at_call: Option<ConnId>,
) -> Result<Response<Body>, Failed> {
    let mut req = req;
    let path = req.uri().path().to_owned();
    let response = if path == "/watch/panic" {
        panic!("the handler panics (on purpose)");
    } else if path == "/watch" {
        let poll = Watch::current().map(|watch| watch.conn_id());
        let spawned = tokio::spawn(async { Watch::current().map(|watch| watch.conn_id()) })
            .await
            .expect("spawned task");
        let ext = req.extensions().get::<Watch>().map(Watch::conn_id);
        let text = format!(
            "call={} poll={} spawned={} ext={}",
            show(at_call),
            show(poll),
            show(spawned),
            show(ext)
        );
        Response::new(BodyExt::boxed(Full::new(Bytes::from(text))))
    } else if path == "/watch/stream" {
        let mut left = 2;
        let frames = futures::stream::poll_fn(move |_| {
            if left == 0 {
                return std::task::Poll::Ready(None);
            }
            left -= 1;
            let id = Watch::current().map(|watch| watch.conn_id());
            let frame = Frame::data(Bytes::from(format!("body={};", show(id))));
            std::task::Poll::Ready(Some(Ok::<_, Infallible>(frame)))
        });
        Response::new(BodyExt::boxed(StreamBody::new(frames)))
    } else if let Some(kind) = path.strip_prefix("/forever/") {
        let first = futures::stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from("first")))]);
        // `grpc-watch`: a handler that ends its stream itself, with a last message, on the
        // drain; the others never end.
        let until = match (kind, Watch::current()) {
            ("grpc-watch", Some(watch)) => futures::future::Either::Left(watch.drain_requested()),
            _ => futures::future::Either::Right(futures::future::pending()),
        };
        let last = Ok(Frame::data(Bytes::from("bye")));
        let rest = futures::stream::pending()
            .take_until(until)
            .chain(futures::stream::iter([last]));
        let body = StreamBody::new(first.chain(rest));
        let mut response = Response::new(BodyExt::boxed(body));
        let content_type = match kind {
            "grpc" | "grpc-watch" => "application/grpc",
            "sse" => {
                response
                    .extensions_mut()
                    .insert(graceful_hyper::StreamEnd::Clean);
                "text/event-stream"
            }
            _ => "text/plain",
        };
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        response
    } else if path == "/" {
        Response::new(full("hello"))
    } else if let Some(ms) = path.strip_prefix("/sleep/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Response::new(full("slept"))
    } else if path == "/stream" {
        let rx = chunks.lock().await.take().expect("one /stream per test");
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
        });
        Response::new(BodyExt::boxed(StreamBody::new(stream)))
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        const CHUNK: u64 = 16 * 1024;
        let left: u64 = n.parse().unwrap_or(0);
        let chunks = futures::stream::unfold(left, |left| async move {
            let n = left.min(CHUNK);
            let chunk = Frame::data(Bytes::from(vec![b'x'; n as usize]));
            (n > 0).then_some((Ok::<_, Infallible>(chunk), left - n))
        });
        Response::new(BodyExt::boxed(StreamBody::new(chunks)))
    } else if path == "/fail" {
        return Err(Failed);
    } else if path == "/upgrade" {
        let _ = upgrades.send(graceful_hyper::upgrade::on(&mut req));
        let mut response = Response::new(full(""));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response.headers_mut().insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("echo"),
        );
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        response
    } else {
        let mut response = Response::new(full("not found"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    };
    Ok(response)
}

/// The error of the `/fail` route.
#[derive(Debug)]
pub struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the route failed")
    }
}

impl std::error::Error for Failed {}

/// A connection id as `/watch` writes it: `-` for none.
pub fn show(id: Option<ConnId>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.as_u64().to_string())
}

pub fn full(text: &'static str) -> Body {
    BodyExt::boxed(Full::new(Bytes::from_static(text.as_bytes())))
}

pub struct Server {
    pub shutdown: Shutdown,
    pub acceptor: graceful_core::Acceptor,
    pub http: Http<graceful_tokio::Tokio>,
    pub run: JoinHandle<ShutdownReport>,
    /// Feeds the `/stream` body; drop it to end the body.
    pub chunks: Option<mpsc::Sender<Bytes>>,
    chunks_rx: Arc<tokio::sync::Mutex<Option<mpsc::Receiver<Bytes>>>>,
    upgrades_tx: mpsc::UnboundedSender<graceful_hyper::upgrade::OnUpgrade>,
    pub upgrades: mpsc::UnboundedReceiver<graceful_hyper::upgrade::OnUpgrade>,
    pub served: Vec<JoinHandle<Result<(), graceful_hyper::Error>>>,
    /// The id of each connection accepted, in order.
    pub ids: Vec<ConnId>,
}

impl Server {
    /// A server with a 10 s timeout and a 250 ms quiet period.
    pub fn start() -> Server {
        Server::with(Graceful::builder().timeout(Duration::from_secs(10)))
    }

    pub fn with(builder: graceful_core::Builder<Graceful>) -> Server {
        let graceful = builder.build(Clock).expect("valid settings");
        let (chunks, rx) = mpsc::channel(16);
        let (upgrades_tx, upgrades) = mpsc::unbounded_channel();
        Server {
            shutdown: graceful.shutdown(),
            acceptor: graceful.acceptor(),
            http: Http::new(&graceful_tokio::Tokio),
            run: tokio::spawn(graceful.run()),
            chunks: Some(chunks),
            chunks_rx: Arc::new(tokio::sync::Mutex::new(Some(rx))),
            upgrades_tx,
            upgrades,
            served: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// Accepts one in-memory connection and serves it; returns the client's end.
    pub fn connect(&mut self) -> DuplexStream {
        let http = self.http.clone();
        self.connect_with(&http)
    }

    /// As [`connect`](Server::connect), with other hyper settings.
    pub fn connect_with(&mut self, http: &Http<graceful_tokio::Tokio>) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let conn = self.acceptor.try_reserve().expect("accepting").register();
        self.ids.push(conn.id());
        let chunks = self.chunks_rx.clone();
        let upgrades = self.upgrades_tx.clone();
        let service = hyper::service::service_fn(move |req| {
            let at_call = Watch::current().map(|watch| watch.conn_id());
            route(req, chunks.clone(), upgrades.clone(), at_call)
        });
        let serve = http.serve_connection(TokioIo::new(server), conn, service);
        self.served.push(tokio::spawn(serve));
        client
    }

    /// Stops the server and waits for the report; checks protocol code made no illegal
    /// transition.
    pub async fn report(self) -> ShutdownReport {
        let report = self.run.await.expect("manager task");
        assert_eq!(self.shutdown.illegal_transitions(), 0);
        report
    }
}

/// A parsed HTTP/1 response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads from a stream, keeping what it read past the last response.
pub struct Client<S> {
    pub io: S,
    buf: Vec<u8>,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Client<S> {
    pub fn new(io: S) -> Client<S> {
        Client {
            io,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write");
    }

    pub async fn get(&mut self, path: &str) {
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        self.send(request.as_bytes()).await;
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.io.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response, or `None` if the stream ended first.
    pub async fn reply(&mut self) -> Option<Reply> {
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("ascii head");
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 101 {
            return Some(reply);
        }
        if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().ok()?;
            while self.buf.len() < len {
                if !self.fill().await {
                    return None;
                }
            }
            reply.body = self.buf.drain(..len).collect();
        } else if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(at) = find(&self.buf, b"\r\n") {
                        break at;
                    }
                    if !self.fill().await {
                        return None;
                    }
                };
                let size = std::str::from_utf8(&self.buf[..line_end]).ok()?;
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                while self.buf.len() < line_end + 2 + size + 2 {
                    if !self.fill().await {
                        return None;
                    }
                }
                reply
                    .body
                    .extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        }
        Some(reply)
    }

    /// Whether the stream ends (EOF or reset) with nothing more to read.
    pub async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Virtual time since `start`.
pub fn since(start: tokio::time::Instant) -> Duration {
    tokio::time::Instant::now() - start
}

/// Lets every task run until all wait (on IO or on the clock): paused time moves 1 ms.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}
