//! Certificates for the tests, and a blocking HTTPS/1.1 client (rustls with ring, over
//! `std::net`) that sees every byte: it tells a response from a close before any answer, a
//! response cut short, and a close with TLS close_notify from one without.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::deploy::TempDir;

/// A self-signed certificate for `localhost` and its key, written to PEM files in a
/// temporary directory of its own (removed on drop).
///
/// # Examples
///
/// ```
/// let cert = graceful_harness::tls::Cert::new("example");
/// assert!(std::fs::read_to_string(&cert.cert).unwrap().contains("BEGIN CERTIFICATE"));
/// assert_eq!(cert.args()[0], "--cert");
/// ```
#[derive(Debug)]
pub struct Cert {
    /// The certificate's PEM file.
    pub cert: PathBuf,
    /// The key's PEM file.
    pub key: PathBuf,
    /// The certificate, for a client to trust.
    pub der: CertificateDer<'static>,
    dir: TempDir,
}

impl Cert {
    /// Makes a new one.
    pub fn new(tag: &str) -> Cert {
        let dir = TempDir::new(&format!("cert-{tag}"));
        let cert = Cert {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            der: CertificateDer::from(Vec::new()),
            dir,
        };
        cert.rewrite()
    }

    /// The directory the files are in, for more files a test makes.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a new certificate and key over the files.
    pub fn rewrite(mut self) -> Cert {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a self-signed certificate");
        std::fs::write(&self.cert, made.cert.pem()).expect("write the certificate");
        std::fs::write(&self.key, made.signing_key.serialize_pem()).expect("write the key");
        self.der = made.cert.der().clone();
        self
    }

    /// `--cert FILE --key FILE`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--cert".to_owned(),
            self.cert.display().to_string(),
            "--key".to_owned(),
            self.key.display().to_string(),
        ]
    }
}

/// A client configuration trusting `roots`, offering `alpn`.
pub fn config(roots: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).expect("a root certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The first bytes of a real ClientHello for `localhost`.
pub fn client_hello(config: &Arc<ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").expect("a name");
    let mut conn = ClientConnection::new(config.clone(), name).expect("a client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("a ClientHello");
    hello
}

pub use crate::http1::Response;
use crate::http1::{is_close, read_response, Unanswered};

/// Why no response was read.
#[derive(Debug)]
pub enum Failure {
    /// The connection ended before the first byte of a response.
    Closed {
        /// The server said TLS close_notify first.
        notified: bool,
    },
    /// The connection ended in the middle of a response.
    Truncated,
    /// The handshake failed, the read timed out, or another error.
    Io(io::Error),
}

impl From<Unanswered> for Failure {
    fn from(unanswered: Unanswered) -> Failure {
        match unanswered {
            Unanswered::Ended => Failure::Closed { notified: true },
            Unanswered::Closed => Failure::Closed { notified: false },
            Unanswered::Truncated => Failure::Truncated,
            Unanswered::Io(err) => Failure::Io(err),
        }
    }
}

/// One HTTPS client connection.
#[derive(Debug)]
pub struct TlsConn {
    reader: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsConn {
    /// Connects and completes the handshake, with reads bounded by `read_timeout`.
    ///
    /// # Errors
    ///
    /// The connection or the handshake failed.
    pub fn connect(
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        read_timeout: Duration,
    ) -> io::Result<TlsConn> {
        let (tcp, conn) = open(addr, config, read_timeout)?;
        HalfHello {
            tcp,
            conn,
            rest: Vec::new(),
        }
        .finish()
    }

    /// Connects and sends the first half of the ClientHello; [`HalfHello::finish`] sends
    /// the rest and completes the handshake.
    ///
    /// # Errors
    ///
    /// The connection failed.
    pub fn half_hello(
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        read_timeout: Duration,
    ) -> io::Result<HalfHello> {
        let (mut tcp, mut conn) = open(addr, config, read_timeout)?;
        let mut hello = Vec::new();
        conn.write_tls(&mut hello)?;
        let rest = hello.split_off(hello.len() / 2);
        tcp.write_all(&hello)?;
        Ok(HalfHello { tcp, conn, rest })
    }

    /// The client's own address (the server sees it as the peer's).
    pub fn local_addr(&self) -> SocketAddr {
        self.reader
            .get_ref()
            .sock
            .local_addr()
            .expect("a connected socket's address")
    }

    /// What is left to read, buffered: for a reader of its own (a steady reader, say).
    pub fn into_reader(self) -> BufReader<StreamOwned<ClientConnection, TcpStream>> {
        self.reader
    }

    /// The certificate the server presented.
    pub fn peer_cert(&self) -> Vec<u8> {
        let certs = self.reader.get_ref().conn.peer_certificates();
        certs
            .and_then(|certs| certs.first())
            .expect("a peer certificate")
            .to_vec()
    }

    /// The negotiated ALPN protocol.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.reader
            .get_ref()
            .conn
            .alpn_protocol()
            .map(<[u8]>::to_vec)
    }

    /// Writes `GET path`.
    pub fn send_get(&mut self, path: &str) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes())?;
        stream.flush()
    }

    /// Writes `GET path` and reads its response.
    pub fn get(&mut self, path: &str) -> Result<Response, Failure> {
        self.exchange(path).map_err(Failure::from)
    }

    /// Writes `GET path` and reads its response, with the details of a failure.
    pub(crate) fn exchange(&mut self, path: &str) -> Result<Response, Unanswered> {
        self.send_get(path).map_err(|_| Unanswered::Closed)?;
        read_response(&mut self.reader)
    }

    /// Reads one response.
    pub fn response(&mut self) -> Result<Response, Failure> {
        read_response(&mut self.reader).map_err(Failure::from)
    }

    /// Waits up to `within` for the server to close; `Some(notified)` if it did (with or
    /// without close_notify), `None` if the connection is still open.
    pub fn closed_within(&mut self, within: Duration) -> Option<bool> {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 256];
        let sock = &self.reader.get_ref().sock;
        let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
        while Instant::now() < deadline {
            match self.reader.read(&mut buf) {
                Ok(0) => return Some(true),
                Ok(_) => {}
                Err(err) if is_close(&err) => return Some(false),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Some(false),
            }
        }
        None
    }
}

/// A TCP connection to `addr` and a TLS client for `localhost` that has sent nothing yet.
fn open(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    read_timeout: Duration,
) -> io::Result<(TcpStream, ClientConnection)> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(read_timeout))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("a name");
    let conn = ClientConnection::new(config.clone(), name)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    Ok((tcp, conn))
}

/// A connection that has sent half its ClientHello.
#[derive(Debug)]
pub struct HalfHello {
    tcp: TcpStream,
    conn: ClientConnection,
    rest: Vec<u8>,
}

impl HalfHello {
    /// The client's own address (the server sees it as the peer's).
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr().expect("a connected socket's address")
    }

    /// Sends the rest of the ClientHello and completes the handshake.
    pub fn finish(mut self) -> io::Result<TlsConn> {
        self.tcp.write_all(&self.rest)?;
        while self.conn.is_handshaking() {
            self.conn.complete_io(&mut self.tcp)?;
        }
        Ok(TlsConn {
            reader: BufReader::new(StreamOwned::new(self.conn, self.tcp)),
        })
    }
}
