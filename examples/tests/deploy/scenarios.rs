//! The deploy scenarios, each a function of the example's name.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graceful_harness::build::example_binary;
use graceful_harness::deploy::{NotifySocket, TempDir};
use graceful_harness::http1::{get, pid_of, refused, Conn};
use graceful_harness::process::{alive, hold_spawns, stop_pid};
use graceful_harness::tcp::{wait_not_listening, wait_taken};
use graceful_harness::tools::Wrk;
use graceful_harness::{wait_until, Launch, Process, Server};
use rustix::process::Signal;

// The scenarios of several listeners, beside these: `suites::scenarios!` names them here.
pub use super::listeners::*;

const LONG: Duration = Duration::from_secs(30);

/// The flags every scenario starts the example with (a port of its own; a drain that ends
/// well before the bounds).
const FLAGS: [&str; 4] = ["--addr", "127.0.0.1:0", "--timeout", "20"];

/// The example, with [`FLAGS`].
fn launch(example: &str) -> Launch {
    Launch::example(example).args(FLAGS)
}

/// One keep-alive connection, served once (so it is accepted), then `GET path` on it,
/// once the server has read that: a request in flight.
fn in_flight(addr: SocketAddr, path: &str) -> Conn {
    let mut conn = Conn::connect(addr, LONG).expect("connect");
    assert_eq!(conn.get("/").expect("GET / is answered").status, 200);
    conn.send_get(path).expect("send");
    wait_taken(addr, &[conn.local_addr()], LONG);
    conn
}

/// Sends SIGHUP to `server` and waits until `GET /pid` on `addr` answers another pid than
/// `old`; returns the new pid and the time from SIGHUP to the new process serving.
fn hot_restart(server: &mut Server, addr: SocketAddr, old: u32) -> (u32, Duration) {
    let sighup = Instant::now();
    server.hangup();
    let mut new = old;
    wait_until("a new process to serve /pid", LONG, || {
        new = pid_of(addr);
        new != old
    });
    server.owns(new);
    (new, sighup.elapsed())
}

/// Hot restart under a wrk load straight at the server, three times in a row (each new
/// process restarted in turn): nothing refused, failed or lost; `/pid` changes each time;
/// each old process drains and exits.
pub fn hot_restart_under_load(example: &str) {
    const RESTARTS: usize = 3;
    let mut server = launch(example).start();
    let addr = server.addr;
    let first = pid_of(addr);
    assert_eq!(first, server.id());

    let wrk = Wrk::start(&format!("http://{addr}/"), 2, 16, 5);
    // Beside wrk's keep-alive connections, a stream of fresh ones: each restart's accept
    // queue is shared by two processes, and none of them may be refused or reset.
    let churning = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let churn = {
        let churning = churning.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, Vec::new());
            while churning.load(std::sync::atomic::Ordering::Relaxed) {
                match get(addr, "/") {
                    Ok((200, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        })
    };
    let mut pids = vec![first];
    let mut to_serving = Vec::new();
    let mut to_exit = Vec::new();
    wrk.wait_connected(addr, LONG);
    for restart in 0..RESTARTS {
        // The behaviour under test: each process serves wrk's load for a while before it
        // is restarted in turn (the three restarts spread over wrk's 5 s).
        std::thread::sleep(Duration::from_millis(800));
        let old = *pids.last().unwrap();
        let sighup = Instant::now();
        graceful_harness::process::signal_pid(old, Signal::HUP);
        let mut new = old;
        wait_until("a new process to serve /pid", LONG, || {
            new = pid_of(addr);
            new != old
        });
        server.owns(new);
        to_serving.push(sighup.elapsed().as_millis());
        if restart == 0 {
            server.wait_success(LONG);
        } else {
            wait_until("the old process to exit after its drain", LONG, || {
                !alive(old)
            });
        }
        to_exit.push(sighup.elapsed().as_millis());
        pids.push(new);
    }
    let report = wrk.finish();
    churning.store(false, std::sync::atomic::Ordering::Relaxed);
    let (fresh_ok, fresh_failed) = churn.join().unwrap();
    // An old process's report may reach the pipe's reader after its exit was seen.
    let is_drain = |l: &String| l.contains(" in ") && l.contains("completed");
    server.wait_output("every old process's report", LONG, |output| {
        (output.stderr.iter().filter(|l| is_drain(l)).count() >= RESTARTS).then_some(())
    });
    let stderr = server.stderr();
    let drains: Vec<&String> = stderr.iter().filter(|l| is_drain(l)).collect();
    println!(
        "measured: {example}: {RESTARTS} hot restarts under wrk -t2 -c16 -d5s: {} requests, \
         {} non-2xx, socket errors: {:?}; {fresh_ok} requests on fresh connections beside, {} \
         failed; SIGHUP to new process serving: {to_serving:?} ms; \
         SIGHUP to old process gone: {to_exit:?} ms; pids {pids:?}; old processes' reports: \
         {drains:?}",
        report.requests,
        report.non_2xx,
        report.socket_errors,
        fresh_failed.len(),
    );
    assert!(report.socket_errors.is_none(), "{}", report.output);
    assert_eq!(report.non_2xx, 0, "{}", report.output);
    assert!(report.requests > 100, "{}", report.output);
    assert!(
        fresh_failed.is_empty(),
        "fresh connections failed: {fresh_failed:?}"
    );
    assert!(fresh_ok > 10, "{fresh_ok} fresh requests");
    assert_eq!(
        drains.len(),
        RESTARTS,
        "every old process drained: {stderr:#?}"
    );
    let last = *pids.last().unwrap();
    let mut unique = pids.clone();
    unique.dedup();
    assert_eq!(unique.len(), RESTARTS + 1, "a new pid each time: {pids:?}");
    assert_eq!(pid_of(addr), last);
    stop_pid(last, LONG);
}

/// With the binary on disk replaced by one that fails at start, SIGHUP leaves the old
/// process serving (no error under load); with the good binary back, the next SIGHUP
/// restarts, from the path it was started from.
pub fn a_broken_binary_leaves_the_old_one_serving(example: &str) {
    let dir = TempDir::new(&format!("broken-{example}"));
    let exe = dir.path().join("server");
    let own = example_binary(example);
    // Written while no child is forked: one would hold the copy's write descriptor until
    // its `exec`, and the copy would be "busy" (ETXTBSY) when executed meanwhile.
    let copy = |to: &std::path::Path| {
        let _no_fork = hold_spawns();
        std::fs::copy(&own, to).expect("copy the example binary");
    };
    copy(&exe);
    let mut server = Launch::program(&exe).named(example).args(FLAGS).start();
    let addr = server.addr;
    let old = pid_of(addr);

    // Replace the binary the way deploys do: a new file renamed over the old path (the
    // running one keeps its inode).
    let replace = |with: &dyn Fn(&std::path::Path)| {
        let staged = dir.path().join("staged");
        with(&staged);
        std::fs::rename(&staged, &exe).expect("rename over the binary");
    };
    replace(&|staged| {
        std::fs::write(staged, "#!/bin/sh\necho broken build >&2\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    let wrk = Wrk::start(&format!("http://{addr}/"), 2, 16, 3);
    wrk.wait_connected(addr, LONG);
    server.hangup();
    server.wait_stderr(
        "hot restart failed: the new process exited before it was ready",
        LONG,
    );
    let report = wrk.finish();
    println!(
        "measured: {example}: broken binary: {} requests under wrk -c16 -d3s around the failed \
         restart, {} non-2xx, socket errors: {:?}",
        report.requests, report.non_2xx, report.socket_errors
    );
    assert!(report.socket_errors.is_none(), "{}", report.output);
    assert_eq!(report.non_2xx, 0, "{}", report.output);
    assert_eq!(pid_of(addr), old, "the old process serves on");
    assert!(server.exited().is_none(), "the old process is alive");

    replace(&|staged| copy(staged));
    let (new, to_serving) = hot_restart(&mut server, addr, old);
    println!(
        "measured: {example}: good binary back: SIGHUP to new process serving: {} ms",
        to_serving.as_millis()
    );
    server.wait_success(LONG);
    assert_eq!(pid_of(addr), new);
    stop_pid(new, LONG);
}

/// `systemd-socket-activate` hands the example a socket; it serves it (and not `--addr`).
pub fn socket_activation(example: &str) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server: Process = Launch::program("systemd-socket-activate")
        .args(["-l", &listen])
        .arg(example_binary(example))
        .args(FLAGS)
        .spawn();
    // systemd-socket-activate starts the server on the first connection, which it serves.
    server.wait_stderr(&format!("Listening on {listen}"), LONG);
    let addr: SocketAddr = listen.parse().unwrap();
    assert_eq!(get(addr, "/").unwrap(), (200, "hello".to_owned()));
    let announced = server.listening(LONG);
    assert_eq!(announced, addr, "{:#?}", server.stderr());
    assert_eq!(pid_of(addr), server.id());
    server.signal(Signal::TERM);
    assert!(server.wait_exit(LONG).1.success(), "{:#?}", server.stderr());
}

/// A test-owned `NOTIFY_SOCKET` hears `READY=1`, watchdog pings, then `STOPPING=1`,
/// `STATUS=draining: ...` with live counts while a request is in flight.
pub fn notify_socket_hears_the_life(example: &str) {
    let notify = NotifySocket::bind(&format!("notify-{example}"));
    let server = launch(example)
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "200000")
        .start();
    let ready = notify.wait_line("READY=1", LONG, |l| l == "READY=1");
    notify.wait_line("WATCHDOG=1", LONG, |l| l == "WATCHDOG=1");

    // A request in flight for 2.5 s: the status lines, one a second, see it active.
    let mut conn = in_flight(server.addr, "/sleep/2500");
    let slow = std::thread::spawn(move || conn.response());
    server.signal(Signal::TERM);
    let stopping = notify.wait_line("STOPPING=1", LONG, |l| l == "STOPPING=1");
    let draining = notify.wait_line("STATUS=draining", LONG, |l| {
        l.starts_with("STATUS=draining: ") && l.ends_with(" s left")
    });
    notify.wait_line("STATUS=draining: 1 active", LONG, |l| {
        l.starts_with("STATUS=draining: 1 active, 0 idle, 0 hijacked, ")
    });
    let response = slow
        .join()
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!((response.status, &response.body[..]), (200, &b"slept"[..]));
    server.wait_success(LONG);
    let lines = notify.lines();
    println!("measured: {example}: notifications: {lines:?}");
    assert!(ready < stopping && stopping < draining, "{lines:#?}");
}

/// Under a service manager, a hot restart hands `MAINPID=` on, and the new process then
/// talks to the manager itself (its own `STOPPING=1` when it is stopped).
pub fn hot_restart_hands_mainpid_on(example: &str) {
    let notify = NotifySocket::bind(&format!("mainpid-{example}"));
    let mut server = launch(example).env("NOTIFY_SOCKET", notify.path()).start();
    notify.wait_line("READY=1", LONG, |l| l == "READY=1");
    let addr = server.addr;
    let old = pid_of(addr);
    let (new, _) = hot_restart(&mut server, addr, old);
    let mainpid = notify.wait_line("MAINPID=", LONG, |l| l.starts_with("MAINPID="));
    assert_eq!(notify.lines()[mainpid], format!("MAINPID={new}"));
    server.wait_success(LONG);
    let count = |what: &str| notify.lines().iter().filter(|l| *l == what).count();
    assert_eq!(
        count("READY=1"),
        1,
        "the new process says READY=1 to its parent only"
    );
    // Once MAINPID= names the new process, the old one says nothing more to the manager:
    // its STOPPING=1 would stop the service where the manager heeds it (systemd does with
    // NotifyAccess=all). Its datagrams were all sent before it exited, so they are queued
    // before the new process's STOPPING=1.
    stop_pid(new, LONG);
    notify.wait_line("the new process's STOPPING=1", LONG, |l| l == "STOPPING=1");
    let lines = notify.lines();
    println!("measured: {example}: notifications: {lines:?}");
    assert_eq!(count("STOPPING=1"), 1, "only the new process's: {lines:#?}");
}

/// Starts `example` with descriptor 3 set to `fd` and `LISTEN_FDS=count` for it (the
/// restart marker naming this process as the parent); returns its exit status and stderr.
fn start_with_fd(example: &str, fd: Option<OwnedFd>, count: &str) -> (bool, Vec<String>) {
    let mut launch = launch(example)
        .env("LISTEN_FDS", count)
        .env("GRACEFUL_RESTART_PARENT", std::process::id().to_string());
    if let Some(fd) = fd {
        launch = launch.fd(3, fd);
    }
    let server = launch.spawn();
    let status = server.wait_exit_and_output(LONG);
    (status.success(), server.stderr())
}

/// `LISTEN_FDS` naming a UDP socket, a TCP socket that is not listening, no socket at all,
/// or not a number: a clear error and exit 1, never a wrong socket served.
pub fn bad_inherited_sockets_are_refused(example: &str) {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let connected = TcpStream::connect(peer.local_addr().unwrap()).unwrap();
    let cases: Vec<(&str, Option<OwnedFd>, &str, &str)> = vec![
        (
            "udp",
            Some(UdpSocket::bind("127.0.0.1:0").unwrap().into()),
            "1",
            "is not a TCP listening socket: fd 3 is not a valid tcp socket",
        ),
        (
            "not listening",
            Some(connected.into()),
            "1",
            "is a TCP socket that is not listening",
        ),
        (
            "a file",
            Some(std::fs::File::open("/dev/null").unwrap().into()),
            "1",
            "fd 3 is not a socket",
        ),
        ("nothing", None, "1", "fd 3 is not a socket"),
        (
            "junk",
            None,
            "three",
            "LISTEN_FDS=\"three\" is not a number",
        ),
    ];
    for (case, fd, count, message) in cases {
        let (ok, stderr) = start_with_fd(example, fd, count);
        assert!(!ok, "{case}: must not serve");
        assert!(
            stderr.iter().any(|line| line.contains(message)),
            "{case}: expected {message:?} in {stderr:#?}"
        );
        assert!(
            !stderr.iter().any(|line| line.contains("panicked")),
            "{case}: {stderr:#?}"
        );
    }
}

/// Sockets meant for another process (`LISTEN_PID` not ours) are left alone, with a
/// warning; the example binds `--addr` and serves.
pub fn sockets_for_another_process_are_left_alone(example: &str) {
    let server = launch(example)
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .start();
    assert_eq!(get(server.addr, "/").unwrap(), (200, "hello".to_owned()));
    server.wait_stderr("LISTEN_FDS is set for another process", LONG);
    server.signal(Signal::TERM);
    server.wait_success(LONG);
}

/// An unreachable `NOTIFY_SOCKET` is one warning; the server serves and stops as usual.
pub fn an_unreachable_notify_socket_is_a_warning(example: &str) {
    let server = launch(example)
        .env("NOTIFY_SOCKET", "/nonexistent/graceful/notify")
        .start();
    assert_eq!(
        get(server.addr, "/ready").unwrap(),
        (200, "ready".to_owned())
    );
    server.wait_stderr("cannot notify the service manager (NOTIFY_SOCKET)", LONG);
    server.signal(Signal::TERM);
    assert!(server.wait_exit_and_output(LONG).success());
    let stderr = server.stderr();
    let warnings = stderr
        .iter()
        .filter(|l| l.contains("cannot notify"))
        .count();
    assert_eq!(warnings, 1, "{stderr:#?}");
    assert!(
        !stderr.iter().any(|l| l.contains("panicked")),
        "{stderr:#?}"
    );
}

/// Without a restart, the listening socket closes when the drain begins, even though the
/// restarter kept a copy of it: a new connection is refused while a request is in flight.
pub fn the_socket_closes_with_the_drain(example: &str) {
    let server = launch(example).start();
    let mut conn = in_flight(server.addr, "/sleep/3000");
    server.signal(Signal::TERM);
    wait_not_listening(server.addr, Duration::from_secs(2));
    assert!(refused(server.addr), "a new connection is refused");
    assert!(
        server.exited().is_none(),
        "refused during the drain, not after it"
    );
    let response = conn.response().expect("the request in flight is answered");
    assert_eq!((response.status, &response.body[..]), (200, &b"slept"[..]));
    server.wait_success(LONG);
}

/// `--drain-delay 1`: on SIGTERM the server serves on for the delay, new connections too,
/// while `GET /ready` answers 503; then it drains, and exits about one delay after the signal.
pub fn the_drain_delay_serves_on_while_not_ready(example: &str) {
    let server = launch(example).args(["--drain-delay", "1"]).start();
    assert_eq!(
        get(server.addr, "/ready").unwrap().0,
        200,
        "ready before the signal"
    );
    let signal = Instant::now();
    server.signal(Signal::TERM);
    let addr = server.addr;
    wait_until("/ready to answer 503", Duration::from_secs(2), || {
        matches!(get(addr, "/ready"), Ok((503, _)))
    });
    assert!(
        signal.elapsed() < Duration::from_secs(1),
        "seen within the delay"
    );
    // A new connection, during the delay: served as before.
    let (status, body) = get(server.addr, "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "hello"));
    assert!(server.exited().is_none(), "still serving");
    server.wait_success(LONG);
    let exited = signal.elapsed();
    assert!(
        exited >= Duration::from_secs(1) && exited < Duration::from_secs(3),
        "exit about one delay after the signal: {exited:?}"
    );
}

/// A second signal during the drain delay stops the server at once.
pub fn a_second_signal_ends_the_drain_delay(example: &str) {
    let server = launch(example).args(["--drain-delay", "30"]).start();
    // At once after `listening on`: the signal handlers are set before that line is out, so
    // this drains (into the delay) rather than killing the process.
    server.signal(Signal::TERM);
    let addr = server.addr;
    wait_until("/ready to answer 503", Duration::from_secs(2), || {
        matches!(get(addr, "/ready"), Ok((503, _)))
    });
    let second = Instant::now();
    server.signal(Signal::TERM);
    server.wait_success(LONG);
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "not the 30 s delay: {:?}",
        second.elapsed()
    );
}
