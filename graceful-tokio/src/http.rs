//! HTTP on tokio: graceful-hyper with hyper-util's tokio IO and executor.

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Tokio;

/// The HTTP settings of a tokio server: graceful-hyper's, on [`TokioTimer`](crate::TokioTimer)
/// and hyper-util's `TokioExecutor`. Adjust them with
/// [`Builder::http`](graceful_core::ServerBuilder::http).
pub type Http = graceful_hyper::Http<TokioExecutor>;

graceful_hyper::__serve_http_on!(Tokio, TokioIo::new, AsyncRead + AsyncWrite);
