//! Certificates from PEM, a certificate swappable on a live server, and the `ServerConfig`
//! the TLS listeners use.
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
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

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
///
/// # Examples
///
/// ```
/// let provider = graceful_core::tls::provider();
/// assert!(!provider.cipher_suites.is_empty());
/// ```
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
///
/// # Examples
///
/// ```
/// use graceful_core::tls::{load_pem_files, TlsError};
///
/// let error = load_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
/// assert!(matches!(error, TlsError::Read { .. }));
/// assert!(error.to_string().starts_with("cannot read /nonexistent/cert.pem"));
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// use graceful_core::tls::{load_pem, CertResolver};
    ///
    /// let certs = CertResolver::new(load_pem(cert_pem.as_bytes(), key_pem.as_bytes())?);
    /// assert_eq!(certs.current().cert.len(), 1);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::tls::CertResolver;
    ///
    /// // An unreadable file is an error now, not at the first handshake.
    /// assert!(CertResolver::from_pem_files("/nonexistent.pem", "/nonexistent.key").is_err());
    /// ```
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<CertResolver, TlsError> {
        Ok(CertResolver::new(load_pem_files(cert, key)?))
    }

    /// Presents `key` from the next handshake on.
    ///
    /// # Examples
    ///
    /// ```
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// # let made2 = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// use graceful_core::tls::{load_pem, CertResolver};
    ///
    /// let certs = CertResolver::new(load_pem(cert_pem.as_bytes(), key_pem.as_bytes())?);
    /// let new = load_pem(made2.cert.pem().as_bytes(), made2.signing_key.serialize_pem().as_bytes())?;
    /// certs.set(new);
    /// assert_eq!(certs.current().cert[0].as_ref(), made2.cert.der().as_ref());
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// use graceful_core::tls::{load_pem, CertResolver};
    ///
    /// let certs = CertResolver::new(load_pem(cert_pem.as_bytes(), key_pem.as_bytes())?);
    /// let before = certs.current();
    /// assert!(certs.reload_pem_files("/nonexistent.pem", "/nonexistent.key").is_err());
    /// assert!(std::sync::Arc::ptr_eq(&before, &certs.current()), "the old one stays");
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn reload_pem_files(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), TlsError> {
        self.set(load_pem_files(cert, key)?);
        Ok(())
    }

    /// The certificate presented now.
    ///
    /// # Examples
    ///
    /// ```
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// use graceful_core::tls::{load_pem, CertResolver};
    ///
    /// let certs = CertResolver::new(load_pem(cert_pem.as_bytes(), key_pem.as_bytes())?);
    /// assert_eq!(certs.current().cert[0].as_ref(), made.cert.der().as_ref());
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
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
///
/// # Examples
///
/// ```
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
/// use graceful_core::tls::{load_pem, server_config, CertResolver, ALPN_H2_HTTP1};
/// use std::sync::Arc;
///
/// let certs = Arc::new(CertResolver::new(load_pem(cert_pem.as_bytes(), key_pem.as_bytes())?));
/// let config = server_config(certs, ALPN_H2_HTTP1)?;
/// assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
/// # Ok::<(), graceful_core::tls::TlsError>(())
/// ```
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
