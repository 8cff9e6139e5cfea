//! The example binaries, as the suites start them, and cargo run from a test.

use std::time::Duration;

use graceful_harness::build::cargo_build;
use graceful_harness::http1::get;
use graceful_harness::Server;

/// The outer `cargo test` holds the build directory only while it builds: a build from a
/// test (what the harness does for an example binary that is missing or stale) does not
/// wait on it. (It would hang here until the build's bound otherwise.) A small package, so
/// the test costs little whatever features the outer invocation unified.
#[test]
fn cargo_builds_from_a_test_that_cargo_runs() {
    cargo_build(&["-p", "graceful-harness", "--lib"]);
}

#[test]
fn an_example_binary_is_started_and_serves() {
    let server = Server::start("hello_tokio", &["--timeout", "5"]);
    assert_eq!(get(server.addr, "/").unwrap(), (200, "hello".to_owned()));
    let at = server.terminate();
    let exited = server.wait_success(Duration::from_secs(10));
    assert!(exited >= at);
    assert_eq!(server.drained().completed, 0);
}
