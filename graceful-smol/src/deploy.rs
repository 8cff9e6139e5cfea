//! Zero-downtime deploys on smol and async-std (feature `deploy`, Unix): graceful-core's
//! [`DeployRuntime`] for [`Smol`], so that a [`Server`](crate::Server) takes
//! [`Builder::deploy`](crate::Builder::deploy) and [`Server::listen`](crate::Server::listen).
//!
//! async-std runs on smol's reactor: a `Smol` runtime with async-std's
//! [spawner](Smol::spawner) deploys the same way. Everything else (socket activation,
//! `sd_notify`, the hot-restart protocol) is graceful-core's, written once for every
//! runtime: see [`Deploy`].
//!
//! # Examples
//!
//! Socket activation, `sd_notify` and hot restart on SIGHUP, in three lines (HTTP with
//! graceful-hyper's handler alike):
//!
//! ```no_run
//! use futures::io::AsyncWriteExt;
//! use graceful_smol::{Conn, Deploy, Server};
//! use smol::net::TcpStream;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     smol::block_on(async {
//!         let server = Server::builder().deploy(Deploy::new()).build()?;
//!         let listener = server.listen("0.0.0.0:3000")?;
//!         let report = server
//!             .serve(listener, |mut stream: TcpStream, conn: Conn| async move {
//!                 conn.mark_active();
//!                 let _ = stream.write_all(b"hello\n").await;
//!                 conn.mark_idle();
//!             })
//!             .await;
//!         eprintln!("{report}");
//!         Ok(())
//!     })
//! }
//! ```

use std::io;

use async_signal::{Signal, Signals};
use futures_util::StreamExt;
use graceful_core::deploy::{DeployRuntime, RestartSignal, SignalStream};

use crate::Smol;

#[cfg(doc)]
use crate::Deploy;

impl DeployRuntime for Smol {
    type TcpListener = async_net::TcpListener;

    fn tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<async_net::TcpListener> {
        // async-io makes the socket non-blocking itself.
        async_net::TcpListener::try_from(listener)
    }

    fn restart_signals(&self, restart: RestartSignal) -> io::Result<SignalStream> {
        let signal = match restart {
            RestartSignal::Hangup => Signal::Hup,
            RestartSignal::User1 => Signal::Usr1,
            RestartSignal::User2 => Signal::Usr2,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{other} is not supported on smol"),
                ))
            }
        };
        let signals = Signals::new([signal])?;
        Ok(Box::pin(signals.filter_map(|received| async move {
            match received {
                Ok(_) => Some(()),
                Err(error) => {
                    tracing::debug!(%error, "reading the restart signal failed");
                    None
                }
            }
        })))
    }
}
