//! The per-connection handle.
//!
//! A [`Conn`] stands on the registry (`shared.rs`: the connection's record, its entry and
//! exit, its room under the listen limit) and the clock; the accept side (`accept.rs`) hands
//! it out.
//!
//! # Invariants
//!
//! - A connection is in the registry exactly as long as its [`Conn`] lives; `Drop` removes it,
//!   so a panicking or cancelled task never leaks a count.
//! - Only `Conn` changes the state bits of its word; only the manager sets the signal bits.
//!   Both use atomic read-modify-write, so neither loses the other's bits.
//! - `mark_active` and `mark_idle` touch only the connection's own word: no lock, no shared
//!   counter, no allocation. `mark_idle` stamps when the connection went quiet: while the
//!   server's clock tick runs, from the bound it publishes (one atomic load, see `clock.rs`),
//!   and otherwise from the timer.
//! - Both have an inline fast path, one compare-and-swap through the same [`state::apply`]
//!   as the general [`Conn::transition`]: taken only when the transition has nothing to
//!   tell (the drain has not noted the connection, no observer) and, for `mark_idle`, the
//!   tick's bound is fresh. Everything else, and a lost race, goes the general way.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::clock;
use crate::handshake::Handshake;
use crate::loom::AtomicU64;
use crate::shared::{ConnInner, ListenerIndex, Permit, Shared};
use crate::state::{self, ConnId, ConnState, Event, DRAIN, KILL, NOTED, PROMPT};
use crate::streams::StreamCounts;
use crate::work::{Describe, Stamp};

/// A tracked connection, from accept to close.
///
/// Get one from `Slot::register` (the accept side) when a connection is accepted, and
/// keep it for as long as the connection lives. Protocol code reports what the connection
/// does with [`mark_active`](Conn::mark_active), [`mark_idle`](Conn::mark_idle) and
/// [`mark_hijacked`](Conn::mark_hijacked); dropping the handle is `Closed`, also when the task
/// panics or is cancelled.
///
/// The manager talks back through two notifications: [`drain_requested`](Conn::drain_requested) (finish the
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
/// assert!(!conn.is_server_draining()); // no need for `Connection: close`
/// conn.mark_idle(); // its response is written
///
/// graceful.shutdown().force();
/// futures::executor::block_on(graceful.run());
/// assert!(conn.drain_requested().now_or_never().is_some());
/// ```
pub struct Conn {
    inner: Arc<ConnInner>,
    shared: Arc<Shared>,
    key: usize,
    /// The handshake before the protocol (TLS), if the listener's streams speak one.
    handshake: Option<Handshake>,
    /// Room under the listen limit, given back after the connection left the registry.
    _permit: Option<Permit>,
}

impl Conn {
    /// Registers a new connection, accepted from `listener` if a serve loop accepted it.
    /// Called by `Slot::register`.
    pub(crate) fn register(
        shared: Arc<Shared>,
        permit: Option<Permit>,
        listener: Option<ListenerIndex>,
    ) -> Conn {
        let (inner, key) = shared.register(listener);
        Conn {
            inner,
            shared,
            key,
            handshake: None,
            _permit: permit,
        }
    }

    /// The handshake this connection's stream speaks before its protocol (TLS), if any: the
    /// serve loop attaches what its listener's `Listener::handshake` gives. A protocol hook reads it when the drain reaches a connection that has sent no
    /// request: a client part way through its handshake is not silent.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, HandshakeFlag, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let mut conn = graceful.acceptor().try_reserve().unwrap().register();
    /// assert!(conn.handshake().is_none(), "plain TCP");
    /// let flag = HandshakeFlag::new(); // the stream's own
    /// conn.set_handshake(flag.handshake());
    /// flag.raise();
    /// assert!(conn.handshake().is_some_and(|handshake| handshake.is_under_way()));
    /// ```
    #[inline]
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }

    /// Attaches the read-only view of the handshake this connection's stream speaks before
    /// its protocol (see [`handshake`](Conn::handshake)). The serve loop does it for every
    /// connection whose listener has one; call it when serving connections by hand.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, HandshakeFlag, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let mut conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.set_handshake(HandshakeFlag::new().handshake());
    /// assert!(conn.handshake().is_some());
    /// ```
    pub fn set_handshake(&mut self, handshake: Handshake) {
        self.handshake = Some(handshake);
    }

    /// This connection's id, as the state observer sees it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConnState, Graceful, ManualTimer};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let record = seen.clone();
    /// let graceful = Graceful::builder()
    ///     .on_state_change(move |id, state| record.lock().unwrap().push((id, state)))
    ///     .build(ManualTimer::new())
    ///     .unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// assert_eq!(seen.lock().unwrap()[..], [(conn.id(), ConnState::New)]);
    /// ```
    #[inline]
    pub fn id(&self) -> ConnId {
        self.inner.id
    }

    /// The current state: never `Closed`, as a live handle is not closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConnState, Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// assert_eq!(conn.state(), ConnState::New);
    /// conn.mark_active();
    /// assert_eq!(conn.state(), ConnState::Active);
    /// ```
    #[inline]
    pub fn state(&self) -> ConnState {
        ConnState::from_bits(self.inner.word.load(Ordering::Acquire))
    }

    /// The server's quiet period (`Builder::quiet_period`): when the drain begins, a
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
    #[inline]
    pub fn quiet_period(&self) -> Duration {
        self.shared.settings.quiet_period
    }

    /// Since when the connection has been quiet: the instant it was accepted (`New`) or its
    /// last unit of work ended (`Idle`), on the server's clock, rounded up to the
    /// millisecond; `None` while it is `Active` or `Hijacked`. Never earlier than the truth:
    /// while the server's tick (`Graceful::tick`) runs, the stamp is its coarse clock's
    /// bound, at most about 8 ms later.
    ///
    /// Protocol code bounds how long a connection may stay quiet with it (an HTTP/1 header
    /// read timeout, say) without a timer per request: one timer per connection, which on
    /// firing compares the deadline with this stamp and, if the connection worked in
    /// between, sleeps again until `quiet_since + timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, Timer};
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// let accepted = conn.quiet_since().unwrap();
    /// assert!(accepted >= timer.now());
    ///
    /// conn.mark_active();
    /// assert_eq!(conn.quiet_since(), None);
    /// timer.advance(Duration::from_secs(5));
    /// conn.mark_idle();
    /// assert!(conn.quiet_since().unwrap() >= accepted + Duration::from_secs(5));
    /// ```
    pub fn quiet_since(&self) -> Option<Instant> {
        let word = self.inner.word.load(Ordering::Acquire);
        match ConnState::from_bits(word) {
            ConnState::New | ConnState::Idle => {
                let clock = &self.shared.clock;
                let stamp =
                    clock.trusted_stamp(state::quiet_since_ms(word), || clock.now_ms_ceil());
                Some(clock.instant_at_ms(stamp))
            }
            _ => None,
        }
    }

    /// Says how the connection's protocol tells what it is doing: the drain's progress
    /// (`Progress::holders`) and its report (`ShutdownReport::kills`) name the work
    /// in flight through it. `describer` is called only when they ask, never on the request
    /// path. Once per connection: a later call is ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Describe, Graceful, ManualTimer, Stamp, Work};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// struct Publishing(Stamp);
    ///
    /// impl Describe for Publishing {
    ///     fn describe(&self, now: Stamp, work: &mut Vec<Work>) {
    ///         work.push(Work::since("PUBLISH news", self.0, now));
    ///     }
    /// }
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// conn.describe_with(Arc::new(Publishing(conn.stamp())));
    /// let shutdown = graceful.shutdown();
    /// shutdown.stop();
    /// let mut run = Box::pin(graceful.run());
    /// assert!(futures::FutureExt::now_or_never(run.as_mut()).is_none());
    /// timer.advance(Duration::from_secs(2));
    /// let progress = shutdown.progress();
    /// assert_eq!(progress.holders[0].work.what, "PUBLISH news");
    /// # drop(conn);
    /// ```
    pub fn describe_with(&self, describer: Arc<dyn Describe>) {
        let _ = self.inner.describer.set(describer);
    }

    /// The server's coarse clock, cheaply (one atomic load while the server serves): a
    /// [`Stamp`] up to some 12 ms after now. For stamping when a unit of work began, to say
    /// how long it has run ([`describe_with`](Conn::describe_with)); never for a deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// let began = conn.stamp();
    /// timer.advance(Duration::from_secs(2));
    /// assert_eq!(began.elapsed_until(conn.stamp()), Duration::from_secs(2));
    /// ```
    #[inline]
    pub fn stamp(&self) -> Stamp {
        Stamp::from_millis(self.shared.clock.coarse_ms())
    }

    /// A unit of work started: a request head was read, or an HTTP/2 stream opened.
    ///
    /// Calls nest: the connection is `Active` until every `mark_active` is matched by a
    /// [`mark_idle`](Conn::mark_idle). Illegal on a `Hijacked` connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConnState, Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active(); // HTTP/2: stream 1 opens
    /// conn.mark_active(); // stream 3 opens
    /// conn.mark_idle(); // stream 1 ends
    /// assert_eq!(conn.state(), ConnState::Active, "stream 3 is still in flight");
    /// ```
    #[inline]
    pub fn mark_active(&self) {
        let word = &self.inner.word;
        let current = word.load(Ordering::Acquire);
        if self.is_plain(current) {
            // Active takes no stamp.
            if let Ok(next) = state::apply(current, Event::Active, || 0) {
                if swapped(word, current, next) {
                    return;
                }
            }
        }
        self.transition(Event::Active);
    }

    /// A unit of work finished: its response was fully written. The last one makes the
    /// connection `Idle` and starts its quiet period. Illegal unless `Active`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConnState, Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// conn.mark_idle();
    /// assert_eq!(conn.state(), ConnState::Idle);
    /// ```
    #[inline]
    pub fn mark_idle(&self) {
        let word = &self.inner.word;
        let current = word.load(Ordering::Acquire);
        if self.is_plain(current) {
            if let Some(clock) = self.shared.clock.fresh() {
                let stamp = clock::bound_ms(clock);
                if let Ok(next) = state::apply(current, Event::Idle, || stamp) {
                    if swapped(word, current, next) {
                        self.shared.clock.restamp(word, next, clock);
                        return;
                    }
                }
            }
        }
        self.transition(Event::Idle);
    }

    /// The connection left the protocol, for example after a WebSocket upgrade. A drain sends
    /// it the drain notification and waits for it like an active connection. Illegal on a
    /// connection already `Hijacked`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConnState, Graceful, ManualTimer, Outcome};
    /// use futures::FutureExt;
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active(); // GET /chat, Upgrade: websocket
    /// conn.mark_hijacked(); // 101 Switching Protocols
    /// assert_eq!(conn.state(), ConnState::Hijacked);
    ///
    /// shutdown.stop();
    /// let mut run = graceful.run();
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(conn.drain_requested().now_or_never().is_some(), "told: say goodbye, then close");
    /// drop(conn);
    /// assert_eq!(run.now_or_never().unwrap().hijacked, 1);
    /// ```
    pub fn mark_hijacked(&self) {
        self.transition(Event::Hijacked);
    }

    /// This connection's protocol closes an idle connection without racing the client's next
    /// request, so the drain needs no quiet period for it: from now on the drain tells it at
    /// once, whatever its state (or, with a close spread, `Builder::close_spread`, in
    /// its slot). HTTP/2 is such a protocol: GOAWAY tells the client which streams were
    /// taken, and it retries the others elsewhere.
    ///
    /// One atomic operation on the connection's own word. If the drain has begun already and
    /// scheduled this connection for the end of its quiet period, it is told at once instead
    /// (with a close spread, it keeps its slot).
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
        let word = self.inner.word.fetch_or(PROMPT, Ordering::AcqRel);
        if word & (NOTED | DRAIN | PROMPT) == NOTED && self.shared.settings.close_spread.is_none() {
            // The drain scheduled it for the end of its quiet period: hand it back to the
            // manager, which tells a prompt connection at once. (With a close spread, it
            // keeps its slot.)
            self.shared.registry().late.push(self.inner.clone());
            self.shared.manager_event.notify(usize::MAX);
        }
    }

    /// Hands the report what this connection's streams did during the drain:
    /// [`ShutdownReport::streams`](crate::ShutdownReport::streams) sums it over the
    /// connections. A multiplexing protocol's hook counts them itself (graceful-hyper reads
    /// the frames HTTP/2 writes) and calls this once, as the connection ends: before its
    /// `Conn` drops, and for a killed one before its task ends. Ignored for a connection the
    /// drain never reached: only the drain's streams are counted.
    ///
    /// One lock of the registry, as the connection's close takes: never on the request path.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, StreamCounts};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active(); // two streams open
    /// conn.mark_active();
    /// graceful.shutdown().stop();
    /// let mut run = Box::pin(graceful.run());
    /// assert!(futures::FutureExt::now_or_never(run.as_mut()).is_none()); // the drain begins
    /// // After the GOAWAY: 3 streams answered, 1 refused; the connection dies with 2 open.
    /// conn.count_streams(StreamCounts::new(3, 1, conn.in_flight()));
    /// drop(conn);
    /// let report = futures::executor::block_on(run);
    /// assert_eq!(report.streams, StreamCounts::new(3, 1, 2));
    /// ```
    pub fn count_streams(&self, counts: StreamCounts) {
        if counts.total() == 0 {
            return;
        }
        let mut registry = self.shared.registry();
        // Read under the lock: the drain notes connections under it.
        if self.inner.word.load(Ordering::Acquire) & NOTED != 0 {
            registry.tally.streams.add(counts);
        }
    }

    /// How many units of work are in flight: the [`mark_active`](Conn::mark_active) calls
    /// not yet matched by a [`mark_idle`](Conn::mark_idle) (HTTP/2: the streams whose
    /// response has not ended). Zero unless `Active`.
    ///
    /// Once graceful-core has ended the connection (killed it, or cut it for a stalled
    /// write: [`is_killed`](Conn::is_killed), `SendLimit`), how many were in flight then,
    /// before anything serving it heard of it: the units its end cut, however soon their
    /// tasks end afterwards (on other threads, say) and mark them idle.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// conn.mark_active();
    /// assert_eq!(conn.in_flight(), 2);
    /// conn.mark_idle();
    /// assert_eq!(conn.in_flight(), 1);
    ///
    /// graceful.shutdown().force();
    /// futures::executor::block_on(graceful.run());
    /// conn.mark_idle(); // its handler ends after the kill
    /// assert_eq!(conn.in_flight(), 1, "cut by the kill");
    /// ```
    pub fn in_flight(&self) -> usize {
        if let Some(units) = self.inner.ended_in_flight() {
            return units;
        }
        let word = self.inner.word.load(Ordering::Acquire);
        match ConnState::from_bits(word) {
            ConnState::Active => usize::try_from(state::in_flight(word)).unwrap_or(usize::MAX),
            _ => 0,
        }
    }

    /// Whether the server is draining, whether or not the drain has reached this connection
    /// yet ([`is_drain_requested`](Conn::is_drain_requested) says that). Protocol code uses
    /// it to ask the client not to reuse the connection, for example with `Connection:
    /// close`, and to close once the work in flight is done.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// assert!(!conn.is_server_draining());
    /// graceful.shutdown().stop();
    /// let mut run = graceful.run();
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(conn.is_server_draining(), "answer this request with `Connection: close`");
    /// # drop(conn);
    /// ```
    #[inline]
    pub fn is_server_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// Whether this connection has been told to drain (or was killed): what
    /// [`drain_requested`](Conn::drain_requested) waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().quiet_period(Duration::from_millis(100)).build(timer.clone())?;
    /// let conn = graceful.acceptor().try_reserve()?.register(); // quiet since now
    /// graceful.shutdown().stop();
    /// let mut run = graceful.run();
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(conn.is_server_draining() && !conn.is_drain_requested(), "its quiet period is not over");
    /// timer.advance(Duration::from_millis(100));
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(conn.is_drain_requested());
    /// # drop(conn);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn is_drain_requested(&self) -> bool {
        self.inner.word.load(Ordering::Acquire) & DRAIN != 0
    }

    /// Whether this connection has been killed: what [`killed`](Conn::killed) waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// assert!(!conn.is_killed());
    /// graceful.shutdown().force();
    /// futures::executor::block_on(graceful.run());
    /// assert!(conn.is_killed() && conn.is_drain_requested());
    /// ```
    #[inline]
    pub fn is_killed(&self) -> bool {
        self.inner.word.load(Ordering::Acquire) & KILL != 0
    }

    /// Resolves when this connection should finish its work in flight and then close: at once
    /// for an active, hijacked or long-quiet connection when the drain begins, at the end of
    /// its quiet period for a connection that went quiet only just before.
    ///
    /// Only the task that last polled a `DrainRequested` of this connection is woken: await it from
    /// the one task that runs the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// # futures::executor::block_on(async {
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active(); // a request is in flight
    /// let connection = async move {
    ///     conn.drain_requested().await; // the server is shutting down
    ///     conn.mark_idle(); // finish the response, then close
    /// };
    /// shutdown.stop();
    /// let (report, ()) = futures::join!(graceful.run(), connection);
    /// assert_eq!(report.completed, 1);
    /// # });
    /// ```
    pub fn drain_requested(&self) -> DrainRequested<'_> {
        DrainRequested { conn: self }
    }

    /// A future that resolves when this connection must stop at once: at the timeout, or on a
    /// forced stop. It owns what it needs, so an adapter can take it before handing the `Conn`
    /// to the protocol and race the protocol against it.
    ///
    /// As with [`drain_requested`](Conn::drain_requested), only the last task to poll one is woken.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::future::{select, Either};
    ///
    /// # futures::executor::block_on(async {
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// let killed = conn.killed();
    /// let protocol = Box::pin(async move {
    ///     conn.mark_active();
    ///     futures::future::pending::<()>().await; // a handler that never ends
    ///     drop(conn);
    /// });
    /// shutdown.force();
    /// let (report, ended) = futures::join!(graceful.run(), select(protocol, killed));
    /// assert!(matches!(ended, Either::Right(_)), "the adapter drops the protocol when killed");
    /// assert_eq!(report.killed, 1);
    /// # });
    /// ```
    pub fn killed(&self) -> Killed {
        Killed {
            inner: self.inner.clone(),
        }
    }

    /// Counts, in the report's [`streams_ended`](crate::ShutdownReport::streams_ended), a
    /// long response of this connection that the protocol ended itself once its stream grace
    /// after the drain ran out (graceful-hyper's gRPC and Server-Sent Events streams). Call it
    /// once per response so ended; outside a drain it counts nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active(); // a stream that would go on for ever
    /// graceful.shutdown().stop();
    /// let mut run = Box::pin(graceful.run());
    /// assert!(run.as_mut().now_or_never().is_none(), "the drain waits for the stream");
    /// // Its grace is over: the protocol ends the stream itself, and says so.
    /// conn.note_stream_ended();
    /// conn.mark_idle();
    /// drop(conn);
    /// let report = run.now_or_never().unwrap();
    /// assert_eq!((report.completed, report.streams_ended), (1, 1));
    /// ```
    pub fn note_stream_ended(&self) {
        if self.is_server_draining() {
            self.shared.streams_ended.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The connection's record in the registry: its word and its stall word.
    #[inline]
    pub(crate) fn inner(&self) -> &ConnInner {
        &self.inner
    }

    /// The registry the connection is in: the server's settings and clock.
    #[inline]
    pub(crate) fn registry(&self) -> &Shared {
        &self.shared
    }

    /// Whether a transition from `word` has nothing to tell anyone: the drain has not noted
    /// the connection (so no progress to announce, no `WORKED` to raise) and nobody observes
    /// state changes. Then `mark_active` and `mark_idle` are one compare-and-swap, inline;
    /// anything else, or a lost race, takes [`transition`](Conn::transition), which does the
    /// same and the rest.
    #[inline]
    fn is_plain(&self, word: u64) -> bool {
        word & NOTED == 0 && self.shared.settings.on_state_change.is_none()
    }

    /// Tells progress observers that this connection changed state during the drain. Out of
    /// line and cold: the request path before a shutdown never comes here.
    #[cold]
    #[inline(never)]
    fn progress_changed(&self) {
        self.shared.progress_event.notify(usize::MAX);
    }

    /// The general transition, out of line: the fast paths of `mark_active` and `mark_idle`
    /// stay small where they are inlined.
    #[inline(never)]
    fn transition(&self, event: Event) {
        let mut cached = None;
        let stamp = || {
            let (ms, from) = self.shared.clock.quiet_stamp();
            cached = from;
            ms
        };
        match state::transition(&self.inner.word, event, stamp) {
            Ok((current, next)) => {
                if let Some(read) = cached {
                    self.shared.clock.restamp(&self.inner.word, next, read);
                }
                let (from, to) = (ConnState::from_bits(current), ConnState::from_bits(next));
                // `NOTED` comes with the word the swap read: before the drain this costs
                // nothing, and during it a notification with no listener is an atomic load.
                if from != to && current & NOTED != 0 {
                    self.progress_changed();
                }
                if from != to {
                    if let Some(observer) = &self.shared.settings.on_state_change {
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

/// One attempt to swap `word` from `current` to `next`.
#[inline]
fn swapped(word: &AtomicU64, current: u64, next: u64) -> bool {
    word.compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.deregister(self.key, &self.inner);
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

/// Future returned by [`Conn::drain_requested`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct DrainRequested<'a> {
    conn: &'a Conn,
}

impl Future for DrainRequested<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.conn.inner.poll_drain(cx)
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
        self.inner.poll_kill(cx)
    }
}
