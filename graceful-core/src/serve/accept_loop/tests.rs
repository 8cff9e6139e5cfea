//! The loop on a hand-driven clock and a single-threaded pool: accept-error backoff,
//! stops, what a stopping loop takes from the kernel's queue, panicking handlers,
//! handshakes and handlers that answer the kill. The adapters' tests cover real sockets.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use super::*;
use crate::shared::Shared;
use crate::{Conn, Handshake, HandshakeFlag, ManualTimer, Outcome, Shutdown};

/// What `accept` does next.
enum Step {
    Fail(io::Error),
    Accept(u32),
    /// Asks for a stop and stops accepting (as the manager will) while it accepts this
    /// connection: the stop lands between the race's two polls, as it may on a
    /// multi-threaded runtime.
    StopWhileAccepting(Shutdown, Arc<Shared>, u32),
}

/// Follows its script, then waits forever (or fails forever with `endless`). `queued`
/// is what the kernel holds for `try_accept`; `on_drop` runs when the loop drops it.
struct Scripted {
    steps: VecDeque<Step>,
    endless: Option<io::ErrorKind>,
    calls: Arc<AtomicUsize>,
    queued: VecDeque<io::Result<u32>>,
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

impl Scripted {
    fn new(steps: impl IntoIterator<Item = Step>) -> (Scripted, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let listener = Scripted {
            steps: steps.into_iter().collect(),
            endless: None,
            calls: calls.clone(),
            queued: VecDeque::new(),
            on_drop: None,
        };
        (listener, calls)
    }
}

impl Listener<()> for Scripted {
    type Io = u32;

    async fn accept(&mut self) -> io::Result<u32> {
        let calls = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(kind) = self.endless {
            assert!(calls < 10_000, "the accept loop spun on failing accepts");
            return Err(io::Error::from(kind));
        }
        match self.steps.pop_front() {
            Some(Step::Fail(error)) => Err(error),
            Some(Step::Accept(id)) => Ok(id),
            Some(Step::StopWhileAccepting(shutdown, shared, id)) => {
                shutdown.stop();
                shared.stop_accepting();
                Ok(id)
            }
            None => pending().await,
        }
    }

    fn try_accept(&mut self) -> io::Result<Option<u32>> {
        self.queued.pop_front().transpose()
    }
}

/// A server on a `LocalPool`: connection tasks are queued by the spawn function and
/// moved onto the pool by `run`.
struct Harness {
    pool: LocalPool,
    queue: Arc<Mutex<Vec<ConnectionTask>>>,
    timer: ManualTimer,
    graceful: Option<Graceful>,
    report: Arc<Mutex<Option<ShutdownReport>>>,
}

impl Harness {
    fn new() -> Harness {
        let timer = ManualTimer::new();
        let graceful = Graceful::builder().build(timer.clone()).unwrap();
        Harness {
            pool: LocalPool::new(),
            queue: Arc::default(),
            timer,
            graceful: Some(graceful),
            report: Arc::default(),
        }
    }

    fn shutdown(&self) -> Shutdown {
        self.graceful.as_ref().unwrap().shutdown()
    }

    fn shared(&self) -> Arc<Shared> {
        self.graceful.as_ref().unwrap().acceptor().shared().clone()
    }

    fn serve<H, F>(&mut self, listener: Scripted, handler: H)
    where
        H: Fn(u32, Conn) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        self.serve_with(listener, handler);
    }

    /// [`serve`](Harness::serve) any listener with any handler.
    fn serve_with<L: Listener<()>, H: Handler<L::Io>>(&mut self, listener: L, handler: H) {
        self.serve_all(vec![Served::new::<(), _, _>(
            String::new(),
            listener,
            handler,
        )]);
    }

    /// Serves several listeners under one shutdown.
    fn serve_all(&mut self, listeners: Vec<Served>) {
        let queue = self.queue.clone();
        let setup = Setup::new(self.timer.clone(), move |task| {
            queue.lock().unwrap().push(task);
        });
        let graceful = self.graceful.take().unwrap();
        let report = self.report.clone();
        let serving = serve(graceful, listeners, setup);
        self.pool
            .spawner()
            .spawn_local(async move {
                *report.lock().unwrap() = Some(serving.await);
            })
            .unwrap();
    }

    /// Runs the server and its connection tasks until nothing is left to do.
    fn run(&mut self) {
        loop {
            self.pool.run_until_stalled();
            let tasks = std::mem::take(&mut *self.queue.lock().unwrap());
            if tasks.is_empty() {
                return;
            }
            for task in tasks {
                self.pool.spawner().spawn_local(task).unwrap();
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        self.timer.advance(by);
        self.run();
    }

    fn report(&self) -> Option<ShutdownReport> {
        self.report.lock().unwrap().clone()
    }
}

#[test]
fn failing_accepts_back_off_on_the_timer_until_the_stop() {
    let mut server = Harness::new();
    let (mut listener, calls) = Scripted::new([]);
    listener.endless = Some(io::ErrorKind::OutOfMemory);
    let shutdown = server.shutdown();
    server.serve(listener, |_, _conn| async {});
    server.run();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "waits 5 ms before the next"
    );
    server.advance(Duration::from_millis(4));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.advance(Duration::from_millis(1));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "then 10 ms");
    server.advance(Duration::from_millis(9));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.advance(Duration::from_millis(1));
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    shutdown.stop();
    server.run();
    let report = server
        .report()
        .expect("the stop cuts the 20 ms backoff short");
    assert_eq!((report.outcome, report.total()), (Outcome::Drained, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "no accept after the stop");
}

#[test]
fn a_listener_failing_at_once_forever_neither_spins_nor_hides_the_stop() {
    let mut server = Harness::new();
    let (mut listener, calls) = Scripted::new([]);
    listener.endless = Some(io::ErrorKind::ConnectionReset);
    let shutdown = server.shutdown();
    // Another task on the same thread: it only runs if the accept loop yields.
    let seen = calls.clone();
    server
        .pool
        .spawner()
        .spawn_local(async move {
            while seen.load(Ordering::SeqCst) < 3 {
                yield_now().await;
            }
            shutdown.stop();
        })
        .unwrap();
    server.serve(listener, |_, _conn| async {});
    server.run();
    let report = server.report().expect("the stop was seen");
    assert_eq!(report.outcome, Outcome::Drained);
    assert!(calls.load(Ordering::SeqCst) < 10, "{calls:?}");
}

#[test]
fn connection_errors_are_skipped_and_panicking_handlers_contained() {
    let mut server = Harness::new();
    let reset = io::Error::from(io::ErrorKind::ConnectionReset);
    let (listener, calls) = Scripted::new([
        Step::Fail(reset),
        Step::Accept(1),
        Step::Accept(2),
        Step::Accept(3),
    ]);
    let shutdown = server.shutdown();
    let called = Arc::new(AtomicUsize::new(0));
    let handler_called = called.clone();
    server.serve(listener, move |id, conn| {
        handler_called.fetch_add(1, Ordering::SeqCst);
        assert_ne!(id, 1, "a panic in the handler call itself");
        async move {
            assert_ne!(id, 2, "a panic in the connection's task");
            conn.mark_active();
            conn.drain_requested().await;
            conn.mark_idle();
        }
    });
    server.run();
    assert_eq!(calls.load(Ordering::SeqCst), 5, "no wait after the reset");
    assert_eq!(called.load(Ordering::SeqCst), 3);
    let counts = shutdown.counts();
    assert_eq!((counts.total(), counts.active), (1, 1), "only 3 is left");

    shutdown.stop();
    server.run();
    let report = server.report().expect("served until the drain ended");
    assert_eq!(report.outcome, Outcome::Drained);
    assert_eq!((report.completed, report.total()), (1, 1));
}

/// A handler that counts its calls, and serves a request until told to drain.
fn serving_until_told(
    called: &Arc<AtomicUsize>,
) -> impl Fn(u32, Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
    let called = called.clone();
    move |_, conn| {
        called.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.mark_active();
            conn.drain_requested().await;
            conn.mark_idle();
        })
    }
}

impl Harness {
    /// Serves `listener` with [`serving_until_told`] to the end of the drain (connections
    /// quiet when it began are told at the end of their quiet period): the report, and how
    /// many connections were served.
    fn serve_to_the_end(&mut self, listener: Scripted) -> (ShutdownReport, usize) {
        let called = Arc::new(AtomicUsize::new(0));
        self.serve(listener, serving_until_told(&called));
        self.run();
        self.advance(crate::DEFAULT_QUIET_PERIOD);
        let report = self.report().expect("drained");
        (report, called.load(Ordering::SeqCst))
    }
}

#[test]
fn a_connection_accepted_after_the_stop_is_served() {
    let mut server = Harness::new();
    let step = Step::StopWhileAccepting(server.shutdown(), server.shared(), 1);
    let (listener, calls) = Scripted::new([step]);
    let (report, served) = server.serve_to_the_end(listener);
    assert_eq!((report.outcome, report.total()), (Outcome::Drained, 1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(served, 1, "served in the drain");
}

#[test]
fn connections_queued_at_the_stop_are_served_before_the_drain_ends() {
    let mut server = Harness::new();
    let (mut listener, calls) = Scripted::new([]);
    let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
    listener.queued = [Ok(1), Err(reset), Ok(2)].into();
    // Asked for before the loop first runs: with no connection yet, the drain would
    // end at once, before the loop took the queue.
    server.shutdown().stop();
    let (report, served) = server.serve_to_the_end(listener);
    assert_eq!((report.outcome, report.total()), (Outcome::Drained, 2));
    assert_eq!(report.killed, 0);
    assert_eq!(served, 2, "1 and 2; the aborted one skipped");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no waiting accept after the stop"
    );
}

#[test]
fn connections_are_told_only_once_the_listener_is_dropped() {
    let mut server = Harness::new();
    let shared = server.shared();
    let (mut listener, _calls) = Scripted::new([Step::Accept(1)]);
    let draining_at_drop = Arc::new(Mutex::new(None));
    let seen = draining_at_drop.clone();
    listener.on_drop = Some(Box::new(move || {
        *seen.lock().unwrap() = Some(shared.draining.load(Ordering::SeqCst));
    }));
    let shutdown = server.shutdown();
    server.serve(listener, serving_until_told(&Arc::default()));
    server.run();
    shutdown.stop();
    server.run();
    assert_eq!(
        *draining_at_drop.lock().unwrap(),
        Some(false),
        "a balancer told to reconnect must find the listener closed, not closing"
    );
    let report = server.report().expect("drained");
    assert_eq!((report.outcome, report.completed), (Outcome::Drained, 1));
}

#[test]
fn the_listen_limit_bounds_what_is_taken_from_the_queue() {
    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .listen_limit(1)
        .build(timer.clone())
        .unwrap();
    let mut server = Harness {
        graceful: Some(graceful),
        timer,
        ..Harness::new()
    };
    let (mut listener, _calls) = Scripted::new([Step::Accept(1)]);
    listener.queued = [Ok(2), Ok(3)].into();
    let shutdown = server.shutdown();
    let called = Arc::new(AtomicUsize::new(0));
    server.serve(listener, serving_until_told(&called));
    server.run();
    assert_eq!(shutdown.counts().active, 1, "1 holds the only slot");
    shutdown.stop();
    server.run();
    let report = server.report().expect("drained");
    assert_eq!(
        (report.outcome, report.total()),
        (Outcome::Drained, 1),
        "2 and 3 left"
    );
    assert_eq!(called.load(Ordering::SeqCst), 1);
}

#[test]
fn watchers_run_while_serving_and_are_dropped_after() {
    let mut server = Harness::new();
    let (listener, _calls) = Scripted::new([]);
    let shutdown = server.shutdown();
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let watched = Arc::new(());
    let held = watched.clone();
    let setup_shutdown = shutdown.clone();
    let queue = server.queue.clone();
    let setup = Setup::new(server.timer.clone(), move |task| {
        queue.lock().unwrap().push(task);
    })
    .watch(async move {
        let _ = stop_rx.await;
        setup_shutdown.stop();
    })
    .watch(async move {
        let _held = held;
        pending::<()>().await
    });
    let graceful = server.graceful.take().unwrap();
    let report = server.report.clone();
    let served = Served::new::<(), _, _>(String::new(), listener, |_, _conn| async {});
    let serving = serve(graceful, vec![served], setup);
    server
        .pool
        .spawner()
        .spawn_local(async move {
            *report.lock().unwrap() = Some(serving.await);
        })
        .unwrap();
    server.run();
    assert!(!shutdown.is_shutting_down());
    assert_eq!(Arc::strong_count(&watched), 2, "the watcher is alive");

    stop_tx.send(()).unwrap();
    server.run();
    assert_eq!(server.report().map(|r| r.outcome), Some(Outcome::Drained));
    assert_eq!(Arc::strong_count(&watched), 1, "and dropped with serve");
}

/// Hands out one connection whose stream is part way through a handshake, then none.
struct Handshaking(Option<Handshake>);

impl Listener<()> for Handshaking {
    type Io = Handshake;

    async fn accept(&mut self) -> io::Result<Handshake> {
        match self.0.take() {
            Some(handshake) => Ok(handshake),
            None => pending().await,
        }
    }

    fn handshake(io: &Handshake) -> Option<Handshake> {
        Some(io.clone())
    }
}

#[test]
fn each_conn_carries_its_listeners_handshake() {
    let mut server = Harness::new();
    let flag = HandshakeFlag::new();
    flag.raise();
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    server.serve_with(Handshaking(Some(flag.handshake())), move |_, conn: Conn| {
        *record.lock().unwrap() = Some(conn.handshake().map(Handshake::is_under_way));
        async {}
    });
    server.run();
    assert_eq!(
        *seen.lock().unwrap(),
        Some(Some(true)),
        "attached before the handler"
    );
}

/// Sets its flag when dropped.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A handler whose future never ends, holding a [`Dropped`]: it says it ends on the kill
/// by itself (it does not, to show that the loop leaves the kill to it) when `ends_on_kill`.
struct Stubborn<const ENDS_ON_KILL: bool>(Arc<AtomicBool>);

impl<const ENDS_ON_KILL: bool> Handler<u32> for Stubborn<ENDS_ON_KILL> {
    const ENDS_ON_KILL: bool = ENDS_ON_KILL;

    fn call(&self, _: u32, conn: Conn) -> impl Future<Output = ()> + Send + 'static {
        let dropped = Dropped(self.0.clone());
        async move {
            conn.mark_active();
            let _held = (conn, dropped);
            pending::<()>().await
        }
    }
}

/// Kills a server serving one connection with `handler`; whether its future was dropped.
fn killed_with<H: Handler<u32>>(handler: impl FnOnce(Arc<AtomicBool>) -> H) -> bool {
    let mut server = Harness::new();
    let dropped = Arc::new(AtomicBool::new(false));
    let (listener, _calls) = Scripted::new([Step::Accept(1)]);
    let shutdown = server.shutdown();
    server.serve_with(listener, handler(dropped.clone()));
    server.run();
    assert_eq!(shutdown.counts().active, 1);
    shutdown.force();
    server.run();
    // A future that does not end on the kill, as it said it would, holds the report for
    // the kill grace.
    server.advance(Duration::from_secs(1));
    let report = server.report().expect("the kill ended serving");
    assert_eq!((report.outcome, report.killed), (Outcome::Forced, 1));
    dropped.load(Ordering::SeqCst)
}

#[test]
fn the_kill_drops_a_handlers_future_unless_it_ends_on_the_kill_itself() {
    assert!(
        killed_with(Stubborn::<false>),
        "raced against the kill: dropped"
    );
    assert!(
        !killed_with(Stubborn::<true>),
        "left to answer the kill itself: not polled for it"
    );
}

#[test]
fn several_listeners_stop_at_the_one_stop_and_each_has_its_line_in_the_report() {
    let mut h = Harness::new();
    let shutdown = h.shutdown();
    let closed = Arc::new(AtomicUsize::new(0));
    let listener = |id| {
        let (mut listener, _) = Scripted::new([Step::Accept(id)]);
        let closed = closed.clone();
        listener.on_drop = Some(Box::new(move || {
            closed.fetch_add(1, Ordering::SeqCst);
        }));
        listener
    };
    // The public listener's connection finishes its work when told to drain; the admin's
    // holds on until it is killed.
    let handler = |id: u32, conn: Conn| async move {
        conn.mark_active();
        if id == 1 {
            conn.drain_requested().await;
            conn.mark_idle();
        } else {
            pending::<()>().await;
        }
    };
    h.serve_all(vec![
        Served::new::<(), _, _>("public".into(), listener(1), handler),
        Served::new::<(), _, _>("admin".into(), listener(2), handler),
    ]);
    h.run();
    assert_eq!(shutdown.counts().active, 2);
    assert_eq!(closed.load(Ordering::SeqCst), 0);
    shutdown.stop();
    h.run();
    assert_eq!(
        closed.load(Ordering::SeqCst),
        2,
        "both listeners closed at the stop"
    );
    assert!(h.report().is_none(), "the admin connection holds the drain");
    h.advance(Duration::from_secs(31));
    let report = h.report().expect("killed at the timeout");
    assert_eq!(report.outcome, Outcome::TimedOut);
    let lines: Vec<_> = report.listeners.iter().map(ToString::to_string).collect();
    assert_eq!(lines, ["public: 1 completed", "admin: 1 killed"]);
    assert_eq!((report.completed, report.killed), (1, 1));
    assert!(
        report
            .to_string()
            .ends_with("; by listener: public: 1 completed, admin: 1 killed"),
        "{report}"
    );
}

/// The report is out only once the tasks of the connections it counts as killed have
/// ended, and with them their sockets: here a task the runtime does not poll again until
/// the test drops it, as a busy worker of a multi-thread runtime might.
#[test]
fn the_report_waits_for_the_tasks_of_killed_connections_to_end() {
    use std::task::{Context, Poll};

    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .timeout(Duration::from_secs(1))
        .build(timer.clone())
        .unwrap();
    let shutdown = graceful.shutdown();
    let parked = Arc::new(Mutex::new(Vec::<ConnectionTask>::new()));
    let spawned = parked.clone();
    let setup = Setup::new(timer.clone(), move |task| {
        spawned.lock().unwrap().push(task)
    });
    let (listener, _) = Scripted::new([Step::Accept(1)]);
    let handler = |_, conn: Conn| async move {
        conn.mark_active();
        pending::<()>().await;
        drop(conn);
    };
    let served = Served::new::<(), _, _>(String::new(), listener, handler);
    let mut serving = Box::pin(serve(graceful, vec![served], setup));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut poll = || serving.as_mut().poll(&mut cx);

    assert!(poll().is_pending());
    assert_eq!(
        parked.lock().unwrap().len(),
        1,
        "connection 1's task, never polled"
    );
    shutdown.stop();
    assert!(poll().is_pending());
    timer.advance(Duration::from_secs(1));
    // However often the manager is polled (a busy executor's turns go by).
    for _ in 0..100 {
        assert!(poll().is_pending(), "killed, but its task has not ended");
    }
    assert!(shutdown.report().is_none());
    parked.lock().unwrap().clear(); // the task ends: its socket is closed
    match poll() {
        Poll::Ready(report) => assert_eq!((report.outcome, report.killed), (Outcome::TimedOut, 1)),
        Poll::Pending => panic!("the report waits for nothing more"),
    }
}

/// A task that never ends does not hold the report for longer than the kill grace.
#[test]
fn a_killed_task_that_never_ends_holds_the_report_no_longer_than_the_grace() {
    use std::task::{Context, Poll};

    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .timeout(Duration::from_secs(1))
        .build(timer.clone())
        .unwrap();
    let shutdown = graceful.shutdown();
    let parked = Arc::new(Mutex::new(Vec::<ConnectionTask>::new()));
    let spawned = parked.clone();
    let setup = Setup::new(timer.clone(), move |task| {
        spawned.lock().unwrap().push(task)
    });
    let (listener, _) = Scripted::new([Step::Accept(1)]);
    let handler = |_, conn: Conn| async move {
        pending::<()>().await;
        drop(conn);
    };
    let served = Served::new::<(), _, _>(String::new(), listener, handler);
    let mut serving = Box::pin(serve(graceful, vec![served], setup));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut poll = || serving.as_mut().poll(&mut cx);

    assert!(poll().is_pending());
    shutdown.stop();
    assert!(poll().is_pending());
    timer.advance(Duration::from_secs(1));
    assert!(poll().is_pending());
    timer.advance(Duration::from_secs(1));
    assert!(matches!(poll(), Poll::Ready(report) if report.killed == 1));
    assert_eq!(parked.lock().unwrap().len(), 1, "still open, and logged");
}
