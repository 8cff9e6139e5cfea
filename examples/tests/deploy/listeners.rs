//! Deploys of an example with several TCP listeners (`--addr NAME=HOST:PORT`, more than
//! once): a hot restart hands every one on, and systemd's sockets are told apart by name.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use graceful_harness::build::example_binary;
use graceful_harness::deploy::TempDir;
use graceful_harness::http1::{get, pid_of};
use graceful_harness::process::{alive, signal_pid, stop_pid};
use graceful_harness::tools::Wrk;
use graceful_harness::{wait_until, Launch, Process};
use rustix::process::Signal;

const LONG: Duration = Duration::from_secs(30);

/// Fresh connections to `addr`, one after another, each `GET /`, until `running` is
/// cleared, counting in `answered` those answered `200`; returns what became of the
/// others.
fn churn(
    addr: SocketAddr,
    running: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut failed = Vec::new();
        while running.load(Ordering::Relaxed) {
            match get(addr, "/") {
                Ok((200, _)) => drop(answered.fetch_add(1, Ordering::Relaxed)),
                other => failed.push(format!("{other:?}")),
            }
        }
        failed
    })
}

/// A free port on loopback, for a socket that systemd-socket-activate binds.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// Two TCP listeners, `web` and `admin`, each under wrk's keep-alive load and a stream
/// of fresh connections: SIGHUP twice in a row, each once the process has served both
/// listeners' fresh connections for a while; each time the new process serves both
/// (`/pid` answers its pid on each), the old one drains and exits; no connection to
/// either is refused or fails, no request of wrk's.
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
    let wrks: Vec<Wrk> = addrs
        .iter()
        .map(|addr| Wrk::start(&format!("http://{addr}/"), 1, 8, 4))
        .collect();
    for (wrk, addr) in wrks.iter().zip(addrs) {
        wrk.wait_connected(addr, LONG);
    }
    let running = Arc::new(AtomicBool::new(true));
    let answered: Vec<Arc<AtomicU64>> = addrs.iter().map(|_| Arc::default()).collect();
    let churns: Vec<_> = (addrs.iter().zip(&answered))
        .map(|(&addr, answered)| churn(addr, running.clone(), answered.clone()))
        .collect();
    let served_a_while = |answered: &[Arc<AtomicU64>]| {
        let from: Vec<u64> = answered.iter().map(|n| n.load(Ordering::Relaxed)).collect();
        wait_until("each listener to serve 100 fresh connections", LONG, || {
            (answered.iter().zip(&from)).all(|(n, from)| n.load(Ordering::Relaxed) >= from + 100)
        });
    };

    let mut to_serving = Vec::new();
    for restart in 0..RESTARTS {
        served_a_while(&answered);
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
        for addr in addrs {
            assert_eq!(pid_of(addr), pid, "{addr}: the old process is gone");
        }
    }
    served_a_while(&answered);
    running.store(false, Ordering::Relaxed);
    let failed: Vec<Vec<String>> = churns
        .into_iter()
        .map(|churn| churn.join().unwrap())
        .collect();
    let reports: Vec<_> = wrks.into_iter().map(Wrk::finish).collect();
    println!(
        "measured: {example}: {RESTARTS} hot restarts of two listeners: wrk -t1 -c8 -d4s on \
         each: {:?} requests, socket errors {:?}; fresh connections: {:?} answered, {:?} \
         failed; SIGHUP to new process serving: {to_serving:?}",
        reports
            .iter()
            .map(|report| report.requests)
            .collect::<Vec<_>>(),
        reports
            .iter()
            .map(|report| report.socket_errors)
            .collect::<Vec<_>>(),
        answered
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect::<Vec<_>>(),
        failed.iter().map(Vec::len).collect::<Vec<_>>(),
    );
    for ((failed, report), addr) in failed.iter().zip(&reports).zip(addrs) {
        assert!(failed.is_empty(), "{addr}: {failed:?}");
        assert!(report.socket_errors.is_none(), "{addr}: {}", report.output);
        assert_eq!(report.non_2xx, 0, "{addr}: {}", report.output);
        assert!(report.requests > 100, "{addr}: {}", report.output);
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
