//! TLS serving, runtime neutral (feature `tls`): certificates from PEM, a certificate that
//! can be swapped on a live server, the `ServerConfig`, the handshake counters, and the
//! listener and stream themselves.
//!
//! Everything but the runtime's clock and IO traits is here, written once: [`TlsListener`]
//! is a [`Listener`](crate::serve::Listener) on every runtime that implements
//! [`TlsRuntime`] (graceful-tokio's `Tokio`, graceful-smol's `Smol`), and [`TlsStream`] runs
//! the handshake, its deadline and close_notify over futures-io on rustls'
//! `ServerConnection`, with no tokio-rustls or futures-rustls in between.
//!
//! # Why ring
//!
//! The crypto provider is rustls' `ring`: it builds with a C compiler alone. `aws-lc-rs`, the
//! rustls default, needs cmake (and nasm on some targets) on a fresh machine. A user who
//! wants another provider builds their own [`ServerConfig`] and hands it to the listener.
//!
//! # Files
//!
//! - `config.rs`: PEM, [`CertResolver`], [`server_config`], [`TlsError`].
//! - `listener.rs`: [`TlsListener`], [`TlsCounters`], [`TlsRuntime`] and the one `Listener`
//!   impl.
//! - `stream.rs`: [`TlsStream`], the handshake/deadline/close_notify state machine;
//!   `drive.rs`, its rustls side (the handshake loop, rustls' blocking IO over futures-io).

mod config;
mod drive;
mod listener;
mod stream;
#[cfg(test)]
mod tests;

/// rustls, for a [`ServerConfig`] of your own (another crypto provider, client auth).
pub use ::rustls;
pub use rustls::ServerConfig;

pub use self::config::{
    load_pem, load_pem_files, provider, server_config, CertResolver, TlsError, ALPN_H2_HTTP1,
    ALPN_HTTP1,
};
pub use self::listener::{TlsCounters, TlsListener, TlsRuntime, DEFAULT_HANDSHAKE_TIMEOUT};
pub use self::stream::TlsStream;
