//! Serving: the accept loop and the server, written once for every runtime.
//!
//! The rest of graceful-core tracks connections and drives the shutdown; this module is the
//! [`Server`] that feeds it: reserve a slot under the listen limit, accept,
//! set the socket options, spawn the [`Handler`] as the connection's task (raced against the
//! kill, panics caught), drive [`Graceful::run`](crate::Graceful::run) and the watchers
//! (signals, triggers) until the shutdown ends. It also decides what an accept error means:
//! skip it (about one connection) or back off (out of descriptors or memory).
//!
//! It names no runtime: what is runtime specific comes through the [`Runtime`] trait, which
//! the adapters (graceful-tokio, graceful-smol) implement, and the [`Listener`] trait,
//! which they implement for their runtime's sockets. Implement both to serve on a runtime
//! that has no adapter. It names no protocol either: a protocol comes as a [`Handler`]
//! (graceful-hyper's HTTP handler, or a closure of yours).

mod accept_error;
mod accept_loop;
mod builder;
mod closing;
mod extension;
mod handler;
mod listener;
mod options;
mod runtime;
mod server;

pub use self::accept_loop::{ConnectionTask, Watcher};
#[cfg(all(unix, feature = "deploy"))]
pub(crate) use self::closing::OwnSockets;
#[cfg(all(unix, feature = "deploy"))]
pub(crate) use self::extension::Extension;
pub use self::handler::Handler;
pub use self::listener::Listener;
pub use self::options::SocketOptions;
pub use self::runtime::Runtime;
pub use self::server::Server;
