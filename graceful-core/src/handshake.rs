//! A connection's handshake before its protocol (TLS), as the protocol sees it: read only.
//!
//! Some streams speak a handshake of their own before the protocol does: a TLS stream runs
//! its handshake on its first reads. While the client is part way through it, a drain must
//! not take the connection for a silent one. The stream holds a [`HandshakeFlag`], which only
//! it raises and lowers; everyone else (the serve loop, which attaches it to the
//! connection's `Conn`, and the protocol hook, which reads it there) gets a
//! [`Handshake`], which can only be read.
//!
//! # Invariants
//!
//! - Only the owner of the [`HandshakeFlag`] writes the flag: it is not `Clone`, and a
//!   [`Handshake`] has no way to write.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The writing side of a handshake's progress, owned by the stream that handshakes.
///
/// The stream raises it when the client's first handshake bytes arrive and lowers it when the
/// handshake ends, whichever way; it hands out read-only [`Handshake`]s. graceful-core's TLS
/// stream keeps one; a stream of your own that handshakes before its protocol (a PROXY
/// protocol header, another TLS library) may too, and its listener returns the view from
/// `Listener::handshake`.
///
/// # Examples
///
/// ```
/// use graceful_core::HandshakeFlag;
///
/// let flag = HandshakeFlag::new();
/// let handshake = flag.handshake(); // for the protocol: read only
/// assert!(!handshake.is_under_way());
/// flag.raise(); // the client's first handshake bytes arrived
/// assert!(handshake.is_under_way());
/// flag.lower(); // the handshake ended
/// assert!(!handshake.is_under_way());
/// ```
#[derive(Default)]
pub struct HandshakeFlag {
    under_way: Arc<AtomicBool>,
}

impl HandshakeFlag {
    /// A flag that is down: no handshake under way yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let flag = graceful_core::HandshakeFlag::new();
    /// assert!(!flag.handshake().is_under_way());
    /// ```
    pub fn new() -> HandshakeFlag {
        HandshakeFlag::default()
    }

    /// The client is part way through the handshake.
    ///
    /// # Examples
    ///
    /// ```
    /// let flag = graceful_core::HandshakeFlag::new();
    /// flag.raise();
    /// assert!(flag.handshake().is_under_way());
    /// ```
    pub fn raise(&self) {
        self.under_way.store(true, Ordering::Release);
    }

    /// The handshake ended, whichever way.
    ///
    /// # Examples
    ///
    /// ```
    /// let flag = graceful_core::HandshakeFlag::new();
    /// flag.raise();
    /// flag.lower();
    /// assert!(!flag.handshake().is_under_way());
    /// ```
    pub fn lower(&self) {
        self.under_way.store(false, Ordering::Release);
    }

    /// A read-only view of this flag.
    ///
    /// # Examples
    ///
    /// ```
    /// let flag = graceful_core::HandshakeFlag::new();
    /// let (one, two) = (flag.handshake(), flag.handshake());
    /// flag.raise();
    /// assert!(one.is_under_way() && two.is_under_way(), "every view sees the flag");
    /// ```
    pub fn handshake(&self) -> Handshake {
        Handshake {
            under_way: self.under_way.clone(),
        }
    }
}

impl fmt::Debug for HandshakeFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeFlag")
            .field("under_way", &self.under_way.load(Ordering::Relaxed))
            .finish()
    }
}

/// A read-only view of a connection's handshake: whether its client is part way through a
/// handshake that comes before the protocol (TLS).
///
/// The serve loop attaches a listener's [`Handshake`] to each connection's `Conn`, where a
/// protocol hook reads it (`Conn::handshake`):
/// graceful-hyper gives a connection drained mid-handshake the header grace, as one that has
/// begun a request head, and closes one whose client has sent nothing at once.
///
/// # Examples
///
/// ```
/// use graceful_core::{Conn, HandshakeFlag};
///
/// /// What a protocol hook asks when the drain reaches a connection that sent no request.
/// fn client_is_speaking(conn: &Conn) -> bool {
///     conn.handshake().is_some_and(|handshake| handshake.is_under_way())
/// }
/// # let _ = client_is_speaking;
/// let flag = HandshakeFlag::new();
/// assert!(!flag.handshake().is_under_way());
/// ```
#[derive(Clone)]
pub struct Handshake {
    under_way: Arc<AtomicBool>,
}

impl Handshake {
    /// Whether the client has sent part of the handshake and it has not ended yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let flag = graceful_core::HandshakeFlag::new();
    /// let handshake = flag.handshake();
    /// assert!(!handshake.is_under_way(), "the client sent nothing yet");
    /// ```
    #[inline]
    pub fn is_under_way(&self) -> bool {
        self.under_way.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("under_way", &self.is_under_way())
            .finish()
    }
}
