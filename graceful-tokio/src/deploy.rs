//! Zero-downtime deploys on tokio (feature `deploy`, Unix): graceful-core's
//! [`DeployRuntime`] for [`Tokio`], so that a [`Server`](crate::Server) takes
//! [`Builder::deploy`](crate::Builder::deploy) and [`Server::listen`](crate::Server::listen).
//!
//! Everything else (socket activation, `sd_notify`, the hot-restart protocol) is
//! graceful-core's, written once for every runtime: see [`Deploy`].
//!
//! # Examples
//!
//! Socket activation, `sd_notify` and hot restart on SIGHUP, in three lines (HTTP with
//! graceful-hyper's handler alike):
//!
//! ```no_run
//! use graceful_tokio::{Conn, Deploy, Server};
//! use tokio::io::AsyncWriteExt;
//! use tokio::net::TcpStream;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = Server::builder().deploy(Deploy::new()).build()?;
//!     let listener = server.listen("0.0.0.0:3000")?;
//!     let report = server
//!         .serve(listener, |mut stream: TcpStream, conn: Conn| async move {
//!             conn.mark_active();
//!             let _ = stream.write_all(b"hello\n").await;
//!             conn.mark_idle();
//!         })
//!         .await;
//!     eprintln!("{report}");
//!     Ok(())
//! }
//! ```

use std::io;

use graceful_core::deploy::{DeployRuntime, RestartSignal, SignalStream};

use crate::signal::Caught;
use crate::Tokio;

#[cfg(doc)]
use crate::Deploy;

/// Both of tokio's calls panic outside a runtime: say so as an error instead.
fn in_runtime() -> io::Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(error) => Err(io::Error::other(format!(
            "deploying needs a tokio runtime (call Server::listen and serve inside one): {error}"
        ))),
    }
}

impl DeployRuntime for Tokio {
    type TcpListener = tokio::net::TcpListener;

    fn tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<tokio::net::TcpListener> {
        in_runtime()?;
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    }

    /// Registered at once, without the runtime (a deploying server is built before it
    /// serves, maybe before its runtime); read by tokio once the server serves.
    fn restart_signals(&self, restart: RestartSignal) -> io::Result<SignalStream> {
        let caught = Caught::register(&[restart.number()])?;
        // One item per signal: `left` counts those read but not handed out yet.
        let signals = futures_util::stream::unfold((caught, 0), |(mut caught, left)| async move {
            let left = match left {
                0 => match caught.next().await {
                    Ok(count) => count,
                    Err(error) => {
                        tracing::error!(%error, "cannot read the restart signal");
                        return None;
                    }
                },
                left => left,
            };
            Some(((), (caught, left - 1)))
        });
        Ok(Box::pin(signals))
    }
}
