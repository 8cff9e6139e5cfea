//! What the drain does to each connection: quiet ones close once quiet for the quiet period,
//! active and hijacked ones finish first, late ones are drained too, the timeout kills the
//! rest, and a manager dropped early kills what is left.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use graceful_core::{ManualTimer, Outcome};

use crate::builder;
use crate::common::{ms, poll_once, Harness};

#[test]
fn a_connection_quiet_for_the_whole_quiet_period_is_drained_at_once() {
    let mut h = Harness::running(builder().quiet_period(ms(250)));
    let fresh = h.open(); // New counts as quiet since it was accepted
    let idle = h.open();
    idle.mark_active();
    idle.mark_idle();
    h.advance(ms(250));

    h.shutdown.stop();
    h.settle();
    assert!(fresh.is_drain_requested());
    assert!(idle.is_drain_requested());
    assert!(idle.drain_requested().now_or_never().is_some());
    drop((fresh, idle));
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.idle_closed, report.total()), (2, 2));
}

#[test]
fn a_connection_quiet_for_less_is_drained_at_the_end_of_its_quiet_period() {
    let mut h = Harness::running(builder().quiet_period(ms(250)));
    let conn = h.open();
    h.advance(ms(100));
    conn.mark_active();
    conn.mark_idle(); // quiet since t = 100 ms
    h.advance(ms(100));

    h.shutdown.stop(); // at t = 200 ms
    h.settle();
    assert!(conn.is_server_draining());
    assert!(!conn.is_drain_requested(), "quiet for 100 ms only");
    h.advance(ms(149));
    assert!(!conn.is_drain_requested());
    h.advance(ms(1)); // t = 350 ms: quiet for 250 ms
    assert!(conn.is_drain_requested());
    drop(conn);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.idle_closed, report.completed), (1, 0));
    assert_eq!(report.elapsed, ms(150));
}

#[test]
fn a_zero_quiet_period_drains_quiet_connections_at_once() {
    let mut h = Harness::running(builder().quiet_period(Duration::ZERO));
    let conn = h.open();
    conn.mark_active();
    conn.mark_idle(); // quiet for no time at all
    h.shutdown.stop();
    h.settle();
    assert!(conn.is_drain_requested());
}

#[test]
fn a_kept_alive_connection_that_turns_active_in_its_quiet_window_is_not_killed_early() {
    let mut h = Harness::running(builder().quiet_period(ms(250)));
    let conn = h.open();
    conn.mark_active();
    conn.mark_idle(); // quiet since t = 0
    h.advance(ms(100));
    h.shutdown.stop();
    h.settle();
    assert!(!conn.is_drain_requested());

    // The client, mid-loop, sends its next request: it is served.
    h.advance(ms(50));
    conn.mark_active();
    assert!(
        conn.is_server_draining(),
        "its response can say `Connection: close`"
    );
    h.advance(ms(100)); // t = 250 ms: the quiet period is over
    assert!(conn.is_drain_requested(), "close after this response");
    assert!(!conn.is_killed());
    h.advance(ms(500));
    conn.mark_idle();
    drop(conn);
    h.settle();

    let report = h.report().unwrap();
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!(
        (report.completed, report.idle_closed, report.killed),
        (1, 0, 0)
    );
}

#[test]
fn active_connections_are_told_to_drain_and_waited_for() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    conn.mark_active();

    h.shutdown.stop();
    h.settle();
    assert!(
        conn.is_drain_requested(),
        "finish the work in flight, then close"
    );
    h.advance(Duration::from_secs(29));
    assert!(h.report().is_none());
    conn.mark_idle();
    drop(conn);
    h.settle();
    assert_eq!(h.report().unwrap().completed, 1);
}

#[test]
fn hijacked_connections_are_told_to_drain_waited_for_and_counted() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    conn.mark_active();
    conn.mark_hijacked(); // a WebSocket upgrade
    let conn = Arc::new(conn);
    let drained = {
        let conn = conn.clone();
        h.spawn(async move { conn.drain_requested().await })
    };

    h.shutdown.stop();
    h.settle();
    assert!(drained.borrow().is_some(), "the `Drained` future woke");
    h.advance(Duration::from_secs(10));
    assert!(h.report().is_none(), "waited for like an active connection");
    drop(conn);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!(
        (report.hijacked, report.completed, report.total()),
        (1, 0, 1)
    );
}

#[test]
fn the_timeout_kills_the_connections_left() {
    let mut h = Harness::running(builder().timeout(Duration::from_secs(5)));
    let stuck = h.open();
    stuck.mark_active();
    let quick = h.open();
    quick.mark_active();
    let killed = h.spawn(stuck.killed());

    h.shutdown.stop();
    h.settle();
    quick.mark_idle();
    drop(quick);
    h.advance(ms(4999));
    assert!(h.report().is_none());
    assert!(killed.borrow().is_none());
    h.advance(ms(1));

    let report = h.report().unwrap();
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!((report.completed, report.killed), (1, 1));
    assert_eq!(report.elapsed, Duration::from_secs(5));
    assert!(killed.borrow().is_some(), "the `Killed` future woke");
    assert!(stuck.is_killed());
}

#[test]
fn a_connection_registered_after_the_drain_began_is_drained_too() {
    let mut h = Harness::running(builder().quiet_period(ms(250)));
    let busy = h.open();
    busy.mark_active();
    let slot = h.acceptor.try_reserve().unwrap(); // an accept in progress

    h.shutdown.stop();
    h.settle();
    h.advance(ms(10));
    let late = slot.register();
    h.settle();
    assert!(late.is_server_draining());
    assert!(
        !late.is_drain_requested(),
        "a fresh connection gets its quiet period"
    );
    h.advance(ms(250));
    assert!(late.is_drain_requested());

    drop(late);
    busy.mark_idle();
    drop(busy);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.completed, report.idle_closed), (1, 1));
}

#[test]
fn dropping_the_manager_early_kills_connections_and_reports_aborted() {
    let mut h = Harness::with(builder());
    let conn = h.open();
    conn.mark_active();
    let waiter = h.spawn(h.shutdown.wait());
    let mut run = h.run.take().unwrap();
    assert!(poll_once(&mut run).is_none(), "serving");

    drop(run); // the server task is gone
    h.settle();
    let report = waiter
        .borrow()
        .clone()
        .expect("waiters are not left hanging");
    assert_eq!((report.outcome, report.killed), (Outcome::Aborted, 1));
    assert_eq!(h.shutdown.report(), Some(report));
    assert!(conn.is_killed());
    assert!(h.acceptor.is_stopped());
}

#[test]
fn dropping_the_manager_before_its_first_poll_kills_connections_and_reports_aborted() {
    let mut h = Harness::with(builder());
    let conn = h.open();
    let waiter = h.spawn(h.shutdown.wait());
    drop(h.run.take().unwrap()); // never polled
    h.settle();
    let report = waiter
        .borrow()
        .clone()
        .expect("waiters are not left hanging");
    assert_eq!((report.outcome, report.killed), (Outcome::Aborted, 1));
    assert!(conn.is_killed());
    assert!(h.acceptor.is_stopped());
}

#[test]
fn dropping_the_server_without_running_it_kills_connections_and_reports_aborted() {
    let graceful = builder().build(ManualTimer::new()).unwrap();
    let (shutdown, acceptor) = (graceful.shutdown(), graceful.acceptor());
    let conn = acceptor.try_reserve().unwrap().register();
    drop(graceful); // `run` never called
    let report = futures::executor::block_on(shutdown.wait());
    assert_eq!((report.outcome, report.killed), (Outcome::Aborted, 1));
    assert!(conn.is_killed());
    assert!(acceptor.is_stopped());
}

#[test]
fn dropping_the_manager_during_the_drain_reports_what_was_done() {
    let mut h = Harness::with(builder());
    let done = h.open();
    done.mark_active();
    let stuck = h.open();
    stuck.mark_active();
    let mut run = h.run.take().unwrap();
    h.shutdown.stop();
    assert!(poll_once(&mut run).is_none());
    done.mark_idle();
    drop(done);
    h.timer.advance(ms(20));
    assert!(poll_once(&mut run).is_none());

    drop(run);
    let report = h.shutdown.report().unwrap();
    assert_eq!(report.outcome, Outcome::Aborted);
    assert_eq!((report.completed, report.killed), (1, 1));
    assert_eq!(report.elapsed, ms(20));
    assert!(stuck.is_killed());
}

#[test]
fn scheduled_connections_are_told_in_due_order_late_ones_among_them() {
    let mut h = Harness::running(builder().quiet_period(ms(250)));
    let busy = h.open();
    busy.mark_active();
    let a = h.open(); // quiet since 0: due at 250
    h.advance(ms(100));
    let b = h.open(); // quiet since 100: due at 350
    let slots = [
        h.acceptor.try_reserve().unwrap(),
        h.acceptor.try_reserve().unwrap(),
    ];
    h.advance(ms(50));
    h.shutdown.stop();
    h.settle();
    let [c_slot, d_slot] = slots;
    h.advance(ms(130)); // 280
    let d = d_slot.register(); // late, quiet since 280: due at 530
    h.settle();
    h.advance(ms(10)); // 290
    let c = c_slot.register(); // late, quiet since 290: due at 540
    h.settle();
    let told = |conns: [&graceful_core::Conn; 4]| conns.map(|conn| conn.is_drain_requested());
    assert_eq!(told([&a, &b, &d, &c]), [true, false, false, false]);
    h.advance(ms(60)); // 350
    assert_eq!(told([&a, &b, &d, &c]), [true, true, false, false]);
    h.advance(ms(180)); // 530
    assert_eq!(told([&a, &b, &d, &c]), [true, true, true, false]);
    h.advance(ms(10)); // 540
    assert_eq!(told([&a, &b, &d, &c]), [true, true, true, true]);
    drop((a, b, c, d));
    busy.mark_idle();
    drop(busy);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.completed, report.idle_closed), (1, 4));
}
