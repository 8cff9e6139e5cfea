//! Triggers: stop, stop with a timeout, veto, force, signals, the hooks they run, and races
//! between them.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use graceful_core::{Acceptor, ManualTimer, Outcome, TryReserveError};

use crate::builder;
use crate::common::{ms, poll_once, poll_until_waiting, Harness, Hooks};

#[test]
fn with_no_connections_a_stop_ends_at_once() {
    let mut h = Harness::running(builder());
    assert!(!h.shutdown.is_shutting_down());

    h.shutdown.stop();
    h.settle();

    let report = h.report().expect("nothing to wait for");
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!(report.total(), 0);
    assert_eq!(report.elapsed, Duration::ZERO);
    assert!(h.shutdown.is_shutting_down());
    assert_eq!(h.shutdown.report(), Some(report));
    assert_eq!(
        h.acceptor.try_reserve().unwrap_err(),
        TryReserveError::Stopped
    );
}

#[test]
fn an_explicit_stop_stops_accepting_and_lets_work_finish() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    conn.mark_active();
    let waiter = h.spawn(h.shutdown.wait());
    let stopped = h.spawn(h.acceptor.stopped());
    assert!(stopped.borrow().is_none(), "serving: accepting goes on");

    h.shutdown.stop();
    h.settle();
    assert!(
        stopped.borrow().is_some(),
        "the accept loop is told to stop"
    );
    assert!(h.acceptor.is_stopped());
    assert!(
        conn.is_server_draining(),
        "the protocol can answer `Connection: close`"
    );
    assert!(conn.is_drain_requested());
    assert!(!conn.is_killed());
    assert!(h.report().is_none(), "the request is still in flight");

    h.advance(ms(1500));
    conn.mark_idle();
    drop(conn);
    h.settle();

    let report = h.report().expect("the last connection closed");
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!((report.completed, report.killed), (1, 0));
    assert_eq!(report.elapsed, ms(1500));
    assert_eq!(
        *waiter.borrow(),
        Some(report),
        "`wait` sees the same report"
    );
}

#[test]
fn stop_with_timeout_overrides_the_configured_timeout() {
    let mut h = Harness::running(builder().timeout(Duration::from_secs(30)));
    let conn = h.open();
    conn.mark_active();

    h.shutdown
        .stop_with_timeout(Duration::from_secs(2))
        .unwrap();
    h.settle();
    h.advance(ms(1999));
    assert!(h.report().is_none());
    h.advance(ms(1));

    let report = h.report().expect("the overriding timeout passed");
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.killed, 1);
    assert_eq!(report.elapsed, Duration::from_secs(2));
    assert!(conn.is_killed());
}

#[test]
fn stop_without_timeout_waits_for_ever() {
    let mut h = Harness::running(builder().timeout(Duration::from_secs(1)));
    let conn = h.open();
    conn.mark_active();

    h.shutdown.stop_without_timeout();
    h.settle();
    h.advance(Duration::from_secs(3600));
    assert!(
        h.report().is_none(),
        "no timeout: the request may take an hour"
    );
    assert!(!conn.is_killed());

    conn.mark_idle();
    drop(conn);
    h.settle();
    assert_eq!(h.report().unwrap().outcome, Outcome::Drained);
}

#[test]
fn veto_keeps_serving_and_a_later_stop_works() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    h.hooks.set_veto(true);

    h.shutdown.stop();
    h.settle();
    assert_eq!(h.hooks.before_shutdown_calls(), 1);
    assert_eq!(h.hooks.on_shutdown_calls(), 0);
    assert!(!h.shutdown.is_shutting_down());
    assert!(!h.acceptor.is_stopped(), "still accepting");
    assert!(!conn.is_server_draining() && !conn.is_drain_requested());
    let other = h.open();
    assert!(h.report().is_none());

    h.shutdown.stop(); // asked again, vetoed again
    h.settle();
    assert_eq!(h.hooks.before_shutdown_calls(), 2);
    assert!(!h.shutdown.is_shutting_down());

    h.hooks.set_veto(false);
    h.shutdown.stop();
    h.settle();
    assert_eq!(h.hooks.before_shutdown_calls(), 3);
    assert_eq!(h.hooks.on_shutdown_calls(), 1);
    assert!(h.shutdown.is_shutting_down());
    drop((conn, other));
    h.settle();
    assert_eq!(h.report().unwrap().outcome, Outcome::Drained);
}

#[test]
fn a_stop_that_arrives_while_the_veto_hook_decides_is_asked_again() {
    // The hook stands for a slow decision during which another task calls `stop`.
    let shutdown = Arc::new(OnceLock::<graceful_core::Shutdown>::new());
    let calls = Arc::new(Mutex::new(0));
    let hook = {
        let (shutdown, calls) = (shutdown.clone(), calls.clone());
        move || {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            if *calls == 1 {
                shutdown.get().unwrap().stop(); // arrives mid-decision
                return false; // this one is vetoed
            }
            true
        }
    };
    // Not the Harness: it installs its own veto hook.
    let graceful = builder()
        .before_shutdown(hook)
        .build(ManualTimer::new())
        .unwrap();
    let handle = graceful.shutdown();
    shutdown.set(handle.clone()).unwrap();
    let mut run = graceful.run();

    handle.stop();
    let report = poll_once(&mut run).expect("the second stop went through");
    assert_eq!(*calls.lock().unwrap(), 2, "the veto hook was asked again");
    assert!(handle.is_shutting_down());
    assert_eq!(report.outcome, Outcome::Drained);
}

#[test]
fn a_vetoed_stop_with_timeout_does_not_leave_its_timeout_behind() {
    let mut h = Harness::running(builder().timeout(Duration::from_secs(10)));
    let conn = h.open();
    conn.mark_active();
    h.hooks.set_veto(true);
    h.shutdown.stop_with_timeout(ms(100)).unwrap();
    h.settle();

    h.hooks.set_veto(false);
    h.shutdown.stop(); // the configured 10 s apply
    h.settle();
    h.advance(ms(100));
    assert!(h.report().is_none());
    h.advance(Duration::from_secs(10));
    assert_eq!(h.report().unwrap().outcome, Outcome::TimedOut);
}

#[test]
fn the_shutdown_initiated_hook_fires_once_after_accepting_stopped() {
    // The hook records whether accepting had stopped by the time it ran.
    let acceptor: Arc<OnceLock<Acceptor>> = Arc::default();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (seen_acceptor, seen_calls) = (acceptor.clone(), calls.clone());
    let graceful = builder()
        .on_shutdown(move || {
            let stopped = seen_acceptor.get().unwrap().is_stopped();
            seen_calls.lock().unwrap().push(stopped);
        })
        .build(ManualTimer::new())
        .unwrap();
    acceptor.set(graceful.acceptor()).unwrap();
    let shutdown = graceful.shutdown();
    let conn = graceful.acceptor().try_reserve().unwrap().register();
    conn.mark_active();
    let mut run = graceful.run();

    shutdown.stop();
    assert!(poll_once(&mut run).is_none());
    assert_eq!(*calls.lock().unwrap(), [true]);
    shutdown.stop();
    assert!(poll_once(&mut run).is_none());
    shutdown.signal(); // forces: the drain ends
    let report = poll_until_waiting(&mut run).unwrap();
    assert_eq!(report.outcome, Outcome::Forced);
    assert_eq!(*calls.lock().unwrap(), [true], "once");
}

#[test]
fn eleven_triggers_make_one_shutdown() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    conn.mark_active();
    let waiters: Vec<_> = (0..3).map(|_| h.spawn(h.shutdown.wait())).collect();

    for i in 0..11 {
        let shutdown = h.shutdown.clone();
        if i % 2 == 0 {
            shutdown.stop();
        } else {
            shutdown.stop_with_timeout(ms(10)).unwrap();
        }
        h.settle();
    }
    assert_eq!(h.hooks.before_shutdown_calls(), 1);
    assert_eq!(h.hooks.on_shutdown_calls(), 1);
    h.advance(ms(10));
    assert!(
        h.report().is_none(),
        "the first stop's 30 s timeout applies, not a later one's"
    );

    conn.mark_idle();
    drop(conn);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.outcome, report.completed), (Outcome::Drained, 1));
    for waiter in waiters {
        assert_eq!(*waiter.borrow(), Some(report.clone()));
    }
    h.shutdown.stop();
    h.settle();
    assert_eq!(h.hooks.before_shutdown_calls(), 1);
    assert_eq!(h.hooks.on_shutdown_calls(), 1);
}

#[test]
fn a_stop_before_the_manager_runs_takes_effect_on_its_first_poll() {
    let mut h = Harness::with(builder());
    let conn = h.open();
    h.advance(Duration::from_secs(1)); // quiet for longer than the quiet period

    h.shutdown.stop();
    h.shutdown.stop(); // and again: no deadlock, no second shutdown
    assert!(!h.shutdown.is_shutting_down(), "nobody acted on it yet");
    assert!(!h.acceptor.is_stopped());
    assert!(!conn.is_drain_requested());

    h.spawn_run();
    assert!(h.shutdown.is_shutting_down());
    assert!(h.acceptor.is_stopped());
    assert!(conn.is_drain_requested());
    drop(conn);
    h.settle();
    let report = h.report().unwrap();
    assert_eq!((report.outcome, report.idle_closed), (Outcome::Drained, 1));
    assert_eq!(h.hooks.on_shutdown_calls(), 1);
}

#[test]
fn concurrent_stops_from_many_threads_make_one_shutdown() {
    const THREADS: usize = 8;
    // Only bounds the wait, so that a lost wake-up fails the test instead of hanging it.
    const BOUND: Duration = Duration::from_secs(60);
    let hooks = Arc::new(Hooks::default());
    let graceful = hooks.install(builder()).build(ManualTimer::new()).unwrap();
    let shutdown = graceful.shutdown();
    let conn = graceful.acceptor().try_reserve().unwrap().register();
    conn.mark_active();
    let run = graceful.run();

    let (reports, received) = mpsc::channel();
    let start = Arc::new(Barrier::new(THREADS + 1));
    // The manager runs on its own thread while the triggers race it and each other.
    let manager = reports.clone();
    std::thread::spawn(move || {
        let _ = manager.send(futures::executor::block_on(run));
    });
    for i in 0..THREADS {
        let (shutdown, start, reports) = (shutdown.clone(), start.clone(), reports.clone());
        std::thread::spawn(move || {
            start.wait();
            if i % 2 == 0 {
                shutdown.stop();
            } else {
                shutdown.stop_with_timeout(Duration::from_secs(60)).unwrap();
            }
            let _ = reports.send(futures::executor::block_on(shutdown.wait()));
        });
    }
    start.wait();
    // Once the drain has told it to, the request in flight finishes.
    let deadline = Instant::now() + BOUND;
    while !conn.is_drain_requested() {
        assert!(Instant::now() < deadline, "the drain never began");
        std::thread::yield_now();
    }
    assert!(shutdown.is_shutting_down());
    conn.mark_idle();
    drop(conn);

    let first = received.recv_timeout(BOUND).expect("the shutdown ended");
    assert_eq!((first.outcome, first.completed), (Outcome::Drained, 1));
    for _ in 0..THREADS {
        let report = received.recv_timeout(BOUND).expect("every waiter is woken");
        assert_eq!(
            report, first,
            "the manager and every waiter see the one report"
        );
    }
    assert_eq!(hooks.before_shutdown.load(Ordering::SeqCst), 1);
    assert_eq!(hooks.on_shutdown.load(Ordering::SeqCst), 1);
}

#[test]
fn force_bypasses_the_veto() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    conn.mark_active();
    h.hooks.set_veto(true);

    h.shutdown.force();
    h.settle();
    let report = h.report().expect("forced: no drain");
    assert_eq!((report.outcome, report.killed), (Outcome::Forced, 1));
    assert_eq!(
        h.hooks.before_shutdown_calls(),
        0,
        "the veto is not even asked"
    );
    assert_eq!(h.hooks.on_shutdown_calls(), 1);
    assert!(conn.is_killed() && conn.is_drain_requested());
}

#[test]
fn a_second_signal_during_the_drain_kills_what_is_left() {
    let mut h = Harness::running(builder());
    let busy = h.open();
    busy.mark_active();
    let done = h.open();
    done.mark_active();
    let killed = h.spawn(busy.killed());

    h.shutdown.signal(); // the first one drains
    h.settle();
    assert!(h.report().is_none());
    done.mark_idle();
    drop(done);
    h.advance(ms(700));
    assert!(killed.borrow().is_none());

    h.shutdown.signal(); // the second one forces
    h.settle();
    let report = h.report().unwrap();
    assert_eq!(report.outcome, Outcome::Forced);
    assert_eq!((report.completed, report.killed), (1, 1));
    assert_eq!(report.elapsed, ms(700));
    assert!(killed.borrow().is_some(), "the `Killed` future woke");
}

#[test]
fn force_during_the_drain_kills_what_is_left() {
    let mut h = Harness::running(builder());
    let conn = h.open();
    conn.mark_hijacked();
    h.shutdown.stop();
    h.settle();
    h.shutdown.force();
    h.settle();
    let report = h.report().unwrap();
    assert_eq!(
        (report.outcome, report.killed, report.hijacked),
        (Outcome::Forced, 1, 0)
    );
}
