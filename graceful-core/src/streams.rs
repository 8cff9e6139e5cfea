//! [`StreamCounts`]: how a multiplexing protocol's streams ended during the drain, as its
//! hook counts them, for the report. graceful-core sums what each connection hands it
//! (`Conn::count_streams`) and knows nothing of the protocol.

use std::fmt;

/// How the streams of multiplexed connections (HTTP/2's, counted by graceful-hyper) ended
/// during the drain: `ShutdownReport::streams`.
///
/// It answers a client's question after a shutdown, "which of my requests may I send
/// again?": a `refused` stream was never processed and is safe to retry on another
/// connection, whatever its method; a `cut` one may have been processed in part.
///
/// Counted over the drain: from when the drain reached a connection (on HTTP/2, the first
/// GOAWAY it sent, or its kill) to its close. Streams that ended before, and connections
/// the drain never reached, are not in it.
///
/// # Examples
///
/// ```
/// use graceful_core::StreamCounts;
///
/// let streams = StreamCounts::new(8, 2, 1);
/// assert_eq!(streams.total(), 11);
/// assert_eq!(streams.to_string(), "8 completed, 2 refused, 1 cut");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct StreamCounts {
    /// Streams whose response ended normally (on HTTP/2, an END_STREAM was written).
    pub completed: usize,
    /// Streams the client opened that the server did not process, which the client may
    /// retry (on HTTP/2, reset with REFUSED_STREAM; RFC 9113, 8.7).
    pub refused: usize,
    /// Streams processed, perhaps in part, that did not complete: reset by the server with
    /// another error code, or in flight when their connection was killed or cut.
    pub cut: usize,
}

impl StreamCounts {
    /// The counts `completed`, `refused` and `cut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::StreamCounts;
    ///
    /// let streams = StreamCounts::new(1, 2, 3);
    /// assert_eq!((streams.completed, streams.refused, streams.cut), (1, 2, 3));
    /// ```
    pub fn new(completed: usize, refused: usize, cut: usize) -> StreamCounts {
        StreamCounts {
            completed,
            refused,
            cut,
        }
    }

    /// Every stream counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::StreamCounts;
    ///
    /// assert_eq!(StreamCounts::default().total(), 0);
    /// assert_eq!(StreamCounts::new(8, 2, 1).total(), 11);
    /// ```
    pub fn total(&self) -> usize {
        self.completed + self.refused + self.cut
    }

    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: StreamCounts) {
        self.completed += other.completed;
        self.refused += other.refused;
        self.cut += other.cut;
    }
}

/// `8 completed, 2 refused, 1 cut`.
impl fmt::Display for StreamCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} completed, {} refused, {} cut",
            self.completed, self.refused, self.cut
        )
    }
}
