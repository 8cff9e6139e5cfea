//! Readers that hold a response up: clients that ask for a large answer and never read it,
//! and a steady reader that reads at a set pace and counts every byte.
//!
//! A response nobody reads fills the socket's buffers, then the server's writes stall: the
//! "slow read" that no timer of hyper's bounds. The servers under test answer
//! `GET /bytes/{n}` with `n` bytes, streamed.
//!
//! The clients are the suites' own ([`http1::Conn`](crate::http1::Conn), the `tls`
//! module's `TlsConn`, [`H2Conn`]): a non-reader is one that sent its
//! request and is left alone, and [`wait_answering`] waits until the server has taken each
//! request and begun to answer it, seen from the kernel's socket table.

use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http1::{read_head, Unanswered};
use crate::http2::H2Conn;
use crate::tcp;
use crate::wait_until;

/// `GET /bytes/{n}`.
pub fn bytes_path(n: u64) -> String {
    format!("/bytes/{n}")
}

/// Bytes waiting unread on a client's socket that say its answer is under way: more than
/// what a connection gets before any answer (HTTP/2's SETTINGS, TLS 1.3's session tickets),
/// and one HTTP/2 DATA frame of the default size.
const ANSWER_UNDER_WAY: u64 = 16 * 1024;

/// Whether the server on `server` has taken the requests of `clients` (accepted them and
/// read every byte they sent) and each client has at least 16 KiB of its answer waiting
/// unread: the answers are under way, and stall as they fill the sockets' buffers.
pub fn answering(server: SocketAddr, clients: &[SocketAddr]) -> bool {
    tcp::taken(server, clients)
        && clients.iter().all(|&client| {
            tcp::unread(client, server).is_some_and(|unread| unread >= ANSWER_UNDER_WAY)
        })
}

/// Waits until the server on `server` is [`answering`] each of `clients`.
#[track_caller]
pub fn wait_answering(server: SocketAddr, clients: &[SocketAddr], bound: Duration) {
    let what = format!(
        "the server on {server} to answer each of the {} clients",
        clients.len()
    );
    wait_until(&what, bound, || answering(server, clients));
}

/// Waits until the server on `server` is [`answering`] each of `clients` and its answers
/// have stopped: the bytes unread on every client's socket stayed the same across three looks
/// a tenth of a second apart (the buffers on the way are full, and the server's writes
/// stall; the kernel may still take a trickle now and then as it packs its buffers).
#[track_caller]
pub fn wait_stalled(server: SocketAddr, clients: &[SocketAddr], bound: Duration) {
    wait_answering(server, clients, bound);
    let unread = || -> Vec<Option<u64>> {
        clients
            .iter()
            .map(|&client| tcp::unread(client, server))
            .collect()
    };
    let mut before = unread();
    let mut same = 0;
    let what = format!("the answers to the {} clients to stall", clients.len());
    wait_until(&what, bound, || {
        std::thread::sleep(Duration::from_millis(100));
        let now = unread();
        same = if now == before { same + 1 } else { 0 };
        before = now;
        same >= 3
    });
}

/// What a [`SteadyReader`] read.
#[derive(Clone, Copy, Debug)]
pub struct Steady {
    /// The answer's status (HTTP/2: when the server encoded it from HPACK's static table).
    pub status: Option<u16>,
    /// The length the answer announced (`Content-Length`; none over HTTP/2 here).
    pub announced: Option<u64>,
    /// The bytes of the body read, all counted.
    pub read: u64,
    /// The answer ended as it should (the announced length read, or END_STREAM).
    pub complete: bool,
    /// When the last byte was read.
    pub done: Instant,
}

/// A client that reads one answer at a steady pace on a thread of its own.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use graceful_harness::http1::Conn;
/// use graceful_harness::slow::SteadyReader;
///
/// let addr = "127.0.0.1:3000".parse().unwrap();
/// let mut conn = Conn::connect(addr, Duration::from_secs(10)).unwrap();
/// conn.send_get("/bytes/8388608").unwrap();
/// let reader = SteadyReader::http1(conn.into_reader(), 4 << 20);
/// let steady = reader.finish().unwrap();
/// assert_eq!(steady.read, 8 << 20);
/// ```
#[derive(Debug)]
pub struct SteadyReader {
    read: Arc<AtomicU64>,
    thread: JoinHandle<io::Result<Steady>>,
}

impl SteadyReader {
    /// Reads an HTTP/1.1 answer (sent for already) from `reader` at about `rate` bytes a
    /// second.
    pub fn http1(mut reader: impl BufRead + Send + 'static, rate: u64) -> SteadyReader {
        SteadyReader::spawn(move |read| {
            let head = read_head(&mut reader).map_err(|unanswered| match unanswered {
                Unanswered::Io(err) => err,
                other => io::Error::other(format!("no answer: {other:?}")),
            })?;
            let announced = head.length;
            let mut pace = Pace::new(rate);
            let mut buf = vec![0; 64 * 1024];
            let mut left = announced.unwrap_or(u64::MAX);
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = match reader.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(err),
                };
                left -= n as u64;
                read.fetch_add(n as u64, Ordering::Relaxed);
                pace.after(n);
            }
            Ok(Steady {
                status: Some(head.status),
                announced,
                read: read.load(Ordering::Relaxed),
                complete: announced.is_some() && left == 0,
                done: Instant::now(),
            })
        })
    }

    /// Reads stream 1's answer (asked for already, with [`Window::Largest`]) from `conn` at
    /// about `rate` bytes a second.
    ///
    /// [`Window::Largest`]: crate::http2::Window::Largest
    pub fn http2(mut conn: H2Conn, rate: u64) -> SteadyReader {
        SteadyReader::spawn(move |read| {
            let mut pace = Pace::new(rate);
            while !conn.received.answered {
                let before = conn.received.data_len;
                if conn.read_frame()?.is_none() {
                    break;
                }
                let n = conn.received.data_len - before;
                read.fetch_add(n, Ordering::Relaxed);
                pace.after(usize::try_from(n).unwrap_or(usize::MAX));
            }
            Ok(Steady {
                status: conn.received.status,
                announced: None,
                read: conn.received.data_len,
                complete: conn.received.answered,
                done: Instant::now(),
            })
        })
    }

    fn spawn(body: impl FnOnce(&AtomicU64) -> io::Result<Steady> + Send + 'static) -> SteadyReader {
        let read = Arc::new(AtomicU64::new(0));
        let counter = read.clone();
        let thread = thread::spawn(move || body(&counter));
        SteadyReader { read, thread }
    }

    /// The bytes of the body read so far.
    pub fn read_so_far(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Waits for the reader to end; what it read.
    ///
    /// # Errors
    ///
    /// A read failed or timed out before the answer ended.
    ///
    /// # Panics
    ///
    /// If the reader's thread panicked.
    pub fn finish(self) -> io::Result<Steady> {
        self.thread.join().expect("the reader's thread")
    }
}

/// Reads paced to `rate` bytes a second from the first: after each read, a sleep until the
/// bytes read so far are due. A load shape, not a synchronisation.
#[derive(Debug)]
struct Pace {
    start: Instant,
    rate: u64,
    total: u64,
}

impl Pace {
    fn new(rate: u64) -> Pace {
        Pace {
            start: Instant::now(),
            rate: rate.max(1),
            total: 0,
        }
    }

    fn after(&mut self, n: usize) {
        self.total += n as u64;
        let due = self.start + Duration::from_secs_f64(self.total as f64 / self.rate as f64);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
    }
}
