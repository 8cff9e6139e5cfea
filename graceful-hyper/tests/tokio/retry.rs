//! Retry safety over HTTP/2: the report's streams (completed, refused, cut) against a raw
//! client's own ledger of the streams it opened and the frames it got back.
//!
//! The client keeps opening streams after the first GOAWAY and after the final one. What it
//! opened above the final GOAWAY's last stream id, h2 drops unread (h2 0.4's
//! `Streams::recv_headers`: "ignoring HEADERS"): no frame answers it, so the server cannot
//! count it, and the client knows it was refused from the GOAWAY alone (RFC 9113, 8.7).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use graceful_core::{Outcome, StreamCounts};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::common::{route, settle, Server};
use crate::http2::raw::{self, read, send, Frame};

const RST_STREAM: u8 = 0x3;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const REFUSED_STREAM: u32 = 0x7;

/// `GET {path}` on `stream`: static-table indexes (method, scheme), the path as a literal
/// never indexed, a literal authority.
fn get(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend(path.as_bytes());
    block.extend([0x41, 0x04, b't', b'e', b's', b't']);
    raw::frame(raw::HEADERS, END_STREAM | END_HEADERS, stream, &block)
}

/// What the client opened and what came back, from the frames it read.
#[derive(Debug, Default)]
struct Ledger {
    /// Streams opened since the drain began, or in flight when it did.
    sent: BTreeSet<u32>,
    /// Responses received whole (END_STREAM).
    completed: BTreeSet<u32>,
    /// Reset by the server with REFUSED_STREAM.
    refused: BTreeSet<u32>,
    /// Reset by the server with another code.
    reset: BTreeSet<u32>,
    /// The last stream id of the latest GOAWAY.
    last_stream: Option<u32>,
    /// The shutdown PING's payload, until acknowledged.
    ping: Option<Vec<u8>>,
}

impl Ledger {
    async fn open(&mut self, io: &mut (impl AsyncWrite + Unpin), stream: u32, path: &str) {
        send(io, &get(stream, path)).await;
        self.sent.insert(stream);
    }

    /// Answers the shutdown PING: the server sends its final GOAWAY.
    async fn ack_ping(&mut self, io: &mut (impl AsyncWrite + Unpin)) {
        let ping = self.ping.take().expect("the shutdown PING");
        send(io, &raw::frame(raw::PING, ACK, 0, &ping)).await;
    }

    fn take(&mut self, frame: &Frame) {
        let ended = matches!(frame.kind, raw::DATA | raw::HEADERS) && frame.flags & END_STREAM != 0;
        if ended && self.sent.contains(&frame.stream) {
            self.completed.insert(frame.stream);
        }
        match frame.kind {
            RST_STREAM => {
                let code = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
                let set = if code == REFUSED_STREAM {
                    &mut self.refused
                } else {
                    &mut self.reset
                };
                set.insert(frame.stream);
            }
            raw::GOAWAY => self.last_stream = Some(frame.goaway().0),
            raw::PING if frame.flags & ACK == 0 => self.ping = Some(frame.payload.clone()),
            _ => {}
        }
    }

    /// Reads frames until `done` holds, or the connection ends.
    async fn read_until(
        &mut self,
        io: &mut (impl AsyncRead + Unpin),
        mut done: impl FnMut(&Ledger) -> bool,
    ) {
        while !done(self) {
            let Some(frame) = read(io).await else { return };
            self.take(&frame);
        }
    }

    /// Streams opened above the final GOAWAY's last stream id that nothing answered: never
    /// processed, and unseen by the server.
    fn above_last_stream(&self) -> usize {
        let last = self.last_stream.expect("a GOAWAY");
        let answered = |id: &u32| {
            self.completed.contains(id) || self.refused.contains(id) || self.reset.contains(id)
        };
        self.sent
            .iter()
            .filter(|&id| *id > last && !answered(id))
            .count()
    }
}

/// Says hello and gets `GET /` on stream 1 answered, before the drain: not counted.
async fn hello(io: &mut (impl AsyncRead + AsyncWrite + Unpin)) {
    send(io, &raw::hello()).await;
    let mut before = Ledger::default();
    before.open(io, 1, "/").await;
    before
        .read_until(io, |ledger| ledger.completed.contains(&1))
        .await;
}

#[tokio::test(start_paused = true)]
async fn every_stream_of_the_drain_is_completed_refused_or_above_the_last_stream() {
    let mut server = Server::start();
    // Two streams at once: a third is refused with REFUSED_STREAM.
    let mut http = server.http.clone();
    http.http2().max_concurrent_streams(2);
    let mut io = server.connect_with(&http);
    hello(&mut io).await;
    let mut ledger = Ledger::default();
    ledger.open(&mut io, 3, "/sleep/300").await;
    ledger.open(&mut io, 5, "/sleep/300").await;
    settle().await;

    server.shutdown.stop();
    // The first GOAWAY (the largest id) and the shutdown PING.
    ledger
        .read_until(&mut io, |ledger| ledger.ping.is_some())
        .await;
    assert_eq!(ledger.last_stream, Some(0x7fff_ffff));
    // Still allowed, but over the limit: refused.
    ledger.open(&mut io, 7, "/").await;
    ledger
        .read_until(&mut io, |ledger| !ledger.refused.is_empty())
        .await;
    // The PING's ACK brings the final GOAWAY; a stream opened after it is above its id.
    ledger.ack_ping(&mut io).await;
    ledger
        .read_until(&mut io, |ledger| ledger.last_stream < Some(0x7fff_ffff))
        .await;
    ledger.open(&mut io, 9, "/").await;
    ledger.read_until(&mut io, |_| false).await;

    let report = server.report().await;
    assert_eq!(
        (report.completed, report.outcome),
        (1, Outcome::Drained),
        "{report}"
    );
    let (completed, refused) = (ledger.completed.len(), ledger.refused.len());
    assert_eq!(
        (completed, refused, ledger.reset.len()),
        (2, 1, 0),
        "{ledger:?}"
    );
    assert_eq!(ledger.above_last_stream(), 1, "{ledger:?}");
    assert_eq!(report.streams, StreamCounts::new(completed, refused, 0));
    // What the server counted and what it never saw are every stream the client sent.
    assert_eq!(
        report.streams.total() + ledger.above_last_stream(),
        ledger.sent.len()
    );
    assert!(
        report
            .to_string()
            .ends_with("; streams: 2 completed, 1 refused, 0 cut"),
        "{report}"
    );
}

/// Served by a serve loop over loopback TCP: the manager waits for a killed connection's
/// task to end before its report, and with it for the streams it hands over. (Connections
/// registered by hand, as `Server::connect` does, are not waited for.) On the real clock:
/// paused time jumps to the next timer while loopback bytes are on their way. On several
/// threads: the killed streams' tasks end on other threads as the connection drops, and the
/// count is still what was in flight at the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_in_flight_at_the_timeout_are_cut() {
    let server = graceful_core::Server::<graceful_tokio::Tokio>::builder()
        .signals(false)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let shutdown = server.shutdown();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (upgrades, _) = tokio::sync::mpsc::unbounded_channel();
    let service =
        hyper::service::service_fn(move |req| route(req, Arc::default(), upgrades.clone(), None));
    let http = graceful_hyper::Http::new(server.runtime());
    let run = tokio::spawn(server.serve(listener, http.service(service)));

    let mut io = tokio::net::TcpStream::connect(addr).await.unwrap();
    hello(&mut io).await;
    let mut ledger = Ledger::default();
    ledger.open(&mut io, 3, "/sleep/60000").await;
    ledger.open(&mut io, 5, "/sleep/60000").await;
    // Both streams in flight on the server (bounded: 5 s).
    for _ in 0..5000 {
        if shutdown.counts().active == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    shutdown.stop();
    ledger
        .read_until(&mut io, |ledger| ledger.ping.is_some())
        .await;
    // Opened after the first GOAWAY: processed, and answered before the timeout.
    ledger.open(&mut io, 7, "/").await;
    ledger.ack_ping(&mut io).await;
    // The final GOAWAY names stream 7; then the timeout (500 ms) kills the connection.
    ledger.read_until(&mut io, |_| false).await;

    let report = run.await.unwrap();
    assert_eq!(
        (report.killed, report.outcome),
        (1, Outcome::TimedOut),
        "{report}"
    );
    assert_eq!(ledger.last_stream, Some(7));
    assert_eq!(ledger.completed, BTreeSet::from([7]), "{ledger:?}");
    assert_eq!(report.streams, StreamCounts::new(1, 0, 2), "{report}");
    assert_eq!(report.streams.total(), ledger.sent.len());
}
