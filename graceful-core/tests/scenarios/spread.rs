//! The close spread: the drain tells quiet and prompt connections in slots spread over the
//! spread, never past the timeout; active and upgraded ones at once.

use std::time::Duration;

use graceful_core::{ConfigError, Conn, Graceful, ManualTimer, Outcome};

use crate::builder;
use crate::common::{ms, Harness};

fn told(conns: &[Conn]) -> usize {
    conns
        .iter()
        .filter(|conn| conn.is_drain_requested())
        .count()
}

/// Opens `n` connections and lets them be quiet for longer than any quiet period here.
fn quiet_conns(h: &mut Harness, n: usize) -> Vec<Conn> {
    let conns = (0..n).map(|_| h.open()).collect();
    h.advance(Duration::from_secs(5));
    conns
}

#[test]
fn quiet_connections_are_told_in_even_slots_and_progress_shows_the_spread() {
    let mut h = Harness::running(builder().close_spread(ms(1000)));
    let conns = quiet_conns(&mut h, 4);
    h.shutdown.stop();
    h.settle();
    let progress = h.shutdown.progress();
    assert_eq!(told(&conns), 1, "the first slot is the drain's start");
    assert_eq!(progress.scheduled, 3);
    assert_eq!(progress.spread_left, Some(ms(1000)));
    for (step, count) in [(249, 1), (1, 2), (250, 3), (249, 3), (1, 4)] {
        h.advance(ms(step));
        assert_eq!(told(&conns), count);
    }
    let progress = h.shutdown.progress();
    assert_eq!(
        (progress.scheduled, progress.spread_left),
        (0, Some(ms(250)))
    );
    drop(conns);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.idle_closed, report.elapsed), (4, ms(750)));
}

#[test]
fn the_spread_never_runs_past_the_timeout() {
    let mut h = Harness::running(builder().timeout(ms(400)).close_spread(ms(10_000)));
    let conns = quiet_conns(&mut h, 4);
    h.shutdown.stop();
    h.settle();
    assert_eq!(h.shutdown.progress().spread_left, Some(ms(400)));
    assert_eq!(told(&conns), 1);
    for count in [2, 3, 4] {
        h.advance(ms(100));
        assert_eq!(
            told(&conns),
            count,
            "all told before the timeout, at 400 ms"
        );
    }
    drop(conns);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.outcome, report.idle_closed), (Outcome::Drained, 4));
}

#[test]
fn active_connections_are_told_at_once_and_prompt_ones_in_their_slot() {
    let mut h = Harness::running(builder().close_spread(ms(1000)));
    let quiet = quiet_conns(&mut h, 1);
    let http1 = h.open();
    http1.mark_active();
    let http2 = h.open();
    http2.skip_quiet_period();
    http2.mark_active(); // a stream open: its GOAWAY waits for its slot all the same
    h.shutdown.stop();
    h.settle();
    assert!(http1.is_drain_requested(), "active: told at once");
    assert!(quiet[0].is_drain_requested(), "slot 0 of 2");
    assert!(!http2.is_drain_requested(), "slot 1 of 2");
    h.advance(ms(500));
    assert!(http2.is_drain_requested());
    http2.mark_idle();
    drop((quiet, http1, http2));
    h.settle();
    let report = h.report().unwrap();
    // The prompt connection was active when the drain began: it worked.
    assert_eq!((report.completed, report.idle_closed), (2, 1));
}

#[test]
fn a_quiet_period_later_than_the_slot_still_holds() {
    let mut h = Harness::running(builder().quiet_period(ms(600)).close_spread(ms(1000)));
    let conns = vec![h.open(), h.open()]; // quiet since now
    h.shutdown.stop();
    h.settle();
    h.advance(ms(599));
    assert_eq!(
        told(&conns),
        0,
        "slots 0 and 500 ms, but quiet for less than 600 ms"
    );
    h.advance(ms(1));
    assert_eq!(told(&conns), 2);
}

#[test]
fn without_a_spread_a_connection_turning_prompt_in_the_drain_is_told_at_once() {
    let mut h = Harness::running(builder().quiet_period(ms(250)));
    let conn = h.open(); // quiet since now: scheduled for 250 ms
    h.shutdown.stop();
    h.settle();
    assert!(!conn.is_drain_requested());
    conn.skip_quiet_period(); // say, its first bytes were an HTTP/2 preface
    h.settle();
    assert!(conn.is_drain_requested(), "HTTP/2 needs no quiet period");
}

#[test]
fn a_zero_or_absurd_spread_is_a_configuration_error() {
    let build = |spread| {
        Graceful::builder()
            .close_spread(spread)
            .build(ManualTimer::new())
    };
    assert_eq!(
        build(Duration::ZERO).unwrap_err(),
        ConfigError::ZeroCloseSpread
    );
    assert_eq!(
        build(Duration::MAX).unwrap_err(),
        ConfigError::CloseSpreadTooLong(Duration::MAX)
    );
    assert!(build(ms(1)).is_ok());
}
