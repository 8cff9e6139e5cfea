//! graceful-hyper on tokio, in process, on tokio's paused clock: every duration measured
//! here is virtual, so the bounds are exact and nothing depends on the machine's load.
//!
//! Each module runs with the protocol features it needs, so `cargo test --test tokio
//! --no-default-features --features http1` (or `http2`) tests a single-protocol build;
//! `protocols` runs in every build and checks that what is served is what was compiled in.

// A single-protocol build leaves some of the harness unused.
#[cfg(feature = "http1")]
mod claim;
#[cfg_attr(not(all(feature = "http1", feature = "http2")), allow(dead_code))]
mod common;
#[cfg(feature = "http1")]
mod header_timeout;
mod holders;
#[cfg(feature = "http1")]
mod http1;
#[cfg(feature = "http2")]
mod http2;
mod protocols;
#[cfg(feature = "http2")]
mod retry;
mod stalled;
mod stream_grace;
#[cfg(feature = "http1")]
mod upgrade;
mod watch;
