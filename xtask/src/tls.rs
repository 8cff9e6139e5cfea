//! HTTPS for the bench: one self-signed certificate for every TLS server, and the client
//! side of it, chosen by address (a server started with TLS registers its address, and
//! [`Client::connect`](crate::client::Client::connect) speaks TLS to it).
//!
//! Client and servers use rustls on ring, TLS 1.3 by negotiation, ALPN `http/1.1` on the
//! client's side (the load generator speaks HTTP/1.1).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The bench's certificate: PEM files for the servers, a connector for the client.
pub(crate) struct BenchCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub connector: TlsConnector,
    /// The certificate, for a client of the harness to trust.
    pub der: CertificateDer<'static>,
}

static CERT: OnceLock<Result<BenchCert, String>> = OnceLock::new();

/// The certificate, made (and written under `target/bench/tls/`) on first use.
pub(crate) fn bench_cert() -> Result<&'static BenchCert, String> {
    CERT.get_or_init(make).as_ref().map_err(Clone::clone)
}

/// In a client process of the parent's (`idle.rs`): trusts the certificate the parent
/// made and wrote, rather than making one, and speaks TLS to `addr`.
pub(crate) fn adopt(cert: PathBuf, key: PathBuf, addr: SocketAddr) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let der =
        CertificateDer::from_pem_file(&cert).map_err(|err| format!("{}: {err}", cert.display()))?;
    let connector = connector(der.clone())?;
    let _ = CERT.set(Ok(BenchCert {
        cert,
        key,
        connector,
        der,
    }));
    register(addr);
    Ok(())
}

fn make() -> Result<BenchCert, String> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(|err| format!("cannot make the bench's certificate: {err}"))?;
    let dir = crate::server::target_dir().join("bench/tls");
    std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    for (path, pem) in [
        (&cert, made.cert.pem()),
        (&key, made.signing_key.serialize_pem()),
    ] {
        std::fs::write(path, pem).map_err(|err| format!("{}: {err}", path.display()))?;
    }
    let der = CertificateDer::from(made.cert.der().to_vec());
    Ok(BenchCert {
        cert,
        key,
        connector: connector(der.clone())?,
        der,
    })
}

/// A client that trusts `der` alone.
fn connector(der: CertificateDer<'static>) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(der)
        .map_err(|err| format!("the bench's certificate: {err}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

fn servers() -> &'static Mutex<Vec<SocketAddr>> {
    static SERVERS: OnceLock<Mutex<Vec<SocketAddr>>> = OnceLock::new();
    SERVERS.get_or_init(|| Mutex::new(Vec::new()))
}

/// `addr` serves TLS until [`forget`] says otherwise.
pub(crate) fn register(addr: SocketAddr) {
    if let Ok(mut servers) = servers().lock() {
        servers.push(addr);
    }
}

/// `addr` is gone.
pub(crate) fn forget(addr: SocketAddr) {
    if let Ok(mut servers) = servers().lock() {
        servers.retain(|known| *known != addr);
    }
}

/// The connector to use for `addr`, if it serves TLS.
pub(crate) fn connector_for(addr: SocketAddr) -> Option<TlsConnector> {
    let tls = servers().lock().ok()?.contains(&addr);
    tls.then(|| bench_cert().ok().map(|cert| cert.connector.clone()))
        .flatten()
}
