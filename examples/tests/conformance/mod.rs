//! The cross-runtime conformance suite: one set of scenarios, run on every runtime.
//!
//! Each `conformance_*.rs` file picks one runtime (a [`Harness`]) and instantiates every
//! scenario with [`conformance_suite!`], so that a failure names both the runtime (the test
//! binary) and the scenario (the test). The server under test is the line protocol of
//! [`line_server`], in a background thread running the runtime, with the shutdown handle in
//! the test's hands; the clients are graceful-harness's blocking line clients, with read
//! timeouts as bounds, so the clients are the same for every runtime.
//!
//! Waits are on conditions (live counts, hook counters, lines from a child process), polled
//! in bounded loops; never a sleep to let things settle. Time bounds are generous, as the
//! suite runs on small loaded machines: they catch a hang, not a slowness.

#![allow(dead_code)] // Each test binary uses the harnesses of one runtime only.

pub mod child;
pub mod line_server;
pub mod runtimes;
pub mod scenarios;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use graceful_core::{Shutdown, ShutdownReport};
pub use graceful_harness::line::{Client, Read, READ_TIMEOUT};
pub use graceful_harness::wait_until;

/// Every scenario, as one `#[test]` each, for the harness `$rt`.
macro_rules! conformance_suite {
    ($rt:ty) => {
        $crate::conformance::conformance_suite!($rt;
            in_flight_work_completes,
            quiet_connections_close_within_the_quiet_period,
            new_connections_are_refused_once_stopping,
            timeout_kills_work_in_flight,
            second_trigger_kills_at_once,
            listen_limit_holds,
            handler_panic_does_not_leak,
            client_hang_up_mid_work_is_counted_closed,
            #[cfg(unix)] emfile_is_survived,
            stops_before_serving_and_concurrent_stops,
            veto_keeps_serving,
            #[cfg(unix)] signals_drain_then_force,
        );
    };
    ($rt:ty; $($(#[$attr:meta])* $scenario:ident),+ $(,)?) => {
        $(
            #[test]
            $(#[$attr])*
            fn $scenario() {
                $crate::conformance::scenarios::$scenario::<$rt>(stringify!($scenario));
            }
        )+
    };
}
pub(crate) use conformance_suite;

/// A runtime the suite runs on.
pub trait Harness {
    /// Starts the line-protocol server with `settings` on 127.0.0.1:0, in a new thread that
    /// runs this runtime.
    fn start(settings: Settings) -> Running;
}

/// Called with the shutdown handle after the server is built and before it serves.
pub type BeforeServe = Box<dyn FnOnce(&Shutdown) + Send>;

/// What a scenario asks of the server.
pub struct Settings {
    /// The drain's timeout.
    pub timeout: Option<Duration>,
    /// The quiet period.
    pub quiet_period: Duration,
    /// The listen limit.
    pub listen_limit: Option<usize>,
    /// Whether SIGINT and SIGTERM stop the server.
    pub signals: bool,
    /// Counts the hooks and holds the veto.
    pub probe: Arc<Probe>,
    /// Called with the shutdown handle after the server is built and before it serves.
    pub before_serve: Option<BeforeServe>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout: Some(Duration::from_secs(20)),
            quiet_period: Duration::from_millis(50),
            listen_limit: None,
            signals: false,
            probe: Arc::default(),
            before_serve: None,
        }
    }
}

/// Counts the shutdown hooks, and vetoes while told to.
#[derive(Debug, Default)]
pub struct Probe {
    /// Whether `before_shutdown` vetoes.
    pub veto: AtomicBool,
    /// How many times `before_shutdown` ran.
    pub asked: AtomicUsize,
    /// How many times `on_shutdown` ran.
    pub started: AtomicUsize,
}

impl Probe {
    pub fn before_shutdown(&self) -> bool {
        self.asked.fetch_add(1, Ordering::SeqCst);
        !self.veto.load(Ordering::SeqCst)
    }

    pub fn on_shutdown(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

/// Applies [`Settings`] to a graceful-tokio or graceful-smol builder: one generic builder,
/// `graceful_core::Builder<Server<R>>`, under both.
pub fn configure<R: graceful_core::serve::Runtime>(
    builder: graceful_core::Builder<graceful_core::Server<R>>,
    settings: &Settings,
) -> graceful_core::Builder<graceful_core::Server<R>> {
    let (asked, started) = (settings.probe.clone(), settings.probe.clone());
    let builder = match settings.timeout {
        Some(timeout) => builder.timeout(timeout),
        None => builder.no_timeout(),
    };
    let builder = match settings.listen_limit {
        Some(limit) => builder.listen_limit(limit),
        None => builder.no_listen_limit(),
    };
    builder
        .quiet_period(settings.quiet_period)
        .signals(settings.signals)
        .before_shutdown(move || asked.before_shutdown())
        .on_shutdown(move || started.on_shutdown())
}

/// The server side of a harness, on its runtime's thread: hands the server's address and
/// handle to the test, serves, and sends the report.
pub struct Started {
    ready: mpsc::Sender<(SocketAddr, Shutdown)>,
    report: mpsc::Sender<ShutdownReport>,
}

impl Started {
    pub async fn serve(
        self,
        mut settings: Settings,
        addr: SocketAddr,
        shutdown: Shutdown,
        serving: impl Future<Output = ShutdownReport>,
    ) {
        if let Some(before_serve) = settings.before_serve.take() {
            before_serve(&shutdown);
        }
        self.ready.send((addr, shutdown)).expect("the test waits");
        let report = serving.await;
        let _ = self.report.send(report);
    }
}

/// Runs `server` in a new thread named `name`, and waits until it listens.
pub fn spawn_server(
    name: &str,
    probe: Arc<Probe>,
    server: impl FnOnce(Started) + Send + 'static,
) -> Running {
    let (ready, ready_rx) = mpsc::channel();
    let (report, report_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || server(Started { ready, report }))
        .expect("spawn the server thread");
    let (addr, shutdown) = ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server starts");
    Running {
        addr,
        shutdown,
        probe,
        report: report_rx,
        thread: Some(thread),
    }
}

/// A server under test. Dropping it before its report forces it to stop.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub probe: Arc<Probe>,
    report: mpsc::Receiver<ShutdownReport>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Running {
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Waits until `n` connections are idle. (A client reads its answer before the server
    /// has marked the connection idle: wait for it before a stop that counts it idle.)
    pub fn wait_idle(&self, n: usize) {
        wait_until(
            &format!("{n} idle connections"),
            Duration::from_secs(10),
            || self.shutdown.counts().idle == n,
        );
    }

    /// The report, if the server is done.
    pub fn try_report(&self) -> Option<ShutdownReport> {
        self.report.try_recv().ok()
    }

    /// Waits for the report and for the server's thread (its runtime included) to end.
    pub fn finish(&mut self, within: Duration) -> ShutdownReport {
        let deadline = Instant::now() + within;
        let report = self
            .report
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("no report within {within:?}"));
        let thread = self.thread.take().expect("finished once");
        wait_until(
            "the server thread to end",
            deadline - Instant::now(),
            || thread.is_finished(),
        );
        thread.join().expect("the server thread does not panic");
        report
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown.force();
        }
    }
}
