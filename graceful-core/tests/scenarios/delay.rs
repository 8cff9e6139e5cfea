//! The drain delay (issue 12): on the first trigger the server serves on exactly as before for
//! the delay while the shutdown handle already says it is shutting down; then it drains as
//! usual, with the timeout counted from the end of the delay. A second signal during the delay
//! stops at once.

use std::time::Duration;

use graceful_core::{ConfigError, Outcome, ShutdownPhase, MAX_DURATION};

use crate::builder;
use crate::common::{ms, Harness};

fn delayed(delay_ms: u64, timeout_ms: u64) -> Harness {
    Harness::running(
        builder()
            .drain_delay(ms(delay_ms))
            .timeout(ms(timeout_ms))
            .quiet_period(ms(100)),
    )
}

#[test]
fn the_server_serves_on_as_before_during_the_delay_and_says_it_is_shutting_down() {
    let mut h = delayed(5000, 1000);
    let busy = h.open();
    busy.mark_active();
    let idle = h.open();
    h.advance(ms(200));

    h.shutdown.signal();
    h.settle();
    assert!(
        h.shutdown.is_shutting_down(),
        "a readiness probe answers 503"
    );
    assert_eq!(h.hooks.on_shutdown_calls(), 0, "the drain has not begun");
    assert!(!h.acceptor.is_stopped(), "the listener stays open");
    assert!(!busy.is_server_draining(), "keep-alive stays on");
    assert!(!busy.is_drain_requested() && !idle.is_drain_requested());
    let progress = h.shutdown.progress();
    assert_eq!(progress.phase, ShutdownPhase::DrainDelay);
    assert_eq!(
        (progress.delay_left, progress.time_left),
        (Some(ms(5000)), None)
    );

    // Connections keep coming and are served like any other.
    h.advance(ms(4000));
    let newcomer = h.open();
    newcomer.mark_active();
    assert!(!newcomer.is_server_draining());
    assert_eq!(h.shutdown.progress().delay_left, Some(ms(1000)));
    h.advance(ms(950));
    newcomer.mark_idle(); // at 5150 ms: quiet for 50 ms when the drain begins

    h.advance(ms(49));
    assert!(!h.acceptor.is_stopped());
    h.advance(ms(1));
    assert!(
        h.acceptor.is_stopped(),
        "accepting stops once the delay is over"
    );
    assert_eq!(h.hooks.on_shutdown_calls(), 1);
    assert!(busy.is_server_draining() && busy.is_drain_requested());
    assert!(
        idle.is_drain_requested(),
        "quiet for longer than the quiet period"
    );
    assert!(
        !newcomer.is_drain_requested(),
        "quiet for less: at the end of its quiet period"
    );
    let progress = h.shutdown.progress();
    assert_eq!(progress.phase, ShutdownPhase::Draining);
    assert_eq!(
        (progress.delay_left, progress.time_left),
        (None, Some(ms(1000)))
    );

    drop((idle, newcomer));
    busy.mark_idle();
    h.advance(ms(300));
    drop(busy);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!((report.completed, report.idle_closed), (1, 2));
    assert_eq!((report.delayed, report.elapsed), (ms(5000), ms(300)));
    assert!(
        report
            .to_string()
            .ends_with("; after a drain delay of 5.000s"),
        "{report}"
    );
}

#[test]
fn the_timeout_starts_after_the_delay() {
    let mut h = delayed(5000, 1000);
    let stuck = h.open();
    stuck.mark_active();
    h.shutdown.stop();
    h.settle();
    h.advance(ms(5999));
    assert!(!stuck.is_killed());
    h.advance(ms(1));
    assert!(stuck.is_killed());
    let report = h.report().unwrap();
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!((report.delayed, report.elapsed), (ms(5000), ms(1000)));
}

#[test]
fn a_second_signal_during_the_delay_stops_at_once() {
    let mut h = delayed(5000, 1000);
    let busy = h.open();
    busy.mark_active();
    h.shutdown.signal();
    h.settle();
    h.advance(ms(1500));
    h.shutdown.signal();
    h.settle();
    assert!(h.acceptor.is_stopped());
    assert!(busy.is_killed());
    let report = h.report().unwrap();
    assert_eq!(report.outcome, Outcome::Forced);
    assert_eq!((report.killed, report.delayed), (1, ms(1500)));
}

#[test]
fn a_stop_during_the_delay_changes_nothing_and_force_stops_at_once() {
    let mut h = delayed(5000, 1000);
    h.shutdown.stop();
    h.settle();
    h.shutdown.stop();
    h.shutdown.stop_with_timeout(ms(10)).unwrap();
    h.settle();
    assert_eq!(h.shutdown.progress().phase, ShutdownPhase::DrainDelay);
    h.advance(ms(100));
    assert!(h.report().is_none());
    h.shutdown.force();
    h.settle();
    assert_eq!(h.report().unwrap().outcome, Outcome::Forced);
}

#[test]
fn a_forced_shutdown_and_a_vetoed_one_skip_the_delay() {
    let mut h = delayed(5000, 1000);
    h.hooks.set_veto(true);
    h.shutdown.signal();
    h.settle();
    assert!(!h.shutdown.is_shutting_down(), "vetoed: no delay either");
    assert_eq!(h.shutdown.progress().phase, ShutdownPhase::Serving);

    h.shutdown.force();
    h.settle();
    let report = h.report().unwrap();
    assert_eq!(
        (report.outcome, report.delayed),
        (Outcome::Forced, Duration::ZERO)
    );
}

#[test]
fn dropping_the_manager_during_the_delay_aborts() {
    let mut h = Harness::with(builder().drain_delay(ms(5000)));
    let conn = h.open();
    h.spawn_run();
    h.shutdown.stop();
    h.settle();
    drop(std::mem::replace(
        &mut h.pool,
        futures::executor::LocalPool::new(),
    ));
    assert!(conn.is_killed());
    assert_eq!(h.shutdown.report().unwrap().outcome, Outcome::Aborted);
}

#[test]
fn a_drain_delay_longer_than_ten_years_is_rejected() {
    let long = MAX_DURATION + Duration::from_secs(1);
    let err = builder()
        .drain_delay(long)
        .build(graceful_core::ManualTimer::new())
        .unwrap_err();
    assert_eq!(err, ConfigError::DrainDelayTooLong(long));
    assert!(err.to_string().starts_with("drain delay of"));
}
