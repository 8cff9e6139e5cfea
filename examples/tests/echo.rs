//! The line-protocol examples, `echo_tokio` and `echo_smol`, run as child processes: work in
//! flight finishes across the drain, an idle connection is closed, the report counts both.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use graceful_harness::line::Client;
use graceful_harness::{tcp, wait_until, Server};

const BOUND: Duration = Duration::from_secs(10);

fn drains_work_in_flight_and_closes_the_idle(example: &str) {
    let server = Server::start(example, &["--timeout", "10"]);
    let mut idle = Client::connect(server.addr);
    assert_eq!(idle.request("hello"), "hello", "echoed");
    let mut busy = TcpStream::connect(server.addr).expect("connect");
    busy.set_read_timeout(Some(BOUND)).expect("a read timeout");
    // Long enough to be in flight at the signal even when the wait below is slow: it reads
    // the kernel's whole socket table, which a loaded machine can fill with tens of
    // thousands of sockets (seen taking 1.6 s).
    busy.write_all(b"SLEEP 2000\n").expect("send");
    let me = [busy.local_addr().expect("the client's address")];
    wait_until("the server to read the request", BOUND, || {
        tcp::taken(server.addr, &me)
    });

    server.terminate();
    let mut answers = BufReader::new(busy).lines();
    let done = answers.next().map(|line| line.expect("an answer"));
    assert_eq!(done.as_deref(), Some("DONE"), "the work in flight finishes");
    assert!(answers.next().is_none(), "then the connection closes");
    idle.expect_closed();
    let report = server.report();
    assert_eq!(report.outcome, "drained");
    assert_eq!(
        (report.completed, report.idle_closed, report.killed),
        (1, 1, 0)
    );
}

#[test]
fn echo_tokio() {
    drains_work_in_flight_and_closes_the_idle("echo_tokio");
}

#[test]
fn echo_smol() {
    drains_work_in_flight_and_closes_the_idle("echo_smol");
}
