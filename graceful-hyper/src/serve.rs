//! The task that serves one connection: sniff the protocol, run hyper, answer the drain and
//! the kill, and outlive the upgrades.
//!
//! # Invariants
//!
//! - A kill wins over everything: it is checked first on every poll, and drops hyper's
//!   connection (and with it the socket) at once.
//! - The drainer looks at the connection after every poll of hyper's connection (see
//!   `drain.rs` for what it decides).
//! - When this future ends or is dropped, the upgrade handles are told (`SERVER_GONE`) and
//!   wait on graceful-core directly from then on.

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::EventListener;
use graceful_core::Conn;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::rt::{Read, Timer, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::Service;

use crate::body::ResponseBody;
use crate::builder::{Config, Protocols};
use crate::drain::{Drainer, Step};
use crate::error::Error;
use crate::io::{Protocol, TrackedIo};
use crate::notice::Kill;
use crate::service::{ResponseFuture, TrackedService};
use crate::shared::{ConnShared, DRAIN_SEEN, KILLED, READ, SERVER_GONE};

/// How driving the protocol ended.
enum Ended {
    /// hyper's connection finished, or the drain closed it before any protocol started.
    Done(Result<(), Error>),
    /// The connection was killed.
    Killed,
}

pub(crate) async fn serve<I, S, B, E>(
    config: Arc<Config<E>>,
    io: I,
    conn: Conn,
    service: S,
    mid_handshake: Option<Arc<AtomicBool>>,
) -> Result<(), Error>
where
    I: Read + Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: Http2ServerConnExec<ResponseFuture<S::Future>, ResponseBody<B>>,
{
    let shared = Arc::new(ConnShared::new(conn));
    let _gone = Gone(shared.clone());
    let mut killed = Kill::new(&shared.conn);
    // The linger waits as long as the manager does: the server's quiet period.
    let quiet_period = shared.conn.quiet_period();
    let mut drainer = Drainer::new(config.timer.clone(), config.header_grace, quiet_period);
    let mut io = TrackedIo::new(io, shared.clone());
    let service = TrackedService::new(service, shared.clone());

    let protocol = match config.protocols {
        Protocols::Http1 => Some(Protocol::Http1),
        Protocols::Http2 => Some(Protocol::Http2),
        Protocols::Auto => None,
    };
    let protocol = match protocol {
        Some(protocol) => protocol,
        None => match sniff(
            &config,
            &mut io,
            &shared,
            &mut killed,
            &mut drainer,
            mid_handshake.as_deref(),
        )
        .await
        {
            Ok(protocol) => protocol,
            Err(ended) => return finish(&shared, ended),
        },
    };
    let ended = match protocol {
        Protocol::Http1 => {
            let conn = config.h1.serve_connection(io, service).with_upgrades();
            let handshake = mid_handshake.as_deref();
            drive(
                pin!(conn),
                &shared,
                &mut killed,
                &mut drainer,
                protocol,
                handshake,
            )
            .await
        }
        Protocol::Http2 => {
            io.untrack();
            // Boxed: hyper's HTTP/2 connection is twice the size of its HTTP/1 one, and
            // inline it would make every connection's task that large.
            let mut conn = Box::pin(config.h2.serve_connection(io, service));
            drive(
                conn.as_mut(),
                &shared,
                &mut killed,
                &mut drainer,
                protocol,
                None,
            )
            .await
        }
    };
    if let Ended::Done(_) = ended {
        if !outlive_upgrades(&shared, &mut killed).await {
            return finish(&shared, Ended::Killed);
        }
    }
    finish(&shared, ended)
}

fn finish(shared: &ConnShared, ended: Ended) -> Result<(), Error> {
    match ended {
        Ended::Done(result) => result,
        Ended::Killed => {
            shared.relay(KILLED);
            Ok(())
        }
    }
}

/// Reads the first bytes until they tell the protocol, unless the drain, the kill or the
/// header read timeout comes first.
async fn sniff<I, E>(
    config: &Config<E>,
    io: &mut TrackedIo<I>,
    shared: &ConnShared,
    killed: &mut Kill,
    drainer: &mut Drainer,
    mid_handshake: Option<&AtomicBool>,
) -> Result<Protocol, Ended>
where
    I: Read + Write + Unpin,
{
    let mut timeout = config
        .header_read_timeout
        .map(|timeout| config.timer.sleep(timeout));
    poll_fn(|cx| {
        if killed.poll(&shared.conn, cx).is_ready() {
            return Poll::Ready(Err(Ended::Killed));
        }
        if let Some(timeout) = &mut timeout {
            if timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(Ended::Done(Ok(()))));
            }
        }
        if let Poll::Ready(sniffed) = io.poll_sniff(cx) {
            return Poll::Ready(sniffed.map_err(|err| Ended::Done(Err(err.into()))));
        }
        note_handshake(shared, mid_handshake);
        // Nothing to finish yet: whether told to shut down or to cut, close.
        match drainer.poll(cx, shared, None) {
            Poll::Ready(_) => Poll::Ready(Err(Ended::Done(Ok(())))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A connection drained while its IO's handshake is under way, the client having sent part
/// of it, counts as having begun a request head: the drainer gives it the header grace.
fn note_handshake(shared: &ConnShared, mid_handshake: Option<&AtomicBool>) {
    if let Some(flag) = mid_handshake {
        if flag.load(Ordering::Acquire) && shared.conn.is_draining() {
            shared.set(READ);
        }
    }
}

/// A hyper connection that can be asked to finish gracefully.
trait HyperConnection: Future<Output = hyper::Result<()>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> HyperConnection for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: Read + Write + Unpin + Send + 'static,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self)
    }
}

impl<I, S, B, E> HyperConnection for http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self)
    }
}

/// Runs hyper's connection to its end, answering the drain and the kill.
async fn drive<C: HyperConnection>(
    mut conn: Pin<&mut C>,
    shared: &ConnShared,
    killed: &mut Kill,
    drainer: &mut Drainer,
    protocol: Protocol,
    mid_handshake: Option<&AtomicBool>,
) -> Ended {
    poll_fn(|cx| {
        if killed.poll(&shared.conn, cx).is_ready() {
            return Poll::Ready(Ended::Killed);
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(Ended::Done(result.map_err(Error::from)));
        }
        note_handshake(shared, mid_handshake);
        match drainer.poll(cx, shared, Some(protocol)) {
            Poll::Ready(Step::Shutdown) => {
                conn.as_mut().graceful_shutdown();
                // hyper acts on it when polled: an idle connection ends right away.
                conn.as_mut()
                    .poll(cx)
                    .map(|result| Ended::Done(result.map_err(Error::from)))
            }
            Poll::Ready(Step::Close) => Poll::Ready(Ended::Done(Ok(()))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// After hyper's connection ended, waits for the upgrades of the connection to end, relaying
/// the drain to them. Returns `false` if the connection was killed first.
async fn outlive_upgrades(shared: &ConnShared, killed: &mut Kill) -> bool {
    let mut listener: Option<EventListener> = None;
    poll_fn(|cx| loop {
        if shared.upgrades() == 0 {
            return Poll::Ready(true);
        }
        if killed.poll(&shared.conn, cx).is_ready() {
            return Poll::Ready(false);
        }
        if !shared.has(DRAIN_SEEN) && poll_drained(shared, cx).is_ready() {
            shared.relay(DRAIN_SEEN);
        }
        match &mut listener {
            None => listener = Some(shared.listen()),
            Some(waiting) => {
                if Pin::new(waiting).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                listener = None;
            }
        }
    })
    .await
}

fn poll_drained(shared: &ConnShared, cx: &mut Context<'_>) -> Poll<()> {
    Pin::new(&mut shared.conn.drained()).poll(cx)
}

/// Tells the upgrade handles that no task relays notifications any more.
struct Gone(Arc<ConnShared>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.relay(SERVER_GONE);
    }
}
