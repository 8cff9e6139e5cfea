//! HTTP on smol and async-std: graceful-hyper with this crate's own IO glue and executor.
//!
//! # Invariants
//!
//! - [`HyperIo`] never zeroes a buffer per read. hyper hands out uninitialized memory, and
//!   filling it straight from a futures-io reader would take `unsafe` (or zeroing it first,
//!   which is what made smol-hyper's glue cost two thirds of a request). Instead each read
//!   fills a per-thread scratch buffer, initialized once, and copies what was read: a copy
//!   of the bytes that arrived, nothing more.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper::rt::ReadBufCursor;
use smol::io::{AsyncRead, AsyncWrite};

use crate::Smol;

/// The HTTP settings of a smol or async-std server: graceful-hyper's, on
/// [`SmolTimer`](crate::SmolTimer) and [`SmolExecutor`]. Adjust them with
/// [`Builder::http`](graceful_core::ServerBuilder::http).
pub type Http = graceful_hyper::Http<SmolExecutor>;

/// hyper's executor (HTTP/2 streams) on a [`Smol`] runtime: smol's global executor, or the
/// runtime's spawner.
#[derive(Clone, Debug, Default)]
pub struct SmolExecutor(pub Smol);

impl<F> hyper::rt::Executor<F> for SmolExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.run(future);
    }
}

/// The largest read handed to the inner reader at once.
pub(crate) const SCRATCH: usize = 16 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A futures-io stream (smol's, async-std's) as hyper's IO, without zeroing per read.
///
/// # Examples
///
/// ```
/// use graceful_smol::HyperIo;
///
/// # smol::block_on(async {
/// let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
/// let stream = smol::net::TcpStream::connect(listener.local_addr()?).await?;
/// let io = HyperIo::new(stream); // hyper::rt::Read + hyper::rt::Write
/// # drop(io);
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
}

impl<T> HyperIo<T> {
    /// Wraps `inner`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_smol::HyperIo;
    ///
    /// fn hyper_io(stream: smol::net::TcpStream) -> impl hyper::rt::Read + hyper::rt::Write {
    ///     HyperIo::new(stream)
    /// }
    /// # let _ = hyper_io;
    /// ```
    pub fn new(inner: T) -> HyperIo<T> {
        HyperIo { inner }
    }

    /// The wrapped stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_smol::HyperIo;
    ///
    /// fn peer(io: HyperIo<smol::net::TcpStream>) -> std::io::Result<std::net::SocketAddr> {
    ///     io.into_inner().peer_addr()
    /// }
    /// # let _ = peer;
    /// ```
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let want = buf.remaining().min(SCRATCH);
        let mut inner = Pin::new(&mut self.get_mut().inner);
        with_scratch(want, |scratch| {
            let n = ready!(inner.as_mut().poll_read(cx, scratch))?;
            buf.put_slice(&scratch[..n]);
            Poll::Ready(Ok(()))
        })
    }
}

/// Runs `read` on `want` bytes of this thread's scratch buffer (`want` at most [`SCRATCH`]).
pub(crate) fn with_scratch<R>(want: usize, read: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH_BUF.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => read(&mut scratch[..want]),
        // Only if a reader polls another `HyperIo` from inside its own read.
        Err(_) => read(&mut vec![0; want]),
    })
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

graceful_hyper::__serve_http_on!(Smol, crate::serve_io::ServeIo::new, AsyncRead + AsyncWrite);
