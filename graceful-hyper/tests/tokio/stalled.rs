//! Stalled writes: a client that asks for a big response and reads none of it is cut at the
//! send timeout, and during a drain after the header grace, counted in the report; a client
//! that reads slowly but steadily keeps its whole response across the drain.

use std::time::Duration;

use graceful_core::{Outcome, DEFAULT_SEND_TIMEOUT};
use graceful_hyper::DEFAULT_HEADER_GRACE;
use tokio::time::Instant;

use crate::common::{settle, since, Server};

/// Far more than the in-memory socket (64 KiB) and hyper's buffers hold.
const BIG: usize = 64 << 20;

/// Waits, up to `bound` and a second, for the one connection's serving task to end cleanly.
async fn cut_within(server: &mut Server, bound: Duration) {
    let served = server.served.pop().expect("one connection");
    tokio::time::timeout(bound + Duration::from_secs(1), served)
        .await
        .expect("cut in time")
        .expect("the serving task")
        .expect("cut, not failed");
}

/// Stops `server`, whose one connection stalls on a client that reads nothing, and checks
/// that the drain cut it within the header grace and counted it (without the cut, the 10 s
/// timeout would kill it).
async fn stop_and_see_it_cut(server: Server) {
    let start = Instant::now();
    server.shutdown.stop();
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.stalled, report.killed),
        (Outcome::Drained, 1, 0),
        "{report}"
    );
    assert_eq!(report.total(), 1);
    assert!(
        report.elapsed <= DEFAULT_HEADER_GRACE && since(start) <= DEFAULT_HEADER_GRACE,
        "{report}"
    );
}

/// After a slow reader got its whole answer across the drain: it read for more than twice
/// the header grace, and the drain counted its connection completed, not cut.
async fn kept_through_the_drain(server: Server, start: Instant) {
    assert!(
        since(start) > 2 * DEFAULT_HEADER_GRACE,
        "slow: {:?}",
        since(start)
    );
    let report = server.report().await;
    assert_eq!(
        (report.outcome, report.completed, report.stalled),
        (Outcome::Drained, 1, 0),
        "{report}"
    );
}

#[cfg(feature = "http1")]
mod http1 {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::common::Client;

    /// A client of `server` that asked for `n` bytes over HTTP/1, once the server has
    /// written what the socket takes.
    async fn asking(server: &mut Server, n: usize) -> Client<tokio::io::DuplexStream> {
        let mut client = Client::new(server.connect());
        client.get(&format!("/bytes/{n}")).await;
        settle().await;
        client
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_reads_nothing_is_cut_at_the_send_timeout() {
        let mut server = Server::start();
        let mut client = asking(&mut server, BIG).await;
        let start = Instant::now();
        assert_eq!(server.shutdown.counts().active, 1, "its response is stuck");

        cut_within(&mut server, DEFAULT_SEND_TIMEOUT).await;
        let waited = since(start);
        assert!(
            waited >= DEFAULT_SEND_TIMEOUT - Duration::from_millis(1)
                && waited <= DEFAULT_SEND_TIMEOUT,
            "{waited:?}"
        );
        assert_eq!(server.shutdown.counts().total(), 0, "closed");
        let mut got = Vec::new();
        client
            .io
            .read_to_end(&mut got)
            .await
            .expect("what was sent, then the end");
        assert!(got.len() < BIG, "cut short: {} bytes", got.len());
        assert!(!server.shutdown.is_shutting_down(), "outside a drain");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_reads_nothing_is_cut_after_the_header_grace_in_a_drain() {
        let mut server = Server::start();
        let client = asking(&mut server, BIG).await;
        stop_and_see_it_cut(server).await;
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_steady_reader_keeps_its_whole_response_across_the_drain() {
        const SIZE: usize = 8 << 20;
        let mut server = Server::start();
        let mut client = asking(&mut server, SIZE).await;
        server.shutdown.stop();
        // 64 KiB every 16 ms, about 4 MiB/s: 2 s for the whole, twice the header grace.
        let start = Instant::now();
        let mut got = 0;
        let mut chunk = vec![0; 64 * 1024];
        loop {
            tokio::time::sleep(Duration::from_millis(16)).await;
            match client.io.read(&mut chunk).await.expect("read") {
                0 => break,
                n => got += n,
            }
        }
        assert!(got > SIZE, "the head and every byte of the body: {got}");
        kept_through_the_drain(server, start).await;
    }
}

#[cfg(feature = "http2")]
mod http2 {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, ReadBuf};

    use super::*;

    /// The client's end of the socket, whose reads stop (pending for ever) once `stopped`.
    struct Deaf<S> {
        io: S,
        stopped: Arc<AtomicBool>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Deaf<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if self.stopped.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Deaf<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.io).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// How an HTTP/2 client stops taking its response.
    #[derive(Clone, Copy)]
    enum Stall {
        /// Windows wide open, and it stops reading its socket once the response's head
        /// arrived: the server's writes stall on the socket.
        Socket,
        /// nghttp2's default window (65,535), and it reads its socket but never the body:
        /// the window stays shut, and the server has nothing it may write.
        Window,
    }

    /// An HTTP/2 client that asks for a big response and stops taking it, as `stall` says.
    async fn deaf_http2_client(server: &mut Server, stall: Stall) -> tokio::task::JoinHandle<()> {
        use http_body_util::Empty;
        use hyper::client::conn::http2;
        use hyper_util::rt::{TokioExecutor, TokioIo};

        let stopped = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(Deaf {
            io: server.connect(),
            stopped: stopped.clone(),
        });
        let window = match stall {
            Stall::Socket => 1 << 30,
            Stall::Window => 65_535,
        };
        let (mut sender, conn) = http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(window)
            .initial_connection_window_size(window)
            .handshake(io)
            .await
            .expect("handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = http::Request::get(format!("http://test/bytes/{BIG}"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("a response");
        assert_eq!(response.status(), 200);
        if let Stall::Socket = stall {
            stopped.store(true, Ordering::SeqCst);
        }
        tokio::spawn(async move {
            let _keep = (response, sender);
            let _ = conn.await;
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_reads_nothing_is_cut_at_the_send_timeout() {
        for stall in [Stall::Socket, Stall::Window] {
            cut_at_the_send_timeout(stall).await;
        }
    }

    async fn cut_at_the_send_timeout(stall: Stall) {
        let mut server = Server::start();
        let client = deaf_http2_client(&mut server, stall).await;
        settle().await;
        let start = Instant::now();
        assert_eq!(server.shutdown.counts().active, 1, "its stream is open");
        cut_within(&mut server, DEFAULT_SEND_TIMEOUT).await;
        let waited = since(start);
        assert!(waited <= DEFAULT_SEND_TIMEOUT, "{waited:?}");
        assert!(
            waited >= DEFAULT_SEND_TIMEOUT - Duration::from_millis(50),
            "{waited:?}"
        );
        assert_eq!(server.shutdown.counts().total(), 0, "closed");
        client.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_reads_nothing_is_cut_after_the_header_grace_in_a_drain() {
        for stall in [Stall::Socket, Stall::Window] {
            let mut server = Server::start();
            let client = deaf_http2_client(&mut server, stall).await;
            settle().await;
            stop_and_see_it_cut(server).await;
            client.abort();
        }
    }

    /// A client with nghttp2's default window that reads its body slowly but steadily: the
    /// server waits on the window between reads, and must not take that for a stall.
    #[tokio::test(start_paused = true)]
    async fn a_slow_steady_reader_with_a_small_window_keeps_its_whole_response_across_the_drain() {
        use http_body_util::{BodyExt, Empty};
        use hyper::client::conn::http2;
        use hyper_util::rt::{TokioExecutor, TokioIo};

        const SIZE: usize = 8 << 20;
        let mut server = Server::start();
        let (mut sender, conn) = http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535)
            .handshake(TokioIo::new(server.connect()))
            .await
            .expect("handshake");
        let conn = tokio::spawn(conn);
        let request = http::Request::get(format!("http://test/bytes/{SIZE}"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let mut body = sender
            .send_request(request)
            .await
            .expect("a response")
            .into_body();
        server.shutdown.stop();
        // 16 KiB every 4 ms, about 4 MiB/s: 2 s for the whole, twice the header grace.
        let start = Instant::now();
        let mut got = 0;
        let mut paced = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("a frame").into_data() {
                got += data.len();
            }
            // A pause per 16 KiB taken, whatever the frames' sizes.
            while got - paced >= 16 * 1024 {
                paced += 16 * 1024;
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        }
        assert_eq!(got, SIZE, "every byte");
        kept_through_the_drain(server, start).await;
        drop(sender);
        let _ = conn.await;
    }
}
