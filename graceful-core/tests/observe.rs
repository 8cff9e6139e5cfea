//! What a shutdown tells those who watch it: `tracing` events at each phase (asserted with a
//! capturing layer) and the live progress API.
//!
//! - `tracing`: the span and the events of each kind of shutdown.
//! - `progress`: `Shutdown::progress`, `changed` and `watch` on the manual timer.
//! - `report`: the slowest connection, the killed ones by state, `Display`, `serde`.

mod common;

#[path = "observe/capture.rs"]
mod capture;
#[path = "observe/progress.rs"]
mod progress;
#[path = "observe/report.rs"]
mod report;
#[path = "observe/tracing.rs"]
mod tracing_events;

use graceful_core::{Builder, Graceful};

fn builder() -> Builder<Graceful> {
    Graceful::builder()
}
