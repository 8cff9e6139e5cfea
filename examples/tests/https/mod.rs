//! The HTTPS examples (`hello_tls`, `hello_tls_smol`) against issue 9: the shutdown
//! scenarios of the HTTP suite over TLS, real clients (curl, h2load, wrk, and a rustls client
//! that counts every request), certificate reload and bad input.
//!
//! The servers run as child processes through the HTTP suite's plumbing (`http/mod.rs`: the
//! test binary re-runs itself as the server, so real signals reach only the server). Every
//! test makes its own self-signed certificate files and passes `--cert` and `--key`, so its
//! clients can verify the server; curl and h2load, which ship their own TLS stacks, are told
//! the certificate (`--cacert`) or not to check (`-k`).

#![allow(dead_code)] // Each test binary runs some of the scenarios.

pub mod client;
pub mod scenarios;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use crate::http::{CHILD, CHILD_ARGS};

/// Runs the example with `args` in a child and returns its output, for configurations that
/// must fail before it listens. The child is killed by its own exit; these never listen.
pub fn run_to_exit(example: &str, args: &[String]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut args = args.join(" ");
    args.push_str(" --addr 127.0.0.1:0");
    Command::new(exe)
        .args(["child", "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, example)
        .env(CHILD_ARGS, args)
        .stdin(Stdio::null())
        .output()
        .expect("run the child")
}

/// Runs a command-line tool, bounded by `timeout(1)`; returns its stdout and stderr.
pub fn tool(program: &str, args: &[&str], secs: u32) -> (bool, String) {
    let output = Command::new("timeout")
        .arg(secs.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run {program} (is it installed?): {err}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `https://localhost:PORT/path`, with curl's `--resolve` for it.
pub fn url(addr: SocketAddr, path: &str) -> (String, String) {
    (
        format!("https://localhost:{}{path}", addr.port()),
        format!("localhost:{}:{}", addr.port(), addr.ip()),
    )
}

/// Instantiates the scenarios for an example: `https_suite!(hello_tls: t1, t2, ...)`.
macro_rules! https_suite {
    ($example:ident: $($scenario:ident),+ $(,)?) => {
        mod $example {
            $(
                #[test]
                fn $scenario() {
                    super::https::scenarios::$scenario(stringify!($example));
                }
            )+
        }
    };
}
pub(crate) use https_suite;
