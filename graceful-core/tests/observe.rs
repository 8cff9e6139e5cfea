//! What a shutdown tells those who watch it: `tracing` events at each phase, asserted with a
//! capturing layer.
//!
//! - `tracing`: the span and the events of each kind of shutdown.

mod common;

#[path = "observe/capture.rs"]
mod capture;
#[path = "observe/tracing.rs"]
mod tracing_events;

use graceful_core::{Builder, Graceful};

fn builder() -> Builder {
    Graceful::builder()
}
