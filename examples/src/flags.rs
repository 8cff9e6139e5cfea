//! The examples' command line ([`Flags`]), parsed with lexopt; each `--addr` a [`Listen`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use graceful_core::tls::DEFAULT_HANDSHAKE_TIMEOUT;

use crate::{SocketFile, StartError};

/// Where the examples listen unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The flags of the HTTP and line-protocol examples, for error messages.
pub const USAGE: &str = "usage: [--addr [NAME=]HOST:PORT | --addr [NAME=]unix:/PATH]... \
                         [--timeout SECS] [--drain-delay SECS] [--close-spread SECS]";

/// The flags of the HTTPS examples, for error messages.
pub const TLS_USAGE: &str = "usage: [--addr [NAME=]HOST:PORT | --addr [NAME=]unix:/PATH]... \
                             [--redirect-addr [NAME=]HOST:PORT] [--timeout SECS] \
                             [--drain-delay SECS] [--close-spread SECS] \
                             [--cert PEM --key PEM] [--handshake-timeout SECS]";

/// An example's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flags {
    /// `--addr`, once per listener (default one, [`DEFAULT_ADDR`]): where to listen, in
    /// the order given. In the examples that deploy, a TCP listener is the socket
    /// inherited from systemd or from the process this one replaces (by its name when there
    /// are several), if there is one; Unix sockets are always bound here.
    pub listeners: Vec<Listen>,
    /// `--timeout`: how long the drain may last before what is left is killed (default 30 s).
    pub timeout: Duration,
    /// `--drain-delay`: how long to serve on, `/ready` answering 503, before draining.
    pub drain_delay: Duration,
    /// `--close-spread`: spread the closes of idle connections (and HTTP/2's GOAWAYs) over
    /// this long from the drain's start, so that their clients do not all reconnect at
    /// once; `None` (the default): all at once.
    pub close_spread: Option<Duration>,
    /// HTTPS: `--cert` and `--key`, the certificate chain and its private key (PEM files);
    /// `None`: [`self_signed`](crate::self_signed).
    pub cert: Option<(PathBuf, PathBuf)>,
    /// HTTPS: `--handshake-timeout`, the deadline of each TLS handshake (default 10 s).
    pub handshake_timeout: Duration,
    /// HTTPS: `--redirect-addr [NAME=]HOST:PORT`, the name (`http` unless given) and the
    /// address of a plain-HTTP listener that answers every request with a redirect to
    /// HTTPS ([`redirect`](crate::redirect)).
    pub redirect: Option<(String, String)>,
}

impl Flags {
    /// The process's flags, as the HTTP and line-protocol examples take them.
    ///
    /// # Errors
    ///
    /// A command line [`parse`](Flags::parse) refuses, with [`USAGE`].
    pub fn from_env() -> Result<Flags, StartError> {
        Flags::parse(std::env::args_os().skip(1), false)
            .map_err(|error| StartError::input(format!("{error}\n{USAGE}")))
    }

    /// The process's flags, as the HTTPS examples take them.
    ///
    /// # Errors
    ///
    /// A command line [`parse`](Flags::parse) refuses, with [`TLS_USAGE`].
    pub fn from_env_tls() -> Result<Flags, StartError> {
        Flags::parse(std::env::args_os().skip(1), true)
            .map_err(|error| StartError::input(format!("{error}\n{TLS_USAGE}")))
    }

    /// Parses `args` (the program's name left out); `tls` allows the HTTPS flags.
    ///
    /// # Errors
    ///
    /// An unknown flag or argument, a flag without its value, a `--timeout` or a
    /// `--close-spread` that is not a positive number of seconds, another duration that is
    /// not a number of seconds, only one of `--cert` and `--key`, an `--addr` that
    /// [`Listen::parse`] refuses, two listeners of the same name or at the same address
    /// (but TCP port 0, a port of its own each time), or a `--redirect-addr` on a Unix
    /// socket.
    pub fn parse<A>(args: impl IntoIterator<Item = A>, tls: bool) -> Result<Flags, lexopt::Error>
    where
        A: Into<std::ffi::OsString>,
    {
        use lexopt::prelude::*;
        let mut flags = Flags {
            listeners: Vec::new(),
            timeout: graceful_core::DEFAULT_TIMEOUT,
            drain_delay: Duration::ZERO,
            close_spread: None,
            cert: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            redirect: None,
        };
        let (mut cert, mut key) = (None, None);
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            match arg {
                Long("addr") => {
                    let addr = parser.value()?.string()?;
                    flags.listeners.push(Listen::parse(&addr)?);
                }
                Long("timeout") => flags.timeout = parser.value()?.parse_with(positive_secs)?,
                Long("drain-delay") => flags.drain_delay = parser.value()?.parse_with(secs)?,
                Long("close-spread") => {
                    flags.close_spread = Some(parser.value()?.parse_with(positive_secs)?);
                }
                Long("cert") if tls => cert = Some(parser.value()?.into()),
                Long("key") if tls => key = Some(parser.value()?.into()),
                Long("handshake-timeout") if tls => {
                    flags.handshake_timeout = parser.value()?.parse_with(secs)?;
                }
                Long("redirect-addr") if tls => {
                    let addr = parser.value()?.string()?;
                    let Listen { name, addr: at } = Listen::parse(&addr)?;
                    let Addr::Tcp(at) = at else {
                        return Err("--redirect-addr takes HOST:PORT".into());
                    };
                    // Unless named, the redirecting listener is `http`.
                    let named = addr
                        .split_once('=')
                        .is_some_and(|(n, _)| !n.contains([':', '/']));
                    let name = if named { name } else { "http".to_owned() };
                    flags.redirect = Some((name, at));
                }
                _ => return Err(arg.unexpected()),
            }
        }
        flags.cert = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("--cert and --key go together".into()),
        };
        if flags.listeners.is_empty() {
            flags.listeners.push(Listen::parse(DEFAULT_ADDR)?);
        }
        let redirect = (flags.redirect.iter()).map(|(name, addr)| Listen {
            name: name.clone(),
            addr: Addr::Tcp(addr.clone()),
        });
        distinct(
            &flags
                .listeners
                .iter()
                .cloned()
                .chain(redirect)
                .collect::<Vec<_>>(),
        )?;
        Ok(flags)
    }

    /// The TCP listeners' names and addresses (`--addr [NAME=]HOST:PORT`), in order: what
    /// `Server::listen_all` takes.
    pub fn tcp(&self) -> Vec<(&str, &str)> {
        (self.listeners.iter())
            .filter_map(|listen| match &listen.addr {
                Addr::Tcp(addr) => Some((listen.name.as_str(), addr.as_str())),
                Addr::Unix(_) => None,
            })
            .collect()
    }

    /// The Unix listeners' names and paths (`--addr [NAME=]unix:/PATH`), in order.
    pub fn unix(&self) -> Vec<(&str, &Path)> {
        (self.listeners.iter())
            .filter_map(|listen| match &listen.addr {
                Addr::Unix(path) => Some((listen.name.as_str(), path.as_path())),
                Addr::Tcp(_) => None,
            })
            .collect()
    }

    /// Binds each Unix listener (`--addr [NAME=]unix:/PATH`), in order, with `bind` (the
    /// runtime's `UnixListener::bind`): its name, the listener, and its file (removed when
    /// it drops: keep it until the server is done).
    ///
    /// # Errors
    ///
    /// A path that cannot be bound: `cannot listen on unix:/PATH: ...` (exit code 1); those
    /// bound before are closed, their files removed.
    pub fn bind_unix<L>(
        &self,
        bind: impl Fn(PathBuf) -> io::Result<L>,
    ) -> Result<Vec<(&str, L, SocketFile)>, StartError> {
        let mut bound = Vec::new();
        for (name, path) in self.unix() {
            let (listener, file) = SocketFile::bind(path, &bind)?;
            bound.push((name, listener, file));
        }
        Ok(bound)
    }

    /// The one TCP address of an example that serves one (the line-protocol examples).
    ///
    /// # Errors
    ///
    /// Several `--addr`, or a Unix one (exit code 2).
    pub fn one_tcp(&self) -> Result<&str, StartError> {
        match self.tcp()[..] {
            [(_, addr)] if self.listeners.len() == 1 => Ok(addr),
            _ => Err(StartError::input(format!(
                "this example serves one --addr HOST:PORT\n{USAGE}"
            ))),
        }
    }

    /// The quiet period: graceful's default (250 ms), or half the timeout when that is
    /// shorter, so that any `--timeout` makes valid settings.
    pub fn quiet_period(&self) -> Duration {
        graceful_core::DEFAULT_QUIET_PERIOD.min(self.timeout / 2)
    }
}

/// A number of seconds, zero or more: `2.5`.
fn secs(value: &str) -> Result<Duration, String> {
    let secs: f64 = value.parse().map_err(|_| "expected seconds, like 2.5")?;
    Duration::try_from_secs_f64(secs).map_err(|_| "expected seconds, like 2.5".to_owned())
}

/// A number of seconds above zero.
fn positive_secs(value: &str) -> Result<Duration, String> {
    match secs(value)? {
        zero if zero.is_zero() => Err("expected a positive number of seconds".to_owned()),
        secs => Ok(secs),
    }
}

/// One `--addr`: a listener's name and where it listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The listener's name in the report's `by listener:` part, and the `LISTEN_FDNAMES`
    /// name a deploy finds its inherited socket by when there are several (systemd's
    /// `FileDescriptorName=`; a hot restart hands each on by its name). `NAME=` when
    /// given (no `:` nor `/` in it), else the address as given, its `:`s made `_`s for a
    /// TCP address (`127.0.0.1_3000`): `LISTEN_FDNAMES` separates names with `:`. Name
    /// them (`web=0.0.0.0:80`) where systemd passes them.
    pub name: String,
    /// Where it listens.
    pub addr: Addr,
}

/// Where a listener listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// `HOST:PORT`, as `Server::listen` takes it.
    Tcp(String),
    /// `unix:/PATH`: a Unix socket the example binds itself. Deploys hand TCP sockets
    /// over, not these: a hot restart fails while the old process holds the path (it
    /// serves on), and socket activation passes TCP sockets only.
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    /// As given: `HOST:PORT` or `unix:/PATH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(addr) => f.write_str(addr),
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Listen {
    /// Parses `[NAME=]HOST:PORT` or `[NAME=]unix:/PATH`. A name is what comes before the
    /// first `=` when that holds no `:` nor `/` (so that a path may hold a `=`).
    ///
    /// # Errors
    ///
    /// An empty name, address or path.
    ///
    /// # Examples
    ///
    /// ```
    /// use contract::{Addr, Listen};
    ///
    /// let web = Listen::parse("web=127.0.0.1:8080")?;
    /// assert_eq!((web.name.as_str(), web.addr), ("web", Addr::Tcp("127.0.0.1:8080".into())));
    /// assert_eq!(Listen::parse("127.0.0.1:8080")?.name, "127.0.0.1_8080");
    /// let admin = Listen::parse("unix:/run/admin.sock")?;
    /// assert_eq!(admin.name, "unix:/run/admin.sock");
    /// assert_eq!(admin.addr, Addr::Unix("/run/admin.sock".into()));
    /// assert!(Listen::parse("=127.0.0.1:80").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(value: &str) -> Result<Listen, String> {
        let (name, addr) = match value.split_once('=') {
            Some((name, addr)) if !name.contains([':', '/']) => (name.to_owned(), addr),
            // A TCP address's name goes into `LISTEN_FDNAMES`, which a `:` would split.
            _ if !value.starts_with("unix:") => (value.replace(':', "_"), value),
            _ => (value.to_owned(), value),
        };
        let addr = match addr.strip_prefix("unix:") {
            Some("") => return Err(format!("--addr {value}: expected unix:/PATH")),
            Some(path) => Addr::Unix(path.into()),
            None if addr.is_empty() => return Err(format!("--addr {value}: expected HOST:PORT")),
            None => Addr::Tcp(addr.to_owned()),
        };
        if name.is_empty() {
            return Err(format!(
                "--addr {value}: expected NAME=ADDR, a name before `=`"
            ));
        }
        Ok(Listen { name, addr })
    }
}

/// Checks that no two of `listeners` have the same name, nor the same address (a TCP
/// port 0 may be given more than once: each is a port of its own).
fn distinct(listeners: &[Listen]) -> Result<(), String> {
    for (i, listener) in listeners.iter().enumerate() {
        for earlier in &listeners[..i] {
            let any_port = matches!(&listener.addr, Addr::Tcp(addr) if addr.ends_with(":0"));
            if earlier.addr == listener.addr && !any_port {
                return Err(format!("{} is given twice", listener.addr));
            }
            if earlier.name == listener.name {
                return Err(format!(
                    "two listeners named {:?} (name each: --addr NAME=ADDR)",
                    listener.name
                ));
            }
        }
    }
    Ok(())
}
