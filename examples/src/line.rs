//! A tiny line protocol, written once for every runtime.
//!
//! The server of the `echo_*` examples and of the conformance suite. One request per line:
//!
//! | request       | answer                                                          |
//! |---------------|-----------------------------------------------------------------|
//! | `PING`        | `PONG`                                                          |
//! | `SLEEP <ms>`  | `DONE`, after `<ms>` milliseconds of work (the connection is Active meanwhile); a client that hangs up meanwhile abandons the work |
//! | `PANIC`       | none: the handler panics                                        |
//! | anything else | the line itself, echoed                                         |
//!
//! The handler is generic over the futures-io traits and over graceful-core's [`Timer`], so
//! one function serves smol and async-std streams as they are and tokio streams through
//! tokio-util's `compat`. It shows what a protocol owes graceful: mark the connection active
//! when a request starts and idle once it is answered, close when told to drain while idle,
//! and close after an answer once the server is draining.

use std::future::{pending, Future};
use std::io;
use std::pin::pin;
use std::time::Duration;

use futures::future::{select, Either};
use futures::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use graceful_core::{Conn, Timer};

/// The longest request line accepted, newline included; a longer one closes the connection.
pub const MAX_LINE: usize = 4096;

/// A parsed request line.
///
/// # Examples
///
/// ```
/// use examples::line::Request;
/// use std::time::Duration;
///
/// assert_eq!(Request::parse(b"SLEEP 250\n"), Request::Sleep(Duration::from_millis(250)));
/// assert_eq!(Request::parse(b"PING\r\n"), Request::Ping);
/// assert_eq!(Request::parse(b"hello\n"), Request::Echo);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `PING`: answer `PONG`.
    Ping,
    /// `SLEEP <ms>`: work that long, then answer `DONE`.
    Sleep(Duration),
    /// `PANIC`: the handler panics, to show that the server survives it.
    Panic,
    /// Anything else, `SLEEP` with a bad number included: echo the line.
    Echo,
}

impl Request {
    /// Parses one line, with or without its line ending.
    pub fn parse(line: &[u8]) -> Request {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line {
            b"PING" => Request::Ping,
            b"PANIC" => Request::Panic,
            _ => line
                .strip_prefix(b"SLEEP ")
                .and_then(|ms| std::str::from_utf8(ms).ok()?.parse().ok())
                .map_or(Request::Echo, |ms| {
                    Request::Sleep(Duration::from_millis(ms))
                }),
        }
    }
}

/// Serves the line protocol on one connection until the client leaves or the drain ends it.
///
/// # Examples
///
/// ```
/// use examples::line;
/// use graceful_smol::{Outcome, Server, SmolTimer};
/// use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
///
/// # smol::block_on(async {
/// let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// let server = Server::builder().signals(false).build().unwrap();
/// let shutdown = server.shutdown();
/// let serving = smol::spawn(server.serve(listener, |io, conn| line::serve(io, conn, SmolTimer)));
///
/// let mut client = BufReader::new(smol::net::TcpStream::connect(addr).await?);
/// client.get_mut().write_all(b"PING\n").await?;
/// let mut answer = String::new();
/// client.read_line(&mut answer).await?;
/// assert_eq!(answer, "PONG\n");
///
/// shutdown.stop();
/// assert_eq!(serving.await.outcome, Outcome::Drained);
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub async fn serve<S, T>(io: S, conn: Conn, timer: T)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: Timer,
{
    let mut stream = BufReader::new(io);
    serve_requests(&mut stream, &conn, &timer).await;
    // The connection is counted closed before the client can see it close.
    drop(conn);
    drop(stream);
}

async fn serve_requests<S, T>(stream: &mut BufReader<S>, conn: &Conn, timer: &T)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: Timer,
{
    let mut line = Vec::new();
    loop {
        // Idle: wait for the next request, or for the order to close. A request that has
        // begun to arrive wins over the drain.
        match race(has_data(stream), conn.drain_requested()).await {
            Either::Left(true) => {}
            Either::Left(false) | Either::Right(()) => return,
        }
        conn.mark_active();
        line.clear();
        let answer = match read_line(stream, &mut line).await {
            Ok(true) => answer(stream, &line, timer).await,
            Ok(false) | Err(_) => None,
        };
        let written = match answer {
            Some(answer) => write(stream.get_mut(), answer).await.is_ok(),
            None => false,
        };
        conn.mark_idle();
        if !written || conn.is_draining() {
            return;
        }
    }
}

/// Does the work of one request; `None` if the client left meanwhile.
async fn answer<'a, R, T>(stream: &mut R, line: &'a [u8], timer: &T) -> Option<&'a [u8]>
where
    R: AsyncBufRead + Unpin,
    T: Timer,
{
    match Request::parse(line) {
        Request::Ping => Some(b"PONG\n"),
        Request::Echo => Some(line),
        Request::Panic => panic!("the client asked for a panic"),
        Request::Sleep(work) => {
            let deadline = timer.now().checked_add(work)?;
            match race(timer.sleep_until(deadline), hung_up(stream)).await {
                Either::Left(()) => Some(b"DONE\n"),
                Either::Right(()) => None,
            }
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(writer: &mut W, answer: &[u8]) -> io::Result<()> {
    writer.write_all(answer).await?;
    writer.flush().await
}

/// Whether a request has begun to arrive (`false`: the client left).
async fn has_data<R: AsyncBufRead + Unpin>(reader: &mut R) -> bool {
    matches!(reader.fill_buf().await, Ok(buf) if !buf.is_empty())
}

/// Resolves if the client hangs up; pending while it is there (a pipelined request stays
/// buffered for later).
async fn hung_up<R: AsyncBufRead + Unpin>(reader: &mut R) {
    if has_data(reader).await {
        pending::<()>().await;
    }
}

/// Reads one line into `line`. `Ok(false)` if the stream ended before its newline.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<bool> {
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(false);
        }
        let (used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..used]);
        reader.consume_unpin(used);
        if done {
            return Ok(true);
        }
        if line.len() >= MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request line too long",
            ));
        }
    }
}

/// Waits for the first of two futures; polls `a` first.
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    match select(pin!(a), pin!(b)).await {
        Either::Left((a, _)) => Either::Left(a),
        Either::Right((b, _)) => Either::Right(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let cases: &[(&[u8], Request)] = &[
            (b"PING\n", Request::Ping),
            (b"PING", Request::Ping),
            (b"PANIC\r\n", Request::Panic),
            (b"SLEEP 0\n", Request::Sleep(Duration::ZERO)),
            (b"SLEEP 1500\n", Request::Sleep(Duration::from_millis(1500))),
            (b"SLEEP -1\n", Request::Echo),
            (b"SLEEP\n", Request::Echo),
            (b"ping\n", Request::Echo),
            (b"\n", Request::Echo),
        ];
        for (line, request) in cases {
            assert_eq!(
                Request::parse(line),
                *request,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
