//! What can be read and limited: the observer, the listen limit, live counts, the report, and
//! the settings checked when a server is built.

use std::time::Duration;

use graceful_core::{
    ConfigError, ConnCounts, ConnState, ManualTimer, Outcome, TryReserveError, MAX_DURATION,
};

use crate::builder;
use crate::common::{ms, Harness};

#[test]
fn the_observer_sees_every_transition_in_order() {
    let mut h = Harness::running(builder());
    let a = h.open();
    let b = h.open();
    a.mark_active();
    a.mark_active(); // nested: no change of state
    b.mark_hijacked();
    a.mark_idle();
    a.mark_idle();
    a.mark_active();
    let (ida, idb) = (a.id(), b.id());
    drop(b);
    h.shutdown.stop();
    h.settle();
    a.mark_idle();
    drop(a);
    h.settle();

    use ConnState::*;
    assert_eq!(
        h.hooks.take_events(),
        [
            (ida, New),
            (idb, New),
            (ida, Active),
            (idb, Hijacked),
            (ida, Idle),
            (ida, Active),
            (idb, Closed),
            (ida, Idle),
            (ida, Closed),
        ]
    );
    assert_eq!(h.report().unwrap().completed, 1);
}

#[test]
fn reserve_waits_for_a_free_slot_under_the_listen_limit() {
    let mut h = Harness::running(builder().listen_limit(2));
    let a = h.open();
    let b = h.open();
    assert_eq!(h.acceptor.try_reserve().unwrap_err(), TryReserveError::Full);
    let acceptor = h.acceptor.clone();
    let waiting = h.spawn(async move { acceptor.reserve().await });
    assert!(waiting.borrow().is_none(), "the limit is reached");

    drop(a); // a closed connection frees its slot
    h.settle();
    let slot = waiting
        .borrow_mut()
        .take()
        .expect("woken by the close")
        .expect("a slot");
    let c = slot.register();
    assert_eq!(h.shutdown.counts().total(), 2);
    drop((b, c));
}

#[test]
fn a_dropped_slot_gives_its_room_back() {
    let h = Harness::running(builder().listen_limit(1));
    let slot = h.acceptor.try_reserve().unwrap();
    assert_eq!(h.acceptor.try_reserve().unwrap_err(), TryReserveError::Full);
    drop(slot); // the accept failed
    assert!(h.acceptor.try_reserve().is_ok());
}

#[test]
fn the_shutdown_wakes_an_accept_waiting_on_the_limit() {
    let mut h = Harness::running(builder().listen_limit(1));
    let conn = h.open();
    conn.mark_active();
    let acceptor = h.acceptor.clone();
    let waiting = h.spawn(async move { acceptor.reserve().await });
    assert!(waiting.borrow().is_none());

    h.shutdown.stop();
    h.settle();
    let got = waiting
        .borrow_mut()
        .take()
        .expect("woken by the stop, not left hanging");
    assert!(got.is_none(), "stop accepting");
}

#[test]
fn counts_follow_each_state() {
    let h = Harness::running(builder());
    assert_eq!(h.shutdown.counts(), ConnCounts::default());
    let new = h.open();
    let active = h.open();
    active.mark_active();
    let idle = h.open();
    idle.mark_active();
    idle.mark_idle();
    let hijacked = h.open();
    hijacked.mark_hijacked();
    let also_active = h.open();
    also_active.mark_active();
    also_active.mark_active();

    let counts = h.shutdown.counts();
    assert_eq!(
        (counts.new, counts.active, counts.idle, counts.hijacked),
        (1, 2, 1, 1)
    );
    assert_eq!(counts.total(), 5);
    drop((new, hijacked));
    let counts = h.shutdown.counts();
    assert_eq!((counts.new, counts.hijacked, counts.total()), (0, 0, 3));
    drop((active, idle, also_active));
    assert_eq!(h.shutdown.counts(), ConnCounts::default());
}

#[test]
fn the_report_adds_up() {
    let mut h = Harness::running(
        builder()
            .timeout(Duration::from_secs(1))
            .quiet_period(ms(100)),
    );
    let worked = h.open();
    worked.mark_active();
    let idle = h.open();
    let hijacked = h.open();
    hijacked.mark_hijacked();
    let stuck = h.open();
    stuck.mark_active();
    let gone_before = h.open();
    drop(gone_before); // closed before the drain: not the drain's business

    h.shutdown.stop();
    h.settle();
    worked.mark_idle();
    drop(worked);
    h.advance(ms(100));
    drop((idle, hijacked));
    h.advance(ms(900));

    let report = h.report().unwrap();
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(
        (
            report.completed,
            report.idle_closed,
            report.hijacked,
            report.killed
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(report.total(), 4);
    assert_eq!(
        report.to_string(),
        "timed out in 1.000s: 1 completed, 1 idle closed, 1 hijacked, 1 killed (1 active); \
         slowest 100.000ms"
    );
    assert_eq!(
        report.slowest,
        ms(100),
        "idle and hijacked closed at 100 ms"
    );
    assert_eq!((report.killed_in.active, report.killed_in.total()), (1, 1));
    drop(stuck); // after the report: it was killed, and counted as such only
    assert_eq!(h.shutdown.report(), Some(report));
}

#[test]
fn settings_that_make_no_sense_are_rejected_when_built() {
    let long = MAX_DURATION + Duration::from_secs(1);
    let cases = [
        (
            builder().listen_limit(0),
            ConfigError::ZeroListenLimit,
            "listen limit is zero: no connection could ever be accepted".to_owned(),
        ),
        (
            builder().timeout(Duration::ZERO),
            ConfigError::ZeroTimeout,
            "shutdown timeout is zero: to stop at once, use `force()`; to wait forever, `no_timeout()` or `stop_without_timeout()`"
                .to_owned(),
        ),
        (
            builder().timeout(long),
            ConfigError::TimeoutTooLong(long),
            format!(
                "shutdown timeout of {long:?} is longer than ten years: to wait forever, use `no_timeout()` or `stop_without_timeout()`"
            ),
        ),
        (
            builder().no_timeout().quiet_period(long),
            ConfigError::QuietPeriodTooLong(long),
            format!("quiet period of {long:?} is longer than ten years"),
        ),
        (
            builder().timeout(ms(250)).quiet_period(ms(250)),
            ConfigError::QuietPeriodNotShorterThanTimeout {
                quiet_period: ms(250),
                timeout: ms(250),
            },
            "quiet period of 250ms is not shorter than the shutdown timeout of 250ms".to_owned(),
        ),
    ];
    for (builder, error, text) in cases {
        let got = builder.build(ManualTimer::new()).unwrap_err();
        assert_eq!(got, error);
        assert_eq!(got.to_string(), text);
    }
}

#[test]
fn a_stop_with_a_timeout_that_makes_no_sense_is_refused_and_starts_nothing() {
    let long = MAX_DURATION + Duration::from_secs(1);
    let mut h = Harness::running(builder());
    let conn = h.open();
    conn.mark_active();
    let refused = [
        (Duration::ZERO, ConfigError::ZeroTimeout),
        (long, ConfigError::TimeoutTooLong(long)),
        (Duration::MAX, ConfigError::TimeoutTooLong(Duration::MAX)),
    ];
    for (timeout, error) in refused {
        assert_eq!(h.shutdown.stop_with_timeout(timeout), Err(error));
        h.settle();
        assert!(
            !h.shutdown.is_shutting_down(),
            "{timeout:?}: nothing started"
        );
    }
    h.shutdown.stop_with_timeout(MAX_DURATION).unwrap();
    h.settle();
    assert!(h.shutdown.is_shutting_down(), "the longest accepted");
    assert_eq!(h.shutdown.progress().time_left, Some(MAX_DURATION));
    conn.mark_idle();
    drop(conn);
    h.settle();
    assert_eq!(h.report().unwrap().outcome, Outcome::Drained);
}

#[test]
fn settings_at_the_edges_are_accepted() {
    let ok = [
        builder().no_timeout().quiet_period(MAX_DURATION),
        builder().timeout(MAX_DURATION),
        builder().timeout(ms(251)).quiet_period(ms(250)),
        builder()
            .timeout(Duration::from_nanos(1))
            .quiet_period(Duration::ZERO),
        builder().listen_limit(1),
    ];
    for builder in ok {
        let debug = format!("{builder:?}");
        assert!(builder.build(ManualTimer::new()).is_ok(), "{debug}");
    }
}

/// A connection that closes on its own after the stop, before the manager acts on it (its
/// first poll), is still in the report: as completed if it had work in flight, as idle
/// closed if not; a vetoed stop forgets such closes.
#[test]
fn connections_closing_between_the_stop_and_the_managers_first_poll_are_counted() {
    use graceful_core::Graceful;

    let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    let acceptor = graceful.acceptor();
    let shutdown = graceful.shutdown();
    let busy = acceptor.try_reserve().unwrap().register();
    let idle = acceptor.try_reserve().unwrap().register();
    busy.mark_active();
    shutdown.stop();
    drop((busy, idle)); // before the manager runs
    let report = futures::executor::block_on(graceful.run());
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!(
        (report.completed, report.idle_closed, report.total()),
        (1, 1, 2)
    );

    // Vetoed: the closes around the stop are not the report's.
    let allow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook = allow.clone();
    let graceful = Graceful::builder()
        .before_shutdown(move || hook.load(std::sync::atomic::Ordering::SeqCst))
        .build(ManualTimer::new())
        .unwrap();
    let shutdown = graceful.shutdown();
    let gone = graceful.acceptor().try_reserve().unwrap().register();
    let mut run = Box::pin(graceful.run());
    shutdown.stop();
    drop(gone);
    assert!(
        futures::FutureExt::now_or_never(run.as_mut()).is_none(),
        "vetoed"
    );
    allow.store(true, std::sync::atomic::Ordering::SeqCst);
    shutdown.stop();
    let report = futures::executor::block_on(run);
    assert_eq!((report.outcome, report.total()), (Outcome::Drained, 0));
}
