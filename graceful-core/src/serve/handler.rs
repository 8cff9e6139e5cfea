//! `Handler`: what serves each connection a [`Server`](crate::Server) accepts.
//!
//! A closure `Fn(Io, Conn) -> impl Future<Output = ()>` is a handler as it is; a protocol
//! hook (graceful-hyper's HTTP handler) is a type of its own that implements the trait, and
//! says whether its future ends by itself when its connection is killed, so that the serve
//! loop does not also watch the kill beside it.

use std::future::Future;

use crate::Conn;

/// Serves one accepted connection of type `Io`, reporting what it does on its [`Conn`].
///
/// Every closure `Fn(Io, Conn) -> F` with `F: Future<Output = ()>` is a handler; so is
/// graceful-hyper's HTTP handler (`Http::service`). Implement it for a protocol of your own
/// when the handler is a value worth naming, or when its future answers the kill itself
/// ([`ENDS_ON_KILL`](Handler::ENDS_ON_KILL)).
///
/// Rust infers a closure's parameter types only from an `Fn` bound, and [`Server::serve`]
/// takes any handler: give the closure's parameters their types where its body calls
/// methods on them (`|stream: TcpStream, conn: Conn| ...`).
///
/// # What a handler owes the server
///
/// It marks `conn` [active](Conn::mark_active) when a unit of work starts and
/// [idle](Conn::mark_idle) when it is answered, and closes when told to drain: while idle,
/// when [`Conn::drain_requested`] resolves; after a response, when
/// [`Conn::is_server_draining`]. It keeps `conn` for as long as the connection lives.
///
/// # Examples
///
/// A handler type that greets each connection once:
///
/// ```
/// use graceful_core::serve::Handler;
/// use graceful_core::Conn;
/// use std::future::Future;
///
/// struct Greeter {
///     greeting: &'static str,
/// }
///
/// impl Handler<Vec<u8>> for Greeter {
///     fn call(&self, mut io: Vec<u8>, conn: Conn) -> impl Future<Output = ()> + Send + 'static {
///         let greeting = self.greeting;
///         async move {
///             conn.mark_active();
///             io.extend_from_slice(greeting.as_bytes());
///             conn.mark_idle();
///         }
///     }
/// }
///
/// // A closure is a handler as it is.
/// fn handler<Io>(_: &impl Handler<Io>) {}
/// handler::<Vec<u8>>(&Greeter { greeting: "hello" });
/// handler::<Vec<u8>>(&|_io: Vec<u8>, conn: Conn| async move { drop(conn) });
/// ```
///
/// [`Server::serve`]: crate::Server::serve
pub trait Handler<Io>: Send + Sync + 'static {
    /// Whether the future of [`call`](Handler::call) ends by itself, at once, when its
    /// connection is killed ([`Conn::killed`]), closing the connection. Then the server does
    /// not also poll the kill beside it on every wake of the connection's task. `false`
    /// unless a handler says so; graceful-hyper's says so (it looks at the kill first on
    /// every poll). Say so only if it holds: the server trusts it, and a killed connection
    /// whose future goes on keeps its socket open until that future ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::Handler;
    /// use graceful_core::Conn;
    ///
    /// fn ends_on_kill<Io, H: Handler<Io>>(_: &H) -> bool {
    ///     H::ENDS_ON_KILL
    /// }
    /// // A closure is dropped on the kill by the server.
    /// assert!(!ends_on_kill::<u32, _>(&|_: u32, _: Conn| async {}));
    /// ```
    const ENDS_ON_KILL: bool = false;

    /// Serves `io` until the connection closes, reporting its states on `conn`. The future
    /// runs in a task of its own; it is dropped when the connection is killed (unless
    /// [`ENDS_ON_KILL`](Handler::ENDS_ON_KILL)), and a panic in it is caught and logged.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::Handler;
    /// use graceful_core::{Conn, Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new())?;
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// let echo = |line: String, conn: Conn| async move {
    ///     conn.mark_active();
    ///     println!("{line}");
    ///     conn.mark_idle();
    /// };
    /// futures::executor::block_on(echo.call("hello".to_string(), conn));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn call(&self, io: Io, conn: Conn) -> impl Future<Output = ()> + Send + 'static;
}

impl<Io, F, Fut> Handler<Io> for F
where
    F: Fn(Io, Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    #[inline]
    fn call(&self, io: Io, conn: Conn) -> impl Future<Output = ()> + Send + 'static {
        self(io, conn)
    }
}
