//! The shutdown scenarios of Go graceful's own test suite that apply to the core, and the
//! behaviours graceful adds, on a [`ManualTimer`] and a single-threaded executor.
//!
//! Every test drives the manager through [`Harness`], whose [`LocalPool`] only polls the tasks
//! that were woken: a missing wake-up makes these tests fail instead of hang.
//!
//! - `triggers`: stop, stop with a timeout, veto, force, signals, hooks, races.
//! - `drain`: what the drain does to each connection, and the timeout.
//! - `delay`: the drain delay: serving on, readiness, the timeout after it, a second signal.
//! - `spread`: the close spread: slots, the timeout, active and prompt connections.
//! - `accounting`: the observer, the listen limit, counts, the report, settings.
//! - `stalled`: the bound on stalled writes (the send timeout), in and out of a drain.
//!
//! [`ManualTimer`]: graceful_core::ManualTimer
//! [`Harness`]: common::Harness
//! [`LocalPool`]: futures::executor::LocalPool

mod common;

#[path = "scenarios/accounting.rs"]
mod accounting;
#[path = "scenarios/delay.rs"]
mod delay;
#[path = "scenarios/drain.rs"]
mod drain;
#[path = "scenarios/spread.rs"]
mod spread;
#[path = "scenarios/stalled.rs"]
mod stalled;
#[path = "scenarios/triggers.rs"]
mod triggers;

use graceful_core::{Builder, Graceful};

fn builder() -> Builder<Graceful> {
    Graceful::builder()
}
