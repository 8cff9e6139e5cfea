//! The test plumbing of graceful's suites, written once.
//!
//! Every suite that drives a real server through real sockets and signals takes its pieces
//! from here, so that there is one way to start a server, one way to wait, and one client
//! per protocol:
//!
//! - [`process`]: child processes with their output read line by line, signals, bounded
//!   waits for their exit, and a kill when the handle drops (no orphan servers);
//!   [`Launch::example`] starts one of the example binaries ([`build`]: built by cargo when
//!   missing or older than the sources),
//!   and [`Launch::this_test`] re-runs the current test binary as a server of its own.
//! - [`example`]: an example server that listens ([`Server`]) and the shutdown report it
//!   prints ([`Report`]).
//! - [`wait`]: [`wait_until`], a bounded wait on a condition that names what it waited
//!   for; never a fixed sleep to let things settle.
//! - [`tcp`]: what the kernel's socket table says of a server: whether it listens, and
//!   whether it has accepted a client and read all it was sent.
//! - Clients: [`http1`] (a raw HTTP/1.1 client that tells a close before any answer from a
//!   response cut short), [`http2`] (raw HTTP/2 frames: the peers that stop short),
//!   [`line`](mod@line) (the line protocol of the conformance suite), `tls` (an HTTPS
//!   client and certificates, with the `tls` feature), [`tools`] (curl, h2load and wrk, run
//!   bounded), [`looping`] clients in a tight request loop across a signal, and [`slow`]
//!   readers (none at all, or steady), and a client [`racing`] a listener's close.
//! - [`deploy`]: zero-downtime deploys: a test-owned `NOTIFY_SOCKET`, temporary
//!   directories, processes a hot restart started, and the hot restart scenario the
//!   adapters share.
//!
//! Linux only, like the suites: it reads `/proc`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use graceful_harness::wait_until;
//!
//! let start = std::time::Instant::now();
//! wait_until("a millisecond to pass", Duration::from_secs(5), || {
//!     start.elapsed() >= Duration::from_millis(1)
//! });
//! ```

pub mod build;
pub mod deploy;
pub mod example;
pub mod http1;
pub mod http2;
pub mod line;
pub mod looping;
pub mod process;
pub mod racing;
pub mod slow;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
pub mod tools;
pub mod wait;

pub use example::{Report, Server};
pub use process::{Launch, Process};
pub use wait::{measured, one_at_a_time, wait_for, wait_until};
