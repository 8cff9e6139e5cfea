#![cfg(unix)]

//! Zero-downtime deploys, runtime neutral and std only: adopt inherited listening sockets
//! (systemd socket activation, or a hot restart's hand-over), tell a service manager how
//! the server is doing (`sd_notify`), and start a new copy of the program that takes the
//! listening sockets over (hot restart).
//!
//! Everything here is blocking or poll-free std code, so that any adapter can use it: the
//! listeners come out as [`std::net::TcpListener`]s (non-blocking, ready to convert to a
//! runtime's type), notifications are single datagrams, and [`Restarter::restart`] blocks
//! its calling thread (run it on a thread of its own, never on a runtime's worker).
//!
//! - [`listenfd`]: [`adopt_tcp_listeners`] takes the sockets named by `LISTEN_FDS`.
//! - [`notify`]: [`Notifier`] sends `READY=1`, `STOPPING=1`, `STATUS=`, `MAINPID=` and
//!   watchdog pings; [`Monitor`] reports a drain's progress on a [`Timer`](crate::Timer).
//! - [`restart`]: [`Restarter`], the parent side of the hand-over protocol.
//!
//! The parent/child protocol is in ARCHITECTURE.md ("Hot restart").

pub mod listenfd;
pub mod notify;
pub mod restart;

pub use self::listenfd::{adopt_tcp_listeners, AdoptError, Adopted};
pub use self::notify::{draining_status, Monitor, Notifier};
pub use self::restart::{Handover, RestartError, Restarter};

/// Set by a restarting parent in its child's environment: the parent's process id. With
/// `LISTEN_PID` unset, the child adopts `LISTEN_FDS` only when this names its parent.
pub const RESTART_PARENT_VAR: &str = "GRACEFUL_RESTART_PARENT";

/// Set by a restarting parent in its child's environment: the service manager's
/// `NOTIFY_SOCKET`, which the child talks to once it has said `READY=1` to the parent's
/// private socket.
pub const NOTIFY_UPSTREAM_VAR: &str = "GRACEFUL_NOTIFY_UPSTREAM";
