//! The servers under test: which ones, how they are built, started, signalled, measured and
//! reaped.
//!
//! Every server keeps the HTTP examples' contract (`--addr`, `--timeout`,
//! `listening on http://ADDR`, `/`, `/sleep/{ms}` and `/bytes/{n}`). They are started on
//! `127.0.0.1:0` and the address is read from their announcement, so runs never collide on
//! a port.
//!
//! # Invariants
//!
//! - A started server is a [`Server`], and dropping a `Server` kills (SIGKILL) and reaps the
//!   process if it is still there: no step, failed or not, leaves a child behind.
//! - Every wait is bounded: startup, exit, and the build itself report an error rather than
//!   hang.
//! - Measurements read `/proc` (Linux): RSS from `status`, CPU time as the sum of the
//!   threads' `schedstat` run times (nanoseconds), falling back to `stat`'s utime+stime.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use graceful_harness::build::cargo_command;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use crate::ci::root;

/// How long a server may take to print `listening on`.
const STARTUP_BOUND: Duration = Duration::from_secs(20);
/// Bytes of a server's output kept for error messages.
const LOG_CAP: usize = 16 * 1024;

/// Where a server's binary comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Program {
    /// A peer binary of this package (`src/bin/`).
    Peer(&'static str),
    /// An example of the `examples` package.
    Example(&'static str),
}

/// One server the bench and the drills run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    /// The column label.
    pub name: &'static str,
    pub program: Program,
    /// Flags added after `--addr` and `--timeout`.
    pub args: &'static [&'static str],
    /// The raw hyper build this one is compared with (same protocol configuration).
    pub baseline: Option<&'static str>,
    /// One of graceful's own servers.
    pub ours: bool,
    /// Run only when named with `--servers`.
    pub optional: bool,
    /// Serves HTTPS: started with `--cert`/`--key` of the bench's certificate (`tls.rs`),
    /// announces `listening on https://ADDR`, and is loaded over TLS.
    pub tls: bool,
}

/// The raw hyper HTTP/1-only build: the floor for HTTP/1 servers.
pub(crate) const RAW_HTTP1: &str = "hyper-http1";
/// The raw hyper auto (HTTP/1 + HTTP/2) build: the floor for auto servers.
pub(crate) const RAW_AUTO: &str = "hyper-auto";
/// The raw hyper auto build on smol: the floor for servers on smol.
pub(crate) const RAW_SMOL: &str = "hyper-smol";
/// axum's own `serve` with `with_graceful_shutdown`: what an axum user runs instead.
pub(crate) const AXUM_SERVE: &str = "axum-serve";
/// Raw hyper auto over tokio-rustls: the floor for HTTPS servers.
pub(crate) const RAW_TLS: &str = "hyper-tls";
/// hyper-util's GracefulShutdown, the peer most users would pick.
pub(crate) const HYPER_UTIL: &str = "hyper-util-graceful";

/// Every server, peers first; those marked `optional` run only when named. The `-hrt`
/// variants of raw hyper set hyper's header read timeout (30 s on tokio's timer), as
/// graceful-hyper does by default: the same safety, to tell its cost from graceful's.
pub(crate) const ALL: &[Spec] = &[
    Spec {
        name: RAW_HTTP1,
        program: Program::Peer("peer_hyper_http1"),
        args: &[],
        baseline: None,
        ours: false,
        optional: false,
        tls: false,
    },
    Spec {
        name: RAW_AUTO,
        program: Program::Peer("peer_hyper_auto"),
        args: &[],
        baseline: None,
        ours: false,
        optional: false,
        tls: false,
    },
    Spec {
        name: "hyper-auto-hrt",
        program: Program::Peer("peer_hyper_auto"),
        args: &["--header-read-timeout", "30"],
        baseline: None,
        ours: false,
        optional: false,
        tls: false,
    },
    Spec {
        name: RAW_SMOL,
        program: Program::Peer("peer_hyper_smol"),
        args: &[],
        baseline: None,
        ours: false,
        optional: false,
        tls: false,
    },
    Spec {
        name: HYPER_UTIL,
        program: Program::Peer("peer_hyper_util_graceful"),
        args: &[],
        baseline: Some(RAW_AUTO),
        ours: false,
        optional: false,
        tls: false,
    },
    Spec {
        name: "hello_tokio",
        program: Program::Example("hello_tokio"),
        args: &[],
        baseline: Some(RAW_AUTO),
        ours: true,
        optional: false,
        tls: false,
    },
    Spec {
        name: "hello_smol",
        program: Program::Example("hello_smol"),
        args: &[],
        baseline: Some(RAW_SMOL),
        ours: true,
        optional: false,
        tls: false,
    },
    Spec {
        name: RAW_TLS,
        program: Program::Peer("peer_hyper_tls"),
        args: &[],
        baseline: None,
        ours: false,
        optional: false,
        tls: true,
    },
    Spec {
        name: "hyper-tls-hrt",
        program: Program::Peer("peer_hyper_tls"),
        args: &["--header-read-timeout", "30"],
        baseline: None,
        ours: false,
        optional: true,
        tls: true,
    },
    Spec {
        name: "hello_tls",
        program: Program::Example("hello_tls"),
        args: &[],
        baseline: Some(RAW_TLS),
        ours: true,
        optional: false,
        tls: true,
    },
    Spec {
        name: "hello_tls_smol",
        program: Program::Example("hello_tls_smol"),
        args: &[],
        baseline: Some(RAW_TLS),
        ours: true,
        optional: true,
        tls: true,
    },
    Spec {
        name: "hyper-http1-hrt",
        program: Program::Peer("peer_hyper_http1"),
        args: &["--header-read-timeout", "30"],
        baseline: None,
        ours: false,
        optional: true,
        tls: false,
    },
    Spec {
        name: "hello_async_std",
        program: Program::Example("hello_async_std"),
        args: &[],
        baseline: None,
        ours: true,
        optional: true,
        tls: false,
    },
    Spec {
        name: "hello_tokio_current",
        program: Program::Example("hello_tokio_current"),
        args: &[],
        baseline: Some(RAW_AUTO),
        ours: true,
        optional: true,
        tls: false,
    },
    Spec {
        name: "axum_tokio",
        program: Program::Example("axum_tokio"),
        args: &[],
        baseline: Some(AXUM_SERVE),
        ours: true,
        optional: true,
        tls: false,
    },
    Spec {
        name: AXUM_SERVE,
        program: Program::Peer("peer_axum_serve"),
        args: &[],
        baseline: None,
        ours: false,
        optional: true,
        tls: false,
    },
];

/// The spec named `name`.
pub(crate) fn spec(name: &str) -> Option<&'static Spec> {
    ALL.iter().find(|spec| spec.name == name)
}

/// Selects servers by name (comma separated), or all those not optional.
pub(crate) fn select(names: Option<&str>) -> Result<Vec<&'static Spec>, String> {
    let Some(names) = names else {
        return Ok(ALL.iter().filter(|spec| !spec.optional).collect());
    };
    names
        .split(',')
        .map(|name| {
            spec(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = ALL.iter().map(|spec| spec.name).collect();
                format!("unknown server {name:?} (known: {})", known.join(", "))
            })
        })
        .collect()
}

/// Cargo's target directory.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

impl Spec {
    /// The release binary.
    pub(crate) fn binary(&self) -> PathBuf {
        match self.program {
            Program::Peer(bin) => target_dir().join("release").join(bin),
            Program::Example(example) => target_dir().join("release/examples").join(example),
        }
    }
}

/// Builds the selected servers with `cargo build --release`, cargo's own progress showing.
/// Returns the servers that built; the others are reported on stderr and left out.
pub(crate) fn build(specs: &[&'static Spec]) -> Result<Vec<&'static Spec>, String> {
    let mut built = Vec::new();
    let peers = specs.iter().any(|s| matches!(s.program, Program::Peer(_)));
    if peers && !crate::cli::reexecuted() {
        progress("build", "cargo build --release -p xtask --bins");
        let status = cargo_command()
            .args(["build", "--release", "-p", "xtask", "--bins"])
            .current_dir(root())
            .status()
            .map_err(|err| format!("cannot run cargo: {err}"))?;
        if !status.success() {
            return Err(format!("building the peers failed: {status}"));
        }
    }
    for spec in specs {
        if let Program::Example(example) = spec.program {
            progress(
                "build",
                &format!("cargo build --release -p examples --example {example}"),
            );
            let status = cargo_command()
                .args(["build", "--release", "-p", "examples", "--example", example])
                .current_dir(root())
                .status()
                .map_err(|err| format!("cannot run cargo: {err}"))?;
            if !status.success() {
                eprintln!(
                    "xtask: example {example} does not build; {} is left out",
                    spec.name
                );
                continue;
            }
        }
        built.push(*spec);
    }
    Ok(built)
}

/// Prints a progress line: `[step] message`.
pub(crate) fn progress(step: &str, message: &str) {
    eprintln!("[{step}] {message}");
}

/// Raises the soft limit on open files to the hard limit; children inherit it.
pub(crate) fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(_) => limit.current,
    }
}

/// When a process exited, set by a watcher thread blocked in `waitid(WNOWAIT)` (which
/// sees the exit at once without reaping, so the `Child` stays valid for `Drop`).
#[derive(Debug, Default)]
struct ExitWatch {
    at: Mutex<Option<Instant>>,
    seen: Condvar,
}

impl ExitWatch {
    fn watch(self: Arc<Self>, pid: Pid) {
        std::thread::spawn(move || {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
            while let Err(rustix::io::Errno::INTR) =
                rustix::process::waitid(WaitId::Pid(pid), options)
            {}
            // Exited (or already reaped, which only `Drop` does): either way, gone.
            if let Ok(mut at) = self.at.lock() {
                at.get_or_insert_with(Instant::now);
            }
            self.seen.notify_all();
        });
    }

    fn wait(&self, deadline: Instant) -> Option<Instant> {
        let mut at = self.at.lock().ok()?;
        loop {
            if let Some(at) = *at {
                return Some(at);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            at = self.seen.wait_timeout(at, left).ok()?.0;
        }
    }
}

/// A running server. Dropping it kills and reaps the process if it is still running.
#[derive(Debug)]
pub(crate) struct Server {
    name: &'static str,
    child: Child,
    pid: Pid,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    exit: Arc<ExitWatch>,
}

impl Server {
    /// Starts `spec` with `--timeout timeout_secs` and waits for its announcement.
    pub(crate) fn start(spec: &Spec, timeout_secs: f64) -> Result<Server, String> {
        Server::start_under(spec, timeout_secs, &[])
    }

    /// [`start`](Server::start), the binary run by `wrapper` (a command and its flags, such
    /// as valgrind's) when it is not empty.
    pub(crate) fn start_under(
        spec: &Spec,
        timeout_secs: f64,
        wrapper: &[String],
    ) -> Result<Server, String> {
        let binary = spec.binary();
        let mut command = match wrapper.split_first() {
            None => Command::new(&binary),
            Some((program, flags)) => {
                let mut command = Command::new(program);
                command.args(flags).arg(&binary);
                command
            }
        };
        let mut child = command
            .args([
                "--addr",
                "127.0.0.1:0",
                "--timeout",
                &timeout_secs.to_string(),
            ])
            .args(spec.args)
            .args(tls_args(spec)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut addr_tx = Some(addr_tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let announced = line
                        .strip_prefix("listening on http://")
                        .or_else(|| line.strip_prefix("listening on https://"));
                    if let Some(addr) = announced {
                        if let Some(tx) = addr_tx.take() {
                            let _ = tx.send(addr.trim().to_string());
                        }
                    }
                    append(&log, &line);
                }
            });
        }
        if let Some(mut stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                // As it comes: a line may arrive in several reads (stderr is unbuffered, so
                // one `eprintln!` can be several writes).
                while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                    append_raw(&log, &String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        let pid = Pid::from_child(&child);
        let exit = Arc::new(ExitWatch::default());
        exit.clone().watch(pid);
        let mut server = Server {
            name: spec.name,
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            exit,
        };
        let announced = addr_rx.recv_timeout(STARTUP_BOUND).map_err(|_| {
            format!(
                "{} did not print `listening on http://ADDR` within {STARTUP_BOUND:?}; output: {}",
                spec.name,
                server.log()
            )
        })?;
        server.addr = announced
            .parse()
            .map_err(|err| format!("{} announced {announced:?}: {err}", spec.name))?;
        if server.addr.port() == 0 {
            return Err(format!(
                "{} announced port 0 for --addr 127.0.0.1:0",
                spec.name
            ));
        }
        if spec.tls {
            crate::tls::register(server.addr);
        }
        Ok(server)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The output collected so far (stdout and stderr, last few KiB).
    pub(crate) fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// `err`, with the name of the server and its output, for an error message.
    pub(crate) fn failure(&self, err: &str) -> String {
        format!("{}: {err}; its output:\n{}", self.name, self.log())
    }

    /// Sends `signal`; returns the instant just before sending it.
    pub(crate) fn signal(&self, signal: Signal) -> Result<Instant, String> {
        let at = Instant::now();
        rustix::process::kill_process(self.pid, signal)
            .map_err(|err| format!("cannot signal {}: {err}", self.name))?;
        Ok(at)
    }

    /// Waits for the process to exit, at most until `deadline`: the instant it exited, or
    /// `None` if it is still running.
    pub(crate) fn wait_exit(&self, deadline: Instant) -> Option<Instant> {
        self.exit.wait(deadline)
    }

    /// Lowers the process's open-file limit (soft and hard) to `limit`, as `prlimit` does:
    /// its next accepts past the limit fail with EMFILE.
    pub(crate) fn set_nofile_limit(&self, limit: u64) -> Result<(), String> {
        use rustix::process::{prlimit, Resource, Rlimit};
        let new = Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        prlimit(Some(self.pid), Resource::Nofile, new)
            .map(drop)
            .map_err(|err| format!("cannot lower the open-file limit of {}: {err}", self.name))
    }

    /// Resident memory (`VmRSS`), in bytes.
    pub(crate) fn rss(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid.as_raw_pid()))
            .map_err(|err| format!("cannot read /proc status of {}: {err}", self.name))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| format!("no VmRSS for {}", self.name))
    }

    /// CPU time (user + system) used so far by all threads, in nanoseconds.
    pub(crate) fn cpu_ns(&self) -> Result<u64, String> {
        let pid = self.pid.as_raw_pid();
        if let Some(ns) = schedstat_ns(pid) {
            return Ok(ns);
        }
        // `/proc/PID/stat` fields 14 and 15, in USER_HZ (100 per second on Linux).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|err| format!("cannot read /proc stat of {}: {err}", self.name))?;
        let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        match (ticks(11), ticks(12)) {
            (Some(utime), Some(stime)) => Ok((utime + stime) * 10_000_000),
            _ => Err(format!("cannot parse /proc stat of {}", self.name)),
        }
    }
}

/// CPU time used so far by this process (the load generator), in nanoseconds.
pub(crate) fn own_cpu_ns() -> Option<u64> {
    schedstat_ns(i32::try_from(std::process::id()).ok()?)
}

/// The sum of the threads' run times; a thread that ends while being read is skipped.
fn schedstat_ns(pid: i32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn append(log: &Mutex<String>, line: &str) {
    append_raw(log, line);
    append_raw(log, "\n");
}

fn append_raw(log: &Mutex<String>, text: &str) {
    if let Ok(mut log) = log.lock() {
        if log.len() > LOG_CAP {
            let cut = log.len() - LOG_CAP / 2;
            let cut = (cut..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(0);
            log.drain(..cut);
        }
        log.push_str(text);
    }
}

/// `--cert` and `--key` for a TLS server, nothing for the others.
fn tls_args(spec: &Spec) -> Result<Vec<String>, String> {
    if !spec.tls {
        return Ok(Vec::new());
    }
    let cert = crate::tls::bench_cert()?;
    Ok(vec![
        "--cert".to_owned(),
        cert.cert.display().to_string(),
        "--key".to_owned(),
        cert.key.display().to_string(),
    ])
}

impl Drop for Server {
    fn drop(&mut self) {
        crate::tls::forget(self.addr);
        // Harmless on a process that has exited but is not reaped yet.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
