//! A minimal HTTP/1.1 client over a tokio `TcpStream`, for the load generator and the drills.
//!
//! Hand-written so that it does the same small amount of work against every server, and so
//! that the drills can see exactly how a connection ended: before any byte of a response
//! ([`Error::Closed`]), in the middle of one ([`Error::Truncated`]), or on the write
//! ([`Error::WriteFailed`]). It speaks just enough HTTP/1.1: `GET` with keep-alive,
//! responses framed by `Content-Length`, `Transfer-Encoding: chunked`, or the end of the
//! connection, and `Connection: close`.
//!
//! # Invariants
//!
//! - Bytes past the end of one response stay buffered for the next one.
//! - A response is returned only once it is complete; anything short of that is an error.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One response, read in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// The server said `Connection: close` (or framed the body by closing).
    pub close: bool,
    pub body_len: usize,
}

/// How a request failed.
#[derive(Debug)]
pub(crate) enum Error {
    /// Writing the request failed (the server had closed or reset the connection).
    WriteFailed,
    /// The connection ended (end of stream or reset) before any byte of the response.
    Closed,
    /// The connection ended in the middle of the response.
    Truncated,
    /// The response is not HTTP/1.1 this client understands.
    Malformed(&'static str),
    /// Any other I/O error.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WriteFailed => f.write_str("writing the request failed"),
            Error::Closed => f.write_str("connection closed before the response"),
            Error::Truncated => f.write_str("connection closed in the middle of the response"),
            Error::Malformed(what) => write!(f, "malformed response: {what}"),
            Error::Io(err) => write!(f, "i/o error: {err}"),
        }
    }
}

/// A connection, plain or TLS: one branch per read or write, the same for every server.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(&mut **stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(&mut **stream).poll_shutdown(cx),
        }
    }
}

/// A keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct Client {
    stream: Stream,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    start: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    /// Complete responses read on this connection.
    pub served: u64,
}

impl Client {
    /// Connects, with `TCP_NODELAY`; over TLS if `addr` is a TLS server of the bench
    /// (`tls.rs`), the handshake done before this returns.
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let stream = match crate::tls::connector_for(addr) {
            None => Stream::Plain(stream),
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from("localhost")
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
                Stream::Tls(Box::new(connector.connect(name, stream).await?))
            }
        };
        Ok(Client {
            stream,
            buf: vec![0; 4096],
            start: 0,
            end: 0,
            served: 0,
        })
    }

    /// The request bytes of `GET path`.
    pub(crate) fn get_request(path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
    }

    /// Writes raw bytes (a request, or part of one).
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|_| Error::WriteFailed)?;
        // TLS may hold ciphertext back until flushed; on TCP this does nothing.
        self.stream.flush().await.map_err(|_| Error::WriteFailed)
    }

    /// Sends `request` and reads its response.
    pub(crate) async fn request(&mut self, request: &[u8]) -> Result<Response, Error> {
        self.send(request).await?;
        self.read_response().await
    }

    /// Waits until the server closes the connection (end of stream or reset), discarding
    /// anything it sends.
    pub(crate) async fn closed(&mut self) {
        loop {
            match self.stream.read(&mut self.buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Reads more bytes; `Ok(false)` at the end of the stream or on a reset.
    async fn fill(&mut self) -> Result<bool, Error> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        match self.stream.read(&mut self.buf[self.end..]).await {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(Error::Io(err)),
        }
    }

    /// Reads one complete response.
    pub(crate) async fn read_response(&mut self) -> Result<Response, Error> {
        let ended = |got_any: bool| {
            if got_any {
                Error::Truncated
            } else {
                Error::Closed
            }
        };
        // The head.
        let head = loop {
            if let Some(head) = parse_head(&self.buf[self.start..self.end])? {
                break head;
            }
            if self.end - self.start > MAX_HEAD {
                return Err(Error::Malformed("head too large"));
            }
            let had = self.end > self.start;
            if !self.fill().await? {
                return Err(ended(had));
            }
        };
        self.start += head.len;
        // The body.
        let body_len = match head.framing {
            Framing::Length(len) => {
                while self.end - self.start < len {
                    if !self.fill().await? {
                        return Err(Error::Truncated);
                    }
                }
                self.start += len;
                len
            }
            Framing::Chunked => loop {
                match parse_chunked(&self.buf[self.start..self.end])? {
                    Some((consumed, len)) => {
                        self.start += consumed;
                        break len;
                    }
                    None => {
                        if !self.fill().await? {
                            return Err(Error::Truncated);
                        }
                    }
                }
            },
            Framing::UntilClose => {
                while self.fill().await? {}
                let len = self.end - self.start;
                self.start = self.end;
                len
            }
        };
        self.served += 1;
        Ok(Response {
            status: head.status,
            close: head.close || matches!(head.framing, Framing::UntilClose),
            body_len,
        })
    }
}

#[derive(Debug)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
struct Head {
    len: usize,
    status: u16,
    close: bool,
    framing: Framing,
}

/// Parses a response head if `buf` holds all of it.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Error> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Error::Malformed("not utf-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(Error::Malformed("not an HTTP/1 status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or(Error::Malformed("bad status code"))?;
    let mut close = version == "HTTP/1.0";
    let mut framing = Framing::UntilClose;
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::Malformed("header without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse()
                .map_err(|_| Error::Malformed("bad content-length"))?;
            framing = Framing::Length(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            close = value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"));
        }
    }
    Ok(Some(Head {
        len: end + 4,
        status,
        close,
        framing,
    }))
}

/// Parses a whole chunked body: `(bytes consumed, payload length)` once complete.
fn parse_chunked(buf: &[u8]) -> Result<Option<(usize, usize)>, Error> {
    let mut at = 0;
    let mut payload = 0;
    loop {
        let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[at..at + eol])
            .map_err(|_| Error::Malformed("chunk size not utf-8"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| Error::Malformed("bad chunk size"))?;
        at += eol + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some((at, payload)));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(Error::Malformed("chunk not followed by CRLF"));
        }
        at += size + 2;
        payload += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_with_content_length_and_close() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nConnection: close\r\n\r\nhello";
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert!(head.close);
        assert!(matches!(head.framing, Framing::Length(5)));
        assert_eq!(&raw[head.len..], b"hello");
    }

    #[test]
    fn incomplete_head_waits_for_more() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-len")
            .unwrap()
            .is_none());
    }

    #[test]
    fn keep_alive_head_is_not_close() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.close);
    }

    #[test]
    fn chunked_body_complete_and_partial() {
        let body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\nNEXT";
        assert_eq!(parse_chunked(body).unwrap(), Some((body.len() - 4, 8)));
        assert_eq!(parse_chunked(&body[..12]).unwrap(), None);
        assert!(parse_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }

    /// A one-connection server on loopback that reads one request, writes `reply`, then
    /// closes.
    async fn serve_once(reply: &'static [u8]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(reply).await;
        });
        addr
    }

    async fn get_once(reply: &'static [u8]) -> Result<Response, Error> {
        let mut client = Client::connect(serve_once(reply).await).await.unwrap();
        client.request(&Client::get_request("/")).await
    }

    #[tokio::test]
    async fn tells_how_a_connection_ended() {
        assert!(matches!(get_once(b"").await, Err(Error::Closed)));
        assert!(matches!(
            get_once(b"HTTP/1.1 200 OK\r\ncontent-le").await,
            Err(Error::Truncated)
        ));
        assert!(matches!(
            get_once(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel").await,
            Err(Error::Truncated)
        ));
    }

    #[tokio::test]
    async fn reads_responses_whole() {
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let response = get_once(chunked).await.unwrap();
        assert_eq!(
            (response.status, response.body_len, response.close),
            (200, 5, false)
        );
        let closing = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok";
        let response = get_once(closing).await.unwrap();
        assert_eq!(
            (response.status, response.body_len, response.close),
            (200, 2, true)
        );
        let until_close = b"HTTP/1.1 200 OK\r\n\r\nbody until the end";
        let response = get_once(until_close).await.unwrap();
        assert_eq!((response.body_len, response.close), (18, true));
    }
}
