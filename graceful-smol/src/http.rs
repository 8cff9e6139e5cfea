//! HTTP on smol and async-std: graceful-hyper's [`HttpRuntime`] for [`Smol`], through
//! graceful-hyper's futures-io glue ([`HyperIo`]) over this crate's read shortcut for smol's
//! sockets (`serve_io.rs`).

use graceful_hyper::{HttpRuntime, HyperIo};
use smol::io::{AsyncRead, AsyncWrite};

use crate::serve_io::ServeIo;
use crate::Smol;

/// The HTTP settings of a smol or async-std server: graceful-hyper's
/// [`Http`](graceful_hyper::Http) on [`Smol`] (its clock, its spawner for HTTP/2 streams).
///
/// # Examples
///
/// ```
/// use graceful_smol::{Http, Server};
/// use std::time::Duration;
///
/// # smol::block_on(async {
/// let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
/// let server = Server::builder().signals(false).build()?;
/// let hello = hyper::service::service_fn(|_request| async {
///     Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello")))
/// });
/// let http = Http::new(server.runtime()).header_grace(Duration::from_secs(2));
/// server.shutdown().stop(); // at once, for the example
/// let report = server.serve(listener, http.service(hello)).await;
/// assert_eq!(report.total(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[cfg(any(feature = "http1", feature = "http2"))]
pub type Http = graceful_hyper::Http<Smol>;

impl<Io> HttpRuntime<Io> for Smol
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[inline]
    fn hyper_io(io: Io) -> impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {
        HyperIo::new(ServeIo::new(io))
    }

    /// smol's TCP and Unix streams: dropping one sends what was written, then the end.
    fn closes_plainly() -> bool {
        let io = std::any::TypeId::of::<Io>();
        #[cfg(unix)]
        if io == std::any::TypeId::of::<async_net::unix::UnixStream>() {
            return true;
        }
        io == std::any::TypeId::of::<async_net::TcpStream>()
    }
}
