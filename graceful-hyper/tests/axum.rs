//! axum apps served by graceful-hyper, tried with real clients on loopback: a standard
//! `WebSocketUpgrade` route with a tokio-tungstenite client, and an `Sse` route.
//!
//! Each test runs on tokio's multi-thread and current-thread runtimes. Real sockets need the
//! real clock, so the server's timeouts are short real ones and every wait is on a condition
//! (a count, a frame, the end of a stream) bounded by a generous deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, Sse};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use futures::{SinkExt, StreamExt};
use graceful_core::{
    ConnState, Graceful, Outcome, Shutdown, ShutdownPhase, ShutdownReport, Sleep, Timer, Work,
};
use graceful_hyper::{Http, Watch};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite;

/// Bounds every wait: it catches a hang, not a slowness.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Clock;

impl Timer for Clock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// `/ws/polite` echoes and closes with `1001 going away` when the drain begins;
/// `/ws/stubborn` echoes and ignores the drain; `/sse` sends a `tick` every 20 ms until the
/// drain, then a last `bye` event, and ends; `/who` names the connection of the `Watch`
/// extractor and of the one in the extensions, if any.
fn router() -> Router {
    Router::new()
        .route(
            "/who",
            get(|watch: Watch, ext: Option<Extension<Watch>>| async move {
                let ext = ext.map(|Extension(watch)| watch.conn_id().to_string());
                format!(
                    "watch={} ext={}",
                    watch.conn_id(),
                    ext.as_deref().unwrap_or("-")
                )
            }),
        )
        .route(
            "/ws/polite",
            get(|ws: WebSocketUpgrade, watch: Watch| async move {
                ws.on_upgrade(move |socket| polite(socket, watch))
            }),
        )
        .route(
            "/ws/stubborn",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(stubborn) }),
        )
        .route("/sse", get(sse))
}

async fn polite(mut socket: WebSocket, watch: Watch) {
    let drained = watch.drain_requested();
    tokio::pin!(drained);
    loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            () = &mut drained => break,
        }
    }
    let close = CloseFrame {
        code: axum::extract::ws::close_code::AWAY,
        reason: "server draining".into(),
    };
    if socket.send(Message::Close(Some(close))).await.is_err() {
        return;
    }
    // The client answers the close; then the socket is dropped.
    while let Some(Ok(_)) = socket.recv().await {}
}

async fn stubborn(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if let Message::Text(text) = message {
            if socket.send(Message::Text(text)).await.is_err() {
                return;
            }
        }
    }
}

async fn sse(watch: Watch) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let ticks = futures::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok(Event::default().data("tick")), ()))
    });
    let bye = futures::stream::once(async { Ok(Event::default().data("bye")) });
    Sse::new(ticks.take_until(watch.drain_requested()).chain(bye))
}

struct App {
    shutdown: Shutdown,
    addr: SocketAddr,
    run: JoinHandle<ShutdownReport>,
}

impl App {
    async fn start(timeout: Duration) -> App {
        App::start_with(timeout, Http::new(&graceful_tokio::Tokio)).await
    }

    async fn start_with(timeout: Duration, http: Http<graceful_tokio::Tokio>) -> App {
        let graceful = Graceful::builder()
            .timeout(timeout)
            .build(Clock)
            .expect("valid settings");
        let acceptor = graceful.acceptor();
        let shutdown = graceful.shutdown();
        let run = tokio::spawn(graceful.run());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = router();
        tokio::spawn(async move {
            while let Some(slot) = acceptor.reserve().await {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    () = acceptor.stopped() => break,
                };
                let conn = slot.register();
                let service = TowerToHyperService::new(router.clone());
                tokio::spawn(http.serve_connection(TokioIo::new(stream), conn, service));
            }
        });
        App {
            shutdown,
            addr,
            run,
        }
    }

    async fn report(self) -> ShutdownReport {
        tokio::time::timeout(PATIENCE, self.run)
            .await
            .expect("the shutdown ends")
            .unwrap()
    }

    /// Waits until the live counts satisfy `ok`.
    async fn wait_counts(&self, ok: impl Fn(graceful_core::ConnCounts) -> bool) {
        within(async {
            while !ok(self.shutdown.counts()) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
    }
}

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("within the patience bound")
}

type Client = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn ws_client(addr: SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}{path}");
    let (client, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), 101);
    client
}

/// Sends a text message and reads its echo.
async fn echo(client: &mut Client, text: &str) {
    client
        .send(tungstenite::Message::text(text.to_owned()))
        .await
        .unwrap();
    let reply = within(client.next()).await.unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), text);
}

async fn polite_websocket_closes_with_a_close_frame_and_is_counted_hijacked() {
    let app = App::start(Duration::from_secs(10)).await;
    let mut client = ws_client(app.addr, "/ws/polite").await;
    echo(&mut client, "ping").await;
    app.wait_counts(|counts| counts.hijacked == 1 && counts.total() == 1)
        .await;

    let stopped = Instant::now();
    app.shutdown.stop();
    let frame = within(client.next()).await.unwrap().unwrap();
    let tungstenite::Message::Close(Some(close)) = frame else {
        panic!("expected a close frame, got {frame:?}");
    };
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "server draining");
    // tungstenite answers the close; the server then drops the socket.
    while let Some(Ok(_)) = within(client.next()).await {}

    let report = app.report().await;
    assert_eq!(
        (report.outcome, report.hijacked, report.total()),
        (Outcome::Drained, 1, 1)
    );
    assert!(stopped.elapsed() < Duration::from_secs(5), "{report}");
}

async fn stubborn_websocket_is_closed_at_the_timeout_and_the_client_sees_the_end() {
    let app = App::start(Duration::from_millis(300)).await;
    let mut client = ws_client(app.addr, "/ws/stubborn").await;
    echo(&mut client, "ping").await;
    app.wait_counts(|counts| counts.hijacked == 1).await;

    app.shutdown.stop();
    let shutdown = app.shutdown.clone();
    let report = app.report().await;
    let reported = Instant::now();
    assert_eq!((report.outcome, report.killed), (Outcome::TimedOut, 1));
    // The report is out: the connection is closed at the socket. A read ends (EOF or a
    // reset) rather than hanging, and a message sent now is not echoed.
    let _ = client.send(tungstenite::Message::text("after")).await;
    loop {
        match within(client.next()).await {
            None | Some(Err(_)) => break,
            Some(Ok(tungstenite::Message::Text(text))) => {
                panic!("the killed WebSocket still echoes: {text}")
            }
            Some(Ok(_)) => {}
        }
    }
    let seen = reported.elapsed().as_secs_f64() * 1e3;
    eprintln!("measured: the client saw the killed WebSocket end {seen:.2} ms after the report");
    within(async {
        while shutdown.counts().total() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// A WebSocket held open through the drain is named by the request it was upgraded from,
/// its protocol the `Upgrade` header the client sent (`websocket`): in the drain's progress
/// while it holds the drain, and in the report once killed.
async fn a_held_websocket_is_named_by_its_request() {
    let app = App::start(Duration::from_secs(10)).await;
    let mut client = ws_client(app.addr, "/ws/stubborn").await;
    echo(&mut client, "ping").await;
    app.wait_counts(|counts| counts.hijacked == 1).await;

    app.shutdown.stop();
    let progress = within(async {
        loop {
            let progress = app.shutdown.progress();
            if progress.phase == ShutdownPhase::Draining {
                return progress;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    fn named(state: ConnState, work: &Work) -> (ConnState, &str, Option<&str>) {
        (state, &work.what, work.protocol.as_deref())
    }
    let holders: Vec<_> = (progress.holders.iter())
        .map(|holder| named(holder.state, &holder.work))
        .collect();
    let websocket = (ConnState::Hijacked, "GET /ws/stubborn", Some("websocket"));
    assert_eq!(holders, [websocket]);

    app.shutdown.force();
    let report = app.report().await;
    assert_eq!((report.outcome, report.killed), (Outcome::Forced, 1));
    let kills: Vec<_> = (report.kills.iter())
        .flat_map(|kill| kill.work.iter().map(|work| named(kill.state, work)))
        .collect();
    assert_eq!(kills, [websocket]);
    assert!(
        report.to_string().contains("; killed: GET /ws/stubborn "),
        "{report}"
    );
}

async fn sse_stream_ends_itself_on_the_drain() {
    let app = App::start(Duration::from_secs(10)).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /sse HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data: tick") {
        let n = within(stream.read(&mut buf)).await.unwrap();
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    app.wait_counts(|counts| counts.active == 1).await;

    let stopped = Instant::now();
    app.shutdown.stop();
    loop {
        let n = within(stream.read(&mut buf)).await.unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let ended = stopped.elapsed();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("data: bye"), "{text}");
    assert!(
        text.trim_end().ends_with("0"),
        "the chunked body ended: {text}"
    );
    let report = app.report().await;
    assert_eq!(
        (report.outcome, report.completed, report.total()),
        (Outcome::Drained, 1, 1)
    );
    assert!(ended < Duration::from_secs(5), "ended after {ended:?}");
    eprintln!(
        "measured: sse ended {:.1} ms after the stop",
        ended.as_secs_f64() * 1e3
    );
}

macro_rules! on_both_runtimes {
    ($($name:ident),+ $(,)?) => {
        mod multi_thread {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name().await;
                }
            )+
        }
        mod current_thread {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $name() {
                    super::$name().await;
                }
            )+
        }
    };
}

on_both_runtimes!(
    polite_websocket_closes_with_a_close_frame_and_is_counted_hijacked,
    stubborn_websocket_is_closed_at_the_timeout_and_the_client_sees_the_end,
    a_held_websocket_is_named_by_its_request,
    sse_stream_ends_itself_on_the_drain,
);

/// The extractor rejects a request not served by graceful-hyper.
#[tokio::test(flavor = "current_thread")]
async fn watch_extractor_without_graceful_hyper_is_a_500() {
    use tower::ServiceExt;
    let router = Router::new().route("/", get(|_: Watch| async { "unreachable" }));
    let request = http::Request::get("/")
        .body(axum::body::Body::empty())
        .unwrap();
    let response: Response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 500);
}

/// One `GET /who` on a connection of its own: the response's body.
async fn who(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /who HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    within(stream.read_to_string(&mut response)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").expect("a head");
    body.to_owned()
}

/// The extractor finds the connection's `Watch` by default, without it in the extensions;
/// with `watch_in_extensions` both are there and agree.
#[tokio::test(flavor = "current_thread")]
async fn watch_extractor_and_extensions() {
    let app = App::start(Duration::from_secs(10)).await;
    let first = who(app.addr).await;
    let second = who(app.addr).await;
    let (Some(first), Some(second)) = (first.strip_suffix(" ext=-"), second.strip_suffix(" ext=-"))
    else {
        panic!("no Watch expected in the extensions: {first:?}, {second:?}");
    };
    assert!(
        first.starts_with("watch=") && first != second,
        "{first} {second}"
    );
    app.shutdown.stop();
    assert_eq!(app.report().await.outcome, Outcome::Drained);

    let http = Http::new(&graceful_tokio::Tokio).watch_in_extensions(true);
    let app = App::start_with(Duration::from_secs(10), http).await;
    let body = who(app.addr).await;
    let (watch, ext) = body.split_once(' ').expect("two fields");
    assert_eq!(
        watch.strip_prefix("watch="),
        ext.strip_prefix("ext="),
        "{body}"
    );
    assert_ne!(ext, "ext=-");
    app.shutdown.stop();
    assert_eq!(app.report().await.outcome, Outcome::Drained);
}
