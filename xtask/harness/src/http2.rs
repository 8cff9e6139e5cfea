//! A raw-socket HTTP/2 client that writes every frame by hand and records every frame it
//! reads, over h2c (prior knowledge) or TLS (ALPN `h2`, with the `tls` feature): the peers
//! that stop short, which no real client library lets a test be.
//!
//! - [`Stall::AfterAnswer`]: the preface, SETTINGS and one `GET`, its whole answer read (the
//!   server's SETTINGS acknowledged), then silence: it never reads or writes again, so it
//!   never acknowledges the PING of a graceful shutdown; the connection is idle.
//! - [`Stall::AfterSettings`]: the preface and SETTINGS only (the server's SETTINGS and
//!   its acknowledgement of ours read), then silence.
//! - [`Stall::HalfPreface`]: half the client preface, then silence.
//!
//! A peer keeps its socket open until dropped. What it read is in [`H2Conn::received`];
//! [`H2Conn::read_to_close`] reads the rest once the server is gone (its GOAWAYs, say).
//!
//! Requests are encoded with HPACK's static table and literals, never Huffman, never
//! indexed: no state to keep. Answers are decoded only as far as a test asks: the status
//! when the server encodes it from the static table (hyper does for 200, 400, 404, 500),
//! and the data of each stream.

use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 §6).
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
}

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
/// SETTINGS_INITIAL_WINDOW_SIZE.
const INITIAL_WINDOW_SIZE: u16 = 0x4;
/// The largest flow-control window.
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// The default window, which the connection's starts at.
const DEFAULT_WINDOW: u32 = 65_535;
/// Bytes of a stream's data kept for the test to look at (the rest is only counted).
const DATA_KEPT: usize = 64 * 1024;

/// One frame the server sent: its header, and its payload unless it is DATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The type ([`kind`]).
    pub kind: u8,
    /// The flags.
    pub flags: u8,
    /// The stream it is on (0: the connection).
    pub stream: u32,
    /// The payload's length.
    pub len: usize,
    /// The payload (empty for DATA, which is counted in [`Received`]).
    pub payload: Vec<u8>,
}

impl Frame {
    /// A GOAWAY's last stream id.
    pub fn last_stream_id(&self) -> Option<u32> {
        let bytes = self.payload.get(..4)?;
        (self.kind == kind::GOAWAY)
            .then(|| u32::from_be_bytes(bytes.try_into().expect("4 bytes")) & MAX_WINDOW)
    }
}

/// What the server sent on a connection, as far as it was read.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// Every frame, in order.
    pub frames: Vec<Frame>,
    /// The status of stream 1's answer, when encoded from HPACK's static table.
    pub status: Option<u16>,
    /// The first 64 KiB of stream 1's data.
    pub data: Vec<u8>,
    /// How many bytes of data stream 1 carried.
    pub data_len: u64,
    /// Stream 1 ended (END_STREAM).
    pub answered: bool,
    /// The connection ended (end of stream, or an error other than a read timeout).
    pub closed: bool,
    /// It ended with a reset (`ECONNRESET`), not a clean end of stream.
    pub reset: bool,
}

impl Received {
    /// The GOAWAY frames.
    pub fn goaways(&self) -> impl Iterator<Item = &Frame> {
        self.frames.iter().filter(|f| f.kind == kind::GOAWAY)
    }
}

/// What a peer does before it falls silent (see the [module](self) docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Asks for `GET /`, reads its whole answer, then never reads or writes again.
    AfterAnswer,
    /// Sends the preface and SETTINGS, reads the server's, then nothing.
    AfterSettings,
    /// Sends half the preface, then nothing.
    HalfPreface,
}

impl Stall {
    /// All three, in the order above.
    pub const ALL: [Stall; 3] = [Stall::AfterAnswer, Stall::AfterSettings, Stall::HalfPreface];

    /// A few words for a table or a failure message.
    pub fn describe(self) -> &'static str {
        match self {
            Stall::AfterAnswer => "answered, then silent (never ACKs the PING)",
            Stall::AfterSettings => "preface and SETTINGS, then silent",
            Stall::HalfPreface => "half a preface, then silent",
        }
    }
}

/// The flow-control window a client announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// HTTP/2's default, 64 KiB: a stream the client does not read stalls in flow control.
    Default,
    /// The largest, for the connection and every stream: a stream the client does not read
    /// stalls in the socket's buffers, as an HTTP/1 one does.
    Largest,
}

trait Transport: Read + Write + Send + Debug {}
impl<T: Read + Write + Send + Debug> Transport for T {}

/// One raw HTTP/2 client connection (see the [module](self) docs).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use graceful_harness::http2::{H2Conn, Stall};
///
/// let addr = "127.0.0.1:3000".parse().unwrap();
/// let mut peer = H2Conn::connect(addr, Duration::from_secs(10)).unwrap();
/// peer.stall(Stall::AfterAnswer).unwrap();
/// assert_eq!((peer.received.status, &peer.received.data[..]), (Some(200), &b"hello"[..]));
/// ```
#[derive(Debug)]
pub struct H2Conn {
    io: Box<dyn Transport>,
    /// The TCP socket under `io`, for its pending error.
    tcp: TcpStream,
    local: SocketAddr,
    scheme: &'static str,
    /// What the server sent so far.
    pub received: Received,
}

impl H2Conn {
    /// Connects over TCP (h2c with prior knowledge), reads bounded by `read_timeout`;
    /// nothing is sent yet.
    ///
    /// # Errors
    ///
    /// The connection failed.
    pub fn connect(addr: SocketAddr, read_timeout: Duration) -> io::Result<H2Conn> {
        let tcp = tcp(addr, read_timeout)?;
        Ok(H2Conn {
            local: tcp.local_addr()?,
            tcp: tcp.try_clone()?,
            io: Box::new(tcp),
            scheme: "http",
            received: Received::default(),
        })
    }

    /// Connects over TLS, trusting and offering what `config` says (it must offer `h2`),
    /// and completes the handshake; nothing of HTTP/2 is sent yet.
    ///
    /// # Errors
    ///
    /// The connection or the handshake failed, or the server did not choose `h2`.
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        addr: SocketAddr,
        config: &std::sync::Arc<rustls::ClientConfig>,
        read_timeout: Duration,
    ) -> io::Result<H2Conn> {
        let mut tcp = tcp(addr, read_timeout)?;
        let local = tcp.local_addr()?;
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut tls = rustls::ClientConnection::new(config.clone(), name)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        if tls.alpn_protocol() != Some(b"h2") {
            return Err(io::Error::other("the server did not choose h2 by ALPN"));
        }
        Ok(H2Conn {
            tcp: tcp.try_clone()?,
            io: Box::new(rustls::StreamOwned::new(tls, tcp)),
            local,
            scheme: "https",
            received: Received::default(),
        })
    }

    /// The socket's pending error, taken (`SO_ERROR`): `ECONNRESET` once the server reset
    /// the connection, even after a clean end of stream was read (a reset that comes after
    /// the server's FIN does not change what reads return).
    ///
    /// # Errors
    ///
    /// The option could not be read.
    pub fn socket_error(&self) -> io::Result<Option<io::Error>> {
        self.tcp.take_error()
    }

    /// The client's own address (the server sees it as the peer's).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sets the connection up as `how` says, then leaves it silent.
    ///
    /// # Errors
    ///
    /// A write or a read failed, or the answer did not come within the read timeout.
    pub fn stall(&mut self, how: Stall) -> io::Result<()> {
        match how {
            Stall::AfterAnswer => {
                self.preface(Window::Default)?;
                self.get(1, "/")?;
                self.read_answer(1)
            }
            Stall::AfterSettings => {
                self.preface(Window::Default)?;
                self.read_until(|frame| frame.kind == kind::SETTINGS && frame.flags & ACK != 0)
            }
            Stall::HalfPreface => self.send(&PREFACE[..PREFACE.len() / 2]),
        }
    }

    /// Writes raw bytes.
    ///
    /// # Errors
    ///
    /// The write failed.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes)?;
        self.io.flush()
    }

    /// Writes the preface and SETTINGS (with `window` as every stream's initial window; a
    /// larger one widens the connection's too, by a WINDOW_UPDATE).
    ///
    /// # Errors
    ///
    /// The write failed.
    pub fn preface(&mut self, window: Window) -> io::Result<()> {
        let mut out = PREFACE.to_vec();
        match window {
            Window::Default => frame(&mut out, kind::SETTINGS, 0, 0, &[]),
            Window::Largest => {
                let mut settings = INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
                settings.extend_from_slice(&MAX_WINDOW.to_be_bytes());
                frame(&mut out, kind::SETTINGS, 0, 0, &settings);
                let increment = MAX_WINDOW - DEFAULT_WINDOW;
                frame(
                    &mut out,
                    kind::WINDOW_UPDATE,
                    0,
                    0,
                    &increment.to_be_bytes(),
                );
            }
        }
        self.send(&out)
    }

    /// Writes `GET path` on `stream` (odd, and above those used before), with no body.
    ///
    /// # Errors
    ///
    /// The write failed.
    pub fn get(&mut self, stream: u32, path: &str) -> io::Result<()> {
        let mut block = vec![
            0x82,                                             // :method GET
            if self.scheme == "https" { 0x87 } else { 0x86 }, // :scheme
        ];
        literal(&mut block, 4, path); // :path
        literal(&mut block, 1, "localhost"); // :authority
        let mut out = Vec::new();
        frame(
            &mut out,
            kind::HEADERS,
            END_STREAM | END_HEADERS,
            stream,
            &block,
        );
        self.send(&out)
    }

    /// Reads one frame and records it; `None` at the end of the stream (or a reset).
    ///
    /// # Errors
    ///
    /// The read timed out or failed otherwise.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 9];
        match self.io.read_exact(&mut head) {
            Ok(()) => {}
            Err(err) if is_end(&err) => {
                self.received.closed = true;
                self.received.reset |= err.kind() == io::ErrorKind::ConnectionReset;
                return Ok(None);
            }
            Err(err) => return Err(err),
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & MAX_WINDOW;
        let mut payload = vec![0; len];
        if let Err(err) = self.io.read_exact(&mut payload) {
            if is_end(&err) {
                self.received.closed = true;
                self.received.reset |= err.kind() == io::ErrorKind::ConnectionReset;
            }
            return Err(err);
        }
        self.note(kind, flags, stream, &payload);
        if kind == kind::DATA {
            payload = Vec::new();
        }
        let frame = Frame {
            kind,
            flags,
            stream,
            len,
            payload,
        };
        self.received.frames.push(frame.clone());
        Ok(Some(frame))
    }

    /// What stream 1's frames say of its answer.
    fn note(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        if stream != 1 {
            return;
        }
        let padding = |payload: &[u8]| -> usize {
            if flags & PADDED != 0 {
                payload.first().map_or(0, |&n| usize::from(n) + 1)
            } else {
                0
            }
        };
        let received = &mut self.received;
        match kind {
            kind::HEADERS if received.status.is_none() => {
                let start = if flags & PADDED != 0 { 1 } else { 0 };
                received.status = payload.get(start).and_then(|&byte| static_status(byte));
            }
            kind::DATA => {
                let data = payload.len().saturating_sub(padding(payload));
                let skip = usize::from(flags & PADDED != 0);
                let room = DATA_KEPT.saturating_sub(received.data.len()).min(data);
                received.data.extend_from_slice(&payload[skip..skip + room]);
                received.data_len += data as u64;
            }
            _ => {}
        }
        if matches!(kind, kind::HEADERS | kind::DATA) && flags & END_STREAM != 0 {
            received.answered = true;
        }
    }

    /// Reads frames until one `done` says is the last, acknowledging the server's SETTINGS
    /// meanwhile.
    ///
    /// # Errors
    ///
    /// The connection ended first, or a read or a write failed.
    pub fn read_until(&mut self, mut done: impl FnMut(&Frame) -> bool) -> io::Result<()> {
        loop {
            let Some(frame) = self.read_frame()? else {
                return Err(io::ErrorKind::UnexpectedEof.into());
            };
            if frame.kind == kind::SETTINGS && frame.flags & ACK == 0 {
                let mut ack = Vec::new();
                self::frame(&mut ack, kind::SETTINGS, ACK, 0, &[]);
                self.send(&ack)?;
            }
            if done(&frame) {
                return Ok(());
            }
        }
    }

    /// Reads until `stream`'s answer has ended (or the stream was reset).
    ///
    /// # Errors
    ///
    /// As [`read_until`](H2Conn::read_until).
    pub fn read_answer(&mut self, stream: u32) -> io::Result<()> {
        self.read_until(|frame| {
            frame.stream == stream
                && (frame.kind == kind::RST_STREAM
                    || matches!(frame.kind, kind::HEADERS | kind::DATA)
                        && frame.flags & END_STREAM != 0)
        })
    }

    /// Reads everything left until the server closes, at most for `bound`: whether it did.
    /// For a peer that was silent until the server exited: what the server sent meanwhile.
    pub fn read_to_close(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while !self.received.closed && Instant::now() < deadline {
            match self.read_frame() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(err) if is_end(&err) => self.received.closed = true,
                Err(err) if is_timeout(&err) => {}
                Err(_) => self.received.closed = true,
            }
        }
        self.received.closed
    }
}

/// A TCP connection to `addr` with reads bounded by `read_timeout`.
fn tcp(addr: SocketAddr, read_timeout: Duration) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(read_timeout))?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Appends a frame.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("a small frame");
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A header field as a literal without indexing, its name from the static table at
/// `index` (below 15), its value not Huffman coded (shorter than 127 bytes).
fn literal(block: &mut Vec<u8>, index: u8, value: &str) {
    assert!(index < 15 && value.len() < 127, "a short literal");
    block.push(index);
    block.push(u8::try_from(value.len()).expect("short"));
    block.extend_from_slice(value.as_bytes());
}

/// The `:status` of an indexed field of HPACK's static table (indices 8 to 14).
fn static_status(byte: u8) -> Option<u16> {
    const STATUS: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    let index = byte.checked_sub(0x88)?;
    STATUS.get(usize::from(index)).copied()
}

/// The connection ended: end of stream or reset (rustls says `UnexpectedEof` for a close
/// without close_notify).
fn is_end(err: &io::Error) -> bool {
    crate::http1::is_close(err)
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_headers_frame_on_its_stream() {
        let mut out = Vec::new();
        let mut block = vec![0x82, 0x86];
        literal(&mut block, 4, "/bytes/8");
        frame(&mut out, kind::HEADERS, END_STREAM | END_HEADERS, 1, &block);
        assert_eq!(&out[..9], &[0, 0, 12, 1, 5, 0, 0, 0, 1]);
        assert_eq!(&out[9..], b"\x82\x86\x04\x08/bytes/8");
    }

    #[test]
    fn statuses_from_the_static_table() {
        assert_eq!(static_status(0x88), Some(200));
        assert_eq!(static_status(0x8d), Some(404));
        assert_eq!(static_status(0x8f), None);
        assert_eq!(static_status(0x48), None);
    }

    #[test]
    fn a_goaway_says_its_last_stream() {
        let goaway = Frame {
            kind: kind::GOAWAY,
            flags: 0,
            stream: 0,
            len: 8,
            payload: vec![0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        };
        assert_eq!(goaway.last_stream_id(), Some(MAX_WINDOW));
    }
}
