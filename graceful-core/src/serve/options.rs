//! `SocketOptions`: what the serve loop sets on every accepted TCP socket.
//!
//! The options are plain data; [`SocketOptions::apply_to`] sets them through `socket2` on
//! anything that owns a socket (any `AsFd` on Unix, any `AsSocket` on Windows), so an
//! adapter's listener sets them on its runtime's stream without this crate naming the runtime.

#[cfg(any(unix, windows))]
use std::io;
use std::time::Duration;

use crate::{ConfigError, MAX_DURATION};

/// Go's default TCP keep-alive period for accepted connections.
const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(3 * 60);

/// Options applied to every accepted socket, passed to
/// [`Listener::configure`](crate::serve::Listener::configure): what a listener reads. They
/// are set on the server's builder (`tcp_keepalive`, `no_tcp_keepalive`, `tcp_nodelay`),
/// which checks them; `default()` gives the defaults, for a listener's tests.
///
/// # Examples
///
/// ```
/// use graceful_core::serve::SocketOptions;
/// use std::time::Duration;
///
/// let options = SocketOptions::default();
/// assert_eq!(options.tcp_keepalive(), Some(Duration::from_secs(180)));
/// assert!(!options.tcp_nodelay());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    tcp_keepalive: Option<Duration>,
    tcp_nodelay: bool,
}

impl SocketOptions {
    /// The TCP keep-alive period (Go's `TCPKeepAlive`): probes start after the connection
    /// was silent this long, and repeat at this interval. `None`: left as the system has it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::SocketOptions;
    /// use std::time::Duration;
    ///
    /// // Go's default, as the serve loop sets it unless told otherwise.
    /// assert_eq!(SocketOptions::default().tcp_keepalive(), Some(Duration::from_secs(180)));
    /// ```
    pub fn tcp_keepalive(&self) -> Option<Duration> {
        self.tcp_keepalive
    }

    /// Whether `TCP_NODELAY` is set (Nagle's algorithm off). `false` leaves the system
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::SocketOptions;
    ///
    /// assert!(!SocketOptions::default().tcp_nodelay());
    /// ```
    pub fn tcp_nodelay(&self) -> bool {
        self.tcp_nodelay
    }

    /// These options with the keep-alive period set to `period` (checked by `validate`).
    pub(crate) fn with_tcp_keepalive(self, period: Duration) -> SocketOptions {
        SocketOptions {
            tcp_keepalive: Some(period),
            ..self
        }
    }

    /// These options with TCP keep-alive left as the system has it (usually off).
    pub(crate) fn without_tcp_keepalive(self) -> SocketOptions {
        SocketOptions {
            tcp_keepalive: None,
            ..self
        }
    }

    /// These options with `TCP_NODELAY` set (`true`) or left as the system has it (`false`).
    pub(crate) fn with_tcp_nodelay(self, nodelay: bool) -> SocketOptions {
        SocketOptions {
            tcp_nodelay: nodelay,
            ..self
        }
    }

    /// Checks that the system can take these options: a keep-alive period neither zero nor
    /// longer than [`MAX_DURATION`].
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match self.tcp_keepalive {
            Some(period) if period.is_zero() => Err(ConfigError::ZeroTcpKeepalive),
            Some(period) if period > MAX_DURATION => Err(ConfigError::TcpKeepaliveTooLong(period)),
            _ => Ok(()),
        }
    }

    /// Sets these options on a connected TCP socket: any type that owns one, such as a
    /// runtime's TCP stream. This is what the adapters' TCP listeners do in
    /// [`Listener::configure`](crate::serve::Listener::configure).
    ///
    /// # Errors
    ///
    /// The operating system's, when an option cannot be set (for instance on a socket that
    /// is not TCP).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::SocketOptions;
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let (accepted, _) = listener.accept()?;
    ///
    /// let options = SocketOptions::default(); // keep-alive every 3 minutes
    /// options.apply_to(&accepted)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn apply_to(&self, socket: &impl std::os::fd::AsFd) -> io::Result<()> {
        self.apply(socket2::SockRef::from(socket))
    }

    /// Sets these options on a connected TCP socket: any type that owns one, such as a
    /// runtime's TCP stream. This is what the adapters' TCP listeners do in
    /// [`Listener::configure`](crate::serve::Listener::configure).
    ///
    /// # Errors
    ///
    /// The operating system's, when an option cannot be set (for instance on a socket that
    /// is not TCP).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::SocketOptions;
    /// use std::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let (accepted, _) = listener.accept()?;
    ///
    /// SocketOptions::default().apply_to(&accepted)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(windows)]
    pub fn apply_to(&self, socket: &impl std::os::windows::io::AsSocket) -> io::Result<()> {
        self.apply(socket2::SockRef::from(socket))
    }

    #[cfg(any(unix, windows))]
    fn apply(&self, socket: socket2::SockRef<'_>) -> io::Result<()> {
        if let Some(period) = self.tcp_keepalive {
            let keepalive = socket2::TcpKeepalive::new().with_time(period);
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "windows",
            ))]
            let keepalive = keepalive.with_interval(period);
            socket.set_tcp_keepalive(&keepalive)?;
        }
        if self.tcp_nodelay {
            socket.set_tcp_nodelay(true)?;
        }
        Ok(())
    }
}

impl Default for SocketOptions {
    /// Keep-alive every 3 minutes, like Go; `TCP_NODELAY` left as the system has it.
    fn default() -> SocketOptions {
        SocketOptions {
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            tcp_nodelay: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(SocketOptions::default().validate(), Ok(()));
    }

    #[test]
    fn a_keepalive_the_system_refuses_is_refused() {
        let options = SocketOptions::default();
        let zero = options.with_tcp_keepalive(Duration::ZERO);
        assert_eq!(zero.validate(), Err(ConfigError::ZeroTcpKeepalive));
        let long = options.with_tcp_keepalive(Duration::MAX);
        assert_eq!(
            long.validate(),
            Err(ConfigError::TcpKeepaliveTooLong(Duration::MAX))
        );
        assert_eq!(options.without_tcp_keepalive().validate(), Ok(()));
        assert_eq!(options.with_tcp_keepalive(MAX_DURATION).validate(), Ok(()));
    }

    #[test]
    fn the_setters_set_what_they_say() {
        let options = SocketOptions::default()
            .with_tcp_keepalive(Duration::from_secs(30))
            .with_tcp_nodelay(true);
        assert_eq!(options.tcp_keepalive(), Some(Duration::from_secs(30)));
        assert!(options.tcp_nodelay());
        assert_eq!(options.without_tcp_keepalive().tcp_keepalive(), None);
    }
}
