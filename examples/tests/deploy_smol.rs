//! Zero-downtime deploys of `hello_smol` (see `deploy/mod.rs`).

mod deploy;
mod suites;

suites::scenarios!(deploy, hello_smol);
