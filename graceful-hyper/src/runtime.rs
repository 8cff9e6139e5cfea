//! [`HttpRuntime`]: how a runtime hands its connections to hyper, and the executor hyper
//! gets from the runtime.
//!
//! graceful-hyper names no runtime. What it needs of one is graceful-core's
//! [`Runtime`] (the clock, spawning) and, for each type of connection the runtime's
//! listeners accept, a way to see it as hyper's IO: this trait, which a runtime's adapter
//! implements on its runtime marker (the orphan rule is satisfied by the local marker).

use std::future::Future;

use graceful_core::serve::Runtime;
use hyper::rt::{Read, Write};

/// A runtime whose connections of type `Io` graceful-hyper can serve: how `Io` becomes
/// hyper's IO. With graceful-core's [`Runtime`] (the clock, spawning), it is all a runtime
/// needs for `Http::service` and `serve_http`.
///
/// graceful-tokio implements it for every tokio `AsyncRead + AsyncWrite` stream (through
/// hyper-util's `TokioIo`), graceful-smol for every futures-io stream (through
/// [`HyperIo`](crate::HyperIo), with a faster read for smol's own sockets). For a runtime of
/// your own whose streams are futures-io streams, [`HyperIo`](crate::HyperIo) is the whole
/// implementation.
///
/// # Examples
///
/// A runtime built by hand from async-executor and async-io, and its HTTP hook:
///
/// ```
/// use graceful_core::serve::{ConnectionTask, Runtime, Watcher};
/// use graceful_core::{Shutdown, Sleep, Timer};
/// use graceful_hyper::{HttpRuntime, HyperIo};
/// use std::sync::Arc;
/// use std::time::Instant;
///
/// #[derive(Clone, Debug)]
/// struct Executor(Arc<async_executor::Executor<'static>>);
///
/// #[derive(Clone, Copy, Debug)]
/// struct Clock;
///
/// impl Timer for Clock {
///     fn now(&self) -> Instant {
///         Instant::now()
///     }
///     fn sleep_until(&self, deadline: Instant) -> Sleep {
///         Box::pin(async move {
///             async_io::Timer::at(deadline).await;
///         })
///     }
/// }
///
/// impl Runtime for Executor {
///     type Timer = Clock;
///     fn timer(&self) -> Clock {
///         Clock
///     }
///     fn spawn(&self, task: ConnectionTask) {
///         self.0.spawn(task).detach();
///     }
///     fn signals(&self, _: Shutdown) -> std::io::Result<Watcher> {
///         Err(std::io::ErrorKind::Unsupported.into()) // stopped through `Shutdown` only
///     }
/// }
///
/// // The HTTP hook: the runtime's streams are futures-io streams.
/// impl<Io> HttpRuntime<Io> for Executor
/// where
///     Io: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
/// {
///     fn hyper_io(io: Io) -> impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {
///         HyperIo::new(io)
///     }
/// }
/// ```
pub trait HttpRuntime<Io>: Runtime {
    /// `io`, an accepted connection, as hyper reads and writes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::HttpRuntime;
    ///
    /// /// Any runtime's connection, ready for hyper.
    /// fn for_hyper<R: HttpRuntime<Io>, Io>(io: Io) -> impl hyper::rt::Read + hyper::rt::Write {
    ///     R::hyper_io(io)
    /// }
    /// # let _ = for_hyper::<graceful_tokio::Tokio, tokio::net::TcpStream>;
    /// ```
    fn hyper_io(io: Io) -> impl Read + Write + Unpin + Send + 'static;

    /// Whether dropping an `Io` closes its connection with nothing owed to the peer: a plain
    /// socket, which sends what was written and then the end of the stream. Then the drain
    /// may count an idle HTTP/1 connection closed without waiting for its task, once its
    /// last response was flushed and nothing was read since (graceful-core's
    /// `Conn::offer_close`): a drain of many idle connections is as fast as dropping them.
    /// `false`, the default, for a stream that owes its peer a close handshake, such as
    /// TLS's close_notify, which the connection's task writes. graceful-tokio and
    /// graceful-smol say `true` for their runtimes' TCP and Unix streams.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::HttpRuntime;
    /// use graceful_tokio::Tokio;
    ///
    /// assert!(<Tokio as HttpRuntime<tokio::net::TcpStream>>::closes_plainly());
    /// assert!(!<Tokio as HttpRuntime<tokio::io::DuplexStream>>::closes_plainly());
    /// ```
    fn closes_plainly() -> bool {
        false
    }
}

/// hyper's executor (it runs HTTP/2 streams), made of a runtime's
/// [`spawn`](Runtime::spawn): what an `Http` gives hyper, and what `Http::http2`'s builder
/// holds.
///
/// # Examples
///
/// ```
/// use graceful_hyper::Spawner;
/// use hyper::rt::Executor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (done, finished) = tokio::sync::oneshot::channel();
/// Spawner::new(graceful_tokio::Tokio).execute(async move {
///     done.send(()).unwrap(); // a stream's task, spawned with `tokio::spawn`
/// });
/// finished.await.unwrap();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Spawner<R>(R);

impl<R> Spawner<R> {
    /// hyper's executor on `runtime`.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = graceful_hyper::Spawner::new(graceful_tokio::Tokio);
    /// # let _ = executor;
    /// ```
    pub fn new(runtime: R) -> Spawner<R> {
        Spawner(runtime)
    }
}

impl<R, F> hyper::rt::Executor<F> for Spawner<R>
where
    R: Runtime,
    F: Future<Output = ()> + Send + 'static,
{
    #[inline]
    fn execute(&self, future: F) {
        self.0.spawn(Box::pin(future));
    }
}
