//! The HTTP examples, tried as a new user would: each example binary runs as a child
//! process (it needs real signals; graceful-harness starts it, building it first if need
//! be), and blocking `std::net` clients speak HTTP/1.1 by hand, so that a request lost or a
//! response cut short cannot go unseen.
//!
//! Every duration is measured with the real clock and printed (`measured:` lines, shown
//! with `--nocapture`); the bounds asserted are generous, as the suite runs on small loaded
//! machines: they catch a hang or a missing feature, not a slowness. The tight figures are
//! for the benchmarks.

#![allow(dead_code)] // Each test binary runs some of the scenarios.

pub mod listeners;
pub mod scenarios;

/// Runs one scenario against `example`.
pub fn run(example: &str, scenario: fn(&str)) {
    scenario(example);
}
