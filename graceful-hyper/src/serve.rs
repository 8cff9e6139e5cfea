//! The task that serves one connection: sniff the protocol, run hyper, answer the drain and
//! the kill, and outlive the upgrades.
//!
//! # Invariants
//!
//! - A kill wins over everything: it is checked first on every poll, and drops hyper's
//!   connection (and with it the socket) at once. Then a claim: a connection the drain
//!   counted closed idle (offered by `TrackedIo`) is dropped the same way, unpolled.
//! - The drainer looks at the connection after every poll of hyper's connection (see
//!   `drain.rs` for what it decides), and so do the header read timeout and the send limit
//!   (graceful-core's `SendLimit`, fed by `TrackedIo`): a write stalled past its bound ends
//!   the connection, counted by graceful-core.
//! - After an HTTP/1 upgrade (`UPGRADING`, and the IO still alive when hyper's connection
//!   ended) the task marks the connection `Hijacked` and lives until the upgraded IO is
//!   dropped (`IO_GONE`), relaying the drain to the watchers; on a kill it drops the socket
//!   itself (`close_hijacked`).
//! - HTTP/2: hyper's connection borrows the IO, so that once h2 ended the connection on the
//!   drain (the final GOAWAY written, its side shut) the task reads and drops what the peer
//!   still sends until it closes, for the header grace at most (`linger`): a close with
//!   bytes unread would reset the connection. Not after a cut (`Ended::Cut`).
//! - When this future ends or is dropped, watchers are told (`SERVER_GONE`) and wait on
//!   graceful-core directly from then on; an upgraded socket still open is closed: the
//!   future owns the connection, upgraded or not.

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
#[cfg(feature = "http1")]
use std::pin::pin;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use event_listener::EventListener;
use graceful_core::serve::Runtime;
use graceful_core::{Conn, Handshake};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
#[cfg(feature = "http2")]
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::rt::{Read, Write};
#[cfg(feature = "http1")]
use hyper::server::conn::http1;
#[cfg(feature = "http2")]
use hyper::server::conn::http2;
use hyper::service::Service;

use crate::config::{Config, Protocols, StreamGrace};
use crate::current::Current;
use crate::drain::{Drainer, Step};
use crate::error::Error;
use crate::io::{Protocol, TrackedIo};
use crate::notice::Kill;
use crate::quiet::QuietLimit;
use crate::service::TrackedService;
use crate::shared::{
    ConnShared, CLOSING, DRAIN_SEEN, IO_GONE, KILLED, READ, SERVER_GONE, UPGRADING,
};
use crate::timer::SharedTimer;

/// How driving the protocol ended.
enum Ended {
    /// hyper's connection finished, or the drain closed it before any protocol started.
    Done(Result<(), Error>),
    /// The serving task closed the connection itself: a stalled write, the header read
    /// timeout, or the drain's close of a silent HTTP/2 peer.
    Cut,
    /// The connection was killed.
    Killed,
}

/// Serves one connection to its end; `out` turns the result into the future's output (the
/// handler drops it: a future of `()` needs no `map` around it, a layer polled on every wake).
/// `plain`: dropping `io` owes the peer nothing, so an idle connection may be offered to the
/// drain (`TrackedIo`), unless its listener spoke a handshake (TLS) before the protocol.
pub(crate) async fn serve<R, I, S, B, O>(
    config: Arc<Config<R>>,
    io: I,
    conn: Conn,
    service: S,
    out: impl FnOnce(Result<(), Error>) -> O,
    plain: bool,
) -> O
where
    R: Runtime,
    I: Read + Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    // Raised by a TLS stream while its client is part way through the handshake.
    let mid_handshake = conn.handshake().cloned();
    let stream_grace = config.stream_grace.map(|grace| StreamGrace {
        timer: config.timer.clone(),
        grace,
    });
    let shared = Arc::new(ConnShared::new(conn).with_stream_grace(stream_grace));
    let _gone = Gone(shared.clone());
    let mut killed = Kill::new(&shared.conn);
    // The linger waits as long as the manager does: the server's quiet period.
    let quiet_period = shared.conn.quiet_period();
    let mut drainer = Drainer::new(config.timer.clone(), config.header_grace, quiet_period);
    let offers = plain && shared.conn.handshake().is_none();
    let mut io = TrackedIo::new(io, shared.clone(), offers);
    let service = TrackedService::new(service, shared.clone(), config.watch_in_extensions);
    // One timer for the connection's life, not one per request (see `quiet.rs`).
    let mut quiet = QuietLimit::new(config.header_read_timeout, &shared.conn);

    // With one protocol compiled in, it is pinned: the sniffing below is never reached.
    let protocol = match config.protocols {
        #[cfg(feature = "http1")]
        Protocols::Http1 => Some(Protocol::Http1),
        #[cfg(feature = "http2")]
        Protocols::Http2 => Some(Protocol::Http2),
        #[cfg(all(feature = "http1", feature = "http2"))]
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
            &mut quiet,
            mid_handshake.as_ref(),
        )
        .await
        {
            Ok(protocol) => protocol,
            Err(ended) => return out(finish(&shared, ended)),
        },
    };
    let ended = match protocol {
        #[cfg(feature = "http1")]
        Protocol::Http1 => {
            let conn = config.h1.serve_connection(io, service).with_upgrades();
            let limits = Limits {
                killed: &mut killed,
                drainer: &mut drainer,
                quiet: quiet.as_mut(),
                timer: &config.timer,
                handshake: mid_handshake.as_ref(),
                send_drain_bound: config.header_grace,
            };
            drive(pin!(conn), &shared, limits, protocol).await
        }
        #[cfg(feature = "http2")]
        Protocol::Http2 => {
            io.switch_to_http2();
            // GOAWAY tells the client which streams were taken: no quiet period.
            shared.conn.skip_quiet_period();
            // Boxed: hyper's HTTP/2 connection is twice the size of its HTTP/1 one, and
            // inline it would make every connection's task that large.
            // The IO lent, not given: after the last GOAWAY it lingers (`linger`).
            let mut conn = Box::pin(config.h2.serve_connection(&mut io, service));
            // hyper has no header read timeout for HTTP/2 either: streams, not heads.
            let limits = Limits {
                killed: &mut killed,
                drainer: &mut drainer,
                quiet: None,
                timer: &config.timer,
                handshake: None,
                send_drain_bound: config.header_grace,
            };
            let ended = drive(conn.as_mut(), &shared, limits, protocol).await;
            drop(conn);
            // Only after h2 itself ended the connection on the drain: not after a cut.
            if matches!(ended, Ended::Done(Ok(()))) && shared.conn.is_server_draining() {
                linger(&mut io, &shared, &mut killed, &config.timer, config.header_grace).await;
            }
            ended
        }
        // Only sniffing tells a protocol not compiled in, and it runs only with both.
        #[cfg(not(all(feature = "http1", feature = "http2")))]
        _ => Ended::Done(Ok(())),
    };
    if let Ended::Done(_) | Ended::Cut = ended {
        if !outlive_upgrade(&shared).await {
            return out(finish(&shared, Ended::Killed));
        }
    }
    out(finish(&shared, ended))
}

fn finish(shared: &ConnShared, ended: Ended) -> Result<(), Error> {
    match ended {
        Ended::Done(result) => result,
        Ended::Cut => Ok(()),
        Ended::Killed => {
            shared.relay(KILLED);
            Ok(())
        }
    }
}

/// Reads the first bytes until they tell the protocol, unless the drain, the kill or the
/// header read timeout comes first.
async fn sniff<I, R>(
    config: &Config<R>,
    io: &mut TrackedIo<I>,
    shared: &ConnShared,
    killed: &mut Kill,
    drainer: &mut Drainer,
    quiet: &mut Option<QuietLimit>,
    mid_handshake: Option<&Handshake>,
) -> Result<Protocol, Ended>
where
    I: Read + Write + Unpin + Send + 'static,
{
    poll_fn(|cx| {
        if killed.poll(&shared.conn, cx).is_ready() {
            return Poll::Ready(Err(Ended::Killed));
        }
        if let Some(quiet) = quiet {
            if quiet.poll(cx, &shared.conn, &config.timer).is_ready() {
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
#[inline]
fn note_handshake(shared: &ConnShared, mid_handshake: Option<&Handshake>) {
    if let Some(handshake) = mid_handshake {
        if handshake.is_under_way() && shared.conn.is_server_draining() {
            shared.set(READ);
        }
    }
}

/// HTTP/2, after h2 ended the connection on the drain (the final GOAWAY written, the write
/// side shut): reads and drops what the peer still sends until it closes its side, for the
/// header grace at most (Go's HTTP/2 server waits 1 s for the client to close after its
/// GOAWAY). Closing a socket with bytes unread makes the kernel reset the connection, and a
/// reset makes the peer's kernel drop what it had received and not yet read: the end of the
/// last responses. A balancer that opens a stream as the final GOAWAY crosses it (HAProxy
/// does) then loses those responses' trailers.
#[cfg(feature = "http2")]
async fn linger<I>(
    io: &mut TrackedIo<I>,
    shared: &ConnShared,
    killed: &mut Kill,
    timer: &SharedTimer,
    bound: Duration,
) where
    I: Read + Write + Unpin + Send + 'static,
{
    let mut sleep = match timer.now().checked_add(bound) {
        Some(deadline) => timer.sleep_until(deadline),
        None => return,
    };
    let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); 512];
    poll_fn(|cx| {
        if killed.poll(&shared.conn, cx).is_ready() || sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        loop {
            let mut buf = hyper::rt::ReadBuf::uninit(&mut scratch);
            match Pin::new(&mut *io).poll_read(cx, buf.unfilled()) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                // The end of the stream, or an error: nothing more to wait for.
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// A hyper connection that can be asked to finish gracefully.
trait HyperConnection: Future<Output = hyper::Result<()>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

#[cfg(feature = "http1")]
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

#[cfg(feature = "http2")]
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

/// What ends a connection besides its protocol: the kill, the drain, the header read timeout,
/// a stalled write.
struct Limits<'a> {
    killed: &'a mut Kill,
    drainer: &'a mut Drainer,
    quiet: Option<&'a mut QuietLimit>,
    timer: &'a SharedTimer,
    /// Raised by a TLS stream while its handshake is under way (see `note_handshake`).
    handshake: Option<&'a Handshake>,
    /// How long a write may stall once the server drains: the header grace.
    send_drain_bound: Duration,
}

/// Runs hyper's connection to its end, answering the drain, the kill, the header read
/// timeout and the send timeout. Each poll of hyper's connection makes this one the thread's
/// current connection (see `current.rs`), lending it the task's own reference.
async fn drive<C: HyperConnection>(
    mut conn: Pin<&mut C>,
    shared: &Arc<ConnShared>,
    limits: Limits<'_>,
    protocol: Protocol,
) -> Ended {
    let mut lent = Some(shared.clone());
    let Limits {
        killed,
        drainer,
        mut quiet,
        timer,
        handshake,
        send_drain_bound,
    } = limits;
    // A write its peer accepts nothing of for the send timeout (draining: the header grace)
    // ends the connection; `TrackedIo` notes the writes.
    let mut send = shared.conn.send_limit(send_drain_bound);
    poll_fn(|cx| {
        if killed.poll(&shared.conn, cx).is_ready() {
            return Poll::Ready(Ended::Killed);
        }
        if shared.conn.is_drain_requested() && shared.conn.is_claimed() {
            // The drain counted it closed idle (`TrackedIo` offered it): not another byte.
            return Poll::Ready(Ended::Cut);
        }
        // Before hyper's connection is polled: that poll lets h2 try its writes again, and a
        // peer that stopped reading may take crumbs of them (a kernel buffer packed), which
        // must not count as the progress that saves it from the cut its limit's own wake-up
        // brought. (`TrackedIo` counts no bytes a poll like that finds room for, either.)
        if Pin::new(&mut send).poll(cx).is_ready() {
            // Its peer accepted no bytes for the whole bound: counted, and closed here.
            return Poll::Ready(Ended::Cut);
        }
        let current = Current::enter(lent.take());
        let polled = conn.as_mut().poll(cx);
        lent = current.leave();
        if let Poll::Ready(result) = polled {
            return Poll::Ready(Ended::Done(result.map_err(Error::from)));
        }
        if let Some(quiet) = &mut quiet {
            if quiet.poll(cx, &shared.conn, timer).is_ready() {
                // Quiet for the whole header read timeout: silent, or stuck in a head.
                return Poll::Ready(Ended::Cut);
            }
        }
        // Again after: a write that found no room in this poll arms the limit.
        if Pin::new(&mut send).poll(cx).is_ready() {
            return Poll::Ready(Ended::Cut);
        }
        note_handshake(shared, handshake);
        loop {
            match drainer.poll(cx, shared, Some(protocol)) {
                Poll::Ready(Step::Shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    // hyper acts on it when polled: an idle connection ends right away.
                    let current = Current::enter(lent.take());
                    let polled = conn.as_mut().poll(cx);
                    lent = current.leave();
                    if let Poll::Ready(result) = polled {
                        return Poll::Ready(Ended::Done(result.map_err(Error::from)));
                    }
                    // Look again: HTTP/2 goes on to wait for a quiet window.
                }
                Poll::Ready(Step::Close) => {
                    if protocol == Protocol::Http2 {
                        // The IO wrapper's next read writes the final GOAWAY and ends the
                        // stream; h2 reads once it has written what it buffered. One poll:
                        // a peer that accepts no byte gets the close alone.
                        shared.set(CLOSING);
                        let current = Current::enter(lent.take());
                        let _ = conn.as_mut().poll(cx);
                        lent = current.leave();
                    }
                    return Poll::Ready(Ended::Cut);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// After hyper's connection ended: if it handed its IO to an upgrade, counts the connection
/// hijacked and waits for the upgraded IO to be dropped, relaying the drain to the watchers.
/// Returns `false` if the connection was killed first (its socket is closed then).
///
/// The kill is awaited with a waker of our own ([`CloseOnKill`]): graceful-core runs it when
/// it kills the connection, before it publishes the report, and it drops the upgraded socket
/// right there, so the report never counts as killed an upgrade whose peer can still talk.
async fn outlive_upgrade(shared: &Arc<ConnShared>) -> bool {
    if !shared.has(UPGRADING) || shared.has(IO_GONE) {
        return true;
    }
    shared.conn.mark_hijacked();
    let mut killed = shared.conn.killed();
    let mut close_on_kill: Option<(Waker, Waker)> = None;
    let mut listener: Option<EventListener> = None;
    poll_fn(|cx| loop {
        if shared.has(IO_GONE) {
            return Poll::Ready(true);
        }
        let waker = match &mut close_on_kill {
            Some((task, waker)) if task.will_wake(cx.waker()) => &*waker,
            slot => {
                let waker = Waker::from(Arc::new(CloseOnKill {
                    task: cx.waker().clone(),
                    shared: Arc::downgrade(shared),
                }));
                &slot.insert((cx.waker().clone(), waker)).1
            }
        };
        if Pin::new(&mut killed)
            .poll(&mut Context::from_waker(waker))
            .is_ready()
        {
            shared.close_hijacked();
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

/// The kill's waker for a hijacked connection: drops the upgraded socket, then wakes the
/// serving task. It runs in graceful-core's manager, after it released its locks.
struct CloseOnKill {
    task: Waker,
    /// Weak: graceful-core holds this waker, and the connection holds graceful-core's handle.
    shared: Weak<ConnShared>,
}

impl Wake for CloseOnKill {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.shared.upgrade() {
            if shared.conn.is_killed() {
                shared.close_hijacked();
            }
        }
        self.task.wake_by_ref();
    }
}

fn poll_drained(shared: &ConnShared, cx: &mut Context<'_>) -> Poll<()> {
    Pin::new(&mut shared.conn.drain_requested()).poll(cx)
}

/// Tells the watchers that no task relays notifications any more, and closes an upgraded
/// socket still open.
struct Gone(Arc<ConnShared>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.close_hijacked();
        self.0.relay(SERVER_GONE);
    }
}
