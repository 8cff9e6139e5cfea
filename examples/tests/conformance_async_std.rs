//! The conformance suite on graceful-smol on async-std's runtime (see `conformance/mod.rs`).

mod conformance;

conformance::conformance_suite!(conformance::runtimes::AsyncStd);
