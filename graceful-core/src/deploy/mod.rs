#![cfg(unix)]

//! Zero-downtime deploys, runtime neutral and std only: adopt inherited listening sockets
//! (systemd socket activation, or a hot restart's hand-over), tell a service manager how
//! the server is doing (`sd_notify`), and start a new copy of the program that takes the
//! listening sockets over (hot restart).
//!
//! # As a server setting
//!
//! [`Deploy`], given to [`Builder::deploy`](crate::Builder::deploy), does it
//! all; [`Server::listen`](crate::Server::listen) gives the listener (inherited, or bound),
//! [`Server::listen_all`](crate::Server::listen_all) several, by name. With graceful-tokio
//! (feature `deploy`):
//!
//! ```text
//! let server = graceful_tokio::Server::builder().deploy(Deploy::new()).build()?;
//! let listener = server.listen("0.0.0.0:3000")?;
//! let http = Http::new(server.runtime()); // graceful-hyper's HTTP settings
//! let report = server.serve(listener, http.service(service)).await;
//! ```
//!
//! The runtime-specific part (the runtime's listener type, the restart signal) is
//! [`DeployRuntime`], which the adapters implement; the rest is written here, once.
//!
//! # The pieces
//!
//! The pieces are blocking or poll-free std code, so that any adapter can use them: the
//! listeners come out as [`std::net::TcpListener`]s (non-blocking, ready to convert to a
//! runtime's type), notifications are single datagrams, and [`Restarter::restart`] blocks
//! its calling thread (run it on a thread of its own, never on a runtime's worker).
//!
//! - [`adopt`]: [`adopt_tcp_listeners`] takes the sockets named by `LISTEN_FDS`, once per
//!   process, and edits no environment variable.
//! - [`notify`]: [`Notifier`] sends `READY=1`, `STOPPING=1`, `STATUS=`, `MAINPID=` and
//!   watchdog pings; [`Monitor`] reports a drain's progress on a [`Timer`](crate::Timer).
//! - [`restart`]: [`Restarter`], the parent side of the hand-over protocol.
//!
//! The parent/child protocol is in ARCHITECTURE.md ("Hot restart").

pub mod adopt;
mod claim;
mod gate;
mod listen;
mod monitor;
pub mod notify;
pub mod restart;
mod runtime;
mod serve;
mod server;

pub use self::adopt::{adopt_tcp_listeners, AdoptError, Adopted};
pub use self::notify::{draining_status, Monitor, Notifier};
pub use self::restart::{Handover, RestartError, Restarter, DEFAULT_RESTART_TIMEOUT};
pub use self::runtime::{DeployRuntime, RestartSignal, SignalStream};
pub use self::serve::Deploy;

/// Set by a restarting parent in its child's environment: the parent's process id. The
/// child adopts `LISTEN_FDS` by `LISTEN_PID` (its own pid) alone; this says the sockets came
/// from a hot restart ([`Adopted::from_restart`]) rather than from systemd.
pub const RESTART_PARENT_VAR: &str = "GRACEFUL_RESTART_PARENT";

/// Set by a restarting parent in its child's environment: the service manager's
/// `NOTIFY_SOCKET`, which the child talks to once it has said `READY=1` to the parent's
/// private socket.
pub const NOTIFY_UPSTREAM_VAR: &str = "GRACEFUL_NOTIFY_UPSTREAM";
