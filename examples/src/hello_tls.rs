//! The `hello_tls` example: HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on tokio through
//! graceful-tokio's [`TlsListener`] and graceful-hyper; and what both HTTPS examples share.
//!
//! The contract is the HTTP examples' (see [`crate::http`]) with these changes:
//!
//! - `listening on https://ADDR` on stdout;
//! - `--cert PEM --key PEM` serve that certificate chain and key; without them the example
//!   makes a self-signed certificate for `localhost` at start and prints
//!   `certificate: self-signed for localhost, SHA-256 AA:BB:...` on stdout;
//! - `--handshake-timeout SECS` bounds each TLS handshake (default 10 s);
//! - SIGHUP reloads `--cert` and `--key`: new handshakes present the new certificate,
//!   established connections keep theirs;
//! - after the shutdown report, a line with the handshake counters on stderr.
//!
//! The example binary is a thin `main` around [`main_with`], so that the `https_tokio` tests
//! run the very same server in a child process.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use graceful_tokio::tls::{
    load_pem, server_config, CertResolver, TlsCounters, TlsListener, ALPN_H2_HTTP1,
    DEFAULT_HANDSHAKE_TIMEOUT,
};
use graceful_tokio::Tokio;
use hyper::service::service_fn;
use tokio::net::TcpListener;

use crate::http;

/// One line of help, for error messages.
pub const USAGE: &str = "usage: [--addr HOST:PORT] [--timeout SECS] [--cert PEM --key PEM] \
                         [--handshake-timeout SECS]";

/// The HTTPS examples' own flags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsArgs {
    /// `--cert`: the certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// `--key`: the private key, PEM.
    pub key: Option<PathBuf>,
    /// `--handshake-timeout`, else [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
}

impl TlsArgs {
    /// Takes the HTTPS flags out of `args`; returns them and the rest (for
    /// [`http::parse_args`]).
    ///
    /// # Errors
    ///
    /// A flag without its value, a bad number, or only one of `--cert` and `--key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use examples::hello_tls::TlsArgs;
    ///
    /// let args = ["--cert", "c.pem", "--timeout", "2", "--key", "k.pem"].map(String::from);
    /// let (tls, rest) = TlsArgs::split(args)?;
    /// assert_eq!(tls.cert.unwrap().to_str(), Some("c.pem"));
    /// assert_eq!(rest, ["--timeout", "2"]);
    /// # Ok::<(), String>(())
    /// ```
    pub fn split(args: impl IntoIterator<Item = String>) -> Result<(TlsArgs, Vec<String>), String> {
        let mut tls = TlsArgs {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            ..TlsArgs::default()
        };
        let mut rest = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--cert" => tls.cert = Some(value()?.into()),
                "--key" => tls.key = Some(value()?.into()),
                "--handshake-timeout" => {
                    let secs = value()?;
                    tls.handshake_timeout = secs
                        .parse::<f64>()
                        .ok()
                        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                        .ok_or_else(|| format!("bad --handshake-timeout {secs}"))?;
                }
                _ => rest.push(arg),
            }
        }
        if tls.cert.is_some() != tls.key.is_some() {
            return Err("--cert and --key go together".to_owned());
        }
        Ok((tls, rest))
    }

    /// The certificate to serve: the files, or a new self-signed one for `localhost`
    /// (whose fingerprint goes to stdout).
    ///
    /// # Errors
    ///
    /// The files cannot be read, hold no certificate or key, or do not match.
    pub fn certificate(&self) -> Result<Arc<CertResolver>, String> {
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            return CertResolver::from_pem_files(cert, key)
                .map(Arc::new)
                .map_err(|error| error.to_string());
        }
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|error| format!("cannot make a certificate: {error}"))?;
        let key = load_pem(
            made.cert.pem().as_bytes(),
            made.signing_key.serialize_pem().as_bytes(),
        )
        .map_err(|error| error.to_string())?;
        let mut stdout = io::stdout().lock();
        let _ = writeln!(
            stdout,
            "certificate: self-signed for localhost, SHA-256 {}",
            fingerprint(made.cert.der())
        );
        let _ = stdout.flush();
        Ok(Arc::new(CertResolver::new(key)))
    }

    /// Reloads the files into `certs` (on SIGHUP); says what happened on stderr.
    pub fn reload(&self, certs: &CertResolver, name: &str) {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            eprintln!("{name}: SIGHUP: no --cert and --key to reload");
            return;
        };
        match certs.reload_pem_files(cert, key) {
            Ok(()) => eprintln!("{name}: certificate reloaded"),
            Err(error) => eprintln!("{name}: certificate not reloaded: {error}"),
        }
    }
}

/// A certificate's SHA-256 fingerprint, `AA:BB:...`, as `openssl x509 -fingerprint` prints it.
///
/// # Examples
///
/// ```
/// let print = examples::hello_tls::fingerprint(b"");
/// assert!(print.starts_with("E3:B0:C4:42:"));
/// ```
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    hex.join(":")
}

/// Prints `listening on https://ADDR` on stdout, flushed.
pub fn announce(addr: io::Result<SocketAddr>, fallback: &str) {
    let mut stdout = io::stdout().lock();
    let _ = match addr {
        Ok(addr) => writeln!(stdout, "listening on https://{addr}"),
        Err(_) => writeln!(stdout, "listening on https://{fallback}"),
    };
    let _ = stdout.flush();
}

/// Prints the handshake counters on stderr.
pub fn report_handshakes(name: &str, counters: &TlsCounters) {
    eprintln!(
        "{name}: TLS handshakes: {} completed, {} failed, {} timed out",
        counters.completed(),
        counters.failed(),
        counters.timed_out()
    );
}

/// What both HTTPS examples set up before serving: their flags, the certificate (the one
/// given, or a self-signed one) and the TLS settings.
#[derive(Debug)]
pub struct Setup {
    /// The HTTPS flags.
    pub tls: TlsArgs,
    /// The HTTP examples' flags.
    pub args: crate::args::Args,
    /// The certificate, reloadable.
    pub certs: Arc<CertResolver>,
    /// The TLS settings (ALPN `h2, http/1.1`).
    pub config: Arc<graceful_tokio::tls::ServerConfig>,
}

impl Setup {
    /// Parses the command line, starts tracing, loads or makes the certificate.
    ///
    /// # Errors
    ///
    /// Exit code 2, after saying why on stderr.
    pub fn from_args(name: &str, args: impl IntoIterator<Item = String>) -> Result<Setup, u8> {
        let fail = |error: String| {
            eprintln!("{name}: {error}");
            2
        };
        let (tls, rest) = TlsArgs::split(args).map_err(|e| fail(format!("{e}\n{USAGE}")))?;
        let args = http::parse_args(rest).map_err(|e| fail(format!("{e}\n{USAGE}")))?;
        http::init_tracing();
        let certs = tls.certificate().map_err(|e| fail(e.to_string()))?;
        let config =
            server_config(certs.clone(), ALPN_H2_HTTP1).map_err(|e| fail(e.to_string()))?;
        Ok(Setup {
            tls,
            args,
            certs,
            config,
        })
    }
}

/// Runs the `hello_tls` server with these command-line arguments (the program name left
/// out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    const NAME: &str = "hello_tls";
    let Setup {
        tls,
        args,
        certs,
        config,
    } = match Setup::from_args(NAME, args) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let server: graceful_tokio::Server = match http::server(NAME, &args, None) {
        Ok(server) => server,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{NAME}: cannot start tokio: {error}");
            return 1;
        }
    };
    runtime.block_on(async {
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
        http::watch_progress(&Tokio, server.shutdown());

        // Each stream handshakes on its first read, in its connection's task; the serve loop
        // attaches each stream's handshake (read only) to its `Conn`, so that a drain tells a
        // handshake under way from silence.
        let service = service_fn(|request| http::route(request, Tokio));
        // The signal handlers were set when the server was built.
        let http = graceful_tokio::Http::new(server.runtime());
        let serving = server.serve(listener, http.service(service));
        announce(local, &args.addr);
        let report = serving.await;
        eprintln!("{NAME}: {report}");
        report_handshakes(NAME, &counters);
        0
    })
}

/// Reloads the certificate files on every SIGHUP, for as long as the runtime runs.
fn spawn_reloader(tls: TlsArgs, certs: Arc<CertResolver>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            eprintln!("hello_tls: cannot listen for SIGHUP: no reloads");
            return;
        };
        drop(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tls.reload(&certs, "hello_tls");
            }
        }));
    }
    #[cfg(not(unix))]
    drop((tls, certs));
}
