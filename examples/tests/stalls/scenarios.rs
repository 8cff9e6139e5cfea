//! The peers that must not hold a drain, one function each, run against the example named
//! by the test (see `stalls/mod.rs`).

use std::time::{Duration, Instant};

use graceful_harness::http1::{close_times, Conn};
use graceful_harness::http2::{Stall, Window};
use graceful_harness::process::raise_descriptor_limit;
use graceful_harness::slow::{bytes_path, wait_stalled, SteadyReader};
use graceful_harness::tcp::wait_taken;
use graceful_harness::{measured, one_at_a_time};

use super::{Example, Started};

/// Bounds for what must happen "soon": they catch hangs, not slowness.
const SOON: Duration = Duration::from_secs(10);
/// How long the exit is waited for: past the 10 s timeout, so that a peer that holds the
/// drain shows as a slow exit rather than a hang.
const EXIT_BOUND: Duration = Duration::from_secs(15);
/// What the readers that never read ask for.
const LARGE: u64 = 64 << 20;
/// What the steady reader asks for, and its pace.
const STEADY: u64 = 8 << 20;
const STEADY_RATE: u64 = 4 << 20;

/// Sends SIGTERM; returns the exit's time after it, once the process exited with success.
fn exit_after_signal(started: &Started) -> (Instant, Duration) {
    let signaled = started.server.terminate();
    let exit = started.server.wait_success(EXIT_BOUND);
    (signaled, exit - signaled)
}

/// An HTTP/2 peer that stops short (`how`) is the server's only connection: the exit comes
/// within `within` of the signal, and the report counts it idle closed, not killed.
fn stalled_http2(example: &Example, how: Stall, within: Duration) {
    let started = example.start(&[]);
    let mut peer = started.h2();
    peer.stall(how)
        .unwrap_or_else(|err| panic!("{}: {err}", how.describe()));
    wait_taken(started.addr(), &[peer.local_addr()], SOON);

    let (_, exit) = exit_after_signal(&started);
    let what = format!("HTTP/2 peer {}: exit after the signal in", how.describe());
    measured(example.name, "stall", &what, exit);
    // What the server sent the silent peer meanwhile, for the record.
    peer.read_to_close(Duration::from_secs(2));
    let goaways: Vec<Option<u32>> = peer
        .received
        .goaways()
        .map(|f| f.last_stream_id())
        .collect();
    eprintln!(
        "measured: {} stall: {}: GOAWAY last stream ids {goaways:?}, closed {}",
        example.name,
        how.describe(),
        peer.received.closed
    );
    if how == Stall::AfterAnswer {
        assert_eq!(
            (peer.received.status, &peer.received.data[..]),
            (Some(200), &b"hello"[..]),
            "the peer got its answer"
        );
    }
    let report = started.server.report();
    assert!(
        exit < within,
        "{exit:?} after the signal (bound {within:?}): {} held the drain; {report:?}",
        how.describe()
    );
    assert_eq!(
        (report.outcome.as_str(), report.idle_closed, report.killed),
        ("drained", 1, 0),
        "the peer is closed idle, not killed: {report:?}"
    );
}

/// 1. An HTTP/2 client that got its answer and then never reads again (so it never ACKs
///    the shutdown PING), its connection idle: the exit comes within 1 s of the signal, the
///    connection counted idle closed.
pub fn h2_answered_then_silent(example: &Example) {
    stalled_http2(example, Stall::AfterAnswer, Duration::from_secs(1));
}

/// 2. An HTTP/2 client that sent its preface and SETTINGS, then nothing: within 1 s.
pub fn h2_settings_only(example: &Example) {
    stalled_http2(example, Stall::AfterSettings, Duration::from_secs(1));
}

/// 3. Half an HTTP/2 client preface, then silence: within the header grace (1 s) and some
///    slack.
pub fn h2_half_preface(example: &Example) {
    stalled_http2(example, Stall::HalfPreface, Duration::from_millis(1_500));
}

/// 4 clients that ask for 64 MiB and never read, their answers under way, over HTTP/1.1
/// (`http2`: HTTP/2 with the largest window, so that the answers stall in the sockets, not
/// in flow control): the exit comes within 1.5 s of the signal, nothing killed.
fn non_readers(example: &Example, http2: bool) {
    let _turn = one_at_a_time();
    let started = example.start(&[]);
    let path = bytes_path(LARGE);
    let mut h1 = Vec::new();
    let mut h2 = Vec::new();
    for _ in 0..4 {
        if http2 {
            let mut peer = started.h2();
            peer.preface(Window::Largest).expect("the preface");
            peer.get(1, &path).expect("the request");
            h2.push(peer);
        } else {
            let mut conn = started.http1();
            conn.send_get(&path);
            h1.push(conn);
        }
    }
    let clients: Vec<_> = h1
        .iter()
        .map(super::Http1::local_addr)
        .chain(h2.iter().map(|peer| peer.local_addr()))
        .collect();
    // Signalled once the server's writes stall (socket buffers full), so that the exit
    // measures the drain's bound and not how long filling them took.
    wait_stalled(started.addr(), &clients, SOON);

    let (_, exit) = exit_after_signal(&started);
    let protocol = if http2 { "HTTP/2" } else { "HTTP/1.1" };
    let what = format!("4 non-readers of 64 MiB over {protocol}: exit after the signal in");
    measured(example.name, "stall", &what, exit);
    let report = started.server.report();
    eprintln!(
        "measured: {} stall: {protocol} non-readers: {report:?}",
        example.name
    );
    // Over TLS too: neither room the kernel never reported (the slack in a full send
    // buffer) nor rustls' buffer counts as progress of a peer that takes nothing.
    assert!(
        exit < Duration::from_millis(1_500),
        "{exit:?} after the signal: the readers that never read held the drain; {report:?}"
    );
    assert_eq!((report.killed, report.stalled), (0, 4), "{report:?}");
}

/// 4. Four HTTP/1.1 clients that ask for 64 MiB and never read: exit within 1.5 s.
pub fn non_readers_http1(example: &Example) {
    non_readers(example, false);
}

/// 5. The same over HTTP/2, with the largest flow-control window: exit within 1.5 s.
pub fn non_readers_http2(example: &Example) {
    non_readers(example, true);
}

/// A reader at about 4 MiB/s asks for 8 MiB; SIGTERM once it has read its first bytes:
/// it gets every byte, and the server exits once the answer was sent whole, counted
/// completed, having killed nothing.
fn steady_reader(example: &Example, http2: bool) {
    let _turn = one_at_a_time();
    let started = example.start(&[]);
    let path = bytes_path(STEADY);
    let reader = if http2 {
        let mut peer = started.h2();
        peer.preface(Window::Largest).expect("the preface");
        peer.get(1, &path).expect("the request");
        SteadyReader::http2(peer, STEADY_RATE)
    } else {
        let mut conn = started.http1();
        conn.send_get(&path);
        SteadyReader::http1(conn.into_reader(), STEADY_RATE)
    };
    graceful_harness::wait_until("the reader's first bytes", SOON, || {
        reader.read_so_far() > 0
    });

    let signaled = started.server.terminate();
    let steady = reader.finish().expect("the steady reader reads its answer");
    let exit = started.server.wait_success(EXIT_BOUND);
    let protocol = if http2 { "HTTP/2" } else { "HTTP/1.1" };
    measured(
        example.name,
        "stall",
        &format!("steady reader of 8 MiB over {protocol}: done after the signal in"),
        steady.done - signaled,
    );
    measured(
        example.name,
        "stall",
        &format!("steady reader of 8 MiB over {protocol}: exit after the signal in"),
        exit - signaled,
    );
    assert_eq!(steady.status, Some(200));
    assert!(steady.complete, "the answer ended early: {steady:?}");
    assert_eq!(steady.read, STEADY, "every byte: {steady:?}");
    if !http2 {
        assert_eq!(steady.announced, Some(STEADY));
    }
    // The server exits once it has written the last byte; the kernel's buffers may still
    // hold some for the reader then (the process may exit before the reader's last read).
    // That every byte came, and the report counts the connection completed, says the
    // server did not cut the answer short.
    let report = started.server.report();
    assert_eq!(
        (report.outcome.as_str(), report.completed, report.killed),
        ("drained", 1, 0),
        "{report:?}"
    );
}

/// 6. A steady HTTP/1.1 reader of 8 MiB at 4 MiB/s gets every byte across the signal.
pub fn steady_reader_http1(example: &Example) {
    steady_reader(example, false);
}

/// 7. The same over HTTP/2.
pub fn steady_reader_http2(example: &Example) {
    steady_reader(example, true);
}

/// 8. 2,000 idle HTTP/1.1 connections and `--close-spread 1`: the server closes them
///    spread over the second after the signal (the first and the last close at least 0.8 s
///    apart), and exits within 1.2 s of it.
pub fn close_spread(example: &Example) {
    const CONNS: usize = 2_000;
    let _turn = one_at_a_time();
    raise_descriptor_limit(CONNS as u64 + 1_000);
    let started = example.start(&["--close-spread", "1"]);
    let addr = started.addr();
    let conns: Vec<Conn> = (0..CONNS)
        .map(|_| {
            let mut conn = Conn::connect(addr, super::READ_TIMEOUT).expect("connect");
            let response = conn.get("/").expect("GET / is answered");
            assert_eq!(response.status, 200);
            conn
        })
        .collect();

    let signaled = started.server.terminate();
    let closes = close_times(&conns, SOON);
    let exit = started.server.wait_success(EXIT_BOUND) - signaled;
    assert_eq!(closes.len(), CONNS, "every idle connection is closed");
    let after = |at: &Instant| at.saturating_duration_since(signaled);
    let first = closes.iter().map(after).min().expect("closes");
    let last = closes.iter().map(after).max().expect("closes");
    let span = last - first;
    measured(
        example.name,
        "spread",
        "2000 idle: first close after the signal in",
        first,
    );
    measured(
        example.name,
        "spread",
        "2000 idle: last close after the signal in",
        last,
    );
    measured(example.name, "spread", "2000 idle: closes span", span);
    measured(
        example.name,
        "spread",
        "2000 idle: exit after the signal in",
        exit,
    );
    let mut tenths = [0usize; 13];
    for close in &closes {
        let tenth = after(close).as_millis() / 100;
        tenths[usize::try_from(tenth).unwrap_or(12).min(12)] += 1;
    }
    eprintln!(
        "measured: {} spread: closes per 100 ms after the signal: {tenths:?}",
        example.name
    );
    let report = started.server.report();
    assert!(
        span >= Duration::from_millis(800),
        "the closes span {span:?} ({first:?} to {last:?} after the signal): not spread over 1 s"
    );
    assert!(exit < Duration::from_millis(1_200), "{exit:?}");
    assert_eq!(
        (report.outcome.as_str(), report.idle_closed, report.killed),
        ("drained", CONNS, 0)
    );
}
