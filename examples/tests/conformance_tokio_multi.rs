//! The conformance suite on tokio, multi-thread runtime (see `conformance/mod.rs`).

mod conformance;

conformance::conformance_suite!(conformance::runtimes::TokioMulti);
