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

/// A protocol of one's own says what its connections do (`Conn::describe_with`): while the
/// drain runs, the progress line names the requests that hold it; the report names the one
/// killed at the timeout.
fn names_what_holds_the_drain(example: &str) {
    let server = Server::start(example, &["--timeout", "4"]);
    let mut finishing = TcpStream::connect(server.addr).expect("connect");
    let mut stuck = TcpStream::connect(server.addr).expect("connect");
    finishing.write_all(b"SLEEP 2500\n").expect("send");
    stuck.write_all(b"SLEEP 60000\n").expect("send");
    let me = [
        finishing.local_addr().expect("an address"),
        stuck.local_addr().expect("an address"),
    ];
    wait_until("the server to read both requests", BOUND, || {
        tcp::taken(server.addr, &me)
    });

    server.terminate();
    // Oldest first: the stuck request was sent second, so its age may tie; both are named.
    let line = server.wait_stderr("draining: 2 active (", BOUND);
    assert!(
        line.contains("SLEEP 2500 ") && line.contains("SLEEP 60000 "),
        "the progress line names both requests: {line}"
    );
    finishing
        .set_read_timeout(Some(BOUND))
        .expect("a read timeout");
    let mut done = String::new();
    BufReader::new(&finishing)
        .read_line(&mut done)
        .expect("an answer");
    assert_eq!(done, "DONE\n", "the work in flight finishes");
    let report = server.report();
    assert_eq!(
        (report.outcome.as_str(), report.completed, report.killed),
        ("timed out", 1, 1)
    );
    let report_line = server.wait_stderr(": timed out in ", BOUND);
    assert!(
        report_line.contains("; killed: SLEEP 60000 4."),
        "the report names the killed request and how long it ran: {report_line}"
    );
}

#[test]
fn echo_tokio_names_what_holds_the_drain() {
    names_what_holds_the_drain("echo_tokio");
}

#[test]
fn echo_smol_names_what_holds_the_drain() {
    names_what_holds_the_drain("echo_smol");
}
