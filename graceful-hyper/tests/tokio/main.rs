//! graceful-hyper on tokio, in process, on tokio's paused clock: every duration measured
//! here is virtual, so the bounds are exact and nothing depends on the machine's load.

mod common;
mod header_timeout;
mod http1;
mod http2;
mod upgrade;
mod watch;
