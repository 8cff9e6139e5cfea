//! Child processes as the suites use them: output read as it comes, exits seen within a
//! bound, and no child left running when its handle drops.

use std::time::Duration;

use graceful_harness::process::alive;
use graceful_harness::{wait_until, Launch};

const SOON: Duration = Duration::from_secs(10);

/// Set in a child's environment: the `child` test plays a server.
const PLAY: &str = "GRACEFUL_HARNESS_PLAY";

/// Plays a server that says where it listens, when re-run by [`this_test_reruns_a_test`].
#[test]
fn child() {
    if std::env::var_os(PLAY).is_some() {
        println!("listening on http://127.0.0.1:4321");
        eprintln!("played");
    }
}

#[test]
fn this_test_reruns_a_test() {
    let mut child = Launch::this_test("child").env(PLAY, "1").spawn();
    assert_eq!(child.listening(SOON).port(), 4321);
    child.wait_stderr("played", SOON);
    assert!(child.wait_exit_and_output(SOON).success());
}

#[test]
fn output_and_exit_are_seen() {
    let child = Launch::program("sh")
        .args(["-c", "echo one; echo two >&2; echo three; exit 3"])
        .spawn();
    let status = child.wait_exit_and_output(SOON);
    assert_eq!(status.code(), Some(3));
    assert_eq!(child.stdout(), ["one", "three"]);
    assert_eq!(child.stderr(), ["two"]);
    assert_eq!(child.exited(), Some(status));
}

#[test]
fn stdout_lines_are_taken_in_order() {
    let mut child = Launch::program("sh")
        .args(["-c", "echo a 1; echo b; echo a 2"])
        .spawn();
    let mut next_a = || {
        child.next_stdout("an `a` line", SOON, |line| {
            line.strip_prefix("a ").map(str::to_owned)
        })
    };
    assert_eq!((next_a(), next_a()), ("1".to_owned(), "2".to_owned()));
}

#[test]
fn a_dropped_process_is_killed() {
    let child = Launch::program("sleep").arg("60").spawn();
    let pid = child.id();
    assert!(alive(pid));
    drop(child);
    wait_until("the dropped child to die", SOON, || !alive(pid));
}

#[test]
fn a_process_the_child_started_dies_with_its_handle_when_owned() {
    let mut child = Launch::program("sh")
        .args(["-c", "sleep 60 & echo $!; wait"])
        .spawn();
    let grandchild: u32 = child.next_stdout("the pid", SOON, |line| line.parse().ok());
    child.owns(grandchild);
    drop(child);
    wait_until("the owned process to die", SOON, || !alive(grandchild));
}

#[test]
fn a_child_reads_what_it_is_told() {
    let mut child = Launch::program("sh")
        .args(["-c", "read line; echo \"heard $line\""])
        .with_stdin()
        .spawn();
    child.tell("hello");
    child.next_stdout("the echo", SOON, |line| {
        (line == "heard hello").then_some(())
    });
}

#[test]
fn a_wait_past_its_bound_fails_naming_it_with_the_output() {
    let mut child = Launch::program("sh")
        .args(["-c", "echo still here; exec sleep 60"])
        .spawn();
    child.next_stdout("the first line", SOON, |line| Some(line.to_owned()));
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        child.wait_exit(Duration::from_millis(50))
    }));
    let failure = waited.expect_err("sleep 60 does not exit within 50 ms");
    let message = failure.downcast_ref::<String>().expect("a message");
    assert!(
        message.contains("waiting for the exit from sh"),
        "{message}"
    );
    assert!(message.contains("still here"), "{message}");
}
