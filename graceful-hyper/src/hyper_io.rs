//! [`HyperIo`]: any futures-io stream as hyper's IO, runtime neutral.
//!
//! hyper reads into memory it has not initialized (`ReadBufCursor`), and a futures-io reader
//! writes into an initialized `&mut [u8]`. Filling hyper's memory straight from the reader
//! would take `unsafe`, and zeroing it before every read costs the read its length again
//! (it made smol-hyper's glue two thirds of a request's cost). Instead each read fills a
//! per-thread scratch buffer, initialized once, and copies what was read into hyper's: a
//! copy of the bytes that arrived, nothing more.
//!
//! # Invariants
//!
//! - No buffer is zeroed per read: the scratch buffer is initialized once per thread.
//! - A read asks the stream for at most [`SCRATCH`] bytes and never more than hyper has room
//!   for, so every byte read is copied out.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use hyper::rt::ReadBufCursor;

/// The largest read handed to the stream at once.
const SCRATCH: usize = 16 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A futures-io stream (smol's, async-std's, async-io's, any) as hyper's IO
/// (`hyper::rt::Read` and `hyper::rt::Write`), without zeroing a buffer per read.
///
/// It is the IO glue a runtime whose streams are futures-io streams needs for
/// `HttpRuntime`; graceful-smol builds its own on it.
///
/// # Examples
///
/// ```
/// use graceful_hyper::HyperIo;
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
    /// use graceful_hyper::HyperIo;
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
    /// use graceful_hyper::HyperIo;
    ///
    /// fn peer(io: &HyperIo<smol::net::TcpStream>) -> std::io::Result<std::net::SocketAddr> {
    ///     io.get_ref().peer_addr()
    /// }
    /// # let _ = peer;
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::HyperIo;
    ///
    /// fn inner(io: &mut HyperIo<Vec<u8>>) -> &mut Vec<u8> {
    ///     io.get_mut()
    /// }
    /// assert!(inner(&mut HyperIo::new(Vec::new())).is_empty());
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The wrapped stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::HyperIo;
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
    #[inline]
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
#[inline]
fn with_scratch<R>(want: usize, read: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH_BUF.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => read(&mut scratch[..want]),
        // Only if a reader polls another `HyperIo` from inside its own read.
        Err(_) => read(&mut vec![0; want]),
    })
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
    #[inline]
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

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::mem::MaybeUninit;

    use futures::io::Cursor;
    use hyper::rt::{Read as _, ReadBuf};

    use super::*;

    #[test]
    fn reads_copy_what_arrived_and_no_more_than_fits() {
        let mut io = HyperIo::new(Cursor::new(b"hello world".to_vec()));
        let mut memory = [MaybeUninit::<u8>::uninit(); 5];
        let mut buf = ReadBuf::uninit(&mut memory);
        let read = poll_fn(|cx| Pin::new(&mut io).poll_read(cx, buf.unfilled()));
        futures::executor::block_on(read).unwrap();
        assert_eq!(buf.filled(), b"hello");
        assert_eq!(io.get_ref().position(), 5, "only what fit was taken");
    }
}
