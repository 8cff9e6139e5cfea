//! Deploys of an example with several TCP listeners (`--addr NAME=HOST:PORT`, more than
//! once): a hot restart hands every one on, and systemd's sockets are told apart by name.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use graceful_harness::build::example_binary;
use graceful_harness::deploy::TempDir;
use graceful_harness::http1::{get, pid_of};
use graceful_harness::process::{alive, signal_pid, stop_pid};
use graceful_harness::{wait_until, Launch, Process};
use rustix::process::Signal;

const LONG: Duration = Duration::from_secs(30);

/// Fresh connections to `addr`, one after another, each `GET /`, until `running` is
/// cleared: how many were answered `200`, and what became of the others.
fn churn(addr: SocketAddr, running: Arc<AtomicBool>) -> thread::JoinHandle<(u64, Vec<String>)> {
    thread::spawn(move || {
        let (mut ok, mut failed) = (0, Vec::new());
        while running.load(Ordering::Relaxed) {
            match get(addr, "/") {
                Ok((200, _)) => ok += 1,
                other => failed.push(format!("{other:?}")),
            }
        }
        (ok, failed)
    })
}

/// A free port on loopback, for a socket that systemd-socket-activate binds.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// Two TCP listeners, `web` and `admin`, each under a stream of fresh connections: SIGHUP
/// twice in a row; each time the new process serves both (`/pid` answers its pid on each),
/// the old one drains and exits, and no connection to either is refused or fails.
pub fn hot_restart_moves_every_listener(example: &str) {
    const RESTARTS: usize = 2;
    let args = [
        "--addr",
        "web=127.0.0.1:0",
        "--addr",
        "admin=127.0.0.1:0",
        "--timeout",
        "20",
    ];
    let mut server = Launch::example(example).args(args).start();
    let addrs = [server.addr, server.listening(LONG)];
    let mut pid = server.id();
    for addr in addrs {
        assert_eq!(pid_of(addr), pid, "{addr}");
    }
    let running = Arc::new(AtomicBool::new(true));
    let churns: Vec<_> = addrs
        .iter()
        .map(|&addr| churn(addr, running.clone()))
        .collect();

    let mut to_serving = Vec::new();
    for restart in 0..RESTARTS {
        let old = pid;
        let sighup = Instant::now();
        signal_pid(old, Signal::HUP);
        wait_until("a new process to serve /pid on web", LONG, || {
            pid = pid_of(addrs[0]);
            pid != old
        });
        server.owns(pid);
        to_serving.push(sighup.elapsed());
        // Until the old process has closed its gate, both accept on the shared sockets.
        wait_until("the new process to serve /pid on admin too", LONG, || {
            pid_of(addrs[1]) == pid
        });
        if restart == 0 {
            server.wait_success(LONG);
        } else {
            wait_until("the old process to exit after its drain", LONG, || {
                !alive(old)
            });
        }
        // Served on by the new one alone (the old one gone), for a while under the churn.
        for addr in addrs {
            for _ in 0..20 {
                assert_eq!(pid_of(addr), pid, "{addr}");
            }
        }
    }
    running.store(false, Ordering::Relaxed);
    let results: Vec<(u64, Vec<String>)> = churns
        .into_iter()
        .map(|churn| churn.join().unwrap())
        .collect();
    println!(
        "measured: {example}: {RESTARTS} hot restarts of two listeners under fresh \
         connections: {:?} answered, failures {:?}; SIGHUP to new process serving: {to_serving:?}",
        results.iter().map(|(ok, _)| ok).collect::<Vec<_>>(),
        results
            .iter()
            .map(|(_, failed)| failed.len())
            .collect::<Vec<_>>(),
    );
    for ((ok, failed), addr) in results.iter().zip(addrs) {
        assert!(failed.is_empty(), "{addr}: {failed:?}");
        assert!(*ok > 10, "{addr}: {ok} answered");
    }
    stop_pid(pid, LONG);
}

/// `systemd-socket-activate -l A -l B --fdname=web:admin`, the example given `--addr
/// admin=B --addr web=A` (the other order): each name takes its socket, whatever the
/// order; both are served by the one process.
pub fn socket_activation_by_name(example: &str) {
    let (a, b) = (free_addr(), free_addr());
    let mut server: Process = Launch::program("systemd-socket-activate")
        .args([
            "-l",
            &a.to_string(),
            "-l",
            &b.to_string(),
            "--fdname=web:admin",
        ])
        .arg(example_binary(example))
        .args([
            "--addr",
            &format!("admin={b}"),
            "--addr",
            &format!("web={a}"),
        ])
        .spawn();
    server.wait_stderr(&format!("Listening on {b}"), LONG);
    // systemd-socket-activate starts the server on the first connection, which it serves.
    assert_eq!(get(a, "/").unwrap(), (200, "hello".to_owned()));
    assert_eq!(get(b, "/").unwrap(), (200, "hello".to_owned()));
    let announced = [server.listening(LONG), server.listening(LONG)];
    assert_eq!(
        announced,
        [b, a],
        "admin's socket first, as the flags say: {:#?}",
        server.stderr()
    );
    assert_eq!((pid_of(a), pid_of(b)), (server.id(), server.id()));
    server.signal(Signal::TERM);
    assert!(server.wait_exit(LONG).1.success(), "{:#?}", server.stderr());
    let report = server.wait_stderr("by listener:", LONG);
    assert!(report.contains("by listener: admin: "), "{report}");
    assert!(report.contains(", web: "), "{report}");
}

/// A Unix listener beside a TCP one: a hot restart is refused (the new process finds the
/// socket's path in use: deploys hand TCP sockets over, not these), and the old process
/// serves both on.
pub fn a_unix_listener_stays_with_its_process(example: &str) {
    let dir = TempDir::new(&format!("unix-restart-{example}"));
    let path = dir.path().join("local.sock");
    let unix = format!("local=unix:{}", path.display());
    let server = Launch::example(example)
        .args(["--addr", "web=127.0.0.1:0", "--addr", &unix])
        .start();
    let old = pid_of(server.addr);
    server.hangup();
    let line = server.wait_stderr("hot restart failed", LONG);
    assert!(line.contains("still serving"), "{line}");
    let why = format!(
        "cannot listen on unix:{}: Address already in use",
        path.display()
    );
    server.wait_stderr(&why, LONG);
    assert_eq!(pid_of(server.addr), old, "the old process serves on");
    let mut conn = UnixStream::connect(&path).expect("the Unix listener too");
    conn.write_all(b"GET /pid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    assert!(response.ends_with(&format!("\r\n\r\n{old}")), "{response}");
    server.terminate();
    server.drained();
}
