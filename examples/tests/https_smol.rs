//! The HTTPS example on smol, `hello_tls_smol`, against the behaviours of the HTTPS
//! suite (see `https/mod.rs`).

mod https;
mod suites;

suites::scenarios!(https, hello_tls_smol);
