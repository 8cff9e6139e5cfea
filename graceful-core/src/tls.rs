//! The runtime-neutral half of TLS serving: certificates from PEM, a certificate that can be
//! swapped on a live server, the `ServerConfig` the adapters' TLS listeners use, and the
//! handshake counters (feature `tls`).
//!
//! [`TlsListener`] is here too, settings and all: the adapters (graceful-tokio and
//! graceful-smol, feature `tls`) implement `Listener` for it on their runtime, and their
//! `TlsStream`s run the handshakes. Everything here is plain rustls and std, so it is written
//! once.
//!
//! # Why ring
//!
//! The crypto provider is rustls' `ring`: it builds with a C compiler alone. `aws-lc-rs`, the
//! rustls default, needs cmake (and nasm on some targets) on a fresh machine. A user who
//! wants another provider builds their own [`ServerConfig`] and hands it to the listener.
//!
//! # Invariants
//!
//! - A certificate and key are checked together when they are loaded ([`load_pem`]): an
//!   unreadable file, an empty chain, a missing key and a key that does not match the
//!   certificate are all errors then, never at the first handshake.
//! - [`CertResolver::set`] affects only handshakes that start after it: a handshake reads the
//!   current certificate once, and an established connection keeps the one it was served.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// rustls, for a [`ServerConfig`] of your own (another crypto provider, client auth).
pub use ::rustls;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocols offered when HTTP/2 is on: `h2`, then `http/1.1`.
pub const ALPN_H2_HTTP1: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The ALPN protocols offered for HTTP/1 only.
pub const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];

/// Why a certificate, a key or a TLS configuration could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate PEM holds something that is not a certificate.
    CertPem(rustls_pki_types::pem::Error),
    /// The certificate PEM holds no certificate.
    EmptyChain,
    /// The key PEM holds no private key (or not one in a known format).
    NoKey(rustls_pki_types::pem::Error),
    /// The crypto provider cannot use the key.
    Key(rustls::Error),
    /// The key does not belong to the first certificate of the chain.
    Mismatch(rustls::Error),
    /// rustls refused the configuration.
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::CertPem(error) => write!(f, "bad certificate PEM: {error}"),
            TlsError::EmptyChain => f.write_str("the certificate PEM holds no certificate"),
            TlsError::NoKey(error) => write!(f, "no private key in the key PEM: {error}"),
            TlsError::Key(error) => write!(f, "unusable private key: {error}"),
            TlsError::Mismatch(error) => {
                write!(f, "the key does not match the certificate: {error}")
            }
            TlsError::Config(error) => write!(f, "bad TLS configuration: {error}"),
        }
    }
}

impl StdError for TlsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            TlsError::CertPem(error) | TlsError::NoKey(error) => Some(error),
            TlsError::Key(error) | TlsError::Mismatch(error) | TlsError::Config(error) => {
                Some(error)
            }
            TlsError::EmptyChain => None,
        }
    }
}

/// The crypto provider graceful's TLS uses: rustls' `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key from PEM text, checked to belong together.
///
/// # Errors
///
/// [`TlsError::EmptyChain`], [`TlsError::CertPem`], [`TlsError::NoKey`], [`TlsError::Key`],
/// [`TlsError::Mismatch`].
///
/// # Examples
///
/// ```
/// use graceful_core::tls::{load_pem, TlsError};
///
/// let error = load_pem(b"", b"").unwrap_err();
/// assert!(matches!(error, TlsError::EmptyChain));
/// ```
pub fn load_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::CertPem)?;
    if chain.is_empty() {
        return Err(TlsError::EmptyChain);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::NoKey)?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(TlsError::Key)?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(TlsError::Mismatch)?;
    Ok(certified)
}

/// [`load_pem`] from two files.
///
/// # Errors
///
/// [`TlsError::Read`] if a file cannot be read, else as [`load_pem`].
pub fn load_pem_files(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    load_pem(&read(cert.as_ref())?, &read(key.as_ref())?)
}

/// The certificate a server presents, swappable while it serves.
///
/// A rustls [`ResolvesServerCert`]: every handshake takes the certificate current when it
/// starts; [`set`](CertResolver::set) changes it for the handshakes after, and established
/// connections keep theirs. Reading it is a read lock and an `Arc` clone per handshake.
///
/// # Examples
///
/// ```no_run
/// use graceful_core::tls::{server_config, CertResolver, ALPN_H2_HTTP1};
/// use std::sync::Arc;
///
/// let certs = Arc::new(CertResolver::from_pem_files("cert.pem", "key.pem")?);
/// let config = server_config(certs.clone(), ALPN_H2_HTTP1)?;
/// // ... serve with `config`; later, on SIGHUP say:
/// certs.reload_pem_files("cert.pem", "key.pem")?;
/// # Ok::<(), graceful_core::tls::TlsError>(())
/// ```
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// Presents `key` until told otherwise.
    pub fn new(key: CertifiedKey) -> CertResolver {
        CertResolver {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// Presents the certificate and key in these PEM files ([`load_pem_files`]).
    ///
    /// # Errors
    ///
    /// As [`load_pem_files`].
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<CertResolver, TlsError> {
        Ok(CertResolver::new(load_pem_files(cert, key)?))
    }

    /// Presents `key` from the next handshake on.
    pub fn set(&self, key: CertifiedKey) {
        let key = Arc::new(key);
        match self.current.write() {
            Ok(mut current) => *current = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }

    /// Loads the PEM files and presents them from the next handshake on; on an error the
    /// current certificate stays.
    ///
    /// # Errors
    ///
    /// As [`load_pem_files`].
    pub fn reload_pem_files(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), TlsError> {
        self.set(load_pem_files(cert, key)?);
        Ok(())
    }

    /// The certificate presented now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver")
            .field("chain_len", &self.current().cert.len())
            .finish()
    }
}

/// A server configuration on the ring provider, TLS 1.2 and 1.3, no client authentication,
/// presenting what `certs` resolves and offering `alpn` (for HTTP, [`ALPN_H2_HTTP1`] or
/// [`ALPN_HTTP1`]).
///
/// # Errors
///
/// [`TlsError::Config`] if rustls refuses the protocol versions (it does not with ring).
pub fn server_config(
    certs: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(Arc::new(config))
}

/// How the handshakes of a TLS listener went, counted as they end. Cloning shares them.
///
/// A handshake that fails (a plain-HTTP client on the TLS port, a garbage ClientHello, a
/// client that rejects the certificate or leaves) or runs past the listener's deadline is
/// logged at debug and counted here; the server goes on.
///
/// # Examples
///
/// ```
/// use graceful_core::tls::TlsCounters;
///
/// let counters = TlsCounters::default();
/// counters.record_completed();
/// counters.record_failed();
/// assert_eq!((counters.completed(), counters.failed(), counters.timed_out()), (1, 1, 0));
/// ```
#[derive(Clone, Default)]
pub struct TlsCounters {
    inner: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    completed: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
}

impl TlsCounters {
    /// Handshakes that completed.
    pub fn completed(&self) -> u64 {
        self.inner.completed.load(Ordering::Relaxed)
    }

    /// Handshakes that failed (bad input, an alert, the client leaving).
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Handshakes that ran past the deadline.
    pub fn timed_out(&self) -> u64 {
        self.inner.timed_out.load(Ordering::Relaxed)
    }

    /// Counts a completed handshake (for listeners).
    pub fn record_completed(&self) {
        self.inner.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed handshake (for listeners).
    pub fn record_failed(&self) {
        self.inner.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a handshake past its deadline (for listeners).
    pub fn record_timed_out(&self) {
        self.inner.timed_out.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for TlsCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCounters")
            .field("completed", &self.completed())
            .field("failed", &self.failed())
            .field("timed_out", &self.timed_out())
            .finish()
    }
}

/// How long a handshake may take unless told otherwise: 10 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that serves TLS on the connections of another, `L`.
///
/// Its `accept` (the adapters implement graceful-core's `Listener` for it on their runtime:
/// `graceful_tokio::tls`, `graceful_smol::tls`) returns as soon as `L`'s does, with a stream
/// that has not spoken TLS yet: the handshake runs on the stream's first read or write, in
/// the connection's own task, within the [handshake timeout](TlsListener::handshake_timeout).
///
/// Build the [`ServerConfig`] with [`server_config`] (a reloadable certificate, ALPN
/// `h2, http/1.1`) or bring your own.
///
/// # Examples
///
/// ```
/// use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
/// let certs = Arc::new(CertResolver::new(graceful_core::tls::load_pem(
///     cert_pem.as_bytes(),
///     key_pem.as_bytes(),
/// )?));
/// let tcp = (); // the runtime's TCP listener
/// let listener = TlsListener::new(tcp, server_config(certs, ALPN_H2_HTTP1)?)
///     .handshake_timeout(Duration::from_secs(5));
/// assert_eq!(listener.timeout(), Duration::from_secs(5));
/// let counters = listener.counters(); // failed and timed-out handshakes, for metrics
/// assert_eq!(counters.failed(), 0);
/// # Ok::<(), graceful_core::tls::TlsError>(())
/// ```
pub struct TlsListener<L> {
    inner: L,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    counters: TlsCounters,
}

impl<L> TlsListener<L> {
    /// Serves TLS with `config` on what `inner` accepts.
    pub fn new(inner: L, config: Arc<ServerConfig>) -> TlsListener<L> {
        TlsListener {
            inner,
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            counters: TlsCounters::default(),
        }
    }

    /// How long a handshake may take, from the connection's first poll (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsListener<L> {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The handshake counters of this listener's connections (shared: read them while it
    /// serves).
    pub fn counters(&self) -> TlsCounters {
        self.counters.clone()
    }

    /// The TLS settings.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// The inner listener.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The inner listener.
    pub fn get_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// The inner listener.
    pub fn into_inner(self) -> L {
        self.inner
    }
}

impl<L> fmt::Debug for TlsListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}
