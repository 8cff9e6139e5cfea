//! Helpers shared by the integration tests: a server on a [`ManualTimer`] whose hooks are
//! counted and whose observer is recorded, driven by a single-threaded executor.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::FutureExt;
use graceful_core::{
    Acceptor, Builder, Conn, ConnId, ConnState, Graceful, ManualTimer, Run, Shutdown,
    ShutdownReport,
};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls `future` once with a waker that does nothing: `Some` if it is ready.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    future.now_or_never()
}

/// Polls `future` until it waits for someone else: again while it woke itself (the manager
/// yields a bounded number of times for killed connections to close). At most 64 polls.
pub fn poll_until_waiting<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    struct Woken(AtomicBool);
    impl futures::task::ArcWake for Woken {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.store(true, Ordering::SeqCst);
        }
    }
    let woken = Arc::new(Woken(AtomicBool::new(false)));
    let waker = futures::task::waker(woken.clone());
    for _ in 0..64 {
        woken.0.store(false, Ordering::SeqCst);
        let mut cx = std::task::Context::from_waker(&waker);
        if let std::task::Poll::Ready(output) = std::pin::Pin::new(&mut *future).poll(&mut cx) {
            return Some(output);
        }
        if !woken.0.load(Ordering::SeqCst) {
            return None;
        }
    }
    None
}

/// What the hooks saw, and the veto the `before_shutdown` hook answers with.
#[derive(Debug, Default)]
pub struct Hooks {
    /// When set, `before_shutdown` vetoes.
    pub veto: AtomicBool,
    pub before_shutdown: AtomicUsize,
    pub on_shutdown: AtomicUsize,
    pub events: Mutex<Vec<(ConnId, ConnState)>>,
}

impl Hooks {
    /// Installs a counting `before_shutdown`, a counting `on_shutdown` and a recording
    /// observer on `builder`.
    pub fn install(self: &Arc<Self>, builder: Builder<Graceful>) -> Builder<Graceful> {
        let (before, on, observe) = (self.clone(), self.clone(), self.clone());
        builder
            .before_shutdown(move || {
                before.before_shutdown.fetch_add(1, Ordering::SeqCst);
                !before.veto.load(Ordering::SeqCst)
            })
            .on_shutdown(move || {
                on.on_shutdown.fetch_add(1, Ordering::SeqCst);
            })
            .on_state_change(move |id, state| observe.events.lock().unwrap().push((id, state)))
    }

    pub fn before_shutdown_calls(&self) -> usize {
        self.before_shutdown.load(Ordering::SeqCst)
    }

    pub fn on_shutdown_calls(&self) -> usize {
        self.on_shutdown.load(Ordering::SeqCst)
    }

    pub fn set_veto(&self, veto: bool) {
        self.veto.store(veto, Ordering::SeqCst);
    }

    /// The observer's record so far, emptied.
    pub fn take_events(&self) -> Vec<(ConnId, ConnState)> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

/// One server on a [`ManualTimer`], its hooks counted, and a [`LocalPool`] to drive it.
///
/// The pool only polls tasks that were woken, so a test that passes through
/// [`settle`](Harness::settle) also checks that the manager and the waiters are woken when
/// they should be.
pub struct Harness {
    pub timer: ManualTimer,
    pub shutdown: Shutdown,
    pub acceptor: Acceptor,
    pub hooks: Arc<Hooks>,
    pub pool: LocalPool,
    /// The manager, until [`spawn_run`](Harness::spawn_run) hands it to the pool.
    pub run: Option<Run>,
    report: Rc<RefCell<Option<ShutdownReport>>>,
}

impl Harness {
    /// A server with the default settings.
    pub fn new() -> Harness {
        Harness::with(Graceful::builder())
    }

    /// A server from `builder`, with the hooks installed. The manager is not running yet.
    pub fn with(builder: Builder<Graceful>) -> Harness {
        let hooks = Arc::new(Hooks::default());
        let timer = ManualTimer::new();
        let graceful = hooks
            .install(builder)
            .build(timer.clone())
            .expect("valid settings");
        Harness {
            timer,
            shutdown: graceful.shutdown(),
            acceptor: graceful.acceptor(),
            hooks,
            pool: LocalPool::new(),
            run: Some(graceful.run()),
            report: Rc::default(),
        }
    }

    /// A server from `builder` with its manager running on the pool.
    pub fn running(builder: Builder<Graceful>) -> Harness {
        let mut harness = Harness::with(builder);
        harness.spawn_run();
        harness
    }

    /// Hands the manager to the pool and runs it until it waits.
    pub fn spawn_run(&mut self) {
        let run = self.run.take().expect("the manager is spawned once");
        let report = self.report.clone();
        self.pool
            .spawner()
            .spawn_local(async move {
                let done = run.await;
                *report.borrow_mut() = Some(done);
            })
            .expect("the pool is alive");
        self.settle();
    }

    /// Runs every woken task until all of them wait.
    pub fn settle(&mut self) {
        self.pool.run_until_stalled();
    }

    /// Moves the clock, then settles.
    pub fn advance(&mut self, by: Duration) {
        self.timer.advance(by);
        self.settle();
    }

    /// Accepts and registers a connection.
    pub fn open(&self) -> Conn {
        self.acceptor
            .try_reserve()
            .expect("room for a connection")
            .register()
    }

    /// The manager's result, once it has resolved.
    pub fn report(&self) -> Option<ShutdownReport> {
        self.report.borrow().clone()
    }

    /// Spawns `future` on the pool; the returned cell holds its output once it is ready.
    pub fn spawn<T: 'static>(
        &mut self,
        future: impl Future<Output = T> + 'static,
    ) -> Rc<RefCell<Option<T>>> {
        let out = Rc::new(RefCell::new(None));
        let cell = out.clone();
        self.pool
            .spawner()
            .spawn_local(async move {
                let value = future.await;
                *cell.borrow_mut() = Some(value);
            })
            .expect("the pool is alive");
        self.settle();
        out
    }
}

/// Keeps the expected panics of illegal transitions (debug builds) out of the test output;
/// any other panic is printed as usual.
pub fn quiet_illegal_transition_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = panic_message(info.payload())
                .is_some_and(|m| m.starts_with("illegal connection transition"));
            if !expected {
                default(info);
            }
        }));
    });
}

/// The text of a panic payload, if it is one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}
