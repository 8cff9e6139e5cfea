//! The bound on stalled writes: a connection whose peer accepts no bytes of a response for
//! the send timeout is cut, as nginx's `send_timeout` and Go's `WriteTimeout` do.
//!
//! Protocol code notes on its [`Conn`] a write that could not go out and a write that made
//! progress (the stall word, `stall.rs`), and polls a [`SendLimit`] next to the connection.
//! The limit keeps one sleep at a time on the server's timer, like graceful-hyper's header
//! read timeout: armed for `stalled since + bound` when it finds a stall; when it fires, the
//! connection is cut if it has been stalled since then, and otherwise (it made progress in
//! between) a new sleep is armed for the stall now noted, if any. A connection whose writes
//! go out touches no timer; a slow but steady reader pays one sleep per bound at most.
//!
//! # Invariants
//!
//! - A deadline passes only when its sleep fired, never by comparing clocks; the stamp is
//!   never earlier than the truth (`stall.rs`): a connection is never cut early.
//! - The bound is the send timeout while the server serves, and once it drains the shorter
//!   of that and the protocol's drain bound. It is worked out again on every poll while a
//!   sleep is armed, and the drain wakes the limit (it waits on the connection's drain
//!   notification while a sleep is armed): a stall older than the drain's bound when the
//!   drain reaches the connection is cut at once.
//! - Without a stall and without a sleep armed, a poll is one load of the stall word. While
//!   a sleep is armed, the sleep is polled only when it woke its own waker, when the task's
//!   waker changed, or when the drain began; otherwise a poll is a comparison of wakers and
//!   two loads (a connection streaming a big response stalls now and then, normally).
//! - Once it resolved, the connection is marked cut (never unmarked): the registry counts it
//!   when it closes during the drain, and a `warn` event says so, drain or not.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::timer::Sleep;

impl Conn {
    /// A write of this connection could not go out: the peer accepts no more bytes for now
    /// (a socket write or flush returned `Pending`). From the first such write after the last
    /// [progress](Conn::note_write_progress), the connection counts as stalled, and a
    /// [`SendLimit`] cuts it once that has lasted the send timeout
    /// ([`Builder::send_timeout`](crate::Builder::send_timeout)).
    ///
    /// The stall's start is read from the server's timer, rounded up to the millisecond, so
    /// the connection is never cut before it has stalled the whole bound. Later blocked
    /// writes of the same stall cost one load.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().send_timeout(Duration::from_secs(5)).build(timer.clone())?;
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// let mut limit = conn.send_limit(Duration::from_secs(1));
    ///
    /// conn.note_write_blocked(); // the socket is full
    /// assert!((&mut limit).now_or_never().is_none());
    /// timer.advance(Duration::from_secs(5));
    /// assert!(limit.now_or_never().is_some(), "stalled for the send timeout: cut it");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn note_write_blocked(&self) {
        if !self.inner().stall.is_stalled() {
            self.begin_stall();
        }
    }

    #[cold]
    #[inline(never)]
    fn begin_stall(&self) {
        let shared = self.registry();
        if shared.settings.send_timeout.is_some() {
            self.inner().stall.begin(shared.clock.now_ms_ceil());
        }
    }

    /// A write of this connection made progress: some bytes went out (a socket write
    /// returned a count above zero, or a flush completed). Any stall is over. Note it after
    /// every such write: with no stall noted, it costs one load.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().send_timeout(Duration::from_secs(5)).build(timer.clone())?;
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// let mut limit = conn.send_limit(Duration::from_secs(1));
    ///
    /// conn.note_write_blocked();
    /// assert!((&mut limit).now_or_never().is_none());
    /// timer.advance(Duration::from_secs(3));
    /// conn.note_write_progress(); // the peer read some: a slow reader, not a stalled one
    /// conn.note_write_blocked();
    /// timer.advance(Duration::from_secs(2));
    /// assert!((&mut limit).now_or_never().is_none(), "stalled for 2 s only");
    /// timer.advance(Duration::from_secs(3));
    /// assert!(limit.now_or_never().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn note_write_progress(&self) {
        self.inner().stall.progress();
    }

    /// The bound on this connection's stalled writes, as a future: it resolves once a write
    /// noted [blocked](Conn::note_write_blocked) has made no
    /// [progress](Conn::note_write_progress) for the send timeout, or, once the server
    /// drains, for the shorter of that and `drain_bound`. Then close the connection: it is
    /// counted as cut for a stalled write ([`ShutdownReport::stalled`] during a drain) and a
    /// `warn` event says so. With [`no_send_timeout`](crate::Builder::no_send_timeout) it
    /// never resolves.
    ///
    /// `drain_bound` is how long a stalled write may hold the drain: short (graceful-hyper
    /// passes its header grace, 1 s), so that a peer that stopped reading cannot hold the
    /// exit, while a peer that keeps reading, however slowly, keeps its response until the
    /// drain's timeout.
    ///
    /// Poll it on the task that runs the connection and awaits its
    /// [`drain_requested`](Conn::drain_requested), after each poll of the protocol: it
    /// waits on the drain notification too while a write is stalled. It arms one sleep at a
    /// time on the server's timer, only while a write is stalled; otherwise a poll is one
    /// load.
    ///
    /// [`ShutdownReport::stalled`]: crate::ShutdownReport::stalled
    ///
    /// # Examples
    ///
    /// A reader that stopped reading during a drain is cut after the drain's bound:
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone())?; // send timeout: 60 s
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// let (shutdown, mut run) = (graceful.shutdown(), graceful.run());
    /// conn.mark_active(); // a response is being written...
    /// conn.note_write_blocked(); // ...and the peer stopped reading
    /// let mut limit = conn.send_limit(Duration::from_secs(1));
    /// assert!((&mut limit).now_or_never().is_none());
    ///
    /// shutdown.stop();
    /// assert!((&mut run).now_or_never().is_none(), "draining");
    /// assert!((&mut limit).now_or_never().is_none());
    /// timer.advance(Duration::from_secs(1));
    /// assert!(limit.now_or_never().is_some(), "cut after 1 s, not 60 s");
    /// conn.mark_idle(); // the response's task ends as the connection closes
    /// assert_eq!(conn.in_flight(), 1, "what the cut cut");
    /// drop(conn);
    /// assert_eq!(run.now_or_never().unwrap().stalled, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_limit(&self, drain_bound: Duration) -> SendLimit<'_> {
        SendLimit {
            conn: self,
            drain_bound,
            armed: None,
            cut: false,
        }
    }
}

/// Future returned by [`Conn::send_limit`]: resolves when a write of the connection has
/// stalled for longer than its bound, and the connection must be cut.
#[must_use = "futures do nothing unless polled"]
pub struct SendLimit<'a> {
    conn: &'a Conn,
    drain_bound: Duration,
    /// The sleep under way, while one is.
    armed: Option<Armed>,
    /// Resolved: the connection was cut.
    cut: bool,
}

/// A sleep under way, and what tells whether it must be polled again.
struct Armed {
    deadline: Instant,
    sleep: Sleep,
    /// The task's waker the sleep was last polled for.
    task: Waker,
    /// The sleep's own waker: raises `fired`, then wakes `task`.
    own: Waker,
    fired: Arc<Fired>,
    /// Whether the server drained when the deadline was worked out.
    draining: bool,
}

/// Raised when the sleep woke its waker: it must be polled again.
struct Fired {
    fired: AtomicBool,
    task: Waker,
}

impl Fired {
    /// A sleep's own waker that wakes `task`, and its flag.
    fn for_task(task: &Waker) -> (Waker, Arc<Fired>) {
        let fired = Arc::new(Fired {
            fired: AtomicBool::new(false),
            task: task.clone(),
        });
        (Waker::from(fired.clone()), fired)
    }
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl Future for SendLimit<'_> {
    type Output = ();

    /// Inline, the look after every poll of the connection: one load while nothing stalls;
    /// while a sleep is armed, a comparison of wakers and two loads, unless it fired, the
    /// task's waker changed or the drain began.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let idle = match &this.armed {
            None => !this.cut && !this.conn.inner().stall.is_stalled(),
            Some(armed) => {
                armed.task.will_wake(cx.waker())
                    && !armed.fired.fired.load(Ordering::Acquire)
                    && armed.draining == this.conn.is_server_draining()
            }
        };
        if idle {
            return Poll::Pending;
        }
        this.poll_stalled(cx)
    }
}

impl SendLimit<'_> {
    /// [`poll`](SendLimit::poll) when a write is stalled or a sleep may have news.
    #[inline(never)]
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.cut {
            return Poll::Ready(());
        }
        let clock = &self.conn.registry().clock;
        loop {
            let draining = self.conn.is_server_draining();
            let due = self.due(draining);
            let Some(armed) = &mut self.armed else {
                let Some(due) = due else {
                    return Poll::Pending;
                };
                let (own, fired) = Fired::for_task(cx.waker());
                self.armed = Some(Armed {
                    deadline: due,
                    sleep: clock.sleep_until(due),
                    task: cx.waker().clone(),
                    own,
                    fired,
                    draining,
                });
                continue;
            };
            armed.draining = draining;
            if let Some(due) = due.filter(|due| *due < armed.deadline) {
                // The drain shortened the bound: a sooner sleep.
                armed.deadline = due;
                armed.sleep = clock.sleep_until(due);
            }
            if !armed.task.will_wake(cx.waker()) {
                armed.task = cx.waker().clone();
                (armed.own, armed.fired) = Fired::for_task(cx.waker());
            }
            armed.fired.fired.store(false, Ordering::Release);
            if armed
                .sleep
                .as_mut()
                .poll(&mut Context::from_waker(&armed.own))
                .is_pending()
            {
                // The drain wakes this task, and may shorten the bound.
                if !draining
                    && self.conn.inner().poll_drain(cx).is_ready()
                    && self.conn.is_server_draining()
                {
                    continue;
                }
                return Poll::Pending;
            }
            // The deadline passed: was the write stalled all along?
            let fired = armed.deadline;
            self.armed = None;
            match due {
                Some(due) if due <= fired => return self.cut(),
                // Progress since: a new sleep for the stall noted now, at most once per bound.
                Some(_) => continue,
                None => return Poll::Pending,
            }
        }
    }

    /// When the stall noted now passes its bound, the server draining or not; `None` with
    /// no stall or no send timeout.
    fn due(&self, draining: bool) -> Option<Instant> {
        let shared = self.conn.registry();
        let timeout = shared.settings.send_timeout?;
        let since = self.conn.inner().stall.since_ms()?;
        let bound = if draining {
            timeout.min(self.drain_bound)
        } else {
            timeout
        };
        let since = shared.clock.instant_at_ms(since);
        Some(since.checked_add(bound).unwrap_or(since))
    }

    #[cold]
    fn cut(&mut self) -> Poll<()> {
        self.cut = true;
        let conn = self.conn;
        conn.inner().stall.cut();
        conn.inner().note_end();
        tracing::warn!(
            conn = %conn.id(),
            draining = conn.is_server_draining(),
            send_timeout = ?conn.registry().settings.send_timeout,
            drain_bound = ?self.drain_bound,
            "a write stalled past the send timeout: connection cut"
        );
        Poll::Ready(())
    }
}

impl fmt::Debug for SendLimit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendLimit")
            .field("conn", &self.conn.id())
            .field("drain_bound", &self.drain_bound)
            .field("deadline", &self.armed.as_ref().map(|armed| armed.deadline))
            .field("cut", &self.cut)
            .finish()
    }
}
