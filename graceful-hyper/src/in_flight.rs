//! What a connection's requests are, for the drain to name them: graceful-core's
//! [`Describe`] for HTTP.
//!
//! A request's start records its method, the first [`PATH_KEPT`] bytes of its path (copied:
//! a reference to hyper's bytes would keep its read buffer shared, and hyper would allocate
//! a new one for the next request), what it asks to be upgraded to, and when it began (the
//! server's coarse clock, one atomic load). Nothing is formatted, and nothing read, until a
//! drain or an observer asks.
//!
//! # Cost
//!
//! An HTTP/1 request is recorded with no lock: the connection's task is the only writer of
//! its record, a sequence lock of atomics ([`Http1`]). Measured with callgrind under h2load
//! (`--h1 -c4`, 20,000 requests), recording costs 89 instructions a request, 0.94 % of the
//! 9,430 a keep-alive request costs. An HTTP/2 stream takes a lock at its start and at its
//! end, and copies its path in place (no allocation): some 200 instructions of a stream's
//! 30,000. A connection's record is one allocation of 128 bytes; what few connections need
//! (HTTP/2's streams, a method of the application's own, an upgrade) is boxed on first use.
//!
//! # Invariants
//!
//! - HTTP/1 serves one request at a time: its record is overwritten by the next request and
//!   never cleared at the end. graceful-core describes only connections that are `Active`
//!   (the recorded request runs) or `Hijacked` (it is the request the connection was
//!   upgraded from).
//! - An HTTP/2 stream's entry lives from its request's start to its response's end.
//! - The describer is its own allocation, apart from the connection's shared state: the
//!   core's record of the connection holds it, and it must not hold the connection.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use graceful_core::{Describe, Stamp, Work};
use http::header::UPGRADE;
use http::uri::Authority;
use http::{HeaderValue, Method, Request};

/// A connection's requests in flight.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    http1: Http1,
    /// What few connections need, made when one first does (so that a connection costs
    /// one small allocation): HTTP/2's streams, methods of the application's own, upgrades.
    rare: Mutex<Option<Box<Rare>>>,
    /// Bytes written on the connection so far: an HTTP/1 request's are those since it
    /// began.
    written: AtomicU64,
}

/// How much of a request's path (and query) is kept to name it.
const PATH_KEPT: usize = 48;

const WORDS: usize = PATH_KEPT / 8;

/// HTTP/1: the request in flight, or the last one. Only the connection's task writes it; a
/// reader takes a copy that `seq` did not change under ([`Http1::read`]).
#[derive(Debug, Default)]
struct Http1 {
    /// Odd while the fields below are being written; 0 before the first request.
    seq: AtomicU32,
    /// The method's code ([`METHODS`], 0 for another: in `other_method`), whether it was
    /// upgradable (`UPGRADABLE`), and the whole path's length (above the low 32 bits).
    head: AtomicU64,
    started: AtomicU64,
    /// The connection's bytes written when it began.
    written: AtomicU64,
    /// The start of the path and query, in little-endian words.
    path: [AtomicU64; WORDS],
}

/// See [`InFlight::rare`].
#[derive(Debug, Default)]
struct Rare {
    /// HTTP/1: the request's method, if one of the application's own.
    other_method: Option<Method>,
    /// HTTP/1: what an upgradable request asked to be upgraded to.
    upgrade: Option<HeaderValue>,
    streams: Streams,
}

/// The rare part of `rare`, made if it was not.
fn rare(rare: &mut Option<Box<Rare>>) -> &mut Rare {
    rare.get_or_insert_with(Box::default)
}

const UPGRADABLE: u64 = 1 << 8;

/// The methods recorded as a code, index + 1.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::CONNECT,
    Method::PATCH,
    Method::TRACE,
];

/// A copy of the HTTP/1 record.
struct Http1Request {
    method: Method,
    path: String,
    started: Stamp,
    written: u64,
    upgrade: Option<HeaderValue>,
}

impl Http1 {
    /// Records `req`, begun at `started` with `written` bytes written on the connection.
    #[inline]
    fn write<B>(
        &self,
        rare: &Mutex<Option<Box<Rare>>>,
        req: &Request<B>,
        upgradable: bool,
        started: Stamp,
        written: u64,
    ) {
        let path = path_of(req).as_bytes();
        let code = method_code(req.method());
        let mut head = u64::from(code) | (path.len() as u64) << 32;
        if upgradable {
            head |= UPGRADABLE;
        }
        // Even at rest (the only writer is here).
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.head.store(head, Ordering::Relaxed);
        self.started.store(started.as_millis(), Ordering::Relaxed);
        self.written.store(written, Ordering::Relaxed);
        // Only the words the path covers: a reader reads no further than its length.
        let mut words = self.path.iter();
        let mut chunks = path[..path.len().min(PATH_KEPT)].chunks_exact(8);
        // The chunks first: zip takes from its first iterator first, and the word after
        // the last whole chunk is the remainder's.
        for (chunk, word) in (&mut chunks).zip(words.by_ref()) {
            let chunk: [u8; 8] = chunk.try_into().unwrap_or_default();
            word.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
        }
        let rest = chunks.remainder();
        if let (Some(word), false) = (words.next(), rest.is_empty()) {
            let last = (rest.iter().rev()).fold(0, |last, byte| last << 8 | u64::from(*byte));
            word.store(last, Ordering::Relaxed);
        }
        if code == 0 || upgradable {
            write_rare(rare, req, code == 0, upgradable);
        }
        // Never back to 0, which says no request was seen.
        self.seq.store(seq.wrapping_add(2).max(2), Ordering::Release);
    }

    /// A copy of the record, if there is one and the writer let it be read whole.
    fn read(&self, rare: &Mutex<Option<Box<Rare>>>) -> Option<Http1Request> {
        // The writer rewrites the record once a request: a reader that keeps missing it
        // sees a connection busier than it can describe.
        for _ in 0..64 {
            let seq = self.seq.load(Ordering::Acquire);
            if seq == 0 {
                return None;
            }
            if seq & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let head = self.head.load(Ordering::Relaxed);
            let started = self.started.load(Ordering::Relaxed);
            let written = self.written.load(Ordering::Relaxed);
            let mut bytes = [0u8; PATH_KEPT];
            for (word, chunk) in self.path.iter().zip(bytes.chunks_exact_mut(8)) {
                chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            let method = match (head & 0xff) as usize {
                0 => lock(rare).as_ref().and_then(|rare| rare.other_method.clone()),
                code => METHODS.get(code - 1).cloned(),
            };
            let upgrade = match head & UPGRADABLE {
                0 => None,
                _ => lock(rare).as_ref().and_then(|rare| rare.upgrade.clone()),
            };
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != seq {
                continue;
            }
            return Some(Http1Request {
                method: method?,
                path: path_text(&bytes, (head >> 32) as usize),
                started: Stamp::from_millis(started),
                written,
                upgrade,
            });
        }
        None
    }
}

/// A path of `len` bytes, `kept` the start of it, as text: with `...` if it was cut.
fn path_text(kept: &[u8; PATH_KEPT], len: usize) -> String {
    let text = String::from_utf8_lossy(&kept[..len.min(PATH_KEPT)]);
    match len > PATH_KEPT {
        true => format!("{text}..."),
        false => text.into_owned(),
    }
}

/// A method of the application's own, or what an upgradable request asks for.
#[inline(never)]
fn write_rare<B>(
    rare_part: &Mutex<Option<Box<Rare>>>,
    req: &Request<B>,
    other_method: bool,
    upgradable: bool,
) {
    let mut locked = lock(rare_part);
    let rare = rare(&mut locked);
    if other_method {
        rare.other_method = Some(req.method().clone());
    }
    if upgradable {
        rare.upgrade = req.headers().get(UPGRADE).cloned();
    }
}

/// The code of a method in the HTTP/1 record: index in [`METHODS`] + 1, or 0.
#[inline]
fn method_code(method: &Method) -> u8 {
    // The two that most requests use first, in line.
    match method {
        m if *m == Method::GET => 1,
        m if *m == Method::POST => 2,
        _ => other_method_code(method),
    }
}

#[inline(never)]
fn other_method_code(method: &Method) -> u8 {
    let at = METHODS.iter().position(|known| known == method);
    at.map_or(0, |at| at as u8 + 1)
}

#[derive(Debug, Default)]
struct Streams {
    /// By a number of their own.
    open: Vec<(Slot, Stream)>,
    last: Slot,
}

/// An HTTP/2 stream's request.
#[derive(Debug)]
struct Stream {
    method: Method,
    /// The start of its path, copied in place: no allocation per stream.
    path: [u8; PATH_KEPT],
    /// The whole path's length: more than [`PATH_KEPT`] if it was cut.
    len: usize,
    started: Stamp,
}

/// An HTTP/2 stream's entry among the requests in flight, to end it; [`HTTP1`] for an
/// HTTP/1 request. Four bytes, so that the unit of work's guard stays as small as it was.
pub(crate) type Slot = u32;

/// The slot of every HTTP/1 request: its entry stays until the next request.
pub(crate) const HTTP1: Slot = 0;

impl InFlight {
    /// An HTTP/1 request begins at `started`; `upgradable` if hyper offered to upgrade it.
    #[inline]
    pub(crate) fn begin_http1<B>(&self, req: &Request<B>, upgradable: bool, started: Stamp) {
        let written = self.written.load(Ordering::Relaxed);
        self.http1.write(&self.rare, req, upgradable, started, written);
    }

    /// An HTTP/2 stream's request begins at `started`: its entry, to end it with.
    pub(crate) fn begin_stream<B>(&self, req: &Request<B>, started: Stamp) -> Slot {
        let path = path_of(req).as_bytes();
        let kept = path.len().min(PATH_KEPT);
        let mut stream = Stream {
            method: req.method().clone(),
            path: [0; PATH_KEPT],
            len: path.len(),
            started,
        };
        stream.path[..kept].copy_from_slice(&path[..kept]);
        let mut locked = lock(&self.rare);
        let streams = &mut rare(&mut locked).streams;
        // Stream entries count from 1: 0 is HTTP/1's.
        let slot = streams.last.checked_add(1).unwrap_or(1);
        streams.last = slot;
        streams.open.push((slot, stream));
        slot
    }

    /// An HTTP/2 stream's response ended.
    #[inline(never)]
    pub(crate) fn end_stream(&self, slot: Slot) {
        let ended = {
            let mut locked = lock(&self.rare);
            let streams = &mut rare(&mut locked).streams;
            let at = streams.open.iter().position(|(open, _)| *open == slot);
            at.map(|at| streams.open.swap_remove(at))
        };
        // Its path is released with no lock held.
        drop(ended);
    }

    /// `n` more bytes were written on the connection.
    #[inline]
    pub(crate) fn wrote(&self, n: usize) {
        self.written
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The path and query, or for a `CONNECT`, the authority.
#[inline]
fn path_of<B>(req: &Request<B>) -> &str {
    match req.uri().path_and_query() {
        Some(path) => path.as_str(),
        None => req.uri().authority().map_or("", Authority::as_str),
    }
}

impl Describe for InFlight {
    fn describe(&self, now: Stamp, work: &mut Vec<Work>) {
        if let Some(http1) = self.http1.read(&self.rare) {
            let what = format!("{} {}", http1.method, http1.path);
            let sent = self.written.load(Ordering::Relaxed).saturating_sub(http1.written);
            let unit = Work::since(what, http1.started, now).sent(sent);
            work.push(match &http1.upgrade {
                Some(upgrade) => unit.protocol(String::from_utf8_lossy(upgrade.as_bytes()).into_owned()),
                None => unit.protocol("HTTP/1"),
            });
        }
        let rare = lock(&self.rare);
        let open = rare.as_ref().map_or(&[][..], |rare| &rare.streams.open[..]);
        for (_, stream) in open {
            let what = format!("{} {}", stream.method, path_text(&stream.path, stream.len));
            work.push(Work::since(what, stream.started, now).protocol("h2"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Version;

    fn request(method: Method, path: &str, version: Version) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .version(version)
            .header(UPGRADE, "websocket")
            .body(())
            .unwrap()
    }

    fn described(in_flight: &InFlight, now: Stamp) -> Vec<String> {
        let mut work = Vec::new();
        in_flight.describe(now, &mut work);
        (work.iter())
            .map(|work| {
                let protocol = work.protocol.as_deref().unwrap_or("");
                format!("{work} {protocol} {:?}", work.sent)
            })
            .collect()
    }

    #[test]
    fn http1_keeps_the_request_in_flight_and_its_bytes() {
        let in_flight = InFlight::default();
        assert!(described(&in_flight, Stamp::default()).is_empty(), "no request yet");
        let t0 = Stamp::from_millis(1_000);
        let req = request(Method::GET, "/sleep/9000?x=1", Version::HTTP_11);
        in_flight.begin_http1(&req, false, t0);
        in_flight.wrote(100);
        let now = Stamp::from_millis(3_100);
        assert_eq!(described(&in_flight, now), ["GET /sleep/9000?x=1 2.1 s HTTP/1 Some(100)"]);
        // The next request replaces it; its bytes count from its start.
        let next = request(Method::POST, "/", Version::HTTP_11);
        in_flight.begin_http1(&next, false, now);
        in_flight.wrote(7);
        assert_eq!(described(&in_flight, now), ["POST / 0.0 s HTTP/1 Some(7)"]);
    }

    #[test]
    fn an_upgrade_names_what_it_asked_for() {
        let in_flight = InFlight::default();
        let t0 = Stamp::from_millis(1_000);
        let ws = request(Method::GET, "/ws", Version::HTTP_11);
        in_flight.begin_http1(&ws, true, t0);
        let now = Stamp::from_millis(32_000);
        assert_eq!(described(&in_flight, now), ["GET /ws 31.0 s websocket Some(0)"]);
        // The next request on the connection is no upgrade, and an Upgrade header that
        // hyper did not offer to honour names none either.
        in_flight.begin_http1(&ws, false, now);
        assert_eq!(described(&in_flight, now), ["GET /ws 0.0 s HTTP/1 Some(0)"]);
    }

    #[test]
    fn a_connect_names_its_authority() {
        let in_flight = InFlight::default();
        let req = Request::connect("example.com:443").body(()).unwrap();
        in_flight.begin_http1(&req, true, Stamp::default());
        assert_eq!(
            described(&in_flight, Stamp::default()),
            ["CONNECT example.com:443 0.0 s HTTP/1 Some(0)"]
        );
    }

    #[test]
    fn http2_streams_live_from_start_to_end() {
        let in_flight = InFlight::default();
        let t0 = Stamp::from_millis(1_000);
        let a = in_flight.begin_stream(&request(Method::GET, "/a", Version::HTTP_2), t0);
        let b = in_flight.begin_stream(&request(Method::PUT, "/b", Version::HTTP_2), t0);
        assert_ne!(a, HTTP1);
        assert_eq!(described(&in_flight, t0).len(), 2);
        in_flight.end_stream(a);
        assert_eq!(described(&in_flight, t0), ["PUT /b 0.0 s h2 None"]);
        in_flight.end_stream(b);
        in_flight.end_stream(b);
        assert!(described(&in_flight, t0).is_empty());
    }

    #[test]
    fn a_reader_never_sees_parts_of_two_requests() {
        let in_flight = std::sync::Arc::new(InFlight::default());
        let long = format!("/{}", "a".repeat(PATH_KEPT + 10));
        let a = request(Method::GET, &long, Version::HTTP_11);
        let b = request(Method::POST, "/b", Version::HTTP_11);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (in_flight, done) = (in_flight.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 0..200_000u32 {
                    let (req, started) = match i % 2 {
                        0 => (&a, Stamp::from_millis(1)),
                        _ => (&b, Stamp::from_millis(2)),
                    };
                    in_flight.begin_http1(req, i % 3 == 0, started);
                }
                done.store(true, Ordering::Release);
            })
        };
        let expect_a = format!("GET /{}...", "a".repeat(PATH_KEPT - 1));
        let mut seen = 0;
        while !done.load(Ordering::Acquire) {
            let mut work = Vec::new();
            in_flight.describe(Stamp::from_millis(10), &mut work);
            for unit in work {
                let age = unit.age.as_millis();
                match unit.what.as_str() {
                    what if what == expect_a => assert_eq!(age, 9, "{unit:?}"),
                    "POST /b" => assert_eq!(age, 8, "{unit:?}"),
                    _ => panic!("a record made of two requests: {unit:?}"),
                }
                seen += 1;
            }
        }
        writer.join().unwrap();
        assert!(seen > 0, "the reader read something");
    }

    #[test]
    fn a_long_path_is_cut() {
        let long = format!("/{}", "a".repeat(200));
        let in_flight = InFlight::default();
        in_flight.begin_http1(&Request::get(long.as_str()).body(()).unwrap(), false, Stamp::default());
        let expected = format!("GET /{}... 0.0 s HTTP/1 Some(0)", "a".repeat(PATH_KEPT - 1));
        assert_eq!(described(&in_flight, Stamp::default()), [expected]);
    }
}
