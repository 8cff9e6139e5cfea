//! `TlsListener` on tokio, in memory (`tokio::io::duplex`) and on paused time: accepting
//! never waits for a handshake, the handshake deadline, the counters, close_notify on
//! shutdown, certificate reload.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use graceful_tokio::tls::{
    load_pem, server_config, CertResolver, TlsListener, TlsStream, ALPN_H2_HTTP1,
    DEFAULT_HANDSHAKE_TIMEOUT,
};
use graceful_tokio::Listener;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

/// A listener whose connections are in-memory pipes.
struct Pipes(mpsc::UnboundedReceiver<DuplexStream>);

impl Listener<graceful_tokio::Tokio> for Pipes {
    type Io = DuplexStream;

    async fn accept(&mut self) -> io::Result<DuplexStream> {
        self.0
            .recv()
            .await
            .ok_or(io::ErrorKind::NotConnected.into())
    }
}

struct Setup {
    listener: TlsListener<Pipes>,
    dial: mpsc::UnboundedSender<DuplexStream>,
    certs: Arc<CertResolver>,
}

fn made() -> (CertifiedKey, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = load_pem(
        made.cert.pem().as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    (key, made.cert.der().clone())
}

fn setup() -> (Setup, CertificateDer<'static>) {
    let (key, der) = made();
    let certs = Arc::new(CertResolver::new(key));
    let (dial, pipes) = mpsc::unbounded_channel();
    let config = server_config(certs.clone(), ALPN_H2_HTTP1).unwrap();
    let listener = TlsListener::new(Pipes(pipes), config);
    (
        Setup {
            listener,
            dial,
            certs,
        },
        der,
    )
}

impl Setup {
    /// A new connection: the client's end, and the server's as accepted.
    async fn connect(&mut self) -> (DuplexStream, TlsStream<DuplexStream>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.dial.send(server).unwrap();
        (client, self.listener.accept().await.unwrap())
    }
}

fn client(roots: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> TlsConnector {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// The first bytes of a ClientHello.
fn half_hello(roots: &CertificateDer<'static>) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = RootCertStore::empty();
    store.add(roots.clone()).unwrap();
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), localhost()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello.truncate(hello.len() / 2);
    hello
}

#[tokio::test(start_paused = true)]
async fn accept_does_not_wait_for_handshakes() {
    let (mut setup, _) = setup();
    // Three clients that never speak are all accepted, each at once.
    for _ in 0..3 {
        let (_client, stream) = setup.connect().await;
        assert!(stream.is_handshaking());
        assert!(!stream.mid_handshake().is_under_way());
    }
    let counters = setup.listener.counters();
    assert_eq!((counters.completed(), counters.failed()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn handshake_negotiates_h2_and_is_counted() {
    let (mut setup, der) = setup();
    let (client_io, mut stream) = setup.connect().await;
    let connector = client(&[&der], &[b"h2", b"http/1.1"]);
    let (client, served) = tokio::join!(connector.connect(localhost(), client_io), async {
        stream.handshake().await.map(|()| stream)
    });
    let (client, stream) = (client.unwrap(), served.unwrap());
    assert!(!stream.mid_handshake().is_under_way(), "lowered at the end");
    let alpn = stream.connection().and_then(|conn| conn.alpn_protocol());
    assert_eq!(alpn, Some(&b"h2"[..]));
    assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(setup.listener.counters().completed(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_handshake_ends_at_its_deadline() {
    for timeout in [None, Some(Duration::from_secs(2))] {
        let (mut setup, der) = setup();
        if let Some(timeout) = timeout {
            setup.listener = setup.listener.handshake_timeout(timeout);
        }
        let (mut client, mut stream) = setup.connect().await;
        client.write_all(&half_hello(&der)).await.unwrap();
        let started = Instant::now();
        let first = tokio::time::timeout(Duration::from_millis(100), stream.handshake()).await;
        assert!(first.is_err(), "still handshaking");
        assert!(stream.mid_handshake().is_under_way(), "the client spoke");
        let error = stream.handshake().await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            started.elapsed(),
            timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)
        );
        assert!(!stream.mid_handshake().is_under_way(), "lowered at the end");
        let counters = setup.listener.counters();
        assert_eq!((counters.timed_out(), counters.failed()), (1, 0));
        // The stream stays failed.
        let mut buf = [0u8; 8];
        assert!(stream.read(&mut buf).await.is_err());
    }
}

#[tokio::test(start_paused = true)]
async fn plain_http_fails_the_handshake_and_is_counted() {
    let (mut setup, _) = setup();
    let (mut client, mut stream) = setup.connect().await;
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(stream.read(&mut buf).await.is_err());
    let counters = setup.listener.counters();
    assert_eq!((counters.failed(), counters.completed()), (1, 0));
}

/// What the client reads after the server wrote `hi` and then `close` did to its stream.
async fn after_hi(close: impl AsyncFnOnce(TlsStream<DuplexStream>)) -> io::Result<usize> {
    let (mut setup, der) = setup();
    let (client_io, mut stream) = setup.connect().await;
    let connector = client(&[&der], &[b"http/1.1"]);
    let (client, served) = tokio::join!(connector.connect(localhost(), client_io), async {
        stream.handshake().await.map(|()| stream)
    });
    let (mut client, mut stream) = (client.unwrap(), served.unwrap());
    stream.write_all(b"hi").await.unwrap();
    close(stream).await;
    let mut buf = [0u8; 2];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi");
    client.read(&mut [0u8; 8]).await
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_close_notify() {
    let clean = after_hi(async |mut stream| stream.shutdown().await.unwrap()).await;
    assert_eq!(clean.unwrap(), 0, "close_notify: a clean end of stream");
    // Without it, the client sees the cut (this is what the test would catch).
    let cut = after_hi(async |stream| drop(stream)).await;
    assert_eq!(cut.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test(start_paused = true)]
async fn a_reload_serves_new_handshakes_only() {
    let (mut setup, old) = setup();
    let (new_key, new) = made();
    let connector = client(&[&old, &new], &[b"http/1.1"]);
    let handshake = async |setup: &mut Setup| {
        let (client_io, mut stream) = setup.connect().await;
        let (client, served) = tokio::join!(connector.connect(localhost(), client_io), async {
            stream.handshake().await.map(|()| stream)
        });
        (client.unwrap(), served.unwrap())
    };
    let (before, mut before_server) = handshake(&mut setup).await;
    setup.certs.set(new_key);
    let (after, _after_server) = handshake(&mut setup).await;
    let peer = |client: &tokio_rustls::client::TlsStream<DuplexStream>| {
        client.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    assert_eq!((peer(&before), peer(&after)), (old, new));
    // The connection from before the reload still works.
    let mut before = before;
    before.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    before_server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test(start_paused = true)]
async fn reads_in_small_pieces_consume_what_they_take() {
    let (mut setup, der) = setup();
    let (client_io, mut stream) = setup.connect().await;
    let connector = client(&[&der], &[b"http/1.1"]);
    let (client, served) = tokio::join!(connector.connect(localhost(), client_io), async {
        stream.handshake().await.map(|()| stream)
    });
    let (mut client, mut stream) = (client.unwrap(), served.unwrap());
    client.write_all(b"ping").await.unwrap();
    client.flush().await.unwrap();
    // tokio's `ReadBuf` of one byte at a time: each read takes one, the rest stays buffered.
    let mut got = Vec::new();
    for _ in 0..4 {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1);
        got.push(byte[0]);
    }
    assert_eq!(got, b"ping");
    // And the way back, vectored.
    let bufs = [std::io::IoSlice::new(b"po"), std::io::IoSlice::new(b"ng")];
    // rustls takes all of it (its buffer is far from full).
    assert_eq!(stream.write_vectored(&bufs).await.unwrap(), 4);
    stream.flush().await.unwrap();
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}
