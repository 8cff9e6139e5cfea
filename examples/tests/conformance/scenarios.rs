//! The scenarios, each generic over the runtime. `test` is the test's own name, which the
//! scenarios that need a child process pass to it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use graceful_core::Outcome;

use super::{child, wait_until, Client, Harness, Read, Settings};

/// Bounds for what must happen "soon": they catch hangs, not slowness.
const SOON: Duration = Duration::from_secs(10);

/// 1. Work in flight when the shutdown starts completes, then the connection closes.
pub fn in_flight_work_completes<H: Harness>(_test: &str) {
    let mut server = H::start(Settings::default());
    let mut client = server.connect();
    client.send("SLEEP 800");
    wait_until("the request to be active", SOON, || {
        server.shutdown.counts().active == 1
    });

    server.shutdown.stop();
    wait_until("the drain", SOON, || server.shutdown.is_shutting_down());
    assert_eq!(
        client.read(),
        Read::Line("DONE".into()),
        "the work in flight is answered"
    );
    client.expect_closed();

    let report = server.finish(SOON);
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!((report.completed, report.total()), (1, 1), "{report:?}");
}

/// 2. Idle and never-used connections are closed once the quiet period is over, not before,
///    and long before the timeout.
pub fn quiet_connections_close_within_the_quiet_period<H: Harness>(_test: &str) {
    let quiet = Duration::from_millis(300);
    let mut server = H::start(Settings {
        quiet_period: quiet,
        ..Settings::default()
    });
    let mut used = server.connect();
    let used_quiet_by = Instant::now();
    assert_eq!(used.request("PING"), "PONG");
    let fresh_quiet_by = Instant::now();
    let mut fresh = server.connect();
    wait_until("both connections to be tracked", SOON, || {
        let counts = server.shutdown.counts();
        (counts.idle, counts.new) == (1, 1)
    });

    let stopped_at = Instant::now();
    server.shutdown.stop();
    for (client, quiet_by) in [(&mut used, used_quiet_by), (&mut fresh, fresh_quiet_by)] {
        client.expect_closed();
        // The connection went quiet after `quiet_by`: it may not be closed before the end of
        // its quiet period (a few ms of slack for clock granularity).
        let quiet_for = quiet_by.elapsed();
        assert!(
            quiet_for + Duration::from_millis(5) >= quiet,
            "closed after {quiet_for:?}"
        );
    }
    let took = stopped_at.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "quiet connections waited for the timeout: {took:?}"
    );

    let report = server.finish(SOON);
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!((report.idle_closed, report.total()), (2, 2), "{report:?}");
}

/// 3. Once the shutdown has started, new connections are refused (or closed unanswered),
///    while the drain is still under way.
pub fn new_connections_are_refused_once_stopping<H: Harness>(_test: &str) {
    let mut server = H::start(Settings::default());
    let mut busy = server.connect();
    busy.send("SLEEP 60000");
    wait_until("the request to be active", SOON, || {
        server.shutdown.counts().active == 1
    });

    server.shutdown.stop();
    wait_until("the shutdown hook", SOON, || server.probe.started() == 1);
    let mut refused = false;
    wait_until("a refused connection", SOON, || {
        match Client::try_connect(server.addr) {
            Err(_) => {
                refused = true;
                true
            }
            Ok(mut late) => {
                late.send("PING");
                assert_eq!(
                    late.read(),
                    Read::Closed,
                    "a connection after the stop is not served"
                );
                false
            }
        }
    });
    assert!(refused);
    assert_eq!(
        server.shutdown.counts().active,
        1,
        "refused while the drain goes on"
    );

    busy.hang_up();
    let report = server.finish(SOON);
    assert_eq!(
        (report.outcome, report.total()),
        (Outcome::Drained, 1),
        "{report:?}"
    );
}

/// 4. At the timeout, work still running is killed and counted, and the server ends on time.
pub fn timeout_kills_work_in_flight<H: Harness>(_test: &str) {
    let timeout = Duration::from_millis(400);
    let mut server = H::start(Settings {
        timeout: Some(timeout),
        ..Settings::default()
    });
    let mut client = server.connect();
    client.send("SLEEP 60000");
    wait_until("the request to be active", SOON, || {
        server.shutdown.counts().active == 1
    });

    let stopped_at = Instant::now();
    server.shutdown.stop();
    let report = server.finish(timeout + SOON);
    let took = stopped_at.elapsed();
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!((report.killed, report.completed), (1, 0), "{report:?}");
    assert!(report.elapsed >= timeout, "{report:?}");
    assert!(took >= timeout, "ended before the timeout: {took:?}");
    client.expect_closed();
}

/// 5. A second trigger during the drain kills what is left at once.
pub fn second_trigger_kills_at_once<H: Harness>(_test: &str) {
    let mut server = H::start(Settings {
        timeout: None,
        ..Settings::default()
    });
    let mut client = server.connect();
    client.send("SLEEP 60000");
    wait_until("the request to be active", SOON, || {
        server.shutdown.counts().active == 1
    });

    server.shutdown.signal();
    wait_until("the drain", SOON, || server.probe.started() == 1);
    assert_eq!(
        server.shutdown.report(),
        None,
        "draining, waiting forever for the work"
    );
    server.shutdown.signal();
    let report = server.finish(SOON);
    assert_eq!(report.outcome, Outcome::Forced);
    assert_eq!((report.killed, report.total()), (1, 1), "{report:?}");
    client.expect_closed();
}

/// 6. With a listen limit of N, connection N+1 waits until one closes; a shutdown while one
///    waits does not hang.
pub fn listen_limit_holds<H: Harness>(_test: &str) {
    let mut server = H::start(Settings {
        listen_limit: Some(2),
        ..Settings::default()
    });
    let mut first = server.connect();
    let mut second = server.connect();
    assert_eq!(first.request("PING"), "PONG");
    assert_eq!(second.request("PING"), "PONG");

    let mut third = server.connect();
    third.send("PING");
    third.set_read_timeout(Duration::from_millis(300));
    assert_eq!(
        third.read(),
        Read::TimedOut,
        "the third connection is not served"
    );
    assert_eq!(server.shutdown.counts().total(), 2);

    first.hang_up();
    third.set_read_timeout(super::READ_TIMEOUT);
    assert_eq!(
        third.read(),
        Read::Line("PONG".into()),
        "served once a slot is free"
    );

    server.wait_idle(2);
    let mut fourth = server.connect();
    fourth.send("PING");
    server.shutdown.stop();
    let report = server.finish(SOON);
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!((report.idle_closed, report.total()), (2, 2), "{report:?}");
    fourth.expect_closed();
}

/// 7. A handler that panics does not leak its connection, and the server serves on and
///    shuts down.
pub fn handler_panic_does_not_leak<H: Harness>(_test: &str) {
    let mut server = H::start(Settings::default());
    let mut doomed = server.connect();
    doomed.send("PANIC");
    doomed.expect_closed();
    wait_until("the connection to leave the counts", SOON, || {
        server.shutdown.counts().total() == 0
    });

    let mut other = server.connect();
    assert_eq!(other.request("PING"), "PONG", "the server serves on");
    server.wait_idle(1);
    server.shutdown.stop();
    let report = server.finish(SOON);
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!((report.idle_closed, report.total()), (1, 1), "{report:?}");
    assert_eq!(server.shutdown.illegal_transitions(), 0);
}

/// 8. A client that hangs up mid-work is counted as closed: at once while serving (it is not
///    in the report), and during a drain as `completed` (it closed on its own, unkilled).
pub fn client_hang_up_mid_work_is_counted_closed<H: Harness>(_test: &str) {
    let mut server = H::start(Settings::default());
    let gone = server.connect();
    let mut gone_later = server.connect();
    gone_later.send("SLEEP 60000");
    {
        let mut gone = gone;
        gone.send("SLEEP 60000");
        wait_until("both requests to be active", SOON, || {
            server.shutdown.counts().active == 2
        });
        gone.hang_up();
    }
    wait_until("the hung-up connection to close", SOON, || {
        server.shutdown.counts().total() == 1
    });

    server.shutdown.stop();
    wait_until("the drain", SOON, || server.probe.started() == 1);
    gone_later.hang_up();
    let report = server.finish(SOON);
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!(
        (report.completed, report.killed, report.total()),
        (1, 0, 1),
        "{report:?}"
    );
}

/// 9. EMFILE: with the descriptor limit lowered (in a child process), the server survives
///    running out of descriptors and serves again once some are free.
#[cfg(unix)]
pub fn emfile_is_survived<H: Harness>(test: &str) {
    /// Descriptors left to the child's server for connections.
    const HEADROOM: u64 = 4;
    if child::role().as_deref() == Some("emfile") {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .try_init();
        let mut server = H::start(Settings::default());
        // Warm up (executor threads, reactor) before counting descriptors.
        assert_eq!(server.connect().request("PING"), "PONG");
        wait_until("the warm-up to close", SOON, || {
            server.shutdown.counts().total() == 0
        });
        graceful_harness::process::leave_descriptors(HEADROOM);
        println!("listening on {}", server.addr);
        child::wait_for_stop();
        server.shutdown.stop();
        let report = server.finish(SOON);
        println!("report {:?}", report.outcome);
        return;
    }

    let mut child = child::spawn(test, "emfile");
    let addr = child.listening(SOON);
    let mut clients: Vec<Client> = (0..HEADROOM + 8).map(|_| Client::connect(addr)).collect();
    for client in &mut clients {
        client.send("PING");
    }
    child.wait_stderr("backing off", SOON);
    assert!(child.exited().is_none(), "the server survives EMFILE");
    assert_eq!(clients[0].read(), Read::Line("PONG".into()));

    drop(clients);
    let mut fresh = Client::connect(addr);
    assert_eq!(
        fresh.request("PING"),
        "PONG",
        "served again once descriptors are free"
    );
    child.wait_stderr("accepting connections again", SOON);
    drop(fresh);

    child.tell("stop");
    assert_eq!(child::expect_out(&mut child, "report ", SOON), "Drained");
    assert!(child.wait_exit(SOON).1.success());
}

/// 10. A stop before serving starts, and many concurrent stops, neither hang nor run the
///     hooks twice.
pub fn stops_before_serving_and_concurrent_stops<H: Harness>(_test: &str) {
    fn stop_from_many_threads(shutdown: &graceful_core::Shutdown) {
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (shutdown, barrier) = (shutdown.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    shutdown.stop();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    let mut early = H::start(Settings {
        before_serve: Some(Box::new(stop_from_many_threads)),
        ..Settings::default()
    });
    let report = early.finish(SOON);
    assert_eq!((report.outcome, report.total()), (Outcome::Drained, 0));
    assert_eq!(
        (early.probe.asked(), early.probe.started()),
        (1, 1),
        "hooks run once"
    );
    assert!(
        Client::try_connect(early.addr).is_err(),
        "the listener is closed"
    );

    let mut busy = H::start(Settings::default());
    let mut client = busy.connect();
    assert_eq!(client.request("PING"), "PONG");
    busy.wait_idle(1);
    stop_from_many_threads(&busy.shutdown);
    let report = busy.finish(SOON);
    assert_eq!((report.outcome, report.idle_closed), (Outcome::Drained, 1));
    assert_eq!(
        (busy.probe.asked(), busy.probe.started()),
        (1, 1),
        "hooks run once"
    );
}

/// 11. A vetoed stop keeps the server serving, new connections included; a later stop works.
pub fn veto_keeps_serving<H: Harness>(_test: &str) {
    let settings = Settings::default();
    settings.probe.veto.store(true, Ordering::SeqCst);
    let mut server = H::start(settings);
    let mut before = server.connect();
    assert_eq!(before.request("PING"), "PONG");

    server.shutdown.stop();
    wait_until("the veto hook", SOON, || server.probe.asked() == 1);
    let mut after = server.connect();
    assert_eq!(after.request("PING"), "PONG", "a new connection is served");
    assert_eq!(before.request("PING"), "PONG", "the old one too");
    assert!(!server.shutdown.is_shutting_down());
    assert_eq!(server.probe.started(), 0);

    server.wait_idle(2);
    server.probe.veto.store(false, Ordering::SeqCst);
    // A stop that lands while the veto hook is still returning is part of the vetoed one:
    // ask until the hook is asked again.
    wait_until("the second stop to reach the hook", SOON, || {
        server.shutdown.stop();
        server.probe.asked() == 2
    });
    let report = server.finish(SOON);
    assert_eq!(
        (report.outcome, report.idle_closed),
        (Outcome::Drained, 2),
        "{report:?}"
    );
    assert_eq!(server.probe.started(), 1);
}

/// 12. SIGTERM drains (work in flight completes), a second signal (SIGINT) kills what is
///     left; in a child process with signal handling on.
#[cfg(unix)]
pub fn signals_drain_then_force<H: Harness>(test: &str) {
    use rustix::process::Signal;

    if child::role().as_deref() == Some("signals") {
        let server = H::start(Settings {
            signals: true,
            timeout: Some(Duration::from_secs(60)),
            ..Settings::default()
        });
        println!("listening on {}", server.addr);
        let mut last = None;
        let report = graceful_harness::wait_for("a signal", Duration::from_secs(60), || {
            let now = (server.shutdown.counts().active, server.probe.started());
            if last != Some(now) {
                println!("active={} draining={}", now.0, now.1);
                last = Some(now);
            }
            server.try_report()
        });
        println!(
            "report {:?} completed={} killed={}",
            report.outcome, report.completed, report.killed
        );
        return;
    }

    let mut child = child::spawn(test, "signals");
    let addr = child.listening(SOON);
    let mut finishing = Client::connect(addr);
    let mut endless = Client::connect(addr);
    finishing.send("SLEEP 2000");
    endless.send("SLEEP 60000");
    child::expect_out(&mut child, "active=2 draining=0", SOON);

    child.signal(Signal::TERM);
    child::expect_out(&mut child, "active=2 draining=1", SOON);
    assert_eq!(
        finishing.read(),
        Read::Line("DONE".into()),
        "SIGTERM drains"
    );
    finishing.expect_closed();

    child.signal(Signal::INT);
    let report = child::expect_out(&mut child, "report ", SOON);
    assert_eq!(
        report, "Forced completed=1 killed=1",
        "a second signal forces"
    );
    endless.expect_closed();
    assert!(child.wait_exit(SOON).1.success());
}
