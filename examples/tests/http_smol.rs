//! The HTTP examples on async-io runtimes, `hello_smol` and `hello_async_std`, against the
//! behaviours every HTTP example shows (see `http/mod.rs`), and the stalled and slow
//! peers that must not hold a drain (`stalls/mod.rs`).

mod http;
mod stalls;
mod suites;

suites::scenarios!(http, hello_smol);
suites::scenarios!(http, hello_async_std, light);

/// The stalls suite in a module of its own: `stalled::EXAMPLE::SCENARIO`.
mod stalled {
    use super::{stalls, suites};

    suites::scenarios!(stalls, hello_smol);
    suites::scenarios!(stalls, hello_async_std);
}
