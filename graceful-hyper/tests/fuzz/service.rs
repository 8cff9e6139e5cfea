//! The service the fuzz cases are served with, on tokio's paused clock.
//!
//! - `/`: `hello`
//! - `/sleep/{ms}`: `slept` after `ms` (virtual) milliseconds
//! - `/stream/{n}`: a body of `n` chunks, 20 ms apart
//! - `/echo`: the request body, read whole
//! - `/panic`: the handler panics; `/panic-body`: the body panics after its first chunk
//! - `/upgrade` (with `upgrade: echo`): 101, then an echo that says `bye` on the drain and
//!   ends on the kill; `?stubborn` ignores the drain
//!
//! Panics carry [`PANIC`] so the driver can tell the handler's panics from any other.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{select, Either};
use graceful_hyper::Watch;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::input::MAX_SLEEP_MS;

/// The payload of every panic the service raises on purpose.
pub const PANIC: &str = "fuzz: the handler panics on purpose";

pub type Body = BoxBody<Bytes, Infallible>;

fn full(text: &'static str) -> Body {
    BodyExt::boxed(Full::new(Bytes::from_static(text.as_bytes())))
}

fn chunks(n: u64, panic_after_first: bool) -> Body {
    let stream = futures::stream::unfold(0u64, move |i| async move {
        if i == n {
            return None;
        }
        assert!(
            Watch::current().is_some(),
            "no current Watch in a body's poll"
        );
        if i > 0 {
            if panic_after_first {
                std::panic::panic_any(PANIC);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"chunk"))),
            i + 1,
        ))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

pub async fn route(mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    // Any other panic fails the run: every request finds its connection's `Watch`.
    assert!(Watch::current().is_some(), "no current Watch in a handler");
    let path = req.uri().path().to_owned();
    let response = if path == "/" {
        Response::new(full("hello"))
    } else if let Some(ms) = path.strip_prefix("/sleep/") {
        let ms = ms.parse::<u64>().unwrap_or(0).min(MAX_SLEEP_MS);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Response::new(full("slept"))
    } else if let Some(n) = path.strip_prefix("/stream/") {
        Response::new(chunks(n.parse::<u64>().unwrap_or(1).min(10), false))
    } else if path == "/echo" {
        let body = match req.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::from_static(b"body failed"),
        };
        Response::new(BodyExt::boxed(Full::new(body)))
    } else if path == "/panic" {
        std::panic::panic_any(PANIC);
    } else if path == "/panic-body" {
        Response::new(chunks(3, true))
    } else if path == "/upgrade" {
        let stubborn = req.uri().query() == Some("stubborn");
        let upgrade = graceful_hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                echo(upgraded, stubborn).await;
            }
        });
        let mut response = Response::new(full(""));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("echo"),
        );
        headers.insert(
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

/// Echoes until the client leaves; on the drain says `bye` and closes (unless
/// `stubborn`); on the kill, drops the connection, whatever it was doing (a write to a
/// client that does not read included).
async fn echo(upgraded: graceful_hyper::upgrade::Upgraded, stubborn: bool) {
    let (io, hijack) = upgraded.into_parts();
    let killed = hijack.killed();
    let mut io = TokioIo::new(io);
    let work = async {
        let mut buf = [0u8; 256];
        loop {
            let drained = std::pin::pin!(async {
                if stubborn {
                    std::future::pending::<()>().await;
                }
                hijack.drain_requested().await;
            });
            let read = std::pin::pin!(io.read(&mut buf));
            match select(read, drained).await {
                Either::Left((Ok(n), _)) if n > 0 => {
                    if io.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Either::Left(_) => return,
                Either::Right(_) => {
                    let _ = io.write_all(b"bye\n").await;
                    return;
                }
            }
        }
    };
    select(std::pin::pin!(work), killed).await;
}
