//! `TlsListener` on smol, over loopback TCP: accepting never waits for a handshake, the
//! handshake deadline (short real timers: smol has no virtual clock), the counters,
//! close_notify on close.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_rustls::TlsConnector;
use graceful_smol::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
use graceful_smol::Listener;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};

fn listener() -> (
    TlsListener<TcpListener>,
    std::net::SocketAddr,
    CertificateDer<'static>,
) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = load_pem(
        made.cert.pem().as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let config = server_config(Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1).unwrap();
    let tcp = smol::block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = tcp.local_addr().unwrap();
    (TlsListener::new(tcp, config), addr, made.cert.der().clone())
}

fn client_config(root: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    store.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

#[test]
fn accept_does_not_wait_and_alpn_negotiates_h2() {
    smol::block_on(async {
        let (mut listener, addr, der) = listener();
        // A silent client first: the next one is accepted all the same.
        let _silent = TcpStream::connect(addr).await.unwrap();
        let silent = listener.accept().await.unwrap();
        assert!(silent.is_handshaking());
        assert!(!silent.mid_handshake().is_under_way());

        let connector = TlsConnector::from(client_config(&der, &[b"h2", b"http/1.1"]));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut stream = listener.accept().await.unwrap();
        let (client, served) = smol::future::zip(connector.connect(localhost(), tcp), async {
            stream.handshake().await.map(|()| stream)
        })
        .await;
        let (_client, stream) = (client.unwrap(), served.unwrap());
        let alpn = stream.connection().and_then(|conn| conn.alpn_protocol());
        assert_eq!(alpn, Some(&b"h2"[..]));
        assert!(!stream.mid_handshake().is_under_way(), "lowered at the end");
        assert_eq!(listener.counters().completed(), 1);
    });
}

#[test]
fn a_stalled_handshake_ends_at_its_deadline() {
    smol::block_on(async {
        let (listener, addr, _) = listener();
        let mut listener = listener.handshake_timeout(Duration::from_millis(200));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"\x16\x03\x01\x02\x00\x01").await.unwrap();
        let mut stream = listener.accept().await.unwrap();
        let started = Instant::now();
        let error = stream.handshake().await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert_eq!(listener.counters().timed_out(), 1);
    });
}

#[test]
fn plain_http_fails_the_handshake_and_is_counted() {
    smol::block_on(async {
        let (mut listener, addr, _) = listener();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut stream = listener.accept().await.unwrap();
        assert!(stream.read(&mut [0u8; 8]).await.is_err());
        let counters = listener.counters();
        assert_eq!((counters.failed(), counters.completed()), (1, 0));
    });
}

#[test]
fn close_sends_close_notify() {
    for clean in [true, false] {
        smol::block_on(async {
            let (mut listener, addr, der) = listener();
            let connector = TlsConnector::from(client_config(&der, &[b"http/1.1"]));
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut stream = listener.accept().await.unwrap();
            let (client, served) = smol::future::zip(connector.connect(localhost(), tcp), async {
                stream.handshake().await.map(|()| stream)
            })
            .await;
            let (mut client, mut stream) = (client.unwrap(), served.unwrap());
            stream.write_all(b"hi").await.unwrap();
            if clean {
                stream.close().await.unwrap();
            } else {
                stream.flush().await.unwrap();
                drop(stream);
            }
            let mut buf = [0u8; 2];
            client.read_exact(&mut buf).await.unwrap();
            let end = client.read(&mut [0u8; 8]).await;
            if clean {
                assert_eq!(end.unwrap(), 0, "close_notify: a clean end of stream");
            } else {
                assert_eq!(end.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
            }
        });
    }
}
