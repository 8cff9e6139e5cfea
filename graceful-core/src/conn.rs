//! The per-connection handle.
//!
//! # Invariants
//!
//! - A connection is in the registry exactly as long as its [`Conn`] lives; `Drop` removes it,
//!   so a panicking or cancelled task never leaks a count.
//! - Only `Conn` changes the state bits of its word; only the manager sets the signal bits.
//!   Both use atomic read-modify-write, so neither loses the other's bits.
//! - `mark_active` and `mark_idle` touch only the connection's own word: no lock, no shared
//!   counter, no allocation. `mark_idle` reads the clock once, to stamp when the connection
//!   went quiet.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;

use crate::accept::Permit;
use crate::loom::AtomicU64;
use crate::shared::Shared;
use crate::state::{self, ConnState, Event, DRAIN, KILL, NOTED, PROMPT, WORKED};

/// A connection's identity, unique within one [`Graceful`](crate::Graceful) server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    /// The number behind the id: connections are numbered from 0 in the order they register.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// What the registry and the manager hold of a connection.
pub(crate) struct ConnInner {
    pub(crate) word: AtomicU64,
    pub(crate) id: ConnId,
    drain: AtomicWaker,
    kill: AtomicWaker,
}

impl ConnInner {
    /// Sets signal bits and wakes whoever waits on them.
    pub(crate) fn signal(&self, bits: u64) {
        self.mark(bits);
        self.wake(bits);
    }

    /// Sets signal bits without waking anyone: under a lock, where no executor code may run.
    /// Follow with [`wake`](ConnInner::wake) once the lock is released.
    pub(crate) fn mark(&self, bits: u64) {
        self.word.fetch_or(bits, Ordering::AcqRel);
    }

    /// Wakes whoever waits on these signal bits.
    pub(crate) fn wake(&self, bits: u64) {
        if bits & (DRAIN | KILL) != 0 {
            self.drain.wake();
        }
        if bits & KILL != 0 {
            self.kill.wake();
        }
    }
}

impl fmt::Debug for ConnInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.word.load(Ordering::Relaxed);
        f.debug_struct("ConnInner")
            .field("id", &self.id)
            .field("state", &ConnState::from_bits(word))
            .finish()
    }
}

/// A tracked connection, from accept to close.
///
/// Get one from [`Slot::register`](crate::Slot::register) when a connection is accepted, and
/// keep it for as long as the connection lives. Protocol code reports what the connection
/// does with [`mark_active`](Conn::mark_active), [`mark_idle`](Conn::mark_idle) and
/// [`mark_hijacked`](Conn::mark_hijacked); dropping the handle is `Closed`, also when the task
/// panics or is cancelled.
///
/// The manager talks back through two notifications: [`drained`](Conn::drained) (finish the
/// work in flight, then close) and [`killed`](Conn::killed) (stop now).
///
/// `Conn` is `Send + Sync`: HTTP/2 streams on several threads may mark the same connection.
///
/// # Examples
///
/// A line protocol that serves until told to drain:
///
/// ```
/// use graceful_core::{Graceful, ManualTimer};
/// use futures::FutureExt;
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let conn = graceful.acceptor().try_reserve().unwrap().register();
///
/// conn.mark_active(); // a request arrived
/// assert!(!conn.is_draining()); // no need for `Connection: close`
/// conn.mark_idle(); // its response is written
///
/// graceful.shutdown().force();
/// futures::executor::block_on(graceful.run());
/// assert!(conn.drained().now_or_never().is_some());
/// ```
pub struct Conn {
    inner: Arc<ConnInner>,
    shared: Arc<Shared>,
    key: usize,
    /// Room under the listen limit, given back after the connection left the registry.
    _permit: Option<Permit>,
}

impl Conn {
    /// Registers a new connection. Called by `Slot::register`.
    pub(crate) fn register(shared: Arc<Shared>, permit: Option<Permit>) -> Conn {
        let id = ConnId(shared.next_id.fetch_add(1, Ordering::Relaxed));
        let inner = Arc::new(ConnInner {
            word: AtomicU64::new(state::new_word(shared.now_ms_ceil())),
            id,
            drain: AtomicWaker::new(),
            kill: AtomicWaker::new(),
        });
        let (key, late) = {
            let mut registry = shared.registry();
            let key = registry.conns.insert(inner.clone());
            // `draining` only changes under this lock, so the manager either saw this
            // connection in its scan or finds it in `late`.
            let late = shared.draining.load(Ordering::Acquire);
            if shared.finished.load(Ordering::Acquire) {
                // Accepted after the server stopped: nobody will drain it. Nobody waits on it
                // yet, so there is no one to wake.
                inner.mark(NOTED | DRAIN | KILL);
            } else if late {
                inner.word.fetch_or(NOTED, Ordering::AcqRel);
                registry.late.push(inner.clone());
            }
            (key, late)
        };
        if late {
            shared.manager_event.notify(usize::MAX);
        }
        if let Some(observer) = &shared.on_state_change {
            observer(id, ConnState::New);
        }
        Conn {
            inner,
            shared,
            key,
            _permit: permit,
        }
    }

    /// This connection's id, as the state observer sees it.
    pub fn id(&self) -> ConnId {
        self.inner.id
    }

    /// The current state: never `Closed`, as a live handle is not closed.
    pub fn state(&self) -> ConnState {
        ConnState::from_bits(self.inner.word.load(Ordering::Acquire))
    }

    /// The server's [quiet period](crate::Builder::quiet_period): when the drain begins, a
    /// connection idle for less than this is told to drain only once it has been idle this
    /// long.
    ///
    /// Protocol code that keeps a connection open during a drain so that a client's next
    /// request is answered rather than raced (an HTTP/1 keep-alive linger, say) reads it here,
    /// so it waits as long as the manager does and needs no setting of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let graceful = Graceful::builder()
    ///     .quiet_period(Duration::from_millis(100))
    ///     .build(ManualTimer::new())
    ///     .unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// assert_eq!(conn.quiet_period(), Duration::from_millis(100));
    /// ```
    pub fn quiet_period(&self) -> Duration {
        self.shared.quiet_period
    }

    /// A unit of work started: a request head was read, or an HTTP/2 stream opened.
    ///
    /// Calls nest: the connection is `Active` until every `mark_active` is matched by a
    /// [`mark_idle`](Conn::mark_idle). Illegal on a `Hijacked` connection.
    pub fn mark_active(&self) {
        self.transition(Event::Active);
    }

    /// A unit of work finished: its response was fully written. The last one makes the
    /// connection `Idle` and starts its quiet period. Illegal unless `Active`.
    pub fn mark_idle(&self) {
        self.transition(Event::Idle);
    }

    /// The connection left the protocol, for example after a WebSocket upgrade. A drain sends
    /// it the drain notification and waits for it like an active connection. Illegal on a
    /// connection already `Hijacked`.
    pub fn mark_hijacked(&self) {
        self.transition(Event::Hijacked);
    }

    /// This connection's protocol closes an idle connection without racing the client's next
    /// request, so the drain needs no quiet period for it: from now on the drain tells it at
    /// once, whatever its state. HTTP/2 is such a protocol: GOAWAY tells the client which
    /// streams were taken, and it retries the others elsewhere.
    ///
    /// One atomic operation on the connection's own word. If the drain has begun already and
    /// this connection was scheduled for the end of its quiet period, that schedule stands:
    /// protocol code can look at [`is_draining`](Conn::is_draining) itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder()
    ///     .quiet_period(Duration::from_secs(1))
    ///     .build(timer.clone())
    ///     .unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.skip_quiet_period(); // say, HTTP/2 was negotiated
    ///
    /// graceful.shutdown().stop();
    /// let mut run = Box::pin(graceful.run());
    /// assert!(run.as_mut().now_or_never().is_none()); // the drain begins
    /// assert!(conn.is_drain_requested(), "told at once, quiet period or not");
    /// ```
    pub fn skip_quiet_period(&self) {
        self.inner.word.fetch_or(PROMPT, Ordering::AcqRel);
    }

    /// Whether the server is draining. Protocol code uses it to ask the client not to reuse
    /// the connection, for example with `Connection: close`, and to close once the work in
    /// flight is done.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// Whether this connection has been told to drain (or was killed): what
    /// [`drained`](Conn::drained) waits for.
    pub fn is_drain_requested(&self) -> bool {
        self.inner.word.load(Ordering::Acquire) & DRAIN != 0
    }

    /// Whether this connection has been killed: what [`killed`](Conn::killed) waits for.
    pub fn is_killed(&self) -> bool {
        self.inner.word.load(Ordering::Acquire) & KILL != 0
    }

    /// Resolves when this connection should finish its work in flight and then close: at once
    /// for an active, hijacked or long-quiet connection when the drain begins, at the end of
    /// its quiet period for a connection that went quiet only just before.
    ///
    /// Only the task that last polled a `Drained` of this connection is woken: await it from
    /// the one task that runs the connection.
    pub fn drained(&self) -> Drained<'_> {
        Drained { conn: self }
    }

    /// A future that resolves when this connection must stop at once: at the timeout, or on a
    /// forced stop. It owns what it needs, so an adapter can take it before handing the `Conn`
    /// to the protocol and race the protocol against it.
    ///
    /// As with [`drained`](Conn::drained), only the last task to poll one is woken.
    pub fn killed(&self) -> Killed {
        Killed {
            inner: self.inner.clone(),
        }
    }

    fn transition(&self, event: Event) {
        match state::transition(&self.inner.word, event, || self.shared.now_ms_ceil()) {
            Ok((current, next)) => {
                let (from, to) = (ConnState::from_bits(current), ConnState::from_bits(next));
                if from != to {
                    if let Some(observer) = &self.shared.on_state_change {
                        observer(self.inner.id, to);
                    }
                }
            }
            Err(illegal) => {
                self.shared
                    .illegal_transitions
                    .fetch_add(1, Ordering::Relaxed);
                debug_assert!(false, "{illegal} ({})", self.inner.id);
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let shared = &self.shared;
        let last = {
            let mut registry = shared.registry();
            registry.conns.try_remove(self.key);
            // Read under the lock: the manager marks and kills under it too.
            let word = self.inner.word.load(Ordering::Acquire);
            if word & NOTED != 0 && word & KILL == 0 {
                let tally = &mut registry.tally;
                match ConnState::from_bits(word) {
                    ConnState::Hijacked => tally.hijacked += 1,
                    _ if word & WORKED != 0 => tally.completed += 1,
                    _ => tally.idle_closed += 1,
                }
            }
            registry.conns.is_empty()
        };
        if let Some(observer) = &shared.on_state_change {
            observer(self.inner.id, ConnState::Closed);
        }
        // The manager waits for the last connection only: closing 5,000 idle connections
        // wakes it once, not 5,000 times.
        if last && shared.draining.load(Ordering::Acquire) {
            shared.manager_event.notify(usize::MAX);
        }
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.inner.id)
            .field("state", &self.state())
            .field("drain_requested", &self.is_drain_requested())
            .field("killed", &self.is_killed())
            .finish()
    }
}

/// Future returned by [`Conn::drained`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Drained<'a> {
    conn: &'a Conn,
}

impl Future for Drained<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.conn.inner;
        poll_bit(&inner.word, &inner.drain, DRAIN, cx)
    }
}

/// Future returned by [`Conn::killed`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Killed {
    inner: Arc<ConnInner>,
}

impl Future for Killed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        poll_bit(&self.inner.word, &self.inner.kill, KILL, cx)
    }
}

fn poll_bit(word: &AtomicU64, waker: &AtomicWaker, bit: u64, cx: &mut Context<'_>) -> Poll<()> {
    if word.load(Ordering::Acquire) & bit != 0 {
        return Poll::Ready(());
    }
    waker.register(cx.waker());
    // The signal may have landed between the check and the registration.
    if word.load(Ordering::Acquire) & bit != 0 {
        return Poll::Ready(());
    }
    Poll::Pending
}
