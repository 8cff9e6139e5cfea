//! The error of a served connection.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// Why serving a connection ended in error: the client broke the protocol or the
/// connection failed. Servers usually log it and carry on; it never concerns other
/// connections.
///
/// A connection ended by the drain (closed after its response, or at the end of the header
/// grace) or killed is not an error.
///
/// # Examples
///
/// ```
/// use std::error::Error as _;
///
/// let err = graceful_hyper::Error::from(std::io::Error::other("reset by peer"));
/// assert_eq!(err.to_string(), "serving the http connection failed");
/// assert_eq!(err.source().unwrap().to_string(), "reset by peer");
/// ```
#[derive(Debug)]
pub struct Error {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Http(hyper::Error),
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("serving the http connection failed")
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.source {
            Source::Http(err) => Some(err),
            Source::Io(err) => Some(err),
        }
    }
}

impl From<hyper::Error> for Error {
    fn from(err: hyper::Error) -> Error {
        Error {
            source: Source::Http(err),
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error {
            source: Source::Io(err),
        }
    }
}
