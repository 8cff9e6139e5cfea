//! The POST load of `cargo xtask rolling`: keep-alive HTTP/1.1 clients in a loop through the
//! balancer, counting every request from the moment it is sent to how it ended.
//!
//! Why this and not wrk: wrk counts the responses it completed and its socket errors
//! (connect, read, write, timeout), but not the requests it sent that got no response (a
//! read error does not say whether a request was on the wire), and it tells statuses apart
//! only as "non-2xx" unless a Lua `response` callback runs for every response, which slows
//! it several times over. Here every request sent ends in exactly one count: a status, or
//! a write error, a close before the response (read), a response cut short (truncated), a
//! malformed one, or no response within [`IO_BOUND`] (timeout).
//!
//! The gRPC load (`Load::start` with `grpc`) calls `grpc.health.v1.Health/Check` in a loop,
//! each client on an HTTP/2 connection of its own (hyper's client, prior knowledge), one call
//! at a time: a call counts as a `200` when its `grpc-status` is 0, under `grpc` by its code
//! when it is another, and as the HTTP/1 load's errors otherwise. A call hyper's client
//! cancels before writing it (its connection had just closed) was not sent: it is not
//! counted, and the client sends it again on a new connection, as gRPC's transparent retry
//! does.
//!
//! # Invariants
//!
//! - `sent` is the sum of the other counts but `connect`: each request is counted once
//!   when it is written and once when it ends.
//! - A client stops only between requests, so stopping the load abandons none; every wait
//!   is bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::client::{Client, Error};

/// How long a connect or a response may take.
pub(crate) const IO_BOUND: Duration = Duration::from_secs(10);

/// The request every client sends: a form POST, which a balancer may not replay.
const REQUEST: &[u8] = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\
    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nhello=world";

/// What the clients saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub sent: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Connections to the balancer that failed (no request was sent on them).
    pub connect: u64,
    pub write: u64,
    pub read: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub timeout: u64,
    /// gRPC: calls answered with a `grpc-status` other than 0, by code.
    pub grpc: BTreeMap<u32, u64>,
}

impl Counts {
    /// Requests that did not get a 200.
    pub(crate) fn failed(&self) -> u64 {
        self.sent - self.statuses.get(&200).copied().unwrap_or(0)
    }

    /// Every request sent has exactly one outcome.
    pub(crate) fn adds_up(&self) -> bool {
        let ended: u64 = self.statuses.values().sum::<u64>()
            + self.grpc.values().sum::<u64>()
            + self.write
            + self.read
            + self.truncated
            + self.malformed
            + self.timeout;
        ended == self.sent
    }
}

impl AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, other: &Counts) {
        self.sent += other.sent;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        self.connect += other.connect;
        self.write += other.write;
        self.read += other.read;
        self.truncated += other.truncated;
        self.malformed += other.malformed;
        self.timeout += other.timeout;
        for (code, count) in &other.grpc {
            *self.grpc.entry(*code).or_default() += count;
        }
    }
}

/// A running load. [`stop`](Load::stop) ends it and sums the counts.
#[derive(Debug)]
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    clients: JoinSet<Counts>,
}

impl Load {
    /// Starts `connections` clients against `addr` on `rt`: HTTP/1.1 POSTs, or gRPC calls.
    pub(crate) fn start(rt: &Runtime, addr: SocketAddr, connections: usize, grpc: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = JoinSet::new();
        for _ in 0..connections {
            match grpc {
                true => clients.spawn_on(grpc_client(addr, stop.clone()), rt.handle()),
                false => clients.spawn_on(client(addr, stop.clone()), rt.handle()),
            };
        }
        Load { stop, clients }
    }

    /// Stops every client after its request in flight, and sums what they saw.
    pub(crate) fn stop(mut self, rt: &Runtime) -> Result<Counts, String> {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + IO_BOUND * 2;
        rt.block_on(async {
            let mut total = Counts::default();
            while let Some(joined) = tokio::time::timeout_at(deadline, self.clients.join_next())
                .await
                .map_err(|_| "the load's clients did not stop in time".to_string())?
            {
                total += &joined.map_err(|err| format!("a load client failed: {err}"))?;
            }
            Ok(total)
        })
    }
}

/// One client: POST in a loop, reconnecting after `Connection: close` or an error.
async fn client(addr: SocketAddr, stop: Arc<AtomicBool>) -> Counts {
    let mut counts = Counts::default();
    'connect: while !stop.load(Ordering::SeqCst) {
        let mut client = match tokio::time::timeout(IO_BOUND, Client::connect(addr)).await {
            Ok(Ok(client)) => client,
            _ => {
                counts.connect += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            counts.sent += 1;
            match tokio::time::timeout(IO_BOUND, client.request(REQUEST)).await {
                Ok(Ok(response)) => {
                    *counts.statuses.entry(response.status).or_default() += 1;
                    if response.close {
                        continue 'connect;
                    }
                    continue;
                }
                Ok(Err(Error::WriteFailed)) => counts.write += 1,
                Ok(Err(Error::Closed | Error::Io(_))) => counts.read += 1,
                Ok(Err(Error::Truncated)) => counts.truncated += 1,
                Ok(Err(Error::Malformed(_))) => counts.malformed += 1,
                Err(_) => counts.timeout += 1,
            }
            continue 'connect;
        }
    }
    counts
}

/// How a gRPC call failed.
enum CallError {
    /// hyper's client cancelled it before writing it: not sent.
    NotSent,
    /// The connection failed before the response head.
    Read,
    /// An HTTP status other than 200.
    Status(u16),
    /// The response body failed after its head.
    Truncated,
    /// No `grpc-status`.
    Malformed,
}

/// One gRPC client: `Health/Check` in a loop on an HTTP/2 connection, a new one after an
/// error or once the connection closed.
async fn grpc_client(addr: SocketAddr, stop: Arc<AtomicBool>) -> Counts {
    let mut counts = Counts::default();
    'connect: while !stop.load(Ordering::SeqCst) {
        let connected = tokio::time::timeout(IO_BOUND, async {
            let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            // A call is two writes (HEADERS, DATA): Nagle would hold the second for an ACK.
            stream.set_nodelay(true).ok()?;
            let io = hyper_util::rt::TokioIo::new(stream);
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .ok()
        })
        .await;
        let mut sender = match connected {
            Ok(Some((sender, conn))) => {
                tokio::spawn(conn);
                sender
            }
            _ => {
                counts.connect += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            if sender.ready().await.is_err() {
                continue 'connect; // closed (a GOAWAY): nothing was sent on it
            }
            counts.sent += 1;
            match tokio::time::timeout(IO_BOUND, grpc_call(&mut sender, addr)).await {
                Ok(Ok(0)) => *counts.statuses.entry(200).or_default() += 1,
                Ok(Ok(code)) => *counts.grpc.entry(code).or_default() += 1,
                Ok(Err(CallError::NotSent)) => {
                    counts.sent -= 1;
                    continue 'connect;
                }
                Ok(Err(CallError::Status(status))) => {
                    *counts.statuses.entry(status).or_default() += 1
                }
                Ok(Err(CallError::Read)) => counts.read += 1,
                Ok(Err(CallError::Truncated)) => counts.truncated += 1,
                Ok(Err(CallError::Malformed)) => counts.malformed += 1,
                Err(_) => counts.timeout += 1,
            }
        }
    }
    counts
}

/// `grpc.health.v1.Health/Check` for the server as a whole (an empty request); its
/// `grpc-status`.
async fn grpc_call(
    sender: &mut hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    addr: SocketAddr,
) -> Result<u32, CallError> {
    use http_body_util::BodyExt;
    // A gRPC message: not compressed, 0 bytes long (the empty `HealthCheckRequest`).
    const EMPTY: &[u8] = &[0, 0, 0, 0, 0];
    let request = hyper::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(EMPTY)))
        .map_err(|_| CallError::Malformed)?;
    let response = sender.send_request(request).await.map_err(|err| {
        if err.is_canceled() {
            CallError::NotSent
        } else {
            CallError::Read
        }
    })?;
    if response.status() != 200 {
        return Err(CallError::Status(response.status().as_u16()));
    }
    let code = |headers: &hyper::HeaderMap| {
        headers
            .get("grpc-status")
            .and_then(|value| value.to_str().ok()?.parse().ok())
    };
    // Trailers-only: the status in the head.
    if let Some(code) = code(response.headers()) {
        return Ok(code);
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| CallError::Truncated)?;
    body.trailers().and_then(code).ok_or(CallError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_say_what_failed() {
        let mut counts = Counts {
            sent: 5,
            statuses: BTreeMap::from([(200, 3), (502, 1)]),
            read: 1,
            ..Counts::default()
        };
        assert!(counts.adds_up());
        assert_eq!(counts.failed(), 2);
        counts += &Counts {
            sent: 1,
            timeout: 1,
            connect: 4,
            ..Counts::default()
        };
        assert!(counts.adds_up());
        assert_eq!((counts.failed(), counts.connect), (3, 4));
        counts.sent += 1;
        assert!(!counts.adds_up(), "a request without an outcome");
    }
}
