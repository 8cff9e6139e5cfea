//! The serve loop: accept under the listen limit, spawn each connection, drive the manager.
//!
//! Runtime neutral: it names no runtime. The adapter passes in what is runtime specific (a
//! [`Listener`], its [`Timer`], a spawn function, its signal watcher) through [`Setup`], so
//! that the loop is written once, here, and every adapter serves the same way.
//!
//! # Invariants
//!
//! - A slot under the listen limit is reserved *before* `accept`, so connection N+1 waits in
//!   the kernel's backlog rather than in the process.
//! - Every wait of the loop (for a slot, for a connection, in a backoff) is raced against
//!   the stop, the stop polled first (once it is seen, no accept is tried: a connection still
//!   queued stays in the kernel, for a hot restart's new process to take), and the listener
//!   is dropped as soon as the loop ends, so new connections are refused from then on. A
//!   connection accepted after the stop is dropped unserved.
//! - A connection task is its handler raced against [`Conn::killed`](crate::Conn::killed) (unless the handler's
//!   future ends on the kill by itself, [`Handler::ENDS_ON_KILL`]); a panic in it (or in the
//!   handler call itself) is caught and logged: it neither takes the server down (some
//!   executors abort the process on a panicking task) nor leaks the connection, whose `Conn`
//!   is dropped with the handler's future.
//! - Each connection's [`Conn`](crate::Conn) carries its listener's [`Handshake`](crate::Handshake), if
//!   any, before the handler sees it.
//! - Accept errors never end the loop nor make it spin (see `accept_error`).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;

use futures_util::future::{join, join_all, pending, select, Either};

use crate::serve::accept_error::{classify, AcceptErrorKind, Backoff};
use crate::serve::{Handler, Listener, SocketOptions};
use crate::{Acceptor, Graceful, Killed, ShutdownReport, Timer};

/// A connection's task, as handed to the spawn function: the handler's future, raced against
/// the kill, with its panics caught. It ends on its own; the spawner may detach it.
pub type ConnectionTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs a connection's task on the runtime (`tokio::spawn`, `smol::spawn`, ...).
pub(crate) type Spawn = Arc<dyn Fn(ConnectionTask) + Send + Sync>;

/// A future polled for as long as the server serves: a signal watcher, or a user's trigger.
pub type Watcher = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What the server brings to [`serve`]: its runtime's clock and spawn function, the options
/// for accepted sockets, and the futures to watch while serving.
#[must_use = "a setup does nothing until passed to `serve`"]
pub(crate) struct Setup {
    options: SocketOptions,
    timer: Arc<dyn Timer>,
    spawn: Spawn,
    watchers: Vec<Watcher>,
}

impl Setup {
    /// A setup with the default [`SocketOptions`] and nothing to watch.
    ///
    /// `timer` should be the clock the [`Graceful`] was built with: the loop times its
    /// accept-error backoff on it. `spawn` runs each [`ConnectionTask`] on the runtime.
    pub(crate) fn new(
        timer: impl Timer,
        spawn: impl Fn(ConnectionTask) + Send + Sync + 'static,
    ) -> Setup {
        Setup {
            options: SocketOptions::default(),
            timer: Arc::new(timer),
            spawn: Arc::new(spawn),
            watchers: Vec::new(),
        }
    }

    /// The options set on every accepted socket, through [`Listener::configure`].
    pub(crate) fn socket_options(mut self, options: SocketOptions) -> Setup {
        self.options = options;
        self
    }

    /// Polls `watcher` for as long as the server serves, and drops it when serving ends: a
    /// signal handler forwarding to [`Shutdown::signal`](crate::Shutdown::signal), a user's
    /// trigger calling [`Shutdown::stop`](crate::Shutdown::stop). May be called more than
    /// once.
    #[cfg(test)]
    pub(crate) fn watch(mut self, watcher: impl Future<Output = ()> + Send + 'static) -> Setup {
        self.watchers.push(Box::pin(watcher));
        self
    }

    /// [`watch`](Setup::watch) for each of `watchers`.
    pub(crate) fn watch_all(mut self, watchers: Vec<Watcher>) -> Setup {
        self.watchers.extend(watchers);
        self
    }
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("options", &self.options)
            .field("watchers", &self.watchers.len())
            .finish_non_exhaustive()
    }
}

/// Serves `listener` until the shutdown ends, and returns its report: the accept loop,
/// written once, for every runtime.
///
/// It accepts under the listen limit, sets the [`SocketOptions`] on each accepted socket,
/// and spawns `handler.call(io, conn)` for it as a [`ConnectionTask`] (raced against
/// [`Conn::killed`](crate::Conn::killed) unless [`Handler::ENDS_ON_KILL`], panics caught and logged with
/// `tracing`). Meanwhile it drives
/// [`Graceful::run`] and the [watchers](Setup::watch). Accept errors never end it: errors
/// about one connection are skipped, others back off from 5 ms, doubling up to 1 s, on the
/// setup's timer.
///
/// Dropping the future before it resolves kills every connection left.
pub(crate) async fn serve<R, L, H>(
    graceful: Graceful,
    listener: L,
    handler: H,
    setup: Setup,
) -> ShutdownReport
where
    L: Listener<R>,
    H: Handler<L::Io>,
{
    let Setup {
        options,
        timer,
        spawn,
        watchers,
    } = setup;
    let accepting = AcceptLoop {
        acceptor: graceful.acceptor(),
        options,
        timer,
        spawn,
    }
    .run::<R, L, H>(listener, handler);
    // The coarse clock `mark_idle` stamps from, for as long as the server serves.
    let tick = graceful.tick();
    let serving = join(graceful.run(), accepting);
    let watching = async move {
        join(join_all(watchers), tick).await;
        pending::<Infallible>().await
    };
    match race(serving, watching).await {
        Either::Left((report, ())) => report,
        Either::Right(never) => match never {},
    }
}

struct AcceptLoop {
    acceptor: Acceptor,
    options: SocketOptions,
    timer: Arc<dyn Timer>,
    spawn: Spawn,
}

impl AcceptLoop {
    async fn run<R, L, H>(self, mut listener: L, handler: H)
    where
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        let acceptor = &self.acceptor;
        let mut backoff = Backoff::default();
        'serve: while let Some(slot) = acceptor.reserve().await {
            let io = loop {
                // The stop first: once it is seen, no accept is even tried, so a connection
                // still queued stays in the kernel (for a hot restart's new process to take).
                match race(acceptor.stopped(), listener.accept()).await {
                    Either::Left(()) => break 'serve,
                    Either::Right(Ok(io)) => break io,
                    Either::Right(Err(error)) => {
                        if !self.recover(&mut backoff, &error).await {
                            break 'serve;
                        }
                    }
                }
            };
            if let Some(errors) = backoff.succeeded() {
                tracing::info!(errors, "accepting connections again");
            }
            if acceptor.is_stopped() {
                // Only if the stop came between the accept and here: the manager may have
                // ended the drain already, so nobody would serve it.
                break;
            }
            if let Err(error) = L::configure(&io, &self.options) {
                tracing::debug!(%error, "could not set socket options on an accepted connection");
            }
            let mut conn = slot.register();
            if let Some(handshake) = L::handshake(&io) {
                conn.set_handshake(handshake);
            }
            let killed = (!H::ENDS_ON_KILL).then(|| conn.killed());
            match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(io, conn))) {
                Ok(work) => (self.spawn)(Box::pin(supervise(work, killed))),
                Err(panic) => {
                    tracing::error!(
                        panic = panic_message(&*panic),
                        "connection handler panicked"
                    );
                }
            }
        }
        // Dropping the listener here refuses new connections while the drain goes on.
        drop(listener);
    }

    /// Handles a failed accept. Returns `false` if the stop came while backing off.
    async fn recover(&self, backoff: &mut Backoff, error: &io::Error) -> bool {
        let kind = classify(error);
        if kind == AcceptErrorKind::Connection {
            tracing::debug!(%error, "skipped a connection that failed while being accepted");
            // A listener that fails at once, again and again, must neither spin nor starve
            // the stop: give the task's other futures (the manager, the signals) their turn.
            yield_now().await;
            return !self.acceptor.is_stopped();
        }
        let wait = backoff.failed();
        if wait.first {
            let delay = wait.delay;
            if kind == AcceptErrorKind::Resources {
                tracing::warn!(%error, ?delay, "accept failed for lack of resources; backing off until it succeeds");
            } else {
                tracing::error!(%error, ?delay, "accept failed; backing off until it succeeds");
            }
        }
        let now = self.timer.now();
        let Some(deadline) = now.checked_add(wait.delay) else {
            return true;
        };
        let sleep = self.timer.sleep_until(deadline);
        matches!(race(sleep, self.acceptor.stopped()).await, Either::Left(()))
    }
}

/// A connection's task: the handler's work, until it ends or the connection is killed.
///
/// A future of its own rather than an `async fn`, so that `work` is stored once, in place: an
/// `async fn` keeps its arguments in slots of their own next to the locals they are moved
/// into, and every such layer would add a copy of the handler's future (often the largest
/// part of a connection's memory) to the task. Hand-written rather than combinators
/// (`catch_unwind`, `try_join`, three `map`s), because it runs on every wake of every
/// connection: callgrind counted ~150 instructions per poll for the combinators.
///
/// With no `killed`, the handler answers the kill itself: the task only catches its panics.
fn supervise<F: Future<Output = ()>>(work: F, killed: Option<Killed>) -> Supervise<F> {
    Supervise { work, killed }
}

pin_project_lite::pin_project! {
    /// See [`supervise`]: polls `work` first (a panic in it is caught and logged), then the
    /// kill; ends with whichever ends first.
    struct Supervise<F> {
        #[pin]
        work: F,
        killed: Option<Killed>,
    }
}

impl<F: Future<Output = ()>> Future for Supervise<F> {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let this = self.project();
        let work = this.work;
        match std::panic::catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
            Ok(std::task::Poll::Ready(())) => return std::task::Poll::Ready(()),
            Ok(std::task::Poll::Pending) => {}
            Err(panic) => {
                tracing::error!(
                    panic = panic_message(&*panic),
                    "connection handler panicked"
                );
                return std::task::Poll::Ready(());
            }
        }
        match this.killed {
            Some(killed) => Pin::new(killed).poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(not a string)"
    }
}

/// Returns `Pending` once, after asking to be polled again.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

/// Waits for the first of two futures; drops the other. Polls `a` first.
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    match select(pin!(a), pin!(b)).await {
        Either::Left((a, _)) => Either::Left(a),
        Either::Right((b, _)) => Either::Right(b),
    }
}

#[cfg(test)]
mod tests {
    //! The loop on a hand-driven clock and a single-threaded pool: accept-error backoff,
    //! stops, and panicking handlers. The adapters' tests cover real sockets.

    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;

    use super::*;
    use crate::{Conn, ManualTimer, Outcome, Shutdown};

    /// What `accept` does next.
    enum Step {
        Fail(io::Error),
        Accept(u32),
        /// Asks for a stop, waits until accepting has stopped, then accepts this connection.
        StopThenAccept(Shutdown, Acceptor, u32),
    }

    /// Follows its script, then waits forever (or fails forever with `endless`).
    struct Scripted {
        steps: VecDeque<Step>,
        endless: Option<io::ErrorKind>,
        calls: Arc<AtomicUsize>,
    }

    impl Scripted {
        fn new(steps: impl IntoIterator<Item = Step>) -> (Scripted, Arc<AtomicUsize>) {
            let calls = Arc::new(AtomicUsize::new(0));
            let listener = Scripted {
                steps: steps.into_iter().collect(),
                endless: None,
                calls: calls.clone(),
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
                Some(Step::StopThenAccept(shutdown, acceptor, id)) => {
                    shutdown.stop();
                    acceptor.stopped().await;
                    Ok(id)
                }
                None => pending().await,
            }
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

        fn acceptor(&self) -> Acceptor {
            self.graceful.as_ref().unwrap().acceptor()
        }

        fn serve<H, F>(&mut self, listener: Scripted, handler: H)
        where
            H: Fn(u32, Conn) -> F + Send + Sync + 'static,
            F: Future<Output = ()> + Send + 'static,
        {
            let queue = self.queue.clone();
            let setup = Setup::new(self.timer.clone(), move |task| {
                queue.lock().unwrap().push(task);
            });
            let graceful = self.graceful.take().unwrap();
            let report = self.report.clone();
            let serving = serve::<(), _, _>(graceful, listener, handler, setup);
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
            *self.report.lock().unwrap()
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

    #[test]
    fn a_connection_accepted_after_the_stop_is_dropped_unserved() {
        let mut server = Harness::new();
        let step = Step::StopThenAccept(server.shutdown(), server.acceptor(), 1);
        let (listener, calls) = Scripted::new([step]);
        let called = Arc::new(AtomicUsize::new(0));
        let handler_called = called.clone();
        server.serve(listener, move |_, _conn| {
            handler_called.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        server.run();
        let report = server.report().expect("the stop ended serving");
        assert_eq!((report.outcome, report.total()), (Outcome::Drained, 0));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(called.load(Ordering::SeqCst), 0, "never served");
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
        let serving = serve::<(), _, _>(graceful, listener, |_, _conn| async {}, setup);
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
}
