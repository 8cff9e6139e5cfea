//! The atomics of the per-connection word, swappable for loom's.
//!
//! The word every connection shares with the manager is the one piece of graceful-core that
//! two threads change without a lock, so it is the piece [loom] checks: under
//! `--cfg loom`, the crate's own unit tests see loom's `AtomicU64`, and the loom tests in
//! `state.rs` run the real transition code against every interleaving with the manager.
//! Everything else (the `Mutex`-guarded registry and control, event-listener, wakers) stays on
//! `std`, which loom neither models nor needs to.
//!
//! loom is a dev-dependency, so the switch is `cfg(all(test, loom))`: a normal build with
//! `--cfg loom` still uses `std`. Run the loom tests with
//! `RUSTFLAGS="--cfg loom" cargo test -p graceful-core --lib --release loom`.
//!
//! [loom]: https://docs.rs/loom

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::AtomicU64;
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::AtomicU64;
