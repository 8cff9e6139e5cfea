//! The HTTPS examples (`hello_tls`, `hello_tls_smol`): the shutdown scenarios of the HTTP
//! suite over TLS, real clients (curl, h2load, wrk, and a rustls client that counts every
//! request), certificate reload and bad input.
//!
//! The example binaries run as child processes, as in the HTTP suite. Every test makes its
//! own self-signed certificate files and passes `--cert` and `--key`, so its clients can
//! verify the server; curl and h2load, which ship their own TLS stacks, are told the
//! certificate (`--cacert`) or not to check (`-k`).

#![allow(dead_code)] // Each test binary runs some of the scenarios.

pub mod redirect;
pub mod scenarios;

use std::net::SocketAddr;

/// `https://localhost:PORT/path`, with curl's `--resolve` for it.
pub fn url(addr: SocketAddr, path: &str) -> (String, String) {
    (
        format!("https://localhost:{}{path}", addr.port()),
        format!("localhost:{}:{}", addr.port(), addr.ip()),
    )
}

/// Runs one scenario against `example`.
pub fn run(example: &str, scenario: fn(&str)) {
    scenario(example);
}
