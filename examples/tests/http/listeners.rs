//! Several listeners in one example (`--addr` given more than once): one drain for them all,
//! one report that counts each, and the flags and sockets that are refused at start.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graceful_harness::deploy::TempDir;
use graceful_harness::http1::{refused, Conn};
use graceful_harness::tcp::wait_taken;
use graceful_harness::{measured, Launch, Server};

const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds for what must happen "soon": they catch hangs, not slowness.
const SOON: Duration = Duration::from_secs(10);

/// The example with `args`, started; its TCP listeners' addresses, in the order of their
/// `listening on` lines (`tcp` of them), once its Unix listeners (`unix`) said so too.
pub fn start_listeners(
    example: &str,
    args: &[&str],
    tcp: usize,
    unix: usize,
) -> (Server, Vec<SocketAddr>) {
    let mut server = Launch::example(example).args(args).start();
    let mut addrs = vec![server.addr];
    while addrs.len() < tcp {
        addrs.push(server.listening(SOON));
    }
    server.wait_output("every `listening on unix:` line", SOON, |output| {
        let lines = output
            .stdout
            .iter()
            .filter(|line| line.contains("listening on unix:"));
        (lines.count() == unix).then_some(())
    });
    (server, addrs)
}

/// `--addr NAME=unix:PATH` for a socket in `dir`.
fn unix_addr(name: &str, dir: &TempDir) -> (String, PathBuf) {
    let path = dir.path().join(format!("{name}.sock"));
    (format!("{name}=unix:{}", path.display()), path)
}

/// The example with `web` and `admin` on TCP and `local` on a Unix socket in a directory of
/// its own: the server, its TCP addresses, the socket's path, and the directory.
fn three_listeners(example: &str, tag: &str) -> (Server, Vec<SocketAddr>, PathBuf, TempDir) {
    let dir = TempDir::new(&format!("{tag}-{example}"));
    let (unix, path) = unix_addr("local", &dir);
    let args = [
        "--addr",
        "web=127.0.0.1:0",
        "--addr",
        "admin=127.0.0.1:0",
        "--addr",
        &unix,
    ];
    let (server, addrs) = start_listeners(example, &args, 2, 1);
    (server, addrs, path, dir)
}

/// A kept-alive connection to the Unix socket at `path`, answered `GET /` once.
fn unix_idle_conn(path: &Path) -> UnixStream {
    let mut conn = UnixStream::connect(path).expect("connect to the Unix listener");
    conn.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut response = Vec::new();
    let mut buf = [0; 1024];
    while !response.ends_with(b"\r\n\r\nhello") {
        let n = conn.read(&mut buf).expect("GET / is answered");
        assert!(n > 0, "closed before the answer: {response:?}");
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    conn
}

/// Whether the server closed `conn` (end of stream or reset) within `bound`.
fn unix_closed_within(conn: &mut UnixStream, bound: Duration) -> bool {
    conn.set_read_timeout(Some(bound)).unwrap();
    matches!(conn.read(&mut [0; 64]), Ok(0) | Err(_))
}

/// A request of `path` in flight on a new connection to `addr`, once the server has read
/// it.
fn in_flight(addr: SocketAddr, path: &str) -> Conn {
    let mut conn = Conn::connect(addr, READ_TIMEOUT).expect("connect to the example");
    conn.send_get(path).expect("send");
    wait_taken(addr, &[conn.local_addr()], SOON);
    conn
}

/// Two TCP listeners and a Unix one: a `GET /sleep/1500` in flight on each TCP listener
/// and an idle keep-alive connection on the Unix one at SIGTERM. Both requests are
/// answered, the idle connection closed, every listener refuses at once; the one report
/// counts them all, and by listener.
pub fn m1_in_flight_on_every_listener(example: &str) {
    let (server, addrs, path, _dir) = three_listeners(example, "m1");
    let mut idle = unix_idle_conn(&path);
    let mut sleepers: Vec<Conn> = addrs
        .iter()
        .map(|&addr| in_flight(addr, "/sleep/1500"))
        .collect();

    let signaled = server.terminate();
    assert!(
        unix_closed_within(&mut idle, Duration::from_secs(5)),
        "the idle Unix connection is closed"
    );
    for (conn, addr) in sleepers.iter_mut().zip(&addrs) {
        let response = conn.response().expect("the request in flight is answered");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"slept"[..]),
            "{addr}"
        );
        assert!(
            response.close,
            "answered during the drain: `Connection: close`"
        );
    }
    let exit = server.wait_success(READ_TIMEOUT) - signaled;
    measured(example, "m1", "exit after the signal in", exit);
    for addr in &addrs {
        assert!(refused(*addr), "{addr} is closed");
    }
    assert!(
        !path.exists(),
        "the socket file is removed once the server is done"
    );
    let report = server.drained();
    assert_eq!((report.completed, report.idle_closed), (2, 1), "{report:?}");
    let line = server.wait_stderr("by listener:", SOON);
    assert!(
        line.contains("; by listener: web: 1 completed, admin: 1 completed, local: 1 idle closed"),
        "{line}"
    );
}

/// What a probe of a listener found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// The kernel completed the handshake: the listener accepts.
    Accepted,
    /// Refused, or (a socket the server bound, on Linux) the SYN dropped as it closes.
    Stopped,
}

/// Connects to `addr` (a TCP address, or a Unix socket's path) once, for at most 50 ms.
fn probe(addr: &Result<SocketAddr, PathBuf>) -> Probe {
    let accepted = match addr {
        Ok(addr) => TcpStream::connect_timeout(addr, Duration::from_millis(50)).is_ok(),
        Err(path) => UnixStream::connect(path).is_ok(),
    };
    if accepted {
        Probe::Accepted
    } else {
        Probe::Stopped
    }
}

/// Two TCP listeners and a Unix one, probed in turn by a client from before SIGTERM until
/// each has been found stopped ten times in a row: each accepts until it stops, and stops
/// for good; and they stop at the same moment as far as a client can tell: no probe that
/// began more than 20 ms after another had ended finding a listener stopped found one
/// accepting.
pub fn m2_every_listener_stops_at_once(example: &str) {
    let (server, addrs, path, _dir) = three_listeners(example, "m2");
    let targets: Vec<Result<SocketAddr, PathBuf>> = (addrs.iter().map(|&addr| Ok(addr)))
        .chain([Err(path)])
        .collect();

    // Every probe, in order: which target, when it began and ended, what it found.
    let mut probes: Vec<(usize, Instant, Instant, Probe)> = Vec::new();
    let mut signaled = None;
    let mut round = 0;
    let stopped_for_good = |probes: &[(usize, Instant, Instant, Probe)], index: usize| {
        let last: Vec<Probe> = (probes.iter().rev())
            .filter(|probe| probe.0 == index)
            .take(10)
            .map(|probe| probe.3)
            .collect();
        last.len() == 10 && last.iter().all(|probe| *probe == Probe::Stopped)
    };
    while !(0..targets.len()).all(|index| stopped_for_good(&probes, index)) {
        for (index, target) in targets.iter().enumerate() {
            let began = Instant::now();
            let found = probe(target);
            probes.push((index, began, Instant::now(), found));
        }
        round += 1;
        if round == 20 {
            signaled = Some(server.terminate());
        }
        // Paced a little, so that ten seconds of probes stay a few tens of thousands.
        std::thread::sleep(Duration::from_micros(100));
        // Bounded by time, not by rounds: a probe of a listener that accepts takes some
        // microseconds, and a loaded machine may take a while to deliver the signal.
        let waited = signaled.map(|at| at.elapsed());
        assert!(
            waited.is_none_or(|waited| waited < Duration::from_secs(10)),
            "the listeners did not all stop within 10 s of the signal: {probes:?}"
        );
    }
    let signaled = signaled.expect("signaled");
    let before: Vec<_> = probes.iter().filter(|probe| probe.2 < signaled).collect();
    assert!(
        before.iter().all(|probe| probe.3 == Probe::Accepted),
        "every listener accepts before the signal: {before:?}"
    );
    for (index, target) in targets.iter().enumerate() {
        let mine: Vec<_> = probes.iter().filter(|probe| probe.0 == index).collect();
        let first = mine
            .iter()
            .position(|probe| probe.3 == Probe::Stopped)
            .unwrap();
        assert!(
            mine[first..].iter().all(|probe| probe.3 == Probe::Stopped),
            "{target:?} accepted again after it stopped: {mine:?}"
        );
    }
    // The first moment a listener was surely stopped (the end of the first probe that
    // found one so), and the last a listener surely accepted (the start of the last probe
    // that found one so).
    let first_stopped = (probes.iter().filter(|probe| probe.3 == Probe::Stopped))
        .map(|probe| probe.2)
        .min()
        .unwrap();
    let last_accepted = (probes.iter().filter(|probe| probe.3 == Probe::Accepted))
        .map(|probe| probe.1)
        .max()
        .unwrap();
    let overlap = last_accepted.saturating_duration_since(first_stopped);
    measured(
        example,
        "m2",
        "the signal to the first listener seen stopped in",
        first_stopped - signaled,
    );
    measured(
        example,
        "m2",
        "a listener seen accepting after another seen stopped for",
        overlap,
    );
    // Per listener, after the signal: when its last probe that found it accepting began,
    // and when its first that found it stopped ended.
    let seen: Vec<String> = (0..targets.len())
        .map(|index| {
            let mine = probes.iter().filter(|probe| probe.0 == index);
            let after = |at: Instant| at.saturating_duration_since(signaled);
            let accepted = (mine.clone().filter(|probe| probe.3 == Probe::Accepted))
                .map(|probe| after(probe.1))
                .max();
            let stopped = (mine.filter(|probe| probe.3 == Probe::Stopped))
                .map(|probe| after(probe.2))
                .min();
            format!(
                "{:?}: accepting at {accepted:?}, stopped at {stopped:?}",
                targets[index]
            )
        })
        .collect();
    assert!(
        overlap < Duration::from_millis(20),
        "{overlap:?}: {seen:#?}"
    );
    server.wait_success(SOON);
}

/// Bad input and a socket in use are refused at start: the same address twice, or the
/// same name, exits 2 with a message; a Unix path in use exits 1 naming the path, and the
/// TCP address given before it is left closed, the other process's socket file in place.
pub fn m3_bad_listeners_are_refused(example: &str) {
    let refused_with = |args: &[&str], code: i32, expected: &str| {
        let failing = Launch::example(example).args(args).spawn();
        let status = failing.wait_exit_and_output(SOON);
        let stderr = failing.stderr().join("\n");
        assert_eq!(status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected `{expected}`: {stderr}"
        );
        assert!(
            failing
                .stdout()
                .iter()
                .all(|line| !line.contains("listening on")),
            "{args:?}"
        );
    };
    refused_with(
        &["--addr", "127.0.0.1:9", "--addr", "127.0.0.1:9"],
        2,
        "127.0.0.1:9 is given twice",
    );
    refused_with(
        &["--addr", "a=127.0.0.1:0", "--addr", "a=127.0.0.1:0"],
        2,
        "two listeners named \"a\"",
    );

    let dir = TempDir::new(&format!("m3-{example}"));
    let path = dir.path().join("taken.sock");
    let holder = std::os::unix::net::UnixListener::bind(&path).expect("bind the Unix socket");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let tcp = format!("127.0.0.1:{port}");
    let unix = format!("unix:{}", path.display());
    let expected = format!("cannot listen on {unix}: Address already in use");
    refused_with(&["--addr", &tcp, "--addr", &unix], 1, &expected);
    assert!(refused(tcp.parse().unwrap()), "{tcp} is not left listening");
    assert!(
        path.exists(),
        "the other process's socket file is left alone"
    );
    let _client = UnixStream::connect(&path).expect("and its socket still listens");
    drop(holder);
}
