//! The `hello_tls_smol` example: HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on smol through
//! graceful-smol's [`TlsListener`] and graceful-hyper.
//!
//! The same contract as `hello_tls` (see [`crate::hello_tls`]), whose flags and certificate
//! handling it shares; only the runtime differs.

use graceful_smol::tls::TlsListener;
use graceful_smol::Smol;
use hyper::service::service_fn;
use smol::net::TcpListener;

use crate::hello_tls::{announce, report_handshakes, Setup, TlsArgs};
use crate::http;

/// Runs the `hello_tls_smol` server with these command-line arguments (the program name
/// left out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    const NAME: &str = "hello_tls_smol";
    let Setup {
        tls,
        args,
        certs,
        config,
    } = match Setup::from_args(NAME, args) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let server: graceful_smol::Server = match http::server(NAME, &args, None) {
        Ok(server) => server,
        Err(code) => return code,
    };
    smol::block_on(async move {
        let tcp = match TcpListener::bind(&args.addr).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("{NAME}: cannot listen on {}: {error}", args.addr);
                return 1;
            }
        };
        let local = tcp.local_addr();
        let listener = TlsListener::new(tcp, config).handshake_timeout(tls.handshake_timeout);
        let counters = listener.counters();
        spawn_reloader(tls, certs);
        http::watch_progress(&Smol::default(), server.shutdown());

        let service = service_fn(|request| http::route(request, Smol::default()));
        // The signal handlers were set when the server was built.
        let http = graceful_smol::Http::new(server.runtime());
        let serving = server.serve(listener, http.service(service));
        announce(local, &args.addr);
        let report = serving.await;
        eprintln!("{NAME}: {report}");
        report_handshakes(NAME, &counters);
        0
    })
}

/// Reloads the certificate files on every SIGHUP, for as long as the program runs.
fn spawn_reloader(tls: TlsArgs, certs: std::sync::Arc<graceful_smol::tls::CertResolver>) {
    #[cfg(unix)]
    {
        use futures::StreamExt;
        let Ok(mut hangups) = async_signal::Signals::new([async_signal::Signal::Hup]) else {
            eprintln!("hello_tls_smol: cannot listen for SIGHUP: no reloads");
            return;
        };
        smol::spawn(async move {
            while hangups.next().await.is_some() {
                tls.reload(&certs, "hello_tls_smol");
            }
        })
        .detach();
    }
    #[cfg(not(unix))]
    drop((tls, certs));
}
