//! What the examples' listeners need besides their flags: a Unix socket's file, removed
//! when the server is done ([`SocketFile`]); the HTTPS examples' plain-HTTP listener's
//! answer ([`redirect`]) and their handshake counts summed over listeners ([`handshakes`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use graceful_core::tls::TlsCounters;
use http::uri::Authority;
use http::{header, HeaderValue, Request, Response, StatusCode};

use crate::{Addr, Body, StartError};

/// A Unix socket's file, which the example bound: removed when this drops (after the
/// report, or when the start fails after the bind), so that the next start finds the path
/// free. A process killed leaves it behind; remove it by hand.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl SocketFile {
    /// Binds `path` with `bind` (the runtime's `UnixListener::bind`); returns the listener
    /// and its file.
    ///
    /// # Errors
    ///
    /// `bind` failed, as `cannot listen on unix:/PATH: ...` (exit code 1): a path in use
    /// (`Address already in use`, a file there even if nothing listens), a directory
    /// missing, a path too long.
    pub fn bind<L>(
        path: &Path,
        bind: impl FnOnce(PathBuf) -> io::Result<L>,
    ) -> Result<(L, SocketFile), StartError> {
        let listener = bind(path.to_owned())
            .map_err(|error| StartError::listen(&Addr::Unix(path.to_owned()).to_string(), error))?;
        Ok((listener, SocketFile(path.to_owned())))
    }
}

impl fmt::Display for SocketFile {
    /// `unix:/PATH`, as in `listening on unix:/PATH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix:{}", self.0.display())
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The answer of an HTTPS example's plain-HTTP listener (`--redirect-addr`) to every
/// request: `308 Permanent Redirect` to the same host, on `https_port`, with the same
/// path and query (a 308 keeps the method and the body, where a 301 lets a client turn a
/// POST into a GET). The host is the request's (its `Host` header, or HTTP/2's
/// `:authority`), its port replaced; `400` when it has none.
///
/// # Examples
///
/// ```
/// let request = http::Request::get("/a?b=c").header("host", "localhost:8080").body(()).unwrap();
/// let response = contract::redirect(&request, 8443);
/// assert_eq!(response.status(), 308);
/// assert_eq!(response.headers()["location"], "https://localhost:8443/a?b=c");
/// ```
pub fn redirect<B>(request: &Request<B>, https_port: u16) -> Response<Body> {
    // HTTP/2's `:authority`, else the `Host` header; its host (an IPv6 one in brackets).
    let authority = (request.uri().authority().cloned()).or_else(|| {
        let host = request.headers().get(header::HOST)?.to_str().ok()?;
        host.parse::<Authority>().ok()
    });
    let Some(host) = authority.as_ref().map(Authority::host) else {
        let mut response = Response::new(Body::from("a Host header is needed to redirect"));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let port = match https_port {
        443 => String::new(),
        port => format!(":{port}"),
    };
    let location = format!("https://{host}{port}{path}");
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    match HeaderValue::try_from(location) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Err(_) => *response.status_mut() = StatusCode::BAD_REQUEST,
    }
    response
}

/// The handshakes of every TLS listener of a server, summed, for its last line:
/// `3 completed, 1 failed, 0 timed out`.
///
/// # Examples
///
/// ```
/// use graceful_core::tls::TlsCounters;
///
/// let line = contract::handshakes(&[TlsCounters::default(), TlsCounters::default()]);
/// assert_eq!(line, "0 completed, 0 failed, 0 timed out");
/// ```
pub fn handshakes(counters: &[TlsCounters]) -> String {
    let sum = |count: fn(&TlsCounters) -> u64| counters.iter().map(count).sum::<u64>();
    format!(
        "{} completed, {} failed, {} timed out",
        sum(TlsCounters::completed),
        sum(TlsCounters::failed),
        sum(TlsCounters::timed_out)
    )
}
