//! Child processes: started with [`Launch`], watched through [`Process`].
//!
//! # Invariants
//!
//! - A child's stdout and stderr are read line by line, as they come, by two threads; a
//!   third waits for its exit and notes the instant. Waits on any of these are bounded and
//!   wake on the event itself (a condition variable), not on a timer.
//! - The exit is observed without reaping the child (`waitid` with `WNOWAIT`), then noted
//!   and reaped under the lock that [`Process`]'s drop takes before it sends `SIGKILL`: a
//!   dropped handle kills its child if it is still running, and can never signal another
//!   process that took the pid over.
//! - Every spawn holds [`hold_spawns`]'s lock: until its `exec`, a forked child holds a copy
//!   of every descriptor of the test process, listening sockets included.
//! - A child starts without the service manager's variables (`NOTIFY_SOCKET`,
//!   `LISTEN_FDS`, ...) of the environment the tests run in: a test sets those it means.
//! - A child given `LISTEN_FDS` and no `LISTEN_PID` gets `LISTEN_PID` = its own pid, as
//!   systemd sets it between `fork` and `exec`: it starts through `/bin/sh`, whose `exec`
//!   keeps the pid and the descriptors (as a hot restart starts its child).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// How long a new server may take to say `listening on`: generous, as a first start may
/// build the example.
pub const START_BOUND: Duration = Duration::from_secs(30);

/// The service manager's variables, which no child inherits from the test's environment.
const MANAGER_VARIABLES: [&str; 7] = [
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "GRACEFUL_RESTART_PARENT",
];

/// Holds off every spawn of this process until the guard drops: a test that checks that
/// nothing listens on a socket it closed holds it, since a child forked meanwhile would
/// hold a copy of the socket until its `exec`. The thread that holds it must not start a
/// child itself (nor ask for an example binary, which may start cargo).
///
/// # Examples
///
/// ```
/// let _no_fork = graceful_harness::process::hold_spawns();
/// // ... close a listener, check that nobody listens on its address ...
/// ```
pub fn hold_spawns() -> MutexGuard<'static, ()> {
    static SPAWNING: Mutex<()> = Mutex::new(());
    SPAWNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How to start a child process: a program, its arguments, environment and descriptors.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use graceful_harness::Launch;
///
/// let mut echo = Launch::program("sh").args(["-c", "echo listening on http://127.0.0.1:9"]).spawn();
/// assert_eq!(echo.listening(Duration::from_secs(10)).port(), 9);
/// assert!(echo.wait_exit(Duration::from_secs(10)).1.success());
/// ```
#[derive(Debug)]
pub struct Launch {
    name: String,
    command: Command,
    fds: Vec<FdMapping>,
    stdin: bool,
}

impl Launch {
    /// Runs `program` (a path, or a name looked up in `PATH`).
    pub fn program(program: impl AsRef<OsStr>) -> Launch {
        let program = program.as_ref();
        let name = Path::new(program)
            .file_name()
            .unwrap_or(program)
            .to_string_lossy()
            .into_owned();
        let mut command = Command::new(program);
        for variable in MANAGER_VARIABLES {
            command.env_remove(variable);
        }
        Launch {
            name,
            command,
            fds: Vec::new(),
            stdin: false,
        }
    }

    /// Re-runs the current test binary for the one test named `test` (`--exact`, output
    /// not captured): a test that plays a server when an environment variable says so.
    pub fn this_test(test: &str) -> Launch {
        let exe = std::env::current_exe().expect("the test binary's path");
        Launch::program(exe).named(test).args([
            test,
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
    }

    /// Names the child in failure messages.
    pub fn named(mut self, name: &str) -> Launch {
        name.clone_into(&mut self.name);
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Launch {
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Launch {
        self.command.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.command.env(key, value);
        self
    }

    /// Leaves the environment variable `key` out of the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Launch {
        self.command.env_remove(key);
        self
    }

    /// Hands `fd` to the child as its descriptor number `child_fd`.
    pub fn fd(mut self, child_fd: i32, fd: impl Into<OwnedFd>) -> Launch {
        self.fds.push(FdMapping {
            parent_fd: fd.into(),
            child_fd,
        });
        self
    }

    /// Gives the child a stdin the test writes to ([`Process::tell`]); otherwise it reads
    /// from `/dev/null`.
    pub fn with_stdin(mut self) -> Launch {
        self.stdin = true;
        self
    }

    /// Starts the child (with `LISTEN_PID` its own pid, if it is given `LISTEN_FDS` and
    /// no `LISTEN_PID`).
    pub fn spawn(mut self) -> Process {
        let sets =
            |key: &str| (self.command.get_envs()).any(|(k, v)| k == OsStr::new(key) && v.is_some());
        if sets("LISTEN_FDS") && !sets("LISTEN_PID") {
            self.command = with_own_listen_pid(&self.command);
        }
        let stdin = if self.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        self.command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !self.fds.is_empty() {
            self.command
                .fd_mappings(std::mem::take(&mut self.fds))
                .expect("distinct descriptor numbers for the child");
        }
        let mut child = {
            let _spawning = hold_spawns();
            self.command
                .spawn()
                .unwrap_or_else(|error| panic!("start {}: {error}", self.name))
        };
        let pid = Pid::from_child(&child);
        let shared = Arc::new(Shared::default());
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        read_lines(stdout, shared.clone(), |output| &mut output.stdout);
        read_lines(stderr, shared.clone(), |output| &mut output.stderr);
        let stdin = child.stdin.take();
        let waiter = shared.clone();
        thread::spawn(move || {
            // Wait without reaping: until the exit is noted, the pid stays ours to kill.
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
            while let Err(rustix::io::Errno::INTR) =
                rustix::process::waitid(WaitId::Pid(pid), options)
            {}
            let at = Instant::now();
            let mut output = waiter.lock();
            let status = child.wait().expect("reap the child");
            output.exit = Some((at, status));
            waiter.changed.notify_all();
        });
        Process {
            name: self.name,
            pid,
            shared,
            stdin,
            stdout_read: 0,
            successors: Vec::new(),
        }
    }
}

/// `command` started through `/bin/sh -c 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"'`.
fn with_own_listen_pid(command: &Command) -> Command {
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        shell.current_dir(dir);
    }
    shell
}

/// What a child printed, and how it ended.
#[derive(Debug, Default)]
pub struct Output {
    /// Its stdout lines so far.
    pub stdout: Vec<String>,
    /// Its stderr lines so far.
    pub stderr: Vec<String>,
    /// How many of stdout and stderr have ended (reached end of file: closed by the child
    /// and by every process that inherited them).
    pub ended: u8,
    /// When the exit was observed, and the status.
    pub exit: Option<(Instant, ExitStatus)>,
}

#[derive(Debug, Default)]
struct Shared {
    output: Mutex<Output>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Output> {
        self.output
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn read_lines(
    pipe: impl Read + Send + 'static,
    shared: Arc<Shared>,
    lines: fn(&mut Output) -> &mut Vec<String>,
) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines(&mut shared.lock()).push(line);
            shared.changed.notify_all();
        }
        shared.lock().ended += 1;
        shared.changed.notify_all();
    });
}

/// A running (or exited) child process. Dropping it kills the child if it still runs, and
/// the processes it was told of with [`Process::owns`].
#[derive(Debug)]
pub struct Process {
    name: String,
    pid: Pid,
    shared: Arc<Shared>,
    stdin: Option<ChildStdin>,
    /// How many stdout lines [`Process::next_stdout`] has passed.
    stdout_read: usize,
    successors: Vec<u32>,
}

impl Process {
    /// The name given at launch.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The child's process id, as a number.
    pub fn id(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: Signal) {
        rustix::process::kill_process(self.pid, signal)
            .unwrap_or_else(|error| panic!("signal {}: {error}", self.name));
    }

    /// Sends SIGTERM; returns the instant just before.
    pub fn terminate(&self) -> Instant {
        let at = Instant::now();
        self.signal(Signal::TERM);
        at
    }

    /// Sends SIGHUP.
    pub fn hangup(&self) {
        self.signal(Signal::HUP);
    }

    /// Writes one line to the child's stdin ([`Launch::with_stdin`]).
    pub fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("launched with a stdin");
        writeln!(stdin, "{line}").expect("the child reads its stdin");
    }

    /// Kills `pid` too when this handle drops, if it is still alive: a process the child
    /// started (a hot restart's new process), which would otherwise outlive the test.
    pub fn owns(&mut self, pid: u32) {
        self.successors.push(pid);
    }

    /// The stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.shared.lock().stdout.clone()
    }

    /// The stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.shared.lock().stderr.clone()
    }

    /// Waits until `found` gives a value from the output so far; panics after `bound`,
    /// naming `what` it waited for and showing the output. Wakes on every line and on the
    /// exit, not on a timer.
    #[track_caller]
    pub fn wait_output<T>(
        &self,
        what: &str,
        bound: Duration,
        mut found: impl FnMut(&Output) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + bound;
        let mut output = self.shared.lock();
        loop {
            if let Some(value) = found(&output) {
                return value;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out after {bound:?} waiting for {what} from {}: {output:#?}",
                    self.name
                );
            }
            output = self
                .shared
                .changed
                .wait_timeout(output, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Waits for a stdout line, after those an earlier call took, for which `find` gives a
    /// value; takes the lines up to it.
    #[track_caller]
    pub fn next_stdout<T>(
        &mut self,
        what: &str,
        bound: Duration,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let from = self.stdout_read;
        let (at, value) = self.wait_output(what, bound, |output| {
            output.stdout[from.min(output.stdout.len())..]
                .iter()
                .enumerate()
                .find_map(|(n, line)| Some((from + n, find(line)?)))
        });
        self.stdout_read = at + 1;
        value
    }

    /// Waits for the next `listening on ADDR` line (`http://` and `https://` allowed before
    /// the address; anything before `listening on`, such as libtest's `test NAME ... `);
    /// returns the address.
    #[track_caller]
    pub fn listening(&mut self, bound: Duration) -> SocketAddr {
        self.next_stdout("a `listening on ADDR` line", bound, listening_address)
    }

    /// Waits for a stderr line that contains `text`; returns it.
    #[track_caller]
    pub fn wait_stderr(&self, text: &str, bound: Duration) -> String {
        self.wait_output(&format!("a stderr line with {text:?}"), bound, |output| {
            output
                .stderr
                .iter()
                .find(|line| line.contains(text))
                .cloned()
        })
    }

    /// The exit status, if the child has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.shared.lock().exit.map(|(_, status)| status)
    }

    /// Waits for the child to exit; returns when it was seen to, and its status.
    #[track_caller]
    pub fn wait_exit(&self, bound: Duration) -> (Instant, ExitStatus) {
        self.wait_output("the exit", bound, |output| output.exit)
    }

    /// Waits for the child to exit and its stdout and stderr to end (every process that
    /// inherited them gone too), so that they are read to the end; returns its status.
    #[track_caller]
    pub fn wait_exit_and_output(&self, bound: Duration) -> ExitStatus {
        self.wait_output("the exit and the end of the output", bound, |output| {
            output.exit.filter(|_| output.ended == 2).map(|(_, s)| s)
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        {
            let output = self.shared.lock();
            if output.exit.is_none() {
                let _ = rustix::process::kill_process(self.pid, Signal::KILL);
            }
        }
        for &pid in &self.successors {
            if alive(pid) {
                signal_pid(pid, Signal::KILL);
            }
        }
    }
}

/// The address in a `listening on ADDR` line (`http://` or `https://` may come first).
///
/// # Examples
///
/// ```
/// use graceful_harness::process::listening_address;
///
/// let addr = listening_address("test child ... listening on https://127.0.0.1:8443");
/// assert_eq!(addr, Some("127.0.0.1:8443".parse().unwrap()));
/// assert_eq!(listening_address("listening"), None);
/// ```
pub fn listening_address(line: &str) -> Option<SocketAddr> {
    const MARKER: &str = "listening on ";
    let rest = &line[line.find(MARKER)? + MARKER.len()..];
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))
        .unwrap_or(rest);
    rest.trim().parse().ok()
}

/// Whether process `pid` is alive (a zombie is not).
///
/// # Examples
///
/// ```
/// assert!(graceful_harness::process::alive(std::process::id()));
/// ```
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Sends `signal` to process `pid`, which this test did not start (a hot restart's new
/// process); a process already gone is not an error.
pub fn signal_pid(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let _ = rustix::process::kill_process(pid, signal);
}

/// Stops process `pid`, which this test did not start: SIGTERM, then waits until it is
/// gone; panics (after SIGKILL) if it outlives `bound`.
#[track_caller]
pub fn stop_pid(pid: u32, bound: Duration) {
    signal_pid(pid, Signal::TERM);
    if !crate::wait::holds_within(bound, || !alive(pid)) {
        signal_pid(pid, Signal::KILL);
        panic!("process {pid} did not exit within {bound:?} of SIGTERM");
    }
}

/// Raises this process's soft limit on open descriptors to the hard limit (children
/// inherit it); panics, saying how to fix it, if that leaves fewer than `needed`.
pub fn raise_descriptor_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).expect("raise the soft RLIMIT_NOFILE");
    }
    let have = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        have >= needed,
        "this test needs {needed} open descriptors, but the hard RLIMIT_NOFILE is {have}: \
         raise it (ulimit -Hn)"
    );
}

/// Lowers this process's soft limit on open descriptors so that exactly `free` descriptor
/// numbers are left (new descriptors take the lowest free number below the limit; open
/// ones above it stay open).
pub fn leave_descriptors(free: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let open: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .expect("list the open descriptors")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let limit = (0..)
        .find(|&limit| limit - open.iter().filter(|&&fd| fd < limit).count() as u64 >= free)
        .expect("a limit exists");
    let maximum = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(limit),
            maximum,
        },
    )
    .expect("lower the soft RLIMIT_NOFILE");
}

/// The adapters' signal check, the same on every runtime: `rounds` times, starts `server`
/// (which prints a line ending in `listening` once it serves, and `report: <report>` on
/// stderr when it ends), sends SIGTERM as soon as the line is read, and asserts that the
/// process drained and exited 0: a signal sent once the server is built is never lost.
#[track_caller]
pub fn sigterm_once_listening_drains(server: impl Fn() -> Launch, rounds: usize, bound: Duration) {
    for round in 0..rounds {
        let mut child = server().spawn();
        child.next_stdout("the `listening` line", bound, |line| {
            line.ends_with("listening").then_some(())
        });
        child.terminate();
        let status = child.wait_exit_and_output(bound);
        let stderr = child.stderr().join("\n");
        assert!(
            status.success(),
            "round {round}: {status}, stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("report: drained"),
            "round {round}: {stderr}"
        );
    }
}
