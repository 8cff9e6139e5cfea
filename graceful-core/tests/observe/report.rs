//! What the report adds for operators: the slowest connection, the killed ones by state, a
//! `Display` whose stable prefix scripts parse, and (with `serde`) JSON.

use graceful_core::{Outcome, ShutdownPhase, ShutdownReport};

use crate::builder;
use crate::common::{ms, Harness};

/// A shutdown that times out with one connection of each kind killed, and three that closed
/// on their own at 100, 250 and 400 ms.
fn timed_out() -> ShutdownReport {
    let mut h = Harness::running(builder().quiet_period(ms(0)).timeout(ms(1000)));
    let quick = h.open();
    quick.mark_active();
    let idle = h.open();
    let slow = h.open();
    slow.mark_active();
    let stuck = [h.open(), h.open(), h.open()];
    stuck[0].mark_active();
    stuck[1].mark_hijacked();
    stuck[2].mark_active();
    stuck[2].mark_idle(); // idle, and ignores the drain
    h.shutdown.stop();
    h.settle();
    h.advance(ms(100));
    quick.mark_idle();
    drop(quick);
    h.advance(ms(150));
    drop(idle);
    h.advance(ms(150));
    slow.mark_idle();
    drop(slow);
    h.advance(ms(600));
    h.report().expect("timed out")
}

#[test]
fn the_report_says_how_long_the_slowest_took_and_what_was_killed() {
    let report = timed_out();
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.slowest, ms(400));
    assert_eq!(report.elapsed, ms(1000));
    let killed = report.killed_in;
    assert_eq!(
        (killed.new, killed.active, killed.idle, killed.hijacked),
        (0, 1, 1, 1)
    );
    assert_eq!(report.killed, killed.total());
}

#[test]
fn the_display_keeps_its_prefix_and_appends_the_rest() {
    let report = timed_out();
    let text = report.to_string();
    assert_eq!(
        text,
        "timed out in 1.000s: 2 completed, 1 idle closed, 0 hijacked, 3 killed \
         (1 active, 1 idle, 1 hijacked); slowest 400.000ms"
    );
    // How examples/tests/http parses it: the four counts before anything appended.
    let (_, counts) = text.split_once(": ").unwrap();
    let numbers: Vec<usize> = counts
        .split(", ")
        .take(4)
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1, 0, 3]);
}

#[test]
fn a_drained_report_shows_no_killed_states() {
    let mut h = Harness::running(builder());
    h.shutdown.stop();
    h.settle();
    assert_eq!(
        h.report().unwrap().to_string(),
        "drained in 0.000ns: 0 completed, 0 idle closed, 0 hijacked, 0 killed; slowest 0.000ns"
    );
}

#[test]
fn reports_and_progress_serialize_with_serde() {
    let report = timed_out();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["outcome"], "timed_out");
    assert_eq!(json["killed"], 3);
    assert_eq!(json["killed_in"]["hijacked"], 1);
    assert_eq!(json["slowest"]["nanos"], 400_000_000);
    let back: ShutdownReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);

    let h = Harness::new();
    let conn = h.open();
    conn.mark_active();
    let json = serde_json::to_value(h.shutdown.progress()).unwrap();
    assert_eq!(json["phase"], serde_json::json!(ShutdownPhase::Serving));
    assert_eq!(json["phase"], "serving");
    assert_eq!(json["counts"]["active"], 1);
    assert_eq!(json["time_left"], serde_json::Value::Null);
}

#[test]
fn connections_cut_for_a_stalled_write_are_counted_shown_and_serialized() {
    use futures::FutureExt;

    // Captured, though nothing here reads the events: the cut's `warn` must not be first met
    // on a thread without a subscriber while `tracing_events` captures it on another, or
    // tracing may cache that nobody wants it.
    crate::capture::capture(|_| {
        let mut h = Harness::running(builder());
        let stalled = h.open();
        stalled.mark_active();
        stalled.note_write_blocked(); // a response its peer stopped reading
        let idle = h.open();
        h.advance(ms(2_000));
        h.shutdown.stop();
        h.settle();
        drop(idle);
        let mut limit = stalled.send_limit(ms(1_000));
        assert!(
            (&mut limit).now_or_never().is_some(),
            "stalled past the drain's bound"
        );
        drop(stalled);
        h.settle();

        let report = h.report().expect("drained");
        assert_eq!(
            (
                report.stalled,
                report.idle_closed,
                report.completed,
                report.total()
            ),
            (1, 1, 0, 2)
        );
        assert_eq!(
            report.to_string(),
            "drained in 0.000ns: 0 completed, 1 idle closed, 0 hijacked, 0 killed; \
             slowest 0.000ns; 1 cut for a stalled write"
        );
        let mut json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["stalled"], 1);
        let back: ShutdownReport = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, report);
        // A report serialized before the field existed still reads, as none cut.
        json.as_object_mut().unwrap().remove("stalled");
        let old: ShutdownReport = serde_json::from_value(json).unwrap();
        assert_eq!(old.stalled, 0);
    });
}
