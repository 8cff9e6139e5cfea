//! Every connection transition through the public API, legal and illegal.
//!
//! The table (from `state.rs`):
//!
//! | from \ event | `mark_active`  | `mark_idle`                          | `mark_hijacked` | drop   |
//! |--------------|----------------|--------------------------------------|-----------------|--------|
//! | `New`        | `Active` (1)   | illegal                              | `Hijacked`      | Closed |
//! | `Active` (n) | `Active` (n+1) | `Idle` if n = 1, else `Active` (n-1) | `Hijacked`      | Closed |
//! | `Idle`       | `Active` (1)   | illegal                              | `Hijacked`      | Closed |
//! | `Hijacked`   | illegal        | illegal                              | illegal         | Closed |
//!
//! An illegal transition fails a debug assertion in debug builds, is counted in
//! [`Shutdown::illegal_transitions`] and leaves the connection as it was. In release builds it
//! does not panic.

mod common;

use std::sync::Arc;

use common::{Harness, Hooks};
use graceful_core::{Conn, ConnState, Graceful, ManualTimer, Shutdown};

/// What protocol code does to a connection, as a plain function.
type Events = fn(&Conn);

/// A connection on a fresh server, and what the observer saw of it.
struct Fixture {
    shutdown: Shutdown,
    conn: Conn,
    hooks: Arc<Hooks>,
}

fn fixture() -> Fixture {
    let hooks = Arc::new(Hooks::default());
    let graceful = hooks
        .install(Graceful::builder())
        .build(ManualTimer::new())
        .unwrap();
    let conn = graceful.acceptor().try_reserve().unwrap().register();
    Fixture {
        shutdown: graceful.shutdown(),
        conn,
        hooks,
    }
}

impl Fixture {
    /// The states the observer reported since the last call.
    fn observed(&self) -> Vec<ConnState> {
        let id = self.conn.id();
        self.hooks
            .take_events()
            .into_iter()
            .inspect(|(seen, _)| assert_eq!(*seen, id))
            .map(|(_, state)| state)
            .collect()
    }

    /// Runs `event` (called `name`), which must be illegal, and checks that it was rejected:
    /// a failed debug assertion naming the event, the state and the connection (debug builds
    /// only), one more illegal transition counted, the state and the signals unchanged, and
    /// nothing reported to the observer.
    fn assert_rejected(&self, event: Events, name: &str) {
        common::quiet_illegal_transition_panics();
        let state = self.conn.state();
        let drain_requested = self.conn.is_drain_requested();
        let counted = self.shutdown.illegal_transitions();
        self.hooks.take_events();

        #[cfg(debug_assertions)]
        {
            let conn = &self.conn;
            let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| event(conn)))
                .expect_err("an illegal transition fails a debug assertion");
            let text = common::panic_message(&*panic).expect("a text message");
            assert!(text.starts_with("illegal connection transition"), "{text}");
            assert!(text.contains(name), "{text}");
            assert!(text.contains(&format!(" {state} ")), "{text}");
            assert!(text.ends_with(&format!("({})", conn.id())), "{text}");
        }
        #[cfg(not(debug_assertions))]
        {
            let _ = name;
            event(&self.conn); // No panic in release builds.
        }

        assert_eq!(self.shutdown.illegal_transitions(), counted + 1);
        assert_eq!(self.conn.state(), state, "the state is unchanged");
        assert_eq!(self.conn.is_drain_requested(), drain_requested);
        assert!(self.observed().is_empty(), "the observer is not told");
    }
}

#[test]
fn a_registered_connection_starts_new() {
    let f = fixture();
    assert_eq!(f.conn.state(), ConnState::New);
    assert_eq!(f.observed(), [ConnState::New]);
    assert_eq!(f.shutdown.illegal_transitions(), 0);
}

#[test]
fn new_to_active_to_idle_and_back() {
    let f = fixture();
    f.observed();

    f.conn.mark_active();
    assert_eq!(f.conn.state(), ConnState::Active);
    f.conn.mark_idle();
    assert_eq!(f.conn.state(), ConnState::Idle);
    f.conn.mark_active();
    assert_eq!(f.conn.state(), ConnState::Active);
    f.conn.mark_idle();
    assert_eq!(f.conn.state(), ConnState::Idle);

    use ConnState::*;
    assert_eq!(f.observed(), [Active, Idle, Active, Idle]);
    assert_eq!(f.shutdown.illegal_transitions(), 0);
}

#[test]
fn nested_work_stays_active_until_the_last_unit_ends() {
    let f = fixture();
    f.observed();

    f.conn.mark_active();
    f.conn.mark_active();
    f.conn.mark_active();
    assert_eq!(f.conn.state(), ConnState::Active);
    f.conn.mark_idle();
    f.conn.mark_idle();
    assert_eq!(
        f.conn.state(),
        ConnState::Active,
        "one unit still in flight"
    );
    f.conn.mark_idle();
    assert_eq!(f.conn.state(), ConnState::Idle);

    // Active (n) -> Active (n±1) is not a change of state: the observer sees two changes.
    assert_eq!(f.observed(), [ConnState::Active, ConnState::Idle]);
    assert_eq!(f.shutdown.counts().idle, 1);
}

#[test]
fn in_flight_work_beyond_the_limit_is_rejected() {
    // 65 535 units of work may be in flight on one connection (HTTP/2 streams, say).
    let f = fixture();
    for _ in 0..u16::MAX {
        f.conn.mark_active();
    }
    f.assert_rejected(Conn::mark_active, "mark_active");
    // The count was not disturbed: exactly 65 535 `mark_idle`s bring it back to Idle.
    for _ in 1..u16::MAX {
        f.conn.mark_idle();
    }
    assert_eq!(f.conn.state(), ConnState::Active);
    f.conn.mark_idle();
    assert_eq!(f.conn.state(), ConnState::Idle);
}

#[test]
fn new_active_and_idle_connections_can_be_hijacked() {
    let setups: [(&str, Events); 4] = [
        ("new", |_| {}),
        ("active", |c| c.mark_active()),
        ("active twice", |c| {
            c.mark_active();
            c.mark_active();
        }),
        ("idle", |c| {
            c.mark_active();
            c.mark_idle();
        }),
    ];
    for (name, setup) in setups {
        let f = fixture();
        setup(&f.conn);
        f.observed();
        f.conn.mark_hijacked();
        assert_eq!(f.conn.state(), ConnState::Hijacked, "from {name}");
        assert_eq!(f.observed(), [ConnState::Hijacked], "from {name}");
        assert_eq!(f.shutdown.counts().hijacked, 1);
    }
}

#[test]
fn dropping_is_closed_from_every_state() {
    let setups: [(ConnState, Events); 4] = [
        (ConnState::New, |_| {}),
        (ConnState::Active, |c| c.mark_active()),
        (ConnState::Idle, |c| {
            c.mark_active();
            c.mark_idle();
        }),
        (ConnState::Hijacked, |c| c.mark_hijacked()),
    ];
    for (state, setup) in setups {
        let f = fixture();
        setup(&f.conn);
        assert_eq!(f.conn.state(), state);
        assert_eq!(f.shutdown.counts().total(), 1);
        f.observed();

        let Fixture {
            shutdown,
            conn,
            hooks,
        } = f;
        let id = conn.id();
        drop(conn);
        assert_eq!(
            hooks.take_events(),
            [(id, ConnState::Closed)],
            "from {state}"
        );
        assert_eq!(shutdown.counts().total(), 0, "from {state}");
    }
}

#[test]
fn mark_idle_on_a_new_connection_is_rejected() {
    let f = fixture();
    f.assert_rejected(Conn::mark_idle, "mark_idle");
    assert_eq!(f.shutdown.counts().new, 1);
}

#[test]
fn mark_idle_on_an_idle_connection_is_rejected() {
    let f = fixture();
    f.conn.mark_active();
    f.conn.mark_idle();
    f.assert_rejected(Conn::mark_idle, "mark_idle");
    assert_eq!(f.shutdown.counts().idle, 1);
}

#[test]
fn nothing_but_closing_is_legal_on_a_hijacked_connection() {
    let f = fixture();
    f.conn.mark_hijacked();
    f.assert_rejected(Conn::mark_active, "mark_active");
    f.assert_rejected(Conn::mark_idle, "mark_idle");
    f.assert_rejected(Conn::mark_hijacked, "mark_hijacked");
    assert_eq!(f.shutdown.illegal_transitions(), 3, "each one is counted");
    assert_eq!(f.shutdown.counts().hijacked, 1);
}

#[test]
fn an_illegal_transition_keeps_the_drain_signal() {
    let mut h = Harness::running(Graceful::builder());
    let conn = h.open();
    conn.mark_hijacked();
    h.shutdown.stop();
    h.settle();
    assert!(conn.is_drain_requested());

    let f = Fixture {
        shutdown: h.shutdown.clone(),
        conn,
        hooks: h.hooks.clone(),
    };
    f.assert_rejected(Conn::mark_active, "mark_active");
    assert!(f.conn.is_drain_requested());
    assert!(!f.conn.is_killed());

    // Closing it still completes the drain, counted as a hijacked connection.
    drop(f);
    h.settle();
    let report = h.report().expect("the drain is over");
    assert_eq!((report.hijacked, report.total()), (1, 1));
}

#[test]
fn illegal_transitions_are_counted_per_server() {
    let a = fixture();
    let b = fixture();
    a.assert_rejected(Conn::mark_idle, "mark_idle");
    assert_eq!(a.shutdown.illegal_transitions(), 1);
    assert_eq!(b.shutdown.illegal_transitions(), 0);
}
