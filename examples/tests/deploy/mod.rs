//! Zero-downtime deploys of the HTTP examples, tried with real tools on loopback: hot
//! restart under a wrk load, a broken binary on disk, systemd's `systemd-socket-activate`,
//! and a test-owned `NOTIFY_SOCKET`.
//!
//! The example binaries run as child processes (graceful-harness starts them). A hot
//! restart starts the binary again from its path with the same arguments and environment,
//! so the new process is the same example again. Figures are printed as `measured:` lines
//! (`--nocapture`).

#![allow(dead_code)] // Each test binary runs some of the scenarios.

pub mod listeners;
pub mod scenarios;

/// Runs one scenario against `example`. The scenarios take turns: wrk's load would skew
/// the others' timings.
pub fn run(example: &str, scenario: fn(&str)) {
    let _turn = graceful_harness::one_at_a_time();
    scenario(example);
}
