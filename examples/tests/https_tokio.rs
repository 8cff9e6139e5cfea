//! The HTTPS example on tokio, `hello_tls`, against the behaviours of the HTTPS
//! suite (see `https/mod.rs`).

mod https;
mod suites;

suites::scenarios!(https, hello_tls);
