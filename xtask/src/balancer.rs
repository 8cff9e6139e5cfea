//! The load balancers of `cargo xtask rolling`: nginx and HAProxy in front of two backends,
//! run as the current user on loopback ports, with their configs and logs in a directory of
//! their own, and what their logs say.
//!
//! Both keep HTTP/1.1 connections to the backends open between requests (nginx `keepalive`
//! with `proxy_http_version 1.1`; HAProxy `http-reuse always`), or HTTP/2 ones (HAProxy
//! `proto h2`), and neither replays a POST once it was sent (nginx's default
//! `proxy_next_upstream error timeout`; HAProxy's default `retry-on conn-failure`): a
//! backend that drops a request it took shows as a 502. Both retry a refused connection on
//! the other backend (nginx `max_fails=0`, so that a backend is never marked down for 10 s,
//! longer than between two restarts; HAProxy `retries 3` with `option redispatch 1`).
//!
//! For gRPC backends (`nginx-grpc`, `haproxy-grpc`) both speak HTTP/2 on both sides: nginx
//! `listen … http2` and `grpc_pass` (with `keepalive`), HAProxy `bind … proto h2` and
//! `server … proto h2`.
//!
//! # Invariants
//!
//! - A started balancer is a [`Balancer`], and dropping it stops the process (nginx's
//!   workers too, which a killed master would leave behind) and reaps it: no balancer
//!   outlives the command, whatever failed.
//! - Every wait is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// How long a balancer may take to listen, or to stop.
const BOUND: Duration = Duration::from_secs(10);

/// Which balancer, and how it talks to the backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Nginx,
    Haproxy,
    /// HAProxy with HTTP/2 (prior knowledge) to the backends.
    HaproxyH2,
    /// nginx in front of gRPC backends: HTTP/2 from the clients, `grpc_pass` to the backends.
    NginxGrpc,
    /// HAProxy in front of gRPC backends: HTTP/2 on both sides.
    HaproxyGrpc,
}

impl Kind {
    pub(crate) const ALL: [Kind; 5] = [
        Kind::Nginx,
        Kind::Haproxy,
        Kind::HaproxyH2,
        Kind::NginxGrpc,
        Kind::HaproxyGrpc,
    ];

    /// Whether it is in front of gRPC backends (and its clients speak gRPC).
    pub(crate) fn is_grpc(self) -> bool {
        matches!(self, Kind::NginxGrpc | Kind::HaproxyGrpc)
    }

    /// The name `--balancer` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
            Kind::HaproxyH2 => "haproxy-h2",
            Kind::NginxGrpc => "nginx-grpc",
            Kind::HaproxyGrpc => "haproxy-grpc",
        }
    }

    /// How it reaches the backends, for the tables.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx, HTTP/1.1 keep-alive to the backends",
            Kind::Haproxy => "HAProxy, HTTP/1.1 keep-alive to the backends (http-reuse always)",
            Kind::HaproxyH2 => "HAProxy, HTTP/2 to the backends (proto h2, http-reuse always)",
            Kind::NginxGrpc => "nginx, gRPC (HTTP/2 from the clients, grpc_pass with keepalive)",
            Kind::HaproxyGrpc => "HAProxy, gRPC (HTTP/2 on both sides, proto h2)",
        }
    }

    fn program(self) -> &'static str {
        match self {
            Kind::Nginx | Kind::NginxGrpc => "nginx",
            Kind::Haproxy | Kind::HaproxyH2 | Kind::HaproxyGrpc => "haproxy",
        }
    }
}

/// Installs the Debian packages of `kinds` that are missing (`apt-get`, with `sudo` unless
/// root), as `.ci/run` does for its tools.
pub(crate) fn install(kinds: &[Kind]) -> Result<(), String> {
    let mut missing: Vec<&str> = kinds
        .iter()
        .map(|kind| kind.program())
        .filter(|program| !on_path(program))
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    crate::server::progress("install", &format!("apt-get install {}", missing.join(" ")));
    let sudo = !rustix::process::geteuid().is_root();
    let apt = |args: &[&str]| {
        let mut command = Command::new(if sudo { "sudo" } else { "apt-get" });
        if sudo {
            command.arg("apt-get");
        }
        let status = command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|err| format!("cannot run apt-get: {err}"))?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("apt-get {} failed: {status}", args.join(" "))),
        }
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        || Path::new("/usr/sbin").join(program).is_file()
}

/// A running balancer. Dropping it stops it.
#[derive(Debug)]
pub(crate) struct Balancer {
    kind: Kind,
    child: Option<Child>,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Balancer {
    /// Writes the config into `dir` and starts the balancer on `port` in front of the
    /// backends' ports; returns once it listens.
    pub(crate) fn start(
        kind: Kind,
        dir: &Path,
        port: u16,
        backends: [u16; 2],
    ) -> Result<Balancer, String> {
        std::fs::create_dir_all(dir.join("tmp"))
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let program = if on_path(kind.program()) {
            PathBuf::from(kind.program())
        } else {
            Path::new("/usr/sbin").join(kind.program())
        };
        let mut command = Command::new(program);
        let output = match kind {
            Kind::Nginx | Kind::NginxGrpc => {
                let config = dir.join("nginx.conf");
                write(&config, &nginx_config(dir, port, backends, kind.is_grpc()))?;
                command.arg("-p").arg(dir).arg("-c").arg(&config);
                command.arg("-e").arg(dir.join("error.log"));
                dir.join("nginx.out")
            }
            Kind::Haproxy | Kind::HaproxyH2 | Kind::HaproxyGrpc => {
                let config = dir.join("haproxy.cfg");
                let h2 = kind != Kind::Haproxy;
                write(&config, &haproxy_config(port, backends, h2, kind.is_grpc()))?;
                command.arg("-db").arg("-f").arg(&config);
                // Its log, and its warnings, on stderr.
                dir.join("haproxy.log")
            }
        };
        let output = File::create(&output)
            .map_err(|err| format!("cannot create {}: {err}", output.display()))?;
        let stderr = output
            .try_clone()
            .map_err(|err| format!("cannot share a log file: {err}"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(stderr)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", kind.program()))?;
        let balancer = Balancer {
            kind,
            child: Some(child),
            dir: dir.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + BOUND;
        while !listening(port) {
            if Instant::now() > deadline || balancer.exited() {
                return Err(format!(
                    "{} did not listen on port {port}; see {}",
                    kind.program(),
                    dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(balancer)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn exited(&self) -> bool {
        let pid = self.child.as_ref().map(Pid::from_child);
        pid.is_none_or(|pid| {
            let options = rustix::process::WaitIdOptions::EXITED
                | rustix::process::WaitIdOptions::NOWAIT
                | rustix::process::WaitIdOptions::NOHANG;
            !matches!(
                rustix::process::waitid(rustix::process::WaitId::Pid(pid), options),
                Ok(None)
            )
        })
    }

    /// Stops the balancer gracefully (its logs flushed) and reads them.
    pub(crate) fn finish(mut self) -> Result<Logged, String> {
        self.stop()?;
        match self.kind {
            Kind::Nginx | Kind::NginxGrpc => Ok(read_nginx(&self.dir)),
            Kind::Haproxy | Kind::HaproxyH2 | Kind::HaproxyGrpc => Ok(read_haproxy(&self.dir)),
        }
    }

    /// Asks the balancer to stop (nginx SIGQUIT, HAProxy SIGUSR1: both let open connections
    /// end and flush their logs), then SIGTERM, then SIGKILL for it and nginx's workers,
    /// each after a bounded wait. Reaps it.
    fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = Pid::from_child(&child);
        let workers = children(pid);
        let gentle = match self.kind {
            Kind::Nginx | Kind::NginxGrpc => Signal::QUIT,
            Kind::Haproxy | Kind::HaproxyH2 | Kind::HaproxyGrpc => Signal::USR1,
        };
        for signal in [gentle, Signal::TERM] {
            let _ = rustix::process::kill_process(pid, signal);
            let deadline = Instant::now() + BOUND;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = child.kill();
        for worker in workers {
            let _ = rustix::process::kill_process(worker, Signal::KILL);
        }
        let _ = child.wait();
        Err(format!(
            "{} did not stop within {BOUND:?} of SIGTERM",
            self.kind.program()
        ))
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The processes whose parent is `pid` (Linux `/proc/PID/task/PID/children`).
fn children(pid: Pid) -> Vec<Pid> {
    let raw = pid.as_raw_pid();
    std::fs::read_to_string(format!("/proc/{raw}/task/{raw}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|child| Pid::from_raw(child.parse().ok()?))
        .collect()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
}

fn nginx_config(dir: &Path, port: u16, [a, b]: [u16; 2], grpc: bool) -> String {
    let dir = dir.display();
    // As root, nginx's workers would become `nobody` unless told otherwise; as anyone else
    // it cannot switch and the directive would only warn.
    let user = if rustix::process::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    let (listen, pass) = if grpc {
        (" http2", "grpc_pass grpc://backends;")
    } else {
        (
            "",
            "proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";",
        )
    };
    format!(
        "# Written by `cargo xtask rolling`.
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format rolling '$status $upstream_status';
    access_log {dir}/access.log rolling buffer=64k flush=1s;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    upstream backends {{
        server 127.0.0.1:{a} max_fails=0;
        server 127.0.0.1:{b} max_fails=0;
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port}{listen};
        location / {{
            {pass}
        }}
    }}
}}
"
    )
}

fn haproxy_config(port: u16, [a, b]: [u16; 2], h2: bool, grpc: bool) -> String {
    let proto = if h2 { " proto h2" } else { "" };
    let front = if grpc { " proto h2" } else { "" };
    format!(
        "# Written by `cargo xtask rolling`.
global
    log stderr format raw local0 info
    nbthread 1
    maxconn 4096
defaults
    mode http
    log global
    log-format \"%ST %tsc %rc\"
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
frontend front
    bind 127.0.0.1:{port}{front}
    default_backend backends
backend backends
    balance roundrobin
    http-reuse always
    server a 127.0.0.1:{a}{proto}
    server b 127.0.0.1:{b}{proto}
"
    )
}

/// What a balancer's logs say.
#[derive(Debug, Default)]
pub(crate) struct Logged {
    /// Requests it logged.
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests it sent to a backend more than once (after a refused or reset connect).
    pub retried: u64,
    /// nginx: its error log's lines by kind; HAProxy: its termination states other than
    /// `--` (the first two letters of `%tsc`).
    pub events: BTreeMap<String, u64>,
}

/// `5 × 200, 1 × 502`, or `none`.
pub(crate) fn tally<K: std::fmt::Display>(counts: &BTreeMap<K, u64>) -> String {
    let mut line = String::new();
    for (what, count) in counts {
        if !line.is_empty() {
            line.push_str(", ");
        }
        let _ = write!(line, "{count} × {what}");
    }
    if line.is_empty() {
        line.push_str("none");
    }
    line
}

/// Whether a socket listens on `port` of 127.0.0.1: binding it (with `SO_REUSEADDR`, as
/// servers do, which ignores connections still open or in `TIME_WAIT`) fails only then. The
/// probe never listens, so that no connection can land on it.
pub(crate) fn listening(port: u16) -> bool {
    use rustix::net::{bind, socket, sockopt, AddressFamily, SocketType};
    let Ok(probe) = socket(AddressFamily::INET, SocketType::STREAM, None) else {
        return true;
    };
    let _ = sockopt::set_socket_reuseaddr(&probe, true);
    bind(&probe, &SocketAddr::from(([127, 0, 0, 1], port))).is_err()
}

/// The kind of an nginx error log line.
fn nginx_event(line: &str) -> &'static str {
    let reading = line.contains("while reading") || line.contains("while sending");
    match () {
        _ if line.contains("(111: Connection refused)") => "connection refused",
        _ if line.contains("(104: Connection reset by peer)") && reading => {
            "reset by peer (request sent)"
        }
        _ if line.contains("(104: Connection reset by peer)") => "reset by peer (connecting)",
        _ if line.contains("upstream prematurely closed connection") => {
            "upstream prematurely closed"
        }
        _ if line.contains("upstream timed out") => "upstream timed out",
        _ if line.contains("no live upstreams") => "no live upstreams",
        _ => "other",
    }
}

fn read_nginx(dir: &Path) -> Logged {
    let mut logged = Logged::default();
    let access = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
    for line in access.lines() {
        let Some((status, upstreams)) = line.split_once(' ') else {
            continue;
        };
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        logged.requests += 1;
        *logged.statuses.entry(status).or_default() += 1;
        // `502, 200`: tried twice.
        logged.retried += u64::from(upstreams.contains(','));
    }
    let errors = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    for line in errors.lines() {
        // Startup notices and the like have no connection number (`*N`).
        if line.contains(" *") {
            *logged.events.entry(nginx_event(line).into()).or_default() += 1;
        }
    }
    logged
}

fn read_haproxy(dir: &Path) -> Logged {
    let mut logged = Logged::default();
    let log = std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default();
    for line in log.lines() {
        let mut fields = line.split(' ');
        let (Some(status), Some(state), Some(retries)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(status) = status.parse::<u16>() else {
            continue; // a warning or an alert
        };
        logged.requests += 1;
        *logged.statuses.entry(status).or_default() += 1;
        // `+1`: redispatched to the other server.
        let retries: u64 = retries.trim_start_matches('+').parse().unwrap_or(0);
        logged.retried += u64::from(retries > 0);
        let state = state.get(..2).unwrap_or(state);
        if state != "--" {
            *logged.events.entry(state.into()).or_default() += 1;
        }
    }
    logged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_listening_only_while_a_listener_holds_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A connection still open on the port does not count.
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (served, _) = listener.accept().unwrap();
        assert!(listening(port));
        drop(listener);
        assert!(!listening(port), "only connections are left");
        drop((client, served));
        assert_eq!(tally(&BTreeMap::<u16, u64>::new()), "none");
    }

    #[test]
    fn nginx_error_lines_are_classified() {
        let line = |what: &str| {
            format!("2026/12/07 12:06:50 [error] 1#1: *9182 {what}, client: 127.0.0.1")
        };
        let cases = [
            ("connect() failed (111: Connection refused) while connecting to upstream", "connection refused"),
            ("recv() failed (104: Connection reset by peer) while reading response header from upstream", "reset by peer (request sent)"),
            ("connect() failed (104: Connection reset by peer) while connecting to upstream", "reset by peer (connecting)"),
            ("upstream prematurely closed connection while reading response header from upstream", "upstream prematurely closed"),
            ("upstream timed out (110: Connection timed out) while reading response header", "upstream timed out"),
            ("no live upstreams while connecting to upstream", "no live upstreams"),
            ("something new", "other"),
        ];
        for (what, kind) in cases {
            assert_eq!(nginx_event(&line(what)), kind, "{what}");
        }
    }

    #[test]
    fn logs_are_counted() {
        let dir = std::env::temp_dir().join(format!("xtask-balancer-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("access.log"), "200 200\n200 502, 200\n502 502\n").unwrap();
        std::fs::write(
            dir.join("error.log"),
            "2026/12/07 [notice] 1#1: start worker processes\n\
             2026/12/07 [error] 1#1: *5 connect() failed (111: Connection refused) while connecting\n",
        )
        .unwrap();
        let nginx = read_nginx(&dir);
        assert_eq!((nginx.requests, nginx.retried), (3, 1));
        assert_eq!(tally(&nginx.statuses), "2 × 200, 1 × 502");
        assert_eq!(tally(&nginx.events), "1 × connection refused");
        std::fs::write(
            dir.join("haproxy.log"),
            "[WARNING]  (1) : something\n200 ---- 0\n200 ---- +1\n502 SH-- 0\n",
        )
        .unwrap();
        let haproxy = read_haproxy(&dir);
        assert_eq!((haproxy.requests, haproxy.retried), (3, 1));
        assert_eq!(tally(&haproxy.statuses), "2 × 200, 1 × 502");
        assert_eq!(tally(&haproxy.events), "1 × SH");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
