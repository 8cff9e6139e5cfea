//! A blocking HTTP/1.1 client over `std::net` that sees every byte: it tells a response
//! from a connection closed before any answer, and from a response cut short. Requests are
//! written by hand, so a test can send half a head, pipeline, or upgrade.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The response says `Connection: close`.
    pub close: bool,
    /// The body (de-chunked); empty for `101 Switching Protocols`.
    pub body: Vec<u8>,
}

/// Why no response was read.
#[derive(Debug)]
pub enum Failure {
    /// The connection ended (end of stream, or reset) before the first byte of a response.
    Closed,
    /// The connection ended in the middle of a response.
    Truncated,
    /// The read timed out, or another error.
    Io(io::Error),
}

/// One client connection.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use graceful_harness::http1::{Conn, Failure};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = std::thread::spawn(move || {
///     let (mut socket, _) = listener.accept().unwrap();
///     let mut head = [0; 64];
///     let _ = socket.read(&mut head).unwrap();
///     socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").unwrap();
/// });
/// let mut conn = Conn::connect(addr, Duration::from_secs(10)).unwrap();
/// let response = conn.get("/").unwrap();
/// assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
/// server.join().unwrap();
/// assert!(matches!(conn.get("/"), Err(Failure::Closed)), "closed before any answer");
/// ```
#[derive(Debug)]
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects, with reads bounded by `read_timeout`.
    pub fn connect(addr: SocketAddr, read_timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    /// The client's own address (the server sees it as the peer's).
    pub fn local_addr(&self) -> SocketAddr {
        self.reader
            .get_ref()
            .local_addr()
            .expect("a connected socket's address")
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Writes `GET path`.
    pub fn send_get(&mut self, path: &str) -> io::Result<()> {
        self.send(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())
    }

    /// Writes `GET path` and reads its response.
    pub fn get(&mut self, path: &str) -> Result<Response, Failure> {
        self.exchange(path).map_err(Failure::from)
    }

    /// Writes `GET path` and reads its response, with the details of a failure.
    pub(crate) fn exchange(&mut self, path: &str) -> Result<Response, Unanswered> {
        self.send_get(path).map_err(|_| Unanswered::Closed)?;
        read_response(&mut self.reader)
    }

    /// Reads one response.
    pub fn response(&mut self) -> Result<Response, Failure> {
        read_response(&mut self.reader).map_err(Failure::from)
    }

    /// Reads exactly `n` bytes of an upgraded connection.
    pub fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; n];
        self.reader.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    /// What is left to read, buffered: for a reader of its own (a steady reader, say).
    pub fn into_reader(self) -> BufReader<TcpStream> {
        self.reader
    }

    /// Waits until the server closes the connection (end of stream or reset) with nothing
    /// more to read; `false` if data came, or nothing within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut byte = [0u8; 1];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            return match self.reader.read(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(err) if is_close(&err) => true,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => false,
            };
        }
    }
}

impl From<Unanswered> for Failure {
    fn from(unanswered: Unanswered) -> Failure {
        match unanswered {
            Unanswered::Ended | Unanswered::Closed => Failure::Closed,
            Unanswered::Truncated => Failure::Truncated,
            Unanswered::Io(err) => Failure::Io(err),
        }
    }
}

/// Why [`read_response`] read no response.
#[derive(Debug)]
pub(crate) enum Unanswered {
    /// The stream ended before the first byte of a response (over TLS: with close_notify).
    Ended,
    /// The peer closed or reset the connection before the first byte (rustls reports a
    /// close without close_notify as `UnexpectedEof`).
    Closed,
    /// The connection ended in the middle of a response.
    Truncated,
    /// The read timed out, or another error.
    Io(io::Error),
}

/// A response's head: what [`read_head`] reads.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: u16,
    pub close: bool,
    /// `Content-Length`.
    pub length: Option<u64>,
    pub chunked: bool,
}

/// Reads one HTTP/1.1 response (`Content-Length`, chunked, or `101` with no body).
pub(crate) fn read_response(reader: &mut impl BufRead) -> Result<Response, Unanswered> {
    let Head {
        status,
        close,
        length,
        chunked,
    } = read_head(reader)?;
    let truncated = |err: io::Error| {
        if is_close(&err) {
            Unanswered::Truncated
        } else {
            Unanswered::Io(err)
        }
    };
    let mut line = String::new();
    let mut body = Vec::new();
    if status == 101 {
        // The connection now speaks the upgraded protocol.
    } else if chunked {
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(truncated)? == 0 {
                return Err(Unanswered::Truncated);
            }
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| Unanswered::Truncated)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).map_err(truncated)?;
            body.extend_from_slice(&chunk[..size]);
            if size == 0 {
                break;
            }
        }
    } else {
        let length = usize::try_from(length.unwrap_or(0)).map_err(|_| Unanswered::Truncated)?;
        body.resize(length, 0);
        reader.read_exact(&mut body).map_err(truncated)?;
    }
    Ok(Response {
        status,
        close,
        body,
    })
}

/// Reads an HTTP/1.1 response's status line and headers.
pub(crate) fn read_head(reader: &mut impl BufRead) -> Result<Head, Unanswered> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Err(Unanswered::Ended),
        Ok(_) => {}
        Err(err) if is_close(&err) => return Err(Unanswered::Closed),
        Err(err) => return Err(Unanswered::Io(err)),
    }
    let truncated = |err: io::Error| {
        if is_close(&err) {
            Unanswered::Truncated
        } else {
            Unanswered::Io(err)
        }
    };
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or(Unanswered::Truncated)?;
    let (mut close, mut length, mut chunked) = (false, None, false);
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(truncated)? == 0 {
            return Err(Unanswered::Truncated);
        }
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        match (name.trim(), value.trim()) {
            ("connection", value) => close |= value.split(',').any(|o| o.trim() == "close"),
            ("content-length", value) => length = value.parse().ok(),
            ("transfer-encoding", value) => chunked = value.contains("chunked"),
            _ => {}
        }
    }
    Ok(Head {
        status,
        close,
        length,
        chunked,
    })
}

/// The peer closed or reset the connection.
pub(crate) fn is_close(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Whether a new connection to `addr` is refused.
///
/// # Examples
///
/// ```
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// assert!(!graceful_harness::http1::refused(addr));
/// drop(listener);
/// assert!(graceful_harness::http1::refused(addr));
/// ```
pub fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Err(err) => err.kind() == io::ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

/// `count` connections that have each sent `sent` (nothing, if it is empty): silent ones,
/// or half a request head, or half a ClientHello.
///
/// # Panics
///
/// If a connection or a write fails.
#[track_caller]
pub fn connections(addr: SocketAddr, count: usize, sent: &[u8]) -> Vec<Conn> {
    (0..count)
        .map(|_| {
            let mut conn = Conn::connect(addr, Duration::from_secs(10)).expect("connect");
            if !sent.is_empty() {
                conn.send(sent).expect("send");
            }
            conn
        })
        .collect()
}

/// Asserts that the server closes each of `conns` within `bound` (of the call), naming
/// `which` ones they are if one stays open.
#[track_caller]
pub fn assert_closed(conns: &mut [Conn], bound: Duration, which: &str) {
    let deadline = Instant::now() + bound;
    for conn in conns {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(conn.closed_within(left), "{which}: one stays open");
    }
}

/// `GET path` on a fresh connection, with `Connection: close`: the status and the body.
///
/// # Errors
///
/// The connection failed, or the server closed it without a whole response.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let mut conn = Conn::connect(addr, Duration::from_secs(10))?;
    let head = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    conn.send(head.as_bytes())?;
    match conn.response() {
        Ok(response) => Ok((
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        )),
        Err(Failure::Io(error)) => Err(error),
        Err(failure) => Err(io::Error::other(format!("GET {path}: {failure:?}"))),
    }
}

/// The process id an example answers `GET /pid` with.
#[track_caller]
pub fn pid_of(addr: SocketAddr) -> u32 {
    let (status, body) = get(addr, "/pid").expect("GET /pid");
    assert_eq!(status, 200, "GET /pid: {body}");
    body.trim().parse().expect("a pid")
}

/// When the server closed each of `conns` (kept-alive connections with nothing more to
/// read), watched all at once with `poll(2)`, until all are closed or `bound` is over: the
/// instants, in no particular order, one per connection closed. Data that arrives on one
/// counts as its close, as no more is expected.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use graceful_harness::http1::{close_times, Conn};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let conns = vec![Conn::connect(addr, Duration::from_secs(10)).unwrap()];
/// drop(listener.accept().unwrap());
/// assert_eq!(close_times(&conns, Duration::from_secs(5)).len(), 1);
/// ```
pub fn close_times(conns: &[Conn], bound: Duration) -> Vec<Instant> {
    use rustix::event::{poll, PollFd, PollFlags};
    let deadline = Instant::now() + bound;
    let mut open: Vec<&TcpStream> = conns.iter().map(|conn| conn.reader.get_ref()).collect();
    let mut closed = Vec::with_capacity(open.len());
    while !open.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let timeout = rustix::event::Timespec::try_from(left).expect("a bounded wait");
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = open
                .iter()
                .map(|stream| PollFd::new(*stream, PollFlags::IN))
                .collect();
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(err) => panic!("poll: {err}"),
            }
            fds.iter().map(|fd| !fd.revents().is_empty()).collect()
        };
        let at = Instant::now();
        let mut ready = ready.into_iter();
        open.retain(|_| {
            let gone = ready.next().unwrap_or(false);
            if gone {
                closed.push(at);
            }
            !gone
        });
    }
    closed
}
