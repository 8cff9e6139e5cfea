//! The runtime-neutral half of TLS: what a certificate and key must be to be loaded, the
//! server configuration, the reloadable certificate.

use std::sync::Arc;

use graceful_core::tls::{
    load_pem, load_pem_files, server_config, CertResolver, TlsError, ALPN_H2_HTTP1, ALPN_HTTP1,
};

struct Pem {
    cert: String,
    key: String,
}

fn made() -> Pem {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pem {
        cert: made.cert.pem(),
        key: made.signing_key.serialize_pem(),
    }
}

#[test]
fn a_matching_pair_loads() {
    let pem = made();
    let key = load_pem(pem.cert.as_bytes(), pem.key.as_bytes()).unwrap();
    assert_eq!(key.cert.len(), 1);
}

/// Whether an error is the one expected.
type Is = fn(&TlsError) -> bool;

#[test]
fn bad_pairs_are_clear_errors() {
    let (a, b) = (made(), made());
    let cases: [(&str, &str, Is, &str); 4] = [
        (
            "",
            &a.key,
            |e| matches!(e, TlsError::EmptyChain),
            "no certificate",
        ),
        (
            &a.cert,
            "",
            |e| matches!(e, TlsError::NoKey(_)),
            "no private key",
        ),
        (
            &a.cert,
            &a.cert,
            |e| matches!(e, TlsError::NoKey(_)),
            "no private key",
        ),
        (
            &a.cert,
            &b.key,
            |e| matches!(e, TlsError::Mismatch(_)),
            "does not match",
        ),
    ];
    for (cert, key, expected, text) in cases {
        let error = load_pem(cert.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(expected(&error), "{error:?}");
        assert!(error.to_string().contains(text), "{error}");
    }
}

#[test]
fn unreadable_files_name_the_file() {
    let pem = made();
    let dir = std::env::temp_dir().join(format!("graceful-core-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pem.cert).unwrap();
    std::fs::write(&key, &pem.key).unwrap();
    assert!(load_pem_files(&cert, &key).is_ok());

    let missing = dir.join("missing.pem");
    let error = load_pem_files(&missing, &key).unwrap_err();
    assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.pem"), "{error}");
    assert!(CertResolver::from_pem_files(&cert, &missing).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_resolver_swaps_the_certificate() {
    let (a, b) = (made(), made());
    let certs = CertResolver::new(load_pem(a.cert.as_bytes(), a.key.as_bytes()).unwrap());
    let first = certs.current();
    certs.set(load_pem(b.cert.as_bytes(), b.key.as_bytes()).unwrap());
    let second = certs.current();
    assert_ne!(first.cert, second.cert);
    // What a handshake took before the swap is its own.
    assert_eq!(first.cert.len(), 1);
}

#[test]
fn the_config_offers_alpn() {
    let pem = made();
    let key = load_pem(pem.cert.as_bytes(), pem.key.as_bytes()).unwrap();
    let certs = Arc::new(CertResolver::new(key));
    let h2 = server_config(certs.clone(), ALPN_H2_HTTP1).unwrap();
    assert_eq!(h2.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    let h1 = server_config(certs, ALPN_HTTP1).unwrap();
    assert_eq!(h1.alpn_protocols, [b"http/1.1".to_vec()]);
}
