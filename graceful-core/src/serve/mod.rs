//! Serving: the accept loop, written once.
//!
//! The rest of graceful-core tracks connections and drives the shutdown; this module is the
//! loop that feeds it: reserve a slot under the listen limit, accept, set the socket options,
//! spawn the handler as the connection's task (raced against the kill, panics caught), drive
//! [`Graceful::run`](crate::Graceful::run) and the watchers (signals, triggers) until the
//! shutdown ends. It also decides what an accept error means: skip it (about one
//! connection) or back off (out of descriptors or memory).
//!
//! It names no runtime. The adapters (graceful-tokio, graceful-smol) use it: they bring a
//! [`Listener`] for their runtime's sockets, their [`Timer`](crate::Timer) and spawn
//! function in a [`Setup`], and call [`serve`]. Use it directly to serve on a runtime that
//! has no adapter.

mod accept_error;
mod accept_loop;
mod listener;
mod options;

pub use self::accept_loop::{serve, ConnectionTask, Setup, Spawn, Watcher};
pub use self::listener::Listener;
pub use self::options::SocketOptions;
