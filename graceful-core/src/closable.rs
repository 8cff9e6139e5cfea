//! Idle connections a protocol offers to the drain: [`Conn::offer_close`],
//! [`Conn::withdraw_close`], [`Conn::is_claimed`].
//!
//! A drain that tells an idle connection to close wakes its task, which closes it: with
//! thousands of idle connections, the drain lasts as long as the executor takes to run every
//! one of those tasks, though each has nothing left to do. A protocol that knows a connection
//! has nothing left to do (idle, everything it wrote handed to the socket, nothing read
//! since, no close handshake owed: not TLS, whose close_notify its task writes) offers it.
//! When the drain begins and tells such a connection to close at once, it *claims* it: counts
//! it closed idle and takes it out of the registry, under the registry lock, so the drain
//! waits for it no longer. The connection is still told (and its task woken): the task closes
//! the socket without reading or writing another byte, soon after the report, or the
//! process's exit does.
//!
//! # Invariants
//!
//! - Offer, withdrawal and claim are compare-and-swaps on the connection's own byte
//!   (`ConnInner::closable`): a protocol that withdraws before it hands read bytes on
//!   either keeps the connection (the drain never claims it after) or learns that the drain
//!   claimed it first, and drops the bytes, as bytes sent to a closing connection.
//! - Only a quiet (`New` or `Idle`) connection is claimed, only by [`Drain::begin`]
//!   (`drain.rs`), and only when it would be told to drain at once: the quiet period and
//!   the close spread hold as for any other.
//! - A claimed connection is counted once: by the claim; its `Conn`'s drop leaves the
//!   registry and the tally alone (its key may be another connection's by then).
//!
//! [`Drain::begin`]: crate::drain

use crate::conn::Conn;

impl Conn {
    /// Offers the connection to the drain: it is idle, everything its protocol wrote is in
    /// the socket, nothing was read since, and closing the socket now loses nothing (no
    /// close handshake is owed: not after a TLS handshake). A drain that tells it to close at
    /// once counts it closed idle right then, without waiting for its task
    /// ([`is_claimed`](Conn::is_claimed)); the task must then close the socket without
    /// reading or writing another byte. Call [`withdraw_close`](Conn::withdraw_close) before
    /// handing on any byte read after the offer. Nothing once claimed.
    ///
    /// For a server with many idle connections, this makes the drain as fast as dropping
    /// them: no task needs to run before the report.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// conn.mark_idle(); // the response went out...
    /// conn.offer_close(); // ...and was flushed, and nothing came since
    /// timer.advance(Duration::from_secs(1)); // quiet for longer than the quiet period
    ///
    /// graceful.shutdown().stop();
    /// let report = graceful.run().now_or_never().expect("nothing to wait for");
    /// assert_eq!((report.idle_closed, report.killed), (1, 0));
    /// assert!(conn.is_claimed() && conn.is_drain_requested()); // its task closes it now
    /// ```
    #[inline]
    pub fn offer_close(&self) {
        self.inner().offer_close();
    }

    /// Takes back an [offer](Conn::offer_close): the protocol read bytes, which it hands on
    /// only if this returns `true`. `false` means the drain claimed the connection first: it
    /// is counted closed, and the bytes are to be dropped with the connection, as bytes sent
    /// to a connection as it closed. `true` too if nothing was offered.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.offer_close();
    /// assert!(conn.withdraw_close(), "a request head begins: the connection is ours");
    /// timer.advance(Duration::from_secs(1));
    ///
    /// graceful.shutdown().stop();
    /// let mut run = graceful.run();
    /// assert!((&mut run).now_or_never().is_none(), "waits for the connection to close");
    /// assert!(!conn.is_claimed() && conn.is_drain_requested());
    /// drop(conn);
    /// assert_eq!(run.now_or_never().unwrap().idle_closed, 1);
    /// ```
    #[inline]
    pub fn withdraw_close(&self) -> bool {
        self.inner().withdraw_close()
    }

    /// Whether the drain claimed the connection (see [`offer_close`](Conn::offer_close)):
    /// it is counted closed idle, and its task must close the socket without reading or
    /// writing another byte. A claimed connection is also told to drain.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.offer_close();
    /// assert!(!conn.is_claimed(), "offered, but no drain yet");
    /// ```
    #[inline]
    pub fn is_claimed(&self) -> bool {
        self.inner().is_claimed()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use std::sync::Arc;

    use futures::FutureExt;

    use crate::conn::Conn;
    use crate::graceful::Graceful;
    use crate::manager::{AbortGuard, Run};
    use crate::manual::ManualTimer;
    use crate::settings::Settings;
    use crate::shared::Shared;
    use crate::shutdown::Shutdown;

    fn server(quiet: Duration) -> (ManualTimer, Graceful) {
        let timer = ManualTimer::new();
        let graceful = Graceful::builder()
            .quiet_period(quiet)
            .build(timer.clone())
            .unwrap();
        (timer, graceful)
    }

    #[test]
    fn an_offered_idle_connection_is_counted_closed_without_its_task() {
        let (timer, graceful) = server(Duration::from_millis(100));
        let acceptor = graceful.acceptor();
        let offered = acceptor.try_reserve().unwrap().register();
        offered.mark_active();
        offered.mark_idle();
        offered.offer_close();
        timer.advance(Duration::from_millis(200));
        let shutdown = graceful.shutdown();
        shutdown.stop();
        let report = graceful.run().now_or_never().expect("no task to wait for");
        assert_eq!(
            (report.idle_closed, report.completed, report.killed),
            (1, 0, 0)
        );
        assert_eq!(shutdown.counts().total(), 0, "out of the registry");
        assert!(offered.is_claimed() && offered.is_drain_requested() && !offered.is_killed());
        assert!(!offered.withdraw_close(), "bytes read now are dropped");
        drop(offered);
        assert_eq!(shutdown.report().unwrap().idle_closed, 1, "counted once");
    }

    #[test]
    fn a_late_connection_on_a_claimed_ones_key_stays_registered() {
        let timer = ManualTimer::new();
        let settings = Settings {
            quiet_period: Duration::ZERO,
            ..Settings::default()
        };
        let shared = Shared::new(settings, Arc::new(timer.clone()));
        let guard = AbortGuard::new(shared.clone());
        let offered = Conn::register(shared.clone(), None, None);
        let busy = Conn::register(shared.clone(), None, None);
        busy.mark_active();
        offered.offer_close();
        timer.advance(Duration::from_millis(10));
        let shutdown = Shutdown::new(shared.clone());
        let mut run = Box::pin(Run::new(guard));
        shutdown.stop();
        assert!(
            run.as_mut().now_or_never().is_none(),
            "the busy one holds it"
        );
        assert!(offered.is_claimed());
        // The registry hands out the key the claim freed.
        let late = Conn::register(shared.clone(), None, None);
        drop(offered);
        assert_eq!(
            shutdown.counts().total(),
            2,
            "busy and late are still there"
        );
        busy.mark_idle();
        drop(busy);
        assert!(
            run.as_mut().now_or_never().is_none(),
            "the late one holds it"
        );
        drop(late);
        let report = run.now_or_never().expect("all closed");
        assert_eq!((report.idle_closed, report.completed), (2, 1));
    }

    #[test]
    fn a_withdrawn_offer_is_not_claimed() {
        let (timer, graceful) = server(Duration::from_millis(100));
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        conn.mark_active();
        conn.mark_idle();
        conn.offer_close();
        assert!(
            conn.withdraw_close(),
            "bytes read: the connection stays ours"
        );
        timer.advance(Duration::from_millis(200));
        graceful.shutdown().stop();
        let mut run = graceful.run();
        assert!((&mut run).now_or_never().is_none(), "waits for its task");
        assert!(!conn.is_claimed() && conn.is_drain_requested());
        drop(conn);
        assert_eq!(run.now_or_never().unwrap().idle_closed, 1);
    }

    #[test]
    fn an_offer_inside_its_quiet_period_is_not_claimed_at_the_start() {
        let (timer, graceful) = server(Duration::from_millis(100));
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        conn.mark_active();
        conn.mark_idle();
        conn.offer_close();
        timer.advance(Duration::from_millis(10));
        graceful.shutdown().stop();
        let mut run = graceful.run();
        assert!((&mut run).now_or_never().is_none());
        assert!(
            !conn.is_claimed() && !conn.is_drain_requested(),
            "told later"
        );
        timer.advance(Duration::from_millis(100));
        assert!((&mut run).now_or_never().is_none());
        assert!(
            conn.is_drain_requested() && !conn.is_claimed(),
            "told, not claimed"
        );
        drop(conn);
        assert_eq!(run.now_or_never().unwrap().idle_closed, 1);
    }

    #[test]
    fn an_active_connection_is_never_claimed() {
        let (timer, graceful) = server(Duration::ZERO);
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        conn.offer_close();
        conn.mark_active(); // a protocol that forgot to withdraw
        timer.advance(Duration::from_millis(10));
        graceful.shutdown().stop();
        let mut run = graceful.run();
        assert!((&mut run).now_or_never().is_none());
        assert!(!conn.is_claimed());
        conn.mark_idle();
        drop(conn);
        assert_eq!(run.now_or_never().unwrap().completed, 1);
    }

    #[test]
    fn no_claim_with_a_close_spread() {
        let timer = ManualTimer::new();
        let graceful = Graceful::builder()
            .quiet_period(Duration::ZERO)
            .close_spread(Duration::from_secs(1))
            .build(timer.clone())
            .unwrap();
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        conn.offer_close();
        timer.advance(Duration::from_millis(10));
        graceful.shutdown().stop();
        let mut run = graceful.run();
        assert!((&mut run).now_or_never().is_none());
        assert!(!conn.is_claimed());
        drop(conn);
        assert_eq!(run.now_or_never().unwrap().idle_closed, 1);
    }
}
