//! Model-based test: random sequences of connection events, triggers, vetoes, clock moves and
//! manager polls, run against graceful-core and against a plain reference model of the rules
//! (issue 2, `manager.rs`, `Conn`'s `Drop`). After every step, the two must agree on:
//!
//! - the live counts per state, and each connection's state;
//! - which connections were told to drain, and which were killed;
//! - whether the server is shutting down, whether accepting stopped, and whether a reserve
//!   succeeds (or fails as `Stopped` or `Full`);
//! - whether the manager future has resolved, and if so the whole report;
//! - how often each hook ran, and every state change the observer saw, in order.
//!
//! Time is kept in microseconds so that rounding is exercised: a connection's quiet-since
//! stamp is rounded *up* to the millisecond, "now" is rounded *down*, and a quiet period is
//! rounded up.
//!
//! The cases are drawn from a fixed seed so that the test is deterministic; set
//! `PROPTEST_RNG_SEED=<n>` (and `PROPTEST_CASES=<n>`) to explore further.

#[path = "model/reference.rs"]
mod reference;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use graceful_core::{
    Acceptor, ConfigError, Conn, ConnState, Graceful, ManualTimer, Run, Shutdown, ShutdownReport,
    Slot, TryReserveError,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

use crate::reference::{Model, Phase, Reserve};

// ---------------------------------------------------------------------------------------------
// The steps
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Mark {
    Active,
    Idle,
    Hijacked,
}

#[derive(Clone, Debug)]
enum Step {
    /// Reserve a slot and register a connection at once.
    Open,
    /// Reserve a slot and keep it: an accept in progress.
    Reserve,
    /// Register a slot kept earlier: the accept completed, perhaps after the stop.
    RegisterHeld(Index),
    /// Give a kept slot back: the accept failed.
    DropHeld(Index),
    /// Report work on a live connection; skipped if the table forbids it.
    Mark(Index, Mark),
    /// Drop a live connection.
    Close(Index),
    /// Move the clock, in microseconds.
    Advance(u64),
    Stop,
    /// `stop_with_timeout`, in microseconds (zero is refused); `None`: `stop_without_timeout`.
    StopWithTimeout(Option<u64>),
    Signal,
    Force,
    /// Set what the `before_shutdown` hook answers: `true` vetoes.
    Veto(bool),
    /// Poll the manager (also done after every step in half the cases).
    Poll,
}

#[derive(Clone, Debug)]
struct Settings {
    timeout_us: Option<u64>,
    quiet_us: u64,
    listen_limit: Option<usize>,
    veto: bool,
    /// Poll the manager after every step, or only on `Step::Poll`.
    poll_every_step: bool,
}

fn settings() -> impl Strategy<Value = Settings> {
    let timeout = prop_oneof![
        Just(None),
        Just(Some(5_000)),
        Just(Some(20_000)),
        Just(Some(100_000)),
        Just(Some(1_000_000)),
    ];
    let quiet = prop_oneof![
        Just(0),
        Just(500),
        Just(1_000),
        Just(2_000),
        Just(3_500),
        Just(10_000),
        Just(250_000),
    ];
    let limit = prop_oneof![Just(None), (1usize..=3).prop_map(Some)];
    let veto = prop::bool::weighted(0.25);
    (timeout, quiet, limit, veto, any::<bool>())
        .prop_filter(
            "the quiet period is shorter than the timeout",
            |(t, q, ..)| t.is_none_or(|t| *q < t),
        )
        .prop_map(
            |(timeout_us, quiet_us, listen_limit, veto, poll_every_step)| Settings {
                timeout_us,
                quiet_us,
                listen_limit,
                veto,
                poll_every_step,
            },
        )
}

fn mark() -> impl Strategy<Value = Mark> {
    prop_oneof![
        3 => Just(Mark::Active),
        3 => Just(Mark::Idle),
        1 => Just(Mark::Hijacked),
    ]
}

/// A server at work before any trigger: connections come, work, go quiet and go.
fn serving_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Open),
        2 => Just(Step::Reserve),
        10 => (any::<Index>(), mark()).prop_map(|(i, m)| Step::Mark(i, m)),
        2 => any::<Index>().prop_map(Step::Close),
        4 => prop::sample::select(vec![500u64, 1_000, 3_000, 100_000]).prop_map(Step::Advance),
    ]
}

/// The first trigger: a stop, most of the time.
fn trigger() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Stop),
        3 => prop::option::of(prop::sample::select(vec![0u64, 1, 4_000, 300_000]))
            .prop_map(Step::StopWithTimeout),
        3 => Just(Step::Signal),
        1 => Just(Step::Force),
    ]
}

/// Anything, weighted so that most drains see connections finish, go quiet and get scheduled
/// before a force, a second signal or the timeout ends them.
fn step() -> impl Strategy<Value = Step> {
    // Mostly whole and half milliseconds, so that the clock often lands exactly on a due
    // time; sometimes any number of microseconds; sometimes past a quiet period or timeout.
    let advance = prop_oneof![
        6 => prop::sample::select(vec![500u64, 1_000, 2_000, 3_000]),
        2 => 0u64..3_000,
        1 => Just(10_000u64),
        1 => Just(250_000u64),
    ];
    let stop_timeout = prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(1)),
        Just(Some(1_500)),
        Just(Some(4_000)),
        Just(Some(300_000)),
    ];
    prop_oneof![
        12 => Just(Step::Open),
        3 => Just(Step::Reserve),
        3 => any::<Index>().prop_map(Step::RegisterHeld),
        1 => any::<Index>().prop_map(Step::DropHeld),
        30 => (any::<Index>(), mark()).prop_map(|(i, m)| Step::Mark(i, m)),
        12 => any::<Index>().prop_map(Step::Close),
        14 => advance.prop_map(Step::Advance),
        3 => Just(Step::Stop),
        2 => stop_timeout.prop_map(Step::StopWithTimeout),
        1 => Just(Step::Signal),
        1 => Just(Step::Force),
        2 => any::<bool>().prop_map(Step::Veto),
        12 => Just(Step::Poll),
    ]
}

// ---------------------------------------------------------------------------------------------
// The real thing, side by side
// ---------------------------------------------------------------------------------------------

struct Real {
    timer: ManualTimer,
    shutdown: Shutdown,
    acceptor: Acceptor,
    run: Option<Run>,
    report: Option<ShutdownReport>,
    conns: Vec<Conn>,
    slots: Vec<Slot>,
    veto: Arc<AtomicBool>,
    before_shutdown_calls: Arc<AtomicUsize>,
    on_shutdown_calls: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<(u64, ConnState)>>>,
}

impl Real {
    fn new(settings: &Settings) -> Real {
        let veto = Arc::new(AtomicBool::new(settings.veto));
        let before_shutdown_calls = Arc::new(AtomicUsize::new(0));
        let on_shutdown_calls = Arc::new(AtomicUsize::new(0));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (v, b, o, e) = (
            veto.clone(),
            before_shutdown_calls.clone(),
            on_shutdown_calls.clone(),
            events.clone(),
        );
        let timer = ManualTimer::new();
        let builder = match settings.timeout_us {
            Some(us) => Graceful::builder().timeout(Duration::from_micros(us)),
            None => Graceful::builder().no_timeout(),
        };
        let builder = match settings.listen_limit {
            Some(limit) => builder.listen_limit(limit),
            None => builder,
        };
        let graceful = builder
            .quiet_period(Duration::from_micros(settings.quiet_us))
            .before_shutdown(move || {
                b.fetch_add(1, Ordering::SeqCst);
                !v.load(Ordering::SeqCst)
            })
            .on_shutdown(move || {
                o.fetch_add(1, Ordering::SeqCst);
            })
            .on_state_change(move |id, state| e.lock().unwrap().push((id.as_u64(), state)))
            .build(timer.clone())
            .expect("valid settings");
        Real {
            timer,
            shutdown: graceful.shutdown(),
            acceptor: graceful.acceptor(),
            run: Some(graceful.run()),
            report: None,
            conns: Vec::new(),
            slots: Vec::new(),
            veto,
            before_shutdown_calls,
            on_shutdown_calls,
            events,
        }
    }

    fn try_reserve(&self) -> (Reserve, Option<Slot>) {
        match self.acceptor.try_reserve() {
            Ok(slot) => (Reserve::Ok, Some(slot)),
            Err(TryReserveError::Stopped) => (Reserve::Stopped, None),
            Err(TryReserveError::Full) => (Reserve::Full, None),
        }
    }

    /// Polls the manager until it waits, with a waker that only notes it was woken: it
    /// makes progress only if it was woken (or its sleep ran out) since the last poll, or if
    /// it woke itself (it yields to let killed connections close before the report).
    fn poll(&mut self) {
        struct Woken(std::sync::atomic::AtomicBool);
        impl futures::task::ArcWake for Woken {
            fn wake_by_ref(this: &Arc<Self>) {
                this.0.store(true, Ordering::SeqCst);
            }
        }
        let woken = Arc::new(Woken(std::sync::atomic::AtomicBool::new(false)));
        let waker = futures::task::waker(woken.clone());
        for _ in 0..64 {
            let Some(run) = &mut self.run else { return };
            woken.0.store(false, Ordering::SeqCst);
            let mut cx = Context::from_waker(&waker);
            if let Poll::Ready(report) = Pin::new(run).poll(&mut cx) {
                self.report = Some(report);
                self.run = None;
                return;
            }
            if !woken.0.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

/// Runs `step` on both sides.
fn apply(step: &Step, model: &mut Model, real: &mut Real) -> Result<(), TestCaseError> {
    match step {
        Step::Open | Step::Reserve => {
            let expected = model.try_reserve();
            let (got, slot) = real.try_reserve();
            prop_assert_eq!(&got, &expected, "try_reserve");
            if let Some(slot) = slot {
                if matches!(step, Step::Open) {
                    model.register();
                    real.conns.push(slot.register());
                } else {
                    model.held_slots += 1;
                    real.slots.push(slot);
                }
            }
        }
        Step::RegisterHeld(i) | Step::DropHeld(i) => {
            if !real.slots.is_empty() {
                let slot = real.slots.remove(i.index(real.slots.len()));
                model.held_slots -= 1;
                if matches!(step, Step::RegisterHeld(_)) {
                    model.register();
                    real.conns.push(slot.register());
                }
            }
        }
        Step::Mark(i, mark) => {
            if !real.conns.is_empty() {
                let i = i.index(real.conns.len());
                if model.mark(i, *mark) {
                    let conn = &real.conns[i];
                    match mark {
                        Mark::Active => conn.mark_active(),
                        Mark::Idle => conn.mark_idle(),
                        Mark::Hijacked => conn.mark_hijacked(),
                    }
                }
            }
        }
        Step::Close(i) => {
            if !real.conns.is_empty() {
                let i = i.index(real.conns.len());
                model.close(i);
                drop(real.conns.remove(i));
            }
        }
        Step::Advance(us) => {
            model.now_us += us;
            real.timer.advance(Duration::from_micros(*us));
        }
        Step::Stop => {
            model.request(None);
            real.shutdown.stop();
        }
        Step::StopWithTimeout(Some(0)) => {
            // Refused, as the builder refuses it: nothing starts.
            let refused = real.shutdown.stop_with_timeout(Duration::ZERO);
            assert_eq!(refused, Err(ConfigError::ZeroTimeout));
        }
        Step::StopWithTimeout(Some(us)) => {
            model.request(Some(Some(*us)));
            real.shutdown
                .stop_with_timeout(Duration::from_micros(*us))
                .unwrap();
        }
        Step::StopWithTimeout(None) => {
            model.request(Some(None));
            real.shutdown.stop_without_timeout();
        }
        Step::Signal => {
            model.signal();
            real.shutdown.signal();
        }
        Step::Force => {
            model.request_force();
            real.shutdown.force();
        }
        Step::Veto(veto) => {
            model.veto = *veto;
            real.veto.store(*veto, Ordering::SeqCst);
        }
        Step::Poll => {
            model.poll();
            real.poll();
        }
    }
    Ok(())
}

/// Everything observable must agree.
fn check(model: &Model, real: &Real) -> Result<(), TestCaseError> {
    let counts = real.shutdown.counts();
    let count = |state| model.conns.iter().filter(|c| c.state == state).count();
    prop_assert_eq!(
        (counts.new, counts.active, counts.idle, counts.hijacked),
        (
            count(ConnState::New),
            count(ConnState::Active),
            count(ConnState::Idle),
            count(ConnState::Hijacked)
        ),
        "counts"
    );
    prop_assert_eq!(real.conns.len(), model.conns.len());
    for (conn, expected) in real.conns.iter().zip(&model.conns) {
        prop_assert_eq!(conn.id().as_u64(), expected.id);
        prop_assert_eq!(conn.state(), expected.state, "state of {:?}", expected);
        prop_assert_eq!(
            conn.is_drain_requested(),
            expected.drain,
            "drain requested of {:?}",
            expected
        );
        prop_assert_eq!(conn.is_killed(), expected.kill, "killed: {:?}", expected);
        prop_assert_eq!(conn.is_server_draining(), model.draining, "draining");
    }
    // The kills name the connections the model killed, in the registry's order: compared
    // as a set of states here, and left out of the rest of the report's comparison.
    let without_kills = |report: Option<ShutdownReport>| {
        report.map(|mut report| {
            let mut states: Vec<_> = report.kills.drain(..).map(|kill| kill.state).collect();
            states.sort_by_key(|state| *state as u8);
            (report, states)
        })
    };
    let expected_kills = |report: &ShutdownReport| {
        let mut states = model.killed_states.clone();
        states.sort_by_key(|state| *state as u8);
        (report.clone(), states)
    };
    let expected = model.report.as_ref().map(expected_kills);
    prop_assert_eq!(
        without_kills(real.report.clone()),
        expected.clone(),
        "the manager's report"
    );
    prop_assert_eq!(
        without_kills(real.shutdown.report()),
        expected,
        "Shutdown::report"
    );
    prop_assert_eq!(
        real.shutdown.is_shutting_down(),
        matches!(model.phase, Phase::Draining | Phase::Stopped),
        "is_shutting_down"
    );
    prop_assert_eq!(
        real.acceptor.is_stopped(),
        model.stopping,
        "accepting stopped"
    );
    prop_assert_eq!(
        real.before_shutdown_calls.load(Ordering::SeqCst),
        model.before_shutdown_calls,
        "before_shutdown calls"
    );
    prop_assert_eq!(
        real.on_shutdown_calls.load(Ordering::SeqCst),
        model.on_shutdown_calls,
        "on_shutdown calls"
    );
    prop_assert_eq!(&*real.events.lock().unwrap(), &model.events, "observer");
    prop_assert_eq!(real.shutdown.illegal_transitions(), 0);
    if let Some(report) = real.report.clone() {
        // The report adds up: every connection alive when the drain began or registered
        // during it is counted exactly once, as completed, idle closed, hijacked or killed.
        prop_assert_eq!(report.total(), model.seen_by_drain, "report total");
    }
    Ok(())
}

fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    let cases_set = std::env::var_os("PROPTEST_CASES").is_some();
    ProptestConfig {
        cases: if cases_set { default.cases } else { 256 },
        rng_seed: match default.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x6772_6163_6566_756c),
            seed => seed,
        },
        failure_persistence: None,
        ..default
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_core_behaves_like_the_model(
        settings in settings(),
        opened in 1usize..5,
        serving in prop::collection::vec(serving_step(), 0..20),
        trigger in trigger(),
        then in prop::collection::vec(step(), 0..60),
    ) {
        let steps: Vec<Step> = std::iter::repeat_n(Step::Open, opened)
            .chain(serving)
            .chain([trigger])
            .chain(then)
            .collect();
        let mut model = Model::new(&settings);
        let mut real = Real::new(&settings);
        for step in &steps {
            apply(step, &mut model, &mut real)?;
            if settings.poll_every_step {
                model.poll();
                real.poll();
            }
            check(&model, &real)?;
        }
        // Whatever happened, a forced stop ends it and kills what is left.
        model.request_force();
        real.shutdown.force();
        model.poll();
        real.poll();
        check(&model, &real)?;
        prop_assert!(real.report.is_some(), "a forced stop ends the shutdown");
        prop_assert!(real.conns.iter().all(Conn::is_killed));
    }
}
