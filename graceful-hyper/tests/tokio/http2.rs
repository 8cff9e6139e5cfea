//! HTTP/2 (prior knowledge, told apart from HTTP/1 by its preface): streams nest in the
//! connection's state; the drain sends GOAWAY and lets open streams complete.

use std::time::Duration;

use bytes::Bytes;
use graceful_core::{Outcome, ShutdownReport};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use crate::common::{settle, Server};

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://test{path}"))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn open_streams_complete_after_goaway() {
    let mut server = Server::start();
    let io = TokioIo::new(server.connect());
    let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);

    let streams: Vec<_> = (0..2)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let response = sender.send_request(get("/sleep/500")).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            })
        })
        .collect();
    settle().await;
    let counts = server.shutdown.counts();
    assert_eq!(
        (counts.active, counts.total()),
        (1, 1),
        "two streams, one connection"
    );

    let start = Instant::now();
    server.shutdown.stop();
    settle().await;
    let mut late = sender.clone();
    assert!(
        late.send_request(get("/")).await.is_err(),
        "after GOAWAY no new stream is accepted"
    );
    for stream in streams {
        let (status, body) = stream.await.unwrap().unwrap();
        assert_eq!((status.as_u16(), body.as_ref()), (200, &b"slept"[..]));
    }
    conn.await.unwrap().unwrap();
    let report = server.report().await;
    assert_eq!((report.completed, report.outcome), (1, Outcome::Drained));
    let waited = Instant::now() - start;
    assert!(waited < Duration::from_millis(510), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_closes_on_the_drain() {
    let mut server = Server::start();
    let io = TokioIo::new(server.connect());
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    let response = sender.send_request(get("/")).await.unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "hello"
    );
    settle().await;
    assert_eq!(server.shutdown.counts().idle, 1, "the stream ended");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = Instant::now();
    server.shutdown.stop();
    conn.await.unwrap().unwrap();
    assert!(Instant::now() - start < Duration::from_millis(5));
    assert_eq!(server.report().await.idle_closed, 1);
}

#[cfg(feature = "http1")]
#[tokio::test(start_paused = true)]
async fn protocols_can_be_pinned() {
    let mut server = Server::start();
    let http1_only = server.http.clone().http1_only();
    let http2_only = server.http.clone().http2_only();

    // HTTP/2 prior knowledge on an HTTP/1-only server: no HTTP/2 handshake.
    let io = TokioIo::new(server.connect_with(&http1_only));
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    assert!(sender.send_request(get("/")).await.is_err());
    // HTTP/1 on an HTTP/2-only server: no answer.
    let mut client = crate::common::Client::new(server.connect_with(&http2_only));
    client.get("/").await;
    assert!(client.reply().await.is_none());
    // Both on the default, automatic one.
    let io = TokioIo::new(server.connect_with(&server.http.clone().http2_only().auto()));
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(sender.send_request(get("/")).await.unwrap().status(), 200);

    server.shutdown.stop();
    assert_eq!(server.report().await.outcome, Outcome::Drained);
}

/// A raw HTTP/2 client that sees every frame: the peers that never answer.
pub(crate) mod raw {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    const END_STREAM: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;

    #[derive(Debug)]
    pub struct Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    impl Frame {
        /// A GOAWAY's last stream id and error code.
        pub fn goaway(&self) -> (u32, u32) {
            assert_eq!(self.kind, GOAWAY, "{self:?}");
            let word = |at: usize| u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap());
            (word(0) & 0x7fff_ffff, word(4))
        }
    }

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut bytes = len.to_be_bytes()[1..].to_vec();
        bytes.extend([kind, flags]);
        bytes.extend(stream.to_be_bytes());
        bytes.extend(payload);
        bytes
    }

    /// `GET /` on `stream`: static-table indexes (method, scheme, path) and a literal
    /// authority.
    pub fn get(stream: u32) -> Vec<u8> {
        let block = [0x82, 0x86, 0x84, 0x41, 0x04, b't', b'e', b's', b't'];
        frame(HEADERS, END_STREAM | END_HEADERS, stream, &block)
    }

    /// The preface and an empty SETTINGS frame.
    pub fn hello() -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(SETTINGS, 0, 0, &[]));
        bytes
    }

    /// The next frame, or `None` at the end of the stream.
    pub async fn read(io: &mut (impl AsyncRead + Unpin)) -> Option<Frame> {
        let mut head = [0; 9];
        io.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        io.read_exact(&mut payload).await.ok()?;
        let stream = u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream,
            payload,
        })
    }

    /// Reads frames until `stream`'s answer ended.
    pub async fn answer(io: &mut DuplexStream, stream: u32) {
        while let Some(frame) = read(io).await {
            if frame.stream == stream && frame.flags & END_STREAM != 0 {
                assert!(matches!(frame.kind, DATA | HEADERS), "{frame:?}");
                return;
            }
        }
        panic!("the connection ended before stream {stream}'s answer");
    }

    /// Every frame left, up to the end of the stream.
    pub async fn rest(io: &mut DuplexStream) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = read(io).await {
            frames.push(frame);
        }
        frames
    }

    pub async fn send(io: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) {
        io.write_all(bytes).await.unwrap();
    }
}

/// What the server sent after its answers: GOAWAY with the largest id and a PING (the first
/// step), then the final GOAWAY with `last` and no error.
fn assert_two_step_goaway(frames: &[raw::Frame], last: u32) {
    let kinds: Vec<u8> = frames.iter().map(|frame| frame.kind).collect();
    let goaways: Vec<(u32, u32)> = frames
        .iter()
        .filter(|frame| frame.kind == raw::GOAWAY)
        .map(raw::Frame::goaway)
        .collect();
    assert_eq!(goaways, [(0x7fff_ffff, 0), (last, 0)], "{frames:?}");
    assert!(kinds.contains(&raw::PING), "{frames:?}");
}

/// Stops the server: its report, and how long the drain took.
async fn stop(server: Server) -> (ShutdownReport, Duration) {
    let start = Instant::now();
    server.shutdown.stop();
    let report = server.report().await;
    (report, Instant::now() - start)
}

/// A raw connection that said hello and got the answer to `GET /` on stream 1.
async fn answered(server: &mut Server) -> tokio::io::DuplexStream {
    let mut io = server.connect();
    raw::send(&mut io, &raw::hello()).await;
    raw::send(&mut io, &raw::get(1)).await;
    raw::answer(&mut io, 1).await;
    settle().await;
    io
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_acks_the_ping_is_closed_after_a_quiet_window() {
    let mut server = Server::start();
    let mut io = answered(&mut server).await;
    assert_eq!(server.shutdown.counts().idle, 1, "the stream ended");

    // From here the peer reads nothing: the shutdown PING stays unanswered.
    let (report, waited) = stop(server).await;
    assert_eq!((report.idle_closed, report.killed), (1, 0), "{report:?}");
    assert_eq!(report.outcome, Outcome::Drained);
    // One window of the quiet period (250 ms), not the 10 s timeout.
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_millis(300), "{waited:?}");

    assert_two_step_goaway(&raw::rest(&mut io).await, 1);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_only_said_hello_is_closed_after_a_quiet_window() {
    let mut server = Server::start();
    let mut io = server.connect();
    raw::send(&mut io, &raw::hello()).await;
    // The server's SETTINGS, then its ACK of ours: the handshake is done.
    let mut acked = false;
    while !acked {
        let frame = raw::read(&mut io).await.expect("the server's SETTINGS");
        acked = frame.kind == raw::SETTINGS && frame.flags == 1;
    }
    settle().await;

    let (report, waited) = stop(server).await;
    assert_eq!((report.idle_closed, report.killed), (1, 0), "{report:?}");
    assert!(waited < Duration::from_millis(300), "{waited:?}");
    assert_two_step_goaway(&raw::rest(&mut io).await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_keeps_talking_is_not_quiet_and_its_last_stream_is_named() {
    let mut server = Server::start();
    let mut io = answered(&mut server).await;

    let start = Instant::now();
    server.shutdown.stop();
    // Within the first window, a new stream: served (the first GOAWAY allows it), and the
    // window starts over.
    tokio::time::sleep(Duration::from_millis(200)).await;
    raw::send(&mut io, &raw::get(3)).await;
    raw::answer(&mut io, 3).await;
    let report = server.report().await;
    let waited = Instant::now() - start;
    // It worked during the drain: completed, not idle closed.
    assert_eq!((report.completed, report.killed), (1, 0), "{report:?}");
    assert!(waited >= Duration::from_millis(450), "{waited:?}");
    assert!(waited < Duration::from_millis(550), "{waited:?}");
    // The first GOAWAY and the PING came before stream 3's answer, read above.
    let goaways: Vec<(u32, u32)> = raw::rest(&mut io)
        .await
        .iter()
        .map(raw::Frame::goaway)
        .collect();
    assert_eq!(goaways, [(3, 0)]);
}

#[tokio::test(start_paused = true)]
async fn a_pinned_http2_peer_mid_preface_gets_the_header_grace() {
    let mut server = Server::start();
    let http2_only = server.http.clone().http2_only();
    let mut io = server.connect_with(&http2_only);
    raw::send(&mut io, &raw::PREFACE[..10]).await;
    settle().await;

    let (report, waited) = stop(server).await;
    assert_eq!((report.idle_closed, report.killed), (1, 0), "{report:?}");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_millis(1050), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_close_spread_spreads_the_goaways() {
    let mut server = Server::with(
        graceful_core::Graceful::builder()
            .timeout(Duration::from_secs(10))
            .close_spread(Duration::from_millis(300)),
    );
    let (mut ends, mut senders) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let io = TokioIo::new(server.connect());
        let (mut sender, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
        let conn = tokio::spawn(conn);
        sender.send_request(get("/")).await.unwrap();
        // Kept: a client whose sender is dropped closes the connection itself.
        senders.push(sender);
        ends.push(conn);
    }
    settle().await;
    assert_eq!(server.shutdown.counts().idle, 3);

    let start = Instant::now();
    server.shutdown.stop();
    let mut closed = Vec::new();
    for conn in ends {
        conn.await.unwrap().unwrap();
        closed.push((Instant::now() - start).as_millis());
    }
    // Each GOAWAY in its slot: 0, 100 and 200 ms (the client answers the PING at once).
    assert_eq!(closed, [0, 100, 200]);
    assert_eq!(server.report().await.idle_closed, 3);
}
