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
//!   the stop, the stop polled first. Once it is seen the loop takes, without waiting, the
//!   connections the kernel queued before it ([`Listener::try_accept`]; none behind a hot
//!   restart's closed gate, which leaves them to the new process), then drops the listener,
//!   so new connections are refused from then on. Closing a listening socket resets what is
//!   queued on it, and a balancer may not replay a request it sent there.
//! - On a socket the server bound itself (Linux), the kernel drops new SYNs before that
//!   last look, and the loop takes the handshakes under way for a few milliseconds more
//!   (`closing.rs`): no connection completes between the last look and the close.
//! - The drain neither begins nor ends while the loop holds its listener
//!   ([`Acceptor::hold_listener`]): what the loop accepts as it stops (a connection accepted
//!   as the stop came, those queued) is served as the connections open when the drain
//!   begins are, and connections are told to close only once new ones are refused (a
//!   balancer reconnecting at once is refused and retries elsewhere, rather than queue on a
//!   listener about to close).
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

use crate::accept::ListenerHeld;
use crate::serve::accept_error::{classify, AcceptErrorKind, Backoff};
use crate::serve::closing::{OwnSockets, HANDSHAKE_LINGER};
use crate::serve::{Handler, Listener, SocketOptions};
use crate::shared::{ListenerIndex, TaskOpen};
use crate::{Acceptor, Graceful, Killed, ShutdownReport, Slot, Timer};

/// The most connections a stopping loop takes from the kernel's queue: Linux's largest
/// default backlog (`net.core.somaxconn`).
const QUEUED_MAX: usize = 4096;

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
    own_sockets: OwnSockets,
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
            own_sockets: OwnSockets::default(),
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

    /// The listening sockets the server bound itself: the loop closes them without
    /// resetting a connection (`closing.rs`).
    pub(crate) fn own_sockets(mut self, own_sockets: OwnSockets) -> Setup {
        self.own_sockets = own_sockets;
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

/// A listener and its handler, added to a server and not served yet: the serve loop of one
/// listener, its types erased so that a server holds listeners of any types.
pub(crate) struct Served {
    name: String,
    serve: StartLoop,
}

type StartLoop = Box<dyn FnOnce(AcceptLoop, ListenerHeld) -> BoxedLoop + Send>;
type BoxedLoop = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Served {
    /// `listener`, served by `handler`, as the report names it `name`.
    pub(crate) fn new<R, L, H>(name: String, listener: L, handler: H) -> Served
    where
        R: 'static,
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        Served {
            name,
            serve: Box::new(move |accept_loop: AcceptLoop, held| {
                Box::pin(accept_loop.run::<R, L, H>(listener, handler, held))
            }),
        }
    }
}

impl fmt::Debug for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Served")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Serves `listeners` until the shutdown ends, and returns its report: the accept loop,
/// written once, for every runtime, run once per listener.
///
/// Each loop accepts under the listen limit (one limit for all of them), sets the
/// [`SocketOptions`] on each accepted socket, and spawns `handler.call(io, conn)` for it as
/// a [`ConnectionTask`] (raced against [`Conn::killed`](crate::Conn::killed) unless
/// [`Handler::ENDS_ON_KILL`], panics caught and logged with `tracing`). Meanwhile it drives
/// [`Graceful::run`] and the [watchers](Setup::watch). Every loop sees the one stop at once.
/// Accept errors never end a loop: errors about one connection are skipped, others back off
/// from 5 ms, doubling up to 1 s, on the setup's timer.
///
/// Dropping the future before it resolves kills every connection left.
pub(crate) async fn serve(
    graceful: Graceful,
    listeners: Vec<Served>,
    setup: Setup,
) -> ShutdownReport {
    let Setup {
        options,
        timer,
        spawn,
        watchers,
        own_sockets,
    } = setup;
    let acceptor = graceful.acceptor();
    let own_sockets = Arc::new(own_sockets);
    let mut loops: Vec<BoxedLoop> = listeners
        .into_iter()
        .map(|Served { name, serve }| {
            let accept_loop = AcceptLoop {
                listener: acceptor.add_listener(name),
                acceptor: acceptor.clone(),
                options,
                timer: timer.clone(),
                spawn: spawn.clone(),
                own_sockets: own_sockets.clone(),
            };
            // Held from before the manager is first polled: a stop asked for already must
            // not begin the drain before the loop has taken what is queued.
            let held = acceptor.hold_listener();
            serve(accept_loop, held)
        })
        .collect();
    // One listener (most servers) is polled as it is; several, side by side.
    let accepting: BoxedLoop = match loops.len() {
        1 => loops.remove(0),
        _ => Box::pin(async move {
            join_all(loops).await;
        }),
    };
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

/// One listener's serve loop, with what it shares with the others.
pub(crate) struct AcceptLoop {
    acceptor: Acceptor,
    /// The listener's line in the report.
    listener: ListenerIndex,
    options: SocketOptions,
    timer: Arc<dyn Timer>,
    spawn: Spawn,
    own_sockets: Arc<OwnSockets>,
}

impl AcceptLoop {
    async fn run<R, L, H>(self, mut listener: L, handler: H, held: ListenerHeld)
    where
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        let acceptor = &self.acceptor;
        let mut backoff = Backoff::default();
        'serve: while let Some(slot) = acceptor.reserve().await {
            let io = loop {
                // The stop first: once it is seen, the loop only takes what is queued.
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
            // If the stop came meanwhile, it is served all the same: the drain waits for
            // this loop.
            self.start::<R, L, H>(slot, io, &handler);
        }
        // On a socket the server bound, the kernel drops new SYNs from here on, so that no
        // handshake completes between the last look at the queue and the close.
        let refusing = self.refuse_handshakes::<R, L>(&listener);
        self.take_queued::<R, L, H>(&mut listener, &handler);
        if refusing {
            self.linger::<R, L, H>(&mut listener, &handler).await;
            self.take_queued::<R, L, H>(&mut listener, &handler);
        }
        // Dropping the listener here refuses new connections while the drain goes on.
        drop(listener);
        drop(held);
    }

    /// Has the kernel drop new SYNs on the listener, if the server bound its socket
    /// (`closing.rs`). Returns whether it does.
    fn refuse_handshakes<R, L: Listener<R>>(&self, listener: &L) -> bool {
        #[cfg(unix)]
        if let Some(socket) = listener.listening_socket() {
            return self.own_sockets.refuse_handshakes(socket);
        }
        let _ = listener;
        false
    }

    /// Once new SYNs are dropped: takes, for [`HANDSHAKE_LINGER`], the connections whose
    /// handshakes were under way, under the listen limit.
    async fn linger<R, L, H>(&self, listener: &mut L, handler: &H)
    where
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        let mut over = pin!(self.timer.sleep_until(self.timer.now() + HANDSHAKE_LINGER));
        while let Some(slot) = self.acceptor.reserve_queued() {
            match race(over.as_mut(), listener.accept()).await {
                Either::Left(()) => return,
                Either::Right(Ok(io)) => self.start::<R, L, H>(slot, io, handler),
                Either::Right(Err(error)) if classify(&error) == AcceptErrorKind::Connection => {}
                Either::Right(Err(error)) => {
                    tracing::debug!(%error, "could not take the connections under way at the stop");
                    return;
                }
            }
        }
    }

    /// Serves the connections the kernel queued before the stop, under the listen limit
    /// (past it, they are reset with the listener as any would be), at most
    /// [`QUEUED_MAX`] of them (the queue refills for as long as clients connect).
    fn take_queued<R, L, H>(&self, listener: &mut L, handler: &H)
    where
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        for _ in 0..QUEUED_MAX {
            let Some(slot) = self.acceptor.reserve_queued() else {
                return;
            };
            match listener.try_accept() {
                Ok(Some(io)) => self.start::<R, L, H>(slot, io, handler),
                Ok(None) => return,
                Err(error) if classify(&error) == AcceptErrorKind::Connection => {}
                Err(error) => {
                    tracing::debug!(%error, "could not take the connections queued at the stop");
                    return;
                }
            }
        }
    }

    /// Registers an accepted connection and spawns its task.
    fn start<R, L, H>(&self, slot: Slot, io: L::Io, handler: &H)
    where
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        if let Err(error) = L::configure(&io, &self.options) {
            tracing::debug!(%error, "could not set socket options on an accepted connection");
        }
        let mut conn = slot.register_from(self.listener);
        if let Some(handshake) = L::handshake(&io) {
            conn.set_handshake(handshake);
        }
        let killed = (!H::ENDS_ON_KILL).then(|| conn.killed());
        let open = self.acceptor.task_open();
        match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(io, conn))) {
            Ok(work) => (self.spawn)(Box::pin(supervise(work, killed, open))),
            Err(panic) => {
                tracing::error!(
                    panic = panic_message(&*panic),
                    "connection handler panicked"
                );
            }
        }
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
fn supervise<F: Future<Output = ()>>(
    work: F,
    killed: Option<Killed>,
    open: TaskOpen,
) -> Supervise<F> {
    Supervise {
        work,
        killed,
        _open: open,
    }
}

pin_project_lite::pin_project! {
    /// See [`supervise`]: polls `work` first (a panic in it is caught and logged), then the
    /// kill; ends with whichever ends first.
    struct Supervise<F> {
        #[pin]
        work: F,
        killed: Option<Killed>,
        // Last: dropped after `work`, and with it the connection's socket.
        _open: TaskOpen,
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
mod tests;
