//! The HTTPS example on smol, `hello_tls_smol`, against the behaviours of the HTTPS
//! suite (see `https/mod.rs`), and the stalled and slow peers of `stalls/mod.rs` over TLS.

mod https;
mod stalls;
mod suites;

suites::scenarios!(https, hello_tls_smol);

/// The stalls suite in a module of its own: `stalled::EXAMPLE::SCENARIO`.
mod stalled {
    use super::{stalls, suites};

    suites::scenarios!(stalls, hello_tls_smol, tls);
}
