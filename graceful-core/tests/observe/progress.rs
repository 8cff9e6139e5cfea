//! The live progress API on the manual timer: snapshots, `changed()` and the `progress_stream()`.

use std::time::Duration;

use futures::StreamExt;
use graceful_core::{Progress, ShutdownPhase};

use crate::builder;
use crate::common::{ms, poll_once, Harness};

#[test]
fn progress_reports_the_phase_the_counts_and_the_time_left() {
    let mut h = Harness::running(builder().timeout(Duration::from_secs(30)));
    let busy = h.open();
    busy.mark_active();
    let upgraded = h.open();
    upgraded.mark_hijacked();
    let before = h.shutdown.progress();
    assert_eq!(
        (before.phase, before.time_left),
        (ShutdownPhase::Serving, None)
    );
    assert_eq!((before.counts.active, before.counts.hijacked), (1, 1));

    h.shutdown.signal();
    h.settle();
    h.advance(ms(2500));
    let during = h.shutdown.progress();
    assert_eq!(during.phase, ShutdownPhase::Draining);
    assert_eq!(during.time_left, Some(ms(27_500)));
    assert_eq!(during.counts.total(), 2);

    drop((busy, upgraded));
    h.settle();
    let after = h.shutdown.progress();
    assert_eq!(
        (after.phase, after.time_left),
        (ShutdownPhase::Stopped, None)
    );
    assert_eq!(after.counts.total(), 0);
}

#[test]
fn changed_resolves_on_each_state_change_and_close_during_the_drain_only() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    let other = h.open();

    // Serving: connections coming and going and requests are not changes.
    let mut changed = h.shutdown.changed();
    conn.mark_active();
    conn.mark_idle();
    drop(h.open());
    assert!(poll_once(&mut changed).is_none());

    // The shutdown beginning is one.
    conn.mark_active();
    h.shutdown.stop();
    h.settle();
    assert!(poll_once(&mut changed).is_some());

    // During the drain: a state change is one...
    let mut changed = h.shutdown.changed();
    assert!(poll_once(&mut changed).is_none());
    conn.mark_active(); // nested: still active, no change
    assert!(poll_once(&mut changed).is_none());
    conn.mark_idle();
    assert!(poll_once(&mut changed).is_none());
    conn.mark_idle(); // active -> idle
    assert!(poll_once(&mut changed).is_some());

    // ...and so is a close.
    let mut changed = h.shutdown.changed();
    drop(other);
    assert!(poll_once(&mut changed).is_some());

    // The end is one, and afterwards it resolves at once.
    let mut changed = h.shutdown.changed();
    drop(conn);
    h.settle();
    assert!(h.report().is_some());
    assert!(poll_once(&mut changed).is_some());
    assert!(poll_once(&mut h.shutdown.changed()).is_some());
}

#[test]
fn the_progress_stream_yields_each_change_and_ends_with_the_report() {
    let mut h = Harness::running(builder().timeout(ms(1000)));
    let a = h.open();
    a.mark_active();
    let b = h.open();
    b.mark_active();
    let upgraded = h.open();
    upgraded.mark_hijacked();

    let seen = h.spawn({
        let stream = h.shutdown.progress_stream();
        async move { stream.collect::<Vec<Progress>>().await }
    });
    h.shutdown.stop();
    h.settle();
    h.advance(ms(100));
    a.mark_idle();
    h.settle();
    drop(a);
    h.settle();
    h.advance(ms(400));
    drop(b);
    h.settle();
    h.advance(ms(500)); // the timeout kills the hijacked one
    assert_eq!(h.report().unwrap().killed, 1);
    drop(upgraded);
    h.settle();

    let seen = seen.borrow_mut().take().expect("the stream ended");
    let summary: Vec<_> = seen
        .iter()
        .map(|p| {
            (
                p.phase,
                p.counts.active,
                p.counts.idle,
                p.counts.hijacked,
                p.time_left,
            )
        })
        .collect();
    use ShutdownPhase::*;
    assert_eq!(
        summary,
        [
            (Serving, 2, 0, 1, None),
            (Draining, 2, 0, 1, Some(ms(1000))),
            (Draining, 1, 1, 1, Some(ms(900))),
            (Draining, 1, 0, 1, Some(ms(900))),
            (Draining, 0, 0, 1, Some(ms(500))),
            // Killed at the timeout: the report is out while the task still winds down.
            (Stopped, 0, 0, 1, None),
        ]
    );
}

#[test]
fn changes_while_the_consumer_is_busy_are_coalesced() {
    let mut h = Harness::running(builder());
    let conns: Vec<_> = (0..10).map(|_| h.open()).collect();
    for conn in &conns {
        conn.mark_active();
    }
    let mut stream = h.shutdown.progress_stream();
    assert!(poll_once(&mut stream.next()).is_some());
    h.shutdown.stop();
    h.settle();
    for conn in &conns[..9] {
        conn.mark_idle();
    }
    let item = poll_once(&mut stream.next()).flatten().unwrap();
    assert_eq!((item.counts.active, item.counts.idle), (1, 9));
    assert!(
        poll_once(&mut stream.next()).is_none(),
        "one item for nine changes"
    );
}

#[test]
fn the_progress_stream_sees_the_drain_delay() {
    let mut h = Harness::running(builder().drain_delay(ms(3000)));
    let conn = h.open();
    conn.mark_active();
    let mut stream = h.shutdown.progress_stream();
    assert_eq!(
        poll_once(&mut stream.next()).flatten().unwrap().phase,
        ShutdownPhase::Serving
    );
    h.shutdown.signal();
    h.settle();
    let item = poll_once(&mut stream.next()).flatten().unwrap();
    assert_eq!(
        (item.phase, item.delay_left),
        (ShutdownPhase::DrainDelay, Some(ms(3000)))
    );
    // Requests during the delay are no changes: the server serves as before.
    conn.mark_idle();
    conn.mark_active();
    assert!(poll_once(&mut stream.next()).is_none());
    h.advance(ms(3000));
    let item = poll_once(&mut stream.next()).flatten().unwrap();
    assert_eq!(
        (item.phase, item.counts.active),
        (ShutdownPhase::Draining, 1)
    );
}

/// A unit of work that began at a given instant, as a protocol keeps it.
struct Doing(&'static str, graceful_core::Stamp);

impl graceful_core::Describe for Doing {
    fn describe(&self, now: graceful_core::Stamp, work: &mut Vec<graceful_core::Work>) {
        work.push(graceful_core::Work::since(self.0, self.1, now));
    }
}

/// While the drain runs, the progress names what holds it: the oldest units of work first,
/// a few per state (active, then hijacked), and how many more; the report names the killed.
#[test]
fn progress_and_report_name_what_holds_the_drain() {
    use graceful_core::{ConnState, Stamp};
    use std::sync::Arc;

    let mut h = Harness::running(builder().timeout(Duration::from_secs(30)));
    h.advance(Duration::from_secs(40));
    let at = |secs_ago: u64| Stamp::from_millis(40_000 - secs_ago * 1000);
    let conns: Vec<_> = (0..5u64)
        .map(|n| {
            let conn = h.open();
            conn.mark_active();
            let path = ["GET /a", "GET /b", "GET /c", "GET /d", "GET /e"][n as usize];
            conn.describe_with(Arc::new(Doing(path, at(n))));
            conn
        })
        .collect();
    let ws = h.open();
    ws.mark_hijacked();
    ws.describe_with(Arc::new(Doing("GET /ws", at(31))));
    let silent = h.open();
    silent.mark_active(); // its protocol says nothing

    assert!(
        h.shutdown.progress().holders.is_empty(),
        "nothing is named while serving"
    );
    h.shutdown.stop();
    h.settle();
    h.advance(ms(2000));
    let progress = h.shutdown.progress();
    let named: Vec<_> = (progress.holders.iter())
        .map(|holder| (holder.state, holder.work.to_string()))
        .collect();
    assert_eq!(
        named,
        [
            (ConnState::Active, "GET /e 6.0 s".to_owned()),
            (ConnState::Active, "GET /d 5.0 s".to_owned()),
            (ConnState::Active, "GET /c 4.0 s".to_owned()),
            (ConnState::Hijacked, "GET /ws 33.0 s".to_owned()),
        ]
    );
    assert_eq!(progress.holders_left, 2, "GET /b and GET /a");

    h.advance(Duration::from_secs(28));
    let report = h.report().expect("killed at the timeout");
    assert_eq!(report.kills.len(), 7);
    let text = report.to_string();
    assert!(text.contains("; killed: GET /a 30.0 s, GET /b 31.0 s, GET /c 32.0 s, GET /d 33.0 s, GET /e 34.0 s and 1 more"), "{text}");
    drop((conns, ws, silent));
}
