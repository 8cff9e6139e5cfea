//! TLS listeners (feature `tls`) on smol and async-std: graceful-core's [`TlsListener`] and
//! [`TlsStream`] as they are.
//!
//! Everything about TLS (the lazy handshake in the connection's task, its deadline, the
//! counters, the handshake's read-only view graceful-hyper reads on each `Conn`,
//! close_notify on close) is written once, in `graceful_core::tls`, over futures-io, which
//! is what smol's and async-std's sockets speak. So this runtime's whole part is to say so: [`Smol`] is a [`TlsRuntime`]
//! with async-io's clock, no wrapper around the socket and none around the stream.

use smol::io::{AsyncRead, AsyncWrite};

use crate::{Smol, SmolTimer, Timer};

pub use graceful_core::tls::rustls::{self, ServerConfig};
pub use graceful_core::tls::{
    load_pem, load_pem_files, provider, server_config, CertResolver, TlsCounters, TlsError,
    TlsListener, TlsRuntime, TlsStream, ALPN_H2_HTTP1, ALPN_HTTP1, DEFAULT_HANDSHAKE_TIMEOUT,
};

impl<IO> TlsRuntime<IO> for Smol
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = IO;
    type Stream = TlsStream<IO>;

    fn timer() -> impl Timer {
        SmolTimer
    }
}
