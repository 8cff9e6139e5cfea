//! The server side of the line protocol the suite speaks, written once for every runtime:
//! generic over the futures-io traits and graceful-core's [`Timer`], so one function serves
//! smol and async-std streams as they are and tokio streams through tokio-util's `compat`.
//!
//! | request       | answer                                                          |
//! |---------------|-----------------------------------------------------------------|
//! | `PING`        | `PONG`                                                          |
//! | `SLEEP <ms>`  | `DONE`, after `<ms>` milliseconds of work (the connection is Active meanwhile); a client that hangs up meanwhile abandons the work |
//! | `PANIC`       | none: the handler panics                                        |
//! | anything else | the line itself, echoed                                         |
//!
//! What a protocol owes graceful: mark the connection active when a request starts and idle
//! once it is answered, close when told to drain while idle, and close after an answer once
//! the server is draining.

use std::future::{pending, Future};
use std::pin::pin;
use std::time::Duration;

use futures::future::{select, Either};
use futures::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use graceful_core::{Conn, Timer};

/// Serves the line protocol on one connection until the client leaves or the drain ends it.
pub async fn serve<S, T>(io: S, conn: Conn, timer: T)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: Timer,
{
    let mut stream = BufReader::new(io);
    let mut line = Vec::new();
    loop {
        // Idle: wait for the next request, or for the order to close. A request that has
        // begun to arrive wins over the drain.
        match race(has_data(&mut stream), conn.drain_requested()).await {
            Either::Left(true) => {}
            Either::Left(false) | Either::Right(()) => break,
        }
        conn.mark_active();
        line.clear();
        let answer = match stream.read_until(b'\n', &mut line).await {
            Ok(_) if line.ends_with(b"\n") => answer(&mut stream, &line, &timer).await,
            _ => None,
        };
        let written = match answer {
            Some(answer) => {
                let writer = stream.get_mut();
                writer.write_all(answer).await.is_ok() && writer.flush().await.is_ok()
            }
            None => false,
        };
        conn.mark_idle();
        if !written || conn.is_server_draining() {
            break;
        }
    }
    // The connection is counted closed before the client can see it close.
    drop(conn);
    drop(stream);
}

/// Does the work of one request; `None` if the client left meanwhile.
async fn answer<'a, R, T>(stream: &mut R, line: &'a [u8], timer: &T) -> Option<&'a [u8]>
where
    R: AsyncBufRead + Unpin,
    T: Timer,
{
    let request = line.strip_suffix(b"\n").unwrap_or(line);
    let request = request.strip_suffix(b"\r").unwrap_or(request);
    let sleep = request
        .strip_prefix(b"SLEEP ")
        .and_then(|ms| std::str::from_utf8(ms).ok()?.parse().ok());
    match (request, sleep) {
        (b"PING", _) => Some(b"PONG\n"),
        (b"PANIC", _) => panic!("the client asked for a panic"),
        (_, Some(ms)) => {
            let deadline = timer.now().checked_add(Duration::from_millis(ms))?;
            match race(timer.sleep_until(deadline), hung_up(stream)).await {
                Either::Left(()) => Some(b"DONE\n"),
                Either::Right(()) => None,
            }
        }
        _ => Some(line),
    }
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

/// Waits for the first of two futures; polls `a` first.
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    match select(pin!(a), pin!(b)).await {
        Either::Left((a, _)) => Either::Left(a),
        Either::Right((b, _)) => Either::Right(b),
    }
}
