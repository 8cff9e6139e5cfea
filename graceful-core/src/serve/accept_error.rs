//! What to do when `accept` fails: skip, or back off.
//!
//! Runtime neutral: it names no runtime. It lives in graceful-core, next to the serve loop
//! that uses it, so that every adapter classifies accept errors and backs off the same way.
//! The error codes are the operating system's (`libc`'s on Unix), not a runtime's.
//!
//! # Invariants
//!
//! - No accept error ends the accept loop or makes it spin: an error about one connection is
//!   skipped at once (the next accept is about another connection), anything else waits a
//!   backoff that grows from [`MIN_BACKOFF`] to [`MAX_BACKOFF`].
//! - One log line per episode: [`Backoff::failed`] says `first` only for the first error after
//!   a success, and [`Backoff::succeeded`] says when an episode ended.

use std::io;
use std::time::Duration;

/// The first wait after a failing accept.
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait between two failing accepts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How the accept loop treats an error from `accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AcceptErrorKind {
    /// About the one connection being accepted (reset or aborted by the peer, refused by a
    /// firewall, interrupted): skip it and accept the next one at once.
    Connection,
    /// The process or the system ran out of descriptors, buffers or memory: wait for some to
    /// be freed, backing off.
    Resources,
    /// Anything else. Most likely it lasts (a broken listener), so back off as for resources
    /// rather than spin, and keep trying: a stop still ends the loop.
    Other,
}

/// Classifies an error returned by a listener's `accept`.
pub(crate) fn classify(error: &io::Error) -> AcceptErrorKind {
    if let Some(code) = error.raw_os_error() {
        if sys::RESOURCES.contains(&code) {
            return AcceptErrorKind::Resources;
        }
        if sys::CONNECTION.contains(&code) {
            return AcceptErrorKind::Connection;
        }
    }
    match error.kind() {
        io::ErrorKind::OutOfMemory => AcceptErrorKind::Resources,
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::TimedOut
        | io::ErrorKind::PermissionDenied
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::NetworkDown => AcceptErrorKind::Connection,
        _ => AcceptErrorKind::Other,
    }
}

#[cfg(unix)]
mod sys {
    /// Out of descriptors (per process, system wide), socket buffers or kernel memory.
    pub(super) const RESOURCES: &[i32] = &[libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM];
    /// What accept(2) reports about the pending connection rather than the listener: Linux's
    /// man page asks servers to retry on these network errors.
    pub(super) const CONNECTION: &[i32] = &[
        libc::ECONNABORTED,
        libc::ECONNRESET,
        libc::EPROTO,
        libc::EPERM,
        libc::EINTR,
        libc::EAGAIN,
        libc::ETIMEDOUT,
        libc::ENETDOWN,
        libc::ENETUNREACH,
        libc::EHOSTDOWN,
        libc::EHOSTUNREACH,
        libc::ENOPROTOOPT,
        libc::EOPNOTSUPP,
    ];
}

#[cfg(not(unix))]
mod sys {
    /// Winsock's WSAEMFILE and WSAENOBUFS (fixed values of the Windows API).
    pub(super) const RESOURCES: &[i32] = &[10024, 10055];
    /// Windows reports the others through `io::ErrorKind`.
    pub(super) const CONNECTION: &[i32] = &[];
}

/// The backoff schedule of an accept loop, and its error episodes.
///
/// An *episode* runs from the first failing accept after a success to the next success.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// The last wait, `None` outside an episode.
    delay: Option<Duration>,
    /// Errors in this episode.
    errors: u64,
}

/// What to do after a failing accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    /// How long to wait before accepting again.
    pub(crate) delay: Duration,
    /// Whether this error opened an episode: log it.
    pub(crate) first: bool,
}

impl Backoff {
    /// Records a failing accept that calls for a backoff.
    pub(crate) fn failed(&mut self) -> Wait {
        self.errors += 1;
        let first = self.delay.is_none();
        let delay = match self.delay {
            None => MIN_BACKOFF,
            Some(last) => (last * 2).min(MAX_BACKOFF),
        };
        self.delay = Some(delay);
        Wait { delay, first }
    }

    /// Records an accepted connection. Returns how many errors the episode it ends had, if
    /// one was under way.
    pub(crate) fn succeeded(&mut self) -> Option<u64> {
        self.delay.take()?;
        Some(std::mem::take(&mut self.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The classification tests speak in Unix error codes.
    #[cfg(unix)]
    #[test]
    fn resource_exhaustion_backs_off() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let error = io::Error::from_raw_os_error(code);
            assert_eq!(classify(&error), AcceptErrorKind::Resources, "{error}");
        }
        let oom = io::Error::from(io::ErrorKind::OutOfMemory);
        assert_eq!(classify(&oom), AcceptErrorKind::Resources);
    }

    #[cfg(unix)]
    #[test]
    fn connection_errors_are_skipped() {
        for code in [
            libc::ECONNABORTED,
            libc::ECONNRESET,
            libc::EPROTO,
            libc::EPERM,
            libc::EINTR,
            libc::EAGAIN,
            libc::EHOSTUNREACH,
        ] {
            let error = io::Error::from_raw_os_error(code);
            assert_eq!(classify(&error), AcceptErrorKind::Connection, "{error}");
        }
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&reset), AcceptErrorKind::Connection);
    }

    #[cfg(unix)]
    #[test]
    fn anything_else_backs_off_too() {
        for error in [
            io::Error::from_raw_os_error(libc::EBADF),
            io::Error::from_raw_os_error(libc::EINVAL),
            io::Error::other("listener gone"),
        ] {
            assert_eq!(classify(&error), AcceptErrorKind::Other, "{error}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_logs_once() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.succeeded(), None, "no episode yet");
        let waits: Vec<Wait> = (0..10).map(|_| backoff.failed()).collect();
        let delays: Vec<u64> = waits.iter().map(|w| w.delay.as_millis() as u64).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        let firsts = waits.iter().filter(|w| w.first).count();
        assert_eq!(
            (waits[0].first, firsts),
            (true, 1),
            "one log line per episode"
        );

        assert_eq!(
            backoff.succeeded(),
            Some(10),
            "the episode ends with its count"
        );
        assert_eq!(backoff.succeeded(), None);
        let again = backoff.failed();
        assert_eq!(
            (again.delay, again.first),
            (MIN_BACKOFF, true),
            "a new episode"
        );
    }
}
