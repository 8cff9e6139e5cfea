//! HTTP on tokio: graceful-hyper's [`HttpRuntime`] for [`Tokio`], through hyper-util's
//! `TokioIo` (tokio's IO traits fill hyper's uninitialized buffer directly: no copy).

use graceful_hyper::HttpRuntime;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Tokio;

/// The HTTP settings of a tokio server: graceful-hyper's [`Http`](graceful_hyper::Http) on
/// [`Tokio`] (its clock, `tokio::spawn` for HTTP/2 streams).
///
/// # Examples
///
/// ```
/// use graceful_tokio::{Http, Server};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let server = Server::builder().signals(false).build()?;
/// let hello = hyper::service::service_fn(|_request| async {
///     Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello")))
/// });
/// let http = Http::new(server.runtime()).header_grace(Duration::from_secs(2));
/// server.shutdown().stop(); // at once, for the example
/// let report = server.serve(listener, http.service(hello)).await;
/// assert_eq!(report.total(), 0);
/// # Ok(()) }
/// ```
#[cfg(any(feature = "http1", feature = "http2"))]
pub type Http = graceful_hyper::Http<Tokio>;

impl<Io> HttpRuntime<Io> for Tokio
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[inline]
    fn hyper_io(io: Io) -> impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {
        TokioIo::new(io)
    }

    /// tokio's TCP and Unix streams: dropping one sends what was written, then the end.
    fn closes_plainly() -> bool {
        let io = std::any::TypeId::of::<Io>();
        #[cfg(unix)]
        if io == std::any::TypeId::of::<tokio::net::UnixStream>() {
            return true;
        }
        io == std::any::TypeId::of::<tokio::net::TcpStream>()
    }
}
