//! An example binary started from a test that cargo runs: asked of cargo while the outer
//! `cargo test` runs the tests (which would hang if that cargo held the build directory
//! then; the build is bounded all the same), then served and stopped.

use std::time::Duration;

use graceful_harness::http1::get;
use graceful_harness::Server;

#[test]
fn an_example_is_built_from_a_test_and_serves() {
    let server = Server::start("hello_tokio", &["--timeout", "5"]);
    assert_eq!(get(server.addr, "/").unwrap(), (200, "hello".to_owned()));
    let at = server.terminate();
    let exited = server.wait_success(Duration::from_secs(10));
    assert!(exited >= at);
    let report = server.report();
    assert_eq!((report.outcome.as_str(), report.completed), ("drained", 0));
}
