//! The conformance suite on graceful-smol on smol (see `conformance/mod.rs`).

mod conformance;

conformance::conformance_suite!(conformance::runtimes::Smol);
