//! The generator: a seeded random source and what it makes of it, one fuzz case at a time.
//!
//! A case is a handful of in-memory connections, each with a client script (bytes written in
//! chunks at chosen virtual times, then a half-close, a reset or nothing), plus the server's
//! settings and the moments of the drain and of the kill. The bytes mix well-formed HTTP/1
//! requests (every route of the fuzz service, pipelined, with bodies), HTTP/2 frames after
//! the preface (HPACK-encoded requests, DATA, RST_STREAM, PING, GOAWAY), and the same
//! mutated or replaced by noise, so the server's parser sees both the paths a client
//! normally takes and the edges around them.
//!
//! # Invariants
//!
//! - A case depends on its seed alone: [`Case::generate`] reads nothing but its [`Rng`].
//! - Every duration is bounded (the constants below), so a case ends in bounded virtual time.

use std::time::Duration;

/// The HTTP/2 client preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The longest virtual sleep a route or a script takes.
pub const MAX_SLEEP_MS: u64 = 3_000;
/// The latest drain, after the case starts.
const MAX_STOP_MS: u64 = 2_000;

/// splitmix64: small, fast, and a different stream for every seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn ms(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

/// How a client's script ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Keeps its write half open and reads until the server closes.
    Open,
    /// Half-closes (`shutdown`), then reads until the server closes.
    HalfClose,
    /// Drops its end: a reset, mid-request or mid-response.
    Reset,
}

/// What one client does.
#[derive(Clone, Debug)]
pub struct Script {
    /// When it connects, after the case starts (always before the drain).
    pub connect_at: Duration,
    /// Chunks of bytes, each written after its pause.
    pub writes: Vec<(Duration, Chunk)>,
    pub end: End,
    /// The client stops reading after this many bytes (a slow reader), if set.
    pub read_limit: Option<usize>,
    /// The in-memory pipe's buffer size: small ones exercise backpressure.
    pub pipe: usize,
}

/// Bytes written at once; shown escaped, as `b"..."` would be.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk(pub Vec<u8>);

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: String = self.0.escape_ascii().to_string();
        write!(f, "b\"{text}\"")
    }
}

/// Which protocols the server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocols {
    Auto,
    Http1,
    Http2,
}

/// How the drain and the kill are injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `Shutdown::stop`, then the timeout kills.
    Stop,
    /// `Shutdown::stop`, then `Shutdown::force` after `force_after`.
    StopForce,
    /// `Shutdown::signal` twice (the second forces).
    Signals,
}

/// One fuzz case.
#[derive(Clone, Debug)]
pub struct Case {
    pub scripts: Vec<Script>,
    pub protocols: Protocols,
    pub header_read_timeout: Option<Duration>,
    pub header_grace: Duration,
    pub timeout: Duration,
    pub quiet_period: Duration,
    pub stop_at: Duration,
    pub trigger: Trigger,
    /// After the drain, when `trigger` forces.
    pub force_after: Duration,
}

impl Case {
    pub fn generate(rng: &mut Rng) -> Case {
        let stop_at = rng.ms(MAX_STOP_MS);
        let count = 1 + rng.below(3) as usize;
        let scripts = (0..count).map(|_| script(rng, stop_at)).collect();
        let timeout = Duration::from_millis(*rng.pick(&[20, 100, 500, 1_000, 3_000]));
        Case {
            scripts,
            protocols: *rng.pick(&[
                Protocols::Auto,
                Protocols::Auto,
                Protocols::Http1,
                Protocols::Http2,
            ]),
            header_read_timeout: match rng.below(4) {
                0 => None,
                1 => Some(Duration::from_millis(50)),
                2 => Some(Duration::from_millis(700)),
                _ => Some(Duration::from_secs(30)),
            },
            header_grace: Duration::from_millis(*rng.pick(&[0, 10, 300, 1_000])),
            timeout,
            quiet_period: Duration::from_millis(*rng.pick(&[1, 50, 250])).min(timeout / 2),
            stop_at,
            trigger: *rng.pick(&[Trigger::Stop, Trigger::StopForce, Trigger::Signals]),
            force_after: rng.ms(timeout.as_millis() as u64 + 200),
        }
    }
}

fn script(rng: &mut Rng, stop_at: Duration) -> Script {
    let connect_at = rng.ms(stop_at.as_millis() as u64);
    let http2 = rng.chance(35);
    let mut bytes = if http2 {
        http2_bytes(rng)
    } else {
        http1_bytes(rng)
    };
    if rng.chance(20) {
        mutate(rng, &mut bytes);
    }
    if rng.chance(3) {
        let len = 1 + rng.below(200) as usize;
        bytes = noise(rng, len);
    }
    Script {
        connect_at,
        writes: split(rng, bytes),
        end: *rng.pick(&[End::Open, End::Open, End::HalfClose, End::Reset]),
        read_limit: rng.chance(10).then(|| rng.below(300) as usize),
        pipe: *rng.pick(&[1, 7, 64, 1_024, 64 * 1_024]),
    }
}

/// Cuts `bytes` into chunks written after pauses (most pauses short, some long).
fn split(rng: &mut Rng, bytes: Vec<u8>) -> Vec<(Duration, Chunk)> {
    let mut writes = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let len = match rng.below(4) {
            0 => 1 + rng.below(8) as usize,
            1 => 1 + rng.below(64) as usize,
            _ => rest.len(),
        }
        .min(rest.len());
        let pause = match rng.below(10) {
            0..=5 => Duration::ZERO,
            6..=8 => rng.ms(50),
            _ => rng.ms(1_500),
        };
        writes.push((pause, Chunk(rest[..len].to_vec())));
        rest = &rest[len..];
    }
    writes
}

fn noise(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Flips, deletes, inserts, duplicates or truncates a few bytes.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(5) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => drop(bytes.remove(at)),
            2 => bytes.insert(at, *rng.pick(b"\r\n :;0aZ\x00\xff")),
            3 => {
                let end = (at + 1 + rng.below(16) as usize).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => bytes.truncate(at),
        }
    }
}

/// The fuzz service's paths (see `service.rs`).
fn path(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=2 => "/".to_owned(),
        3 | 4 => format!("/sleep/{}", rng.below(MAX_SLEEP_MS)),
        5 => format!("/stream/{}", rng.below(6)),
        6 => "/echo".to_owned(),
        7 => (*rng.pick(&["/panic", "/panic-body"])).to_owned(),
        8 => (*rng.pick(&["/upgrade", "/upgrade?stubborn"])).to_owned(),
        _ => format!("/{}", rng.below(1_000)),
    }
}

/// Zero or more HTTP/1 requests, pipelined.
fn http1_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(5) {
        let path = path(rng);
        let method = *rng.pick(&["GET", "GET", "POST", "HEAD", "PUT", "BREW"]);
        let version = *rng.pick(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]);
        out.extend_from_slice(format!("{method} {path} {version}\r\nhost: fuzz\r\n").as_bytes());
        if path.starts_with("/upgrade") {
            out.extend_from_slice(b"connection: upgrade\r\nupgrade: echo\r\n");
        } else if rng.chance(15) {
            out.extend_from_slice(b"connection: close\r\n");
        }
        if rng.chance(5) {
            out.extend_from_slice(b"expect: 100-continue\r\n");
        }
        let len = rng.below(40) as usize;
        let body = noise(rng, len);
        match rng.below(4) {
            0 => {
                out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
            }
            1 => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                for part in body.chunks(1 + rng.below(16) as usize) {
                    out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    out.extend_from_slice(part);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            _ => out.extend_from_slice(b"\r\n"),
        }
        if path.starts_with("/upgrade") {
            // What the client says once upgraded.
            out.extend_from_slice(b"ping\n");
        }
    }
    out
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HPACK for `GET|POST path` (static-table names, literal values, no Huffman).
fn hpack_request(rng: &mut Rng, path: &str) -> Vec<u8> {
    let mut block = vec![if rng.chance(80) { 0x82 } else { 0x83 }, 0x86];
    block.push(0x04); // :path, literal without indexing, indexed name 4.
    block.push(path.len() as u8);
    block.extend_from_slice(path.as_bytes());
    block.push(0x01); // :authority
    block.push(4);
    block.extend_from_slice(b"fuzz");
    block
}

/// The preface (usually), then frames: requests, bodies, resets, pings, GOAWAY.
fn http2_bytes(rng: &mut Rng) -> Vec<u8> {
    const DATA: u8 = 0;
    const HEADERS: u8 = 1;
    const RST_STREAM: u8 = 3;
    const SETTINGS: u8 = 4;
    const PING: u8 = 6;
    const GOAWAY: u8 = 7;
    const WINDOW_UPDATE: u8 = 8;
    const END_STREAM: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;
    let mut out = if rng.chance(95) {
        PREFACE.to_vec()
    } else {
        PREFACE[..rng.below(PREFACE.len() as u64) as usize].to_vec()
    };
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let mut stream = 1u32;
    for _ in 0..rng.below(8) {
        match rng.below(10) {
            0..=4 => {
                let path = path(rng);
                let ends = rng.chance(70);
                let flags = END_HEADERS | if ends { END_STREAM } else { 0 };
                out.extend(frame(HEADERS, flags, stream, &hpack_request(rng, &path)));
                if !ends {
                    let len = rng.below(30) as usize;
                    let body = noise(rng, len);
                    out.extend(frame(DATA, END_STREAM, stream, &body));
                }
                stream += 2;
            }
            5 => out.extend(frame(SETTINGS, 0x1, 0, &[])),
            6 => {
                let target = 1 + 2 * rng.below(u64::from(stream / 2 + 1)) as u32;
                out.extend(frame(RST_STREAM, 0, target, &8u32.to_be_bytes()));
            }
            7 => {
                let payload = noise(rng, 8);
                out.extend(frame(PING, 0, 0, &payload));
            }
            8 => out.extend(frame(WINDOW_UPDATE, 0, 0, &1_000u32.to_be_bytes())),
            _ => {
                let mut payload = stream.to_be_bytes().to_vec();
                payload.extend_from_slice(&0u32.to_be_bytes());
                out.extend(frame(GOAWAY, 0, 0, &payload));
            }
        }
    }
    out
}
