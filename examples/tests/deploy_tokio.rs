//! Zero-downtime deploys of `hello_tokio` (see `deploy/mod.rs`).

mod deploy;
mod suites;

suites::scenarios!(deploy, hello_tokio);
