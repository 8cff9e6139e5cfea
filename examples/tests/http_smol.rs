//! The HTTP examples on async-io runtimes, `hello_smol` and `hello_async_std`, against the
//! behaviours every HTTP example shows (see `http/mod.rs`).

mod http;
mod suites;

suites::scenarios!(http, hello_smol);
suites::scenarios!(http, hello_async_std, light);
