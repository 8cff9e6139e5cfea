//! The conformance suite on tokio, current-thread runtime (see `conformance/mod.rs`).

mod conformance;

conformance::conformance_suite!(conformance::runtimes::TokioCurrent);
