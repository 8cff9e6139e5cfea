//! The bound on stalled writes: a connection whose writes make no progress for the send
//! timeout is cut, at once if the drain's shorter bound has passed when the drain begins,
//! never while its peer keeps reading; and the settings that bound it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{abortable, AbortHandle, Aborted};
use graceful_core::{
    Builder, ConfigError, Conn, Graceful, ManualTimer, Outcome, Timer, MAX_DURATION,
};

use crate::builder;
use crate::common::{ms, Harness};

/// The drain's bound the tests pass, as graceful-hyper passes its header grace.
const DRAIN_BOUND: Duration = Duration::from_secs(1);

/// A connection's task that writes into a full socket: notes the blocked write, then waits
/// on the connection's send limit (as a protocol's task does next to its connection) and
/// closes it once cut.
struct Writer {
    /// The instant of the cut, once cut; `Err` once finished.
    cut: Rc<RefCell<Option<Result<Instant, Aborted>>>>,
    finish: AbortHandle,
}

impl Writer {
    fn spawn(h: &mut Harness, conn: Arc<Conn>) -> Writer {
        let timer = h.timer.clone();
        let (task, finish) = abortable(async move {
            conn.note_write_blocked();
            conn.send_limit(DRAIN_BOUND).await;
            timer.now()
        });
        Writer {
            cut: h.spawn(task),
            finish,
        }
    }

    /// When it was cut, if it was.
    fn cut(&self) -> Option<Instant> {
        self.cut.borrow().and_then(Result::ok)
    }

    /// Its last write went out: the task ends, and drops its handle of the connection.
    fn finish(self, h: &mut Harness) {
        self.finish.abort();
        h.settle();
        assert!(self.cut.borrow().is_some(), "the task ended");
    }
}

/// A server from `builder`, one connection with a response in flight (told to drain at
/// once), whose writer stalls now: the server, that instant, the connection, its writer.
fn stalled(builder: Builder<Graceful>) -> (Harness, Instant, Arc<Conn>, Writer) {
    let mut h = Harness::running(builder);
    let start = h.timer.now();
    let conn = Arc::new(h.open());
    conn.mark_active();
    let writer = Writer::spawn(&mut h, conn.clone());
    (h, start, conn, writer)
}

#[test]
fn a_stalled_write_is_cut_at_exactly_the_send_timeout() {
    let (mut h, start, _conn, writer) = stalled(builder().send_timeout(ms(10_000)));
    h.advance(ms(9_999));
    assert_eq!(writer.cut(), None);
    h.advance(ms(1));
    assert_eq!(writer.cut(), Some(start + ms(10_000)));
    assert!(!h.shutdown.is_shutting_down(), "outside a drain");
}

#[test]
fn progress_restarts_the_bound() {
    let (mut h, start, conn, writer) = stalled(builder().send_timeout(ms(10_000)));
    h.advance(ms(6_000));
    conn.note_write_progress(); // the peer read a little...
    conn.note_write_blocked(); // ...and the socket filled again
    h.advance(ms(9_999));
    assert_eq!(
        writer.cut(),
        None,
        "stalled for 9.999 s since its last progress"
    );
    h.advance(ms(1));
    assert_eq!(writer.cut(), Some(start + ms(16_000)));
}

#[test]
fn the_drain_shortens_the_bound() {
    let (mut h, start, conn, writer) = stalled(builder());
    h.advance(ms(500));
    h.shutdown.stop();
    h.settle();
    assert_eq!(writer.cut(), None, "stalled for 0.5 s of the drain's 1 s");
    h.advance(ms(499));
    assert_eq!(writer.cut(), None);
    h.advance(ms(1));
    assert_eq!(
        writer.cut(),
        Some(start + DRAIN_BOUND),
        "not the send timeout's 60 s"
    );
    drop(conn);
    h.settle();
    let report = h.report().expect("nothing left");
    assert_eq!(
        (report.outcome, report.stalled, report.completed),
        (Outcome::Drained, 1, 0)
    );
    assert_eq!(report.total(), 1);
}

#[test]
fn a_stall_older_than_the_drain_bound_is_cut_when_the_drain_begins() {
    let (mut h, _, conn, writer) = stalled(builder());
    h.advance(ms(5_000));
    let drain = h.timer.now();
    h.shutdown.stop();
    h.settle();
    assert_eq!(writer.cut(), Some(drain), "cut at once");
    drop(conn);
    h.settle();
    assert_eq!(h.report().expect("drained").stalled, 1);
}

#[test]
fn a_reader_that_keeps_reading_keeps_its_response_through_the_drain() {
    let (mut h, _, conn, writer) = stalled(builder().timeout(ms(30_000)));
    h.shutdown.stop();
    h.settle();
    // It reads a little every 0.8 s, for 10 s: each time, the socket fills again at once.
    for _ in 0..12 {
        h.advance(ms(800));
        conn.note_write_progress();
        conn.note_write_blocked();
    }
    assert_eq!(writer.cut(), None);
    conn.note_write_progress(); // the last bytes went out
    conn.mark_idle();
    writer.finish(&mut h);
    drop(conn);
    h.settle();
    let report = h.report().expect("drained");
    assert_eq!((report.completed, report.stalled), (1, 0));
}

#[test]
fn without_a_send_timeout_nothing_is_cut_not_even_in_a_drain() {
    let (mut h, _, _conn, writer) = stalled(builder().no_send_timeout().timeout(ms(10_000)));
    h.advance(ms(5_000));
    h.shutdown.stop();
    h.settle();
    h.advance(ms(9_999));
    assert_eq!(writer.cut(), None);
    h.advance(ms(1));
    let report = h.report().expect("timed out");
    assert_eq!((report.killed, report.stalled), (1, 0));
}

#[test]
fn the_send_timeout_is_checked_when_the_server_is_built() {
    let build = |builder: Builder<Graceful>| builder.build(ManualTimer::new()).map(drop);
    assert_eq!(
        build(builder().send_timeout(Duration::ZERO)),
        Err(ConfigError::ZeroSendTimeout)
    );
    let long = MAX_DURATION + ms(1);
    assert_eq!(
        build(builder().send_timeout(long)),
        Err(ConfigError::SendTimeoutTooLong(long))
    );
    assert_eq!(build(builder().send_timeout(MAX_DURATION)), Ok(()));
    assert_eq!(
        build(builder().send_timeout(Duration::ZERO).no_send_timeout()),
        Ok(())
    );
    assert!(ConfigError::ZeroSendTimeout
        .to_string()
        .contains("`no_send_timeout()`"));
    assert!(ConfigError::SendTimeoutTooLong(long)
        .to_string()
        .starts_with("send timeout of 315360000.001s is longer than ten years"));
}
