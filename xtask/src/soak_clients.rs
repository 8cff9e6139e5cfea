//! The clients of a soak round, each returning what it saw as a [`Tally`].
//!
//! A request is *lost* when the server accepted it and then never answered it whole: a
//! request written on a connection that had served a response (or, for the in-flight and
//! upgrade clients, whose connection was accepted well before the signal) met by a close or
//! a reset, a truncated response, a stream of an HTTP/2 connection the server had taken (not
//! refused by GOAWAY) that ends without its response. A connection refused, or closed before
//! serving anything after the signal, is not a loss: the client would retry it elsewhere.
//!
//! # Invariants
//!
//! Every client ends by its `stop_at` plus one [`CLIENT_BOUND`]: each await is bounded.

use std::net::SocketAddr;
use std::ops::AddAssign;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Client, Error};

/// How long a client waits for anything.
pub(crate) const CLIENT_BOUND: Duration = Duration::from_secs(10);

/// What clients saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Requests answered whole.
    pub requests: u64,
    pub lost: u64,
    /// Of the lost, those cut in the middle of the response.
    pub truncated: u64,
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.requests += other.requests;
        self.lost += other.lost;
        self.truncated += other.truncated;
    }
}

impl Tally {
    fn lose(&mut self, err: &Error) {
        crate::server::progress("http1", &format!("lost a request: {err}"));
        self.lost += 1;
        self.truncated += u64::from(matches!(err, Error::Truncated));
    }
}

/// A keep-alive HTTP/1.1 client in a tight `GET /` loop, reconnecting after `Connection:
/// close`, until refused or `stop_at`.
pub(crate) async fn looping(addr: SocketAddr, stop_at: Instant) -> Tally {
    let request = Client::get_request("/");
    let mut tally = Tally::default();
    'connect: while Instant::now() < stop_at {
        let Ok(Ok(mut client)) = tokio::time::timeout(CLIENT_BOUND, Client::connect(addr)).await
        else {
            break; // refused: the server stopped accepting.
        };
        while Instant::now() < stop_at {
            match tokio::time::timeout(CLIENT_BOUND, client.request(&request)).await {
                Ok(Ok(response)) => {
                    tally.requests += 1;
                    if response.close {
                        continue 'connect;
                    }
                }
                Ok(Err(Error::Closed | Error::WriteFailed)) if client.served == 0 => {
                    continue 'connect; // never served: the same as refused.
                }
                Ok(Err(err)) => {
                    tally.lose(&err);
                    continue 'connect;
                }
                Err(_) => {
                    tally.lost += 1;
                    continue 'connect;
                }
            }
        }
    }
    tally
}

/// `GET path` on a connection opened before the signal: it must be answered whole.
pub(crate) async fn in_flight(mut client: Client, path: String) -> Tally {
    let mut tally = Tally::default();
    match tokio::time::timeout(CLIENT_BOUND, client.request(&Client::get_request(&path))).await {
        Ok(Ok(response)) if response.status == 200 => tally.requests += 1,
        Ok(Ok(_)) => tally.lost += 1,
        Ok(Err(err)) => tally.lose(&err),
        Err(_) => tally.lost += 1,
    }
    tally
}

/// Opens `GET /sleep/{ms}` and resets the connection (`SO_LINGER` 0) after `after`: a
/// client that vanishes mid-request. Nothing to count.
pub(crate) async fn reset_mid_request(addr: SocketAddr, ms: u64, after: Duration, whole: bool) {
    let Ok(Ok(mut stream)) = tokio::time::timeout(CLIENT_BOUND, TcpStream::connect(addr)).await
    else {
        return;
    };
    let request = format!("GET /sleep/{ms} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // Half a head, or all of it (then the handler is running when the reset comes).
    let bytes = if whole {
        request.as_bytes()
    } else {
        &request.as_bytes()[..request.len() / 2]
    };
    let _ = stream.write_all(bytes).await;
    tokio::time::sleep(after).await;
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Upgrades with `GET /upgrade`, checks the echo, then waits for the drain's `bye`: a
/// missing echo or `bye` is a loss (the server cut a connection it had taken).
pub(crate) async fn upgrade(addr: SocketAddr) -> Tally {
    let mut tally = Tally::default();
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(
                b"GET /upgrade HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\n\
                  Upgrade: echo\r\n\r\n",
            )
            .await
            .ok()?;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let end = loop {
            if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut buf).await.ok().filter(|n| *n > 0)?;
            got.extend_from_slice(&buf[..n]);
        };
        if !got.starts_with(b"HTTP/1.1 101") {
            return None;
        }
        got.drain(..end);
        stream.write_all(b"ping\n").await.ok()?;
        // The echo, then `bye\n` on the drain, then the end of the stream.
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        Some(got == b"ping\nbye\n")
    };
    match tokio::time::timeout(CLIENT_BOUND, attempt).await {
        Ok(Some(true)) => tally.requests += 1,
        _ => tally.lost += 1,
    }
    tally
}

/// How an HTTP/2 request failed.
fn refused(err: &hyper::Error) -> bool {
    // A stream the server never took: canceled before it was sent, refused, or above the
    // last stream id of a GOAWAY (h2 reports those as "not a result of an error"; a stream
    // cut by the end of the connection is "closed because of a broken pipe").
    if err.is_canceled() {
        return true;
    }
    let text = chain(err);
    text.contains("refused") || text.contains("not a result of an error")
}

/// An error and its sources, on one line.
fn chain(err: &hyper::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// HTTP/2 with prior knowledge: `streams` concurrent request loops on one connection (one
/// `GET /sleep/100`, the others `GET /`), reconnecting after GOAWAY, until refused or
/// `stop_at`. A stream the server had taken (at or below GOAWAY's last stream id) that ends
/// without its whole response is lost: h2 reports those as a broken pipe or a reset.
pub(crate) async fn http2(addr: SocketAddr, streams: usize, stop_at: Instant) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < stop_at {
        let Ok(Ok(stream)) = tokio::time::timeout(CLIENT_BOUND, TcpStream::connect(addr)).await
        else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let handshake = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(stream),
        );
        let Ok(Ok((sender, conn))) = tokio::time::timeout(CLIENT_BOUND, handshake).await else {
            continue; // closed before serving anything: refused.
        };
        let conn = tokio::spawn(conn);
        let mut loops = tokio::task::JoinSet::new();
        for stream in 0..streams {
            let mut sender = sender.clone();
            // One stream of each connection has work in flight (100 ms) when GOAWAY comes.
            let path = if stream == 0 { "/sleep/100" } else { "/" };
            loops.spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < stop_at {
                    if sender.ready().await.is_err() {
                        break; // GOAWAY or closed: reconnect.
                    }
                    let request = hyper::Request::get(format!("http://{addr}{path}"))
                        .body(Empty::new())
                        .unwrap_or_default();
                    let answer = tokio::time::timeout(CLIENT_BOUND, async {
                        let response = sender.send_request(request).await.map_err(Some)?;
                        match response.into_body().collect().await {
                            Ok(_) => Ok(()),
                            Err(_) => Err(None), // cut in the middle of the response
                        }
                    })
                    .await;
                    match answer {
                        Ok(Ok(())) => tally.requests += 1,
                        Ok(Err(Some(err))) if refused(&err) => break,
                        Ok(Err(Some(err))) => {
                            crate::server::progress(
                                "http2",
                                &format!("lost GET {path}: {}", chain(&err)),
                            );
                            tally.lost += 1;
                            break;
                        }
                        Err(_) => {
                            crate::server::progress("http2", &format!("GET {path} timed out"));
                            tally.lost += 1;
                            break;
                        }
                        Ok(Err(None)) => {
                            tally.lost += 1;
                            tally.truncated += 1;
                            break;
                        }
                    }
                }
                tally
            });
        }
        while let Some(joined) = loops.join_next().await {
            tally += joined.unwrap_or_default();
        }
        conn.abort();
    }
    tally
}
