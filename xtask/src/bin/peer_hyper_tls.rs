//! Peer for the bench: raw hyper 1.x auto (HTTP/1 and HTTP/2) over tokio-rustls, on tokio,
//! with no shutdown tracking: the floor `hello_tls` is measured against.
//!
//! The same TLS settings as `hello_tls`: rustls on the ring provider, TLS 1.2 and 1.3, ALPN
//! `h2, http/1.1`, the certificate and key from `--cert` and `--key` (PEM). The handshake
//! runs in the connection's task, with no deadline (as a user of raw hyper would write it).
//! `--header-read-timeout SECS` sets hyper's, as for the other peers.
//! Prints `listening on https://ADDR`.

// Shared with the plain-HTTP peers; this one binds and announces `https://` itself.
#[allow(dead_code)]
#[path = "../peer.rs"]
mod peer;
#[allow(dead_code)]
#[path = "../peer_tokio.rs"]
mod peer_tokio;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

fn config(cert: &str, key: &str) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("{cert}: {err}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|err| format!("{key}: {err}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| err.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (mut cert, mut key, mut rest) = (None, None, Vec::new());
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--cert" => cert = it.next(),
            "--key" => key = it.next(),
            _ => rest.push(arg),
        }
    }
    let parsed = peer::Args::parse_from(rest.into_iter()).and_then(|args| {
        let (Some(cert), Some(key)) = (cert, key) else {
            return Err("--cert PEM and --key PEM are required".to_owned());
        };
        Ok((args, config(&cert, &key)?))
    });
    let (args, config) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("peer_hyper_tls: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("peer_hyper_tls: cannot listen on {}: {err}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    if let Ok(local) = listener.local_addr() {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on https://{local}");
        let _ = stdout.flush();
    }
    let acceptor = TlsAcceptor::from(config);
    let header_read_timeout = args.header_read_timeout;
    let accept = async {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    peer_tokio::accept_error_pause().await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut http = auto::Builder::new(TokioExecutor::new());
                if let Some(timeout) = header_read_timeout {
                    http.http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(timeout);
                }
                let _ = http
                    .serve_connection(TokioIo::new(stream), service_fn(peer_tokio::hello))
                    .await;
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = peer_tokio::shutdown_signal() => eprintln!("peer_hyper_tls: signal, exiting"),
    }
    ExitCode::SUCCESS
}
