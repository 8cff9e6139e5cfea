//! The manager's `tracing` events: one span per shutdown, an event at each phase, details per
//! connection only at debug and trace, nothing on the request path.

use tracing::Level;

use crate::builder;
use crate::capture::{capture, Record};
use crate::common::{ms, Harness};

fn messages(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.message.as_str()).collect()
}

fn find<'a>(records: &'a [Record], message: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.message == message)
        .unwrap_or_else(|| panic!("no {message:?} event in {:?}", messages(records)))
}

/// The events at `level` or more severe.
fn at_least(records: &[Record], level: Level) -> Vec<&str> {
    records
        .iter()
        .filter(|r| r.level <= level)
        .map(|r| r.message.as_str())
        .collect()
}

#[test]
fn a_drained_shutdown_logs_each_phase_in_its_span() {
    capture(|captured| {
        let mut h = Harness::running(builder().quiet_period(ms(100)));
        let busy = h.open();
        busy.mark_active();
        let idle = h.open();
        h.advance(ms(100));
        assert!(captured.take().is_empty(), "serving logs nothing");

        h.shutdown.stop();
        h.settle();
        drop(idle);
        busy.mark_idle();
        drop(busy);
        h.settle();
        assert!(h.report().is_some());

        let records = captured.take();
        assert_eq!(
            at_least(&records, Level::INFO),
            [
                "shutdown triggered",
                "accepting stopped",
                "drain begun",
                "shutdown done"
            ]
        );
        for record in records.iter().filter(|r| r.level <= Level::INFO) {
            assert_eq!(record.spans, ["shutdown"], "{}", record.message);
        }
        assert_eq!(
            find(&records, "shutdown triggered").field("trigger"),
            Some("stop")
        );
        let begun = find(&records, "drain begun");
        assert_eq!(begun.field("active"), Some("1"));
        assert_eq!(begun.field("new"), Some("1"));
        assert_eq!(begun.field("told"), Some("2"));
        assert_eq!(begun.field("scheduled"), Some("0"));
        let done = find(&records, "shutdown done");
        assert_eq!(done.field("outcome"), Some("drained"));
        assert_eq!(done.field("completed"), Some("1"));
        assert_eq!(done.field("idle_closed"), Some("1"));
        assert_eq!(done.field("killed"), Some("0"));
    });
}

#[test]
fn the_request_path_logs_nothing_even_while_draining() {
    capture(|captured| {
        let mut h = Harness::running(builder());
        let conn = h.open();
        conn.mark_active();
        h.shutdown.stop();
        h.settle();
        captured.take();
        for _ in 0..3 {
            conn.mark_idle();
            conn.mark_active();
        }
        h.settle();
        assert!(captured.take().is_empty());
    });
}

#[test]
fn per_connection_detail_is_at_debug_and_trace_only() {
    capture(|captured| {
        let mut h = Harness::running(builder().quiet_period(ms(100)).timeout(ms(1000)));
        let busy = h.open();
        busy.mark_active();
        let fresh = h.open(); // quiet for less than the quiet period: scheduled
        let slot = h.acceptor.try_reserve().unwrap();
        h.shutdown.stop();
        h.settle();
        let late = slot.register(); // accepted just before the stop
        h.settle();
        h.advance(ms(100));
        drop(fresh);
        h.advance(ms(900));
        drop((busy, late));

        let records = captured.take();
        let per_conn: Vec<&Record> = records
            .iter()
            .filter(|r| r.field("conn").is_some())
            .collect();
        assert!(!per_conn.is_empty());
        assert!(
            per_conn.iter().all(|r| r.level >= Level::DEBUG),
            "{per_conn:?}"
        );
        let told: Vec<_> = records
            .iter()
            .filter(|r| r.message.starts_with("told to drain"))
            .map(|r| (r.field("conn").unwrap(), r.message.as_str()))
            .collect();
        assert_eq!(
            told,
            [
                ("conn#0", "told to drain"),
                ("conn#1", "told to drain: quiet period over"),
                ("conn#2", "told to drain: quiet period over"),
            ]
        );
        assert_eq!(
            find(&records, "drain scheduled").field("due_ms"),
            Some("100")
        );
        assert_eq!(
            find(&records, "connection accepted during the drain").field("conn"),
            Some("conn#2")
        );
        let closed = find(&records, "connection closed during the drain");
        assert_eq!(
            (closed.field("conn"), closed.field("how")),
            (Some("conn#1"), Some("idle closed"))
        );
        assert_eq!(closed.level, Level::TRACE);
    });
}

#[test]
fn a_timeout_logs_what_it_killed() {
    capture(|captured| {
        let mut h = Harness::running(builder().timeout(ms(1000)));
        let busy = h.open();
        busy.mark_active();
        let upgraded = h.open();
        upgraded.mark_hijacked();
        h.shutdown.stop();
        h.settle();
        h.advance(ms(1000));
        assert!(h.report().is_some());

        let records = captured.take();
        assert_eq!(
            at_least(&records, Level::WARN),
            ["shutdown timed out", "connections killed"]
        );
        assert_eq!(
            find(&records, "shutdown timed out").field("timeout"),
            Some("Some(1s)")
        );
        let killed = find(&records, "connections killed");
        assert_eq!(killed.field("killed"), Some("2"));
        assert_eq!(killed.field("active"), Some("1"));
        assert_eq!(killed.field("hijacked"), Some("1"));
        let each: Vec<_> = records
            .iter()
            .filter(|r| r.message == "connection killed")
            .map(|r| {
                let field = |name| r.field(name).unwrap();
                (r.level, field("conn"), field("state"), field("doing"))
            })
            .collect();
        assert_eq!(
            each,
            [
                (Level::DEBUG, "conn#0", "active", "active connection"),
                (Level::DEBUG, "conn#1", "hijacked", "hijacked connection")
            ]
        );
        assert_eq!(
            find(&records, "shutdown done").field("outcome"),
            Some("timed out")
        );
    });
}

#[test]
fn a_second_signal_logs_the_force_and_what_forced_it() {
    capture(|captured| {
        let mut h = Harness::running(builder());
        let busy = h.open();
        busy.mark_active();
        h.shutdown.signal();
        h.settle();
        h.shutdown.signal();
        h.settle();
        assert!(h.report().is_some());

        let records = captured.take();
        assert_eq!(
            find(&records, "shutdown triggered").field("trigger"),
            Some("signal")
        );
        let forced = find(&records, "shutdown forced");
        assert_eq!(
            (forced.level, forced.field("by")),
            (Level::WARN, Some("signal"))
        );
        assert_eq!(forced.spans, ["shutdown"]);
        assert_eq!(
            find(&records, "shutdown done").field("outcome"),
            Some("forced")
        );
    });
}

#[test]
fn a_veto_and_a_timeout_override_are_logged() {
    capture(|captured| {
        let mut h = Harness::running(builder());
        h.hooks.set_veto(true);
        h.shutdown.signal();
        h.settle();
        let records = captured.take();
        let vetoed = find(&records, "shutdown vetoed");
        assert_eq!(
            (vetoed.level, vetoed.field("trigger")),
            (Level::INFO, Some("signal"))
        );
        assert_eq!(messages(&records), ["shutdown vetoed"]);

        h.hooks.set_veto(false);
        h.shutdown.stop_with_timeout(ms(5000)).unwrap();
        h.settle();
        let records = captured.take();
        let triggered = find(&records, "shutdown triggered");
        assert_eq!(triggered.field("trigger"), Some("stop_with_timeout"));
        assert_eq!(triggered.field("timeout"), Some("Some(5s)"));
    });
}

#[test]
fn a_manager_dropped_early_logs_the_abort() {
    capture(|captured| {
        let mut h = Harness::with(builder());
        let conn = h.open();
        drop(h.run.take());
        assert!(conn.is_killed());
        let records = captured.take();
        assert_eq!(
            at_least(&records, Level::INFO),
            [
                "the shutdown manager was dropped: killing what is left",
                "connections killed",
                "shutdown done"
            ]
        );
        assert_eq!(
            find(&records, "shutdown done").field("outcome"),
            Some("aborted")
        );
    });
}

#[test]
fn the_drain_delay_is_logged_when_it_begins_and_ends() {
    capture(|captured| {
        let mut h = Harness::running(builder().drain_delay(ms(2000)));
        h.shutdown.signal();
        h.settle();
        let records = captured.take();
        assert_eq!(
            messages(&records),
            ["shutdown triggered", "drain delay begun"]
        );
        assert_eq!(
            find(&records, "drain delay begun").field("delay"),
            Some("2s")
        );
        assert_eq!(records[1].spans, ["shutdown"]);

        h.advance(ms(2000));
        let records = captured.take();
        assert_eq!(
            at_least(&records, Level::INFO),
            [
                "drain delay over",
                "accepting stopped",
                "drain begun",
                "shutdown done"
            ]
        );
        let over = find(&records, "drain delay over");
        assert_eq!(
            (over.field("lasted"), over.field("forced")),
            (Some("2s"), Some("false"))
        );
        assert_eq!(find(&records, "shutdown done").field("delayed"), Some("2s"));
    });
}

#[test]
fn a_stalled_write_cut_is_a_warning_in_a_drain_or_not() {
    use futures::FutureExt;

    capture(|captured| {
        let mut h = Harness::running(builder().send_timeout(ms(10_000)));
        let serving = h.open();
        serving.note_write_blocked();
        let mut limit = serving.send_limit(ms(1_000));
        assert!((&mut limit).now_or_never().is_none());
        h.advance(ms(10_000));
        assert!(limit.now_or_never().is_some());
        let records = captured.take();
        let cut = find(
            &records,
            "a write stalled past the send timeout: connection cut",
        );
        assert_eq!(cut.level, Level::WARN);
        assert_eq!(cut.field("conn"), Some("conn#0"));
        assert_eq!(cut.field("draining"), Some("false"));

        let draining = h.open();
        draining.mark_active();
        draining.note_write_blocked();
        h.shutdown.stop();
        h.advance(ms(1_000));
        assert!(draining.send_limit(ms(1_000)).now_or_never().is_some());
        let records = captured.take();
        let cut = find(
            &records,
            "a write stalled past the send timeout: connection cut",
        );
        assert_eq!(cut.level, Level::WARN);
        assert_eq!(cut.field("conn"), Some("conn#1"));
        assert_eq!(cut.field("draining"), Some("true"));
    });
}
