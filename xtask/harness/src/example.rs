//! The example servers as a user runs them: their binaries, built when a test needs one,
//! started as child processes, and the shutdown report they print.
//!
//! An example keeps one contract the suites rely on: `--addr HOST:PORT`, a
//! `listening on http://ADDR` line on stdout once it accepts connections, and on exit a
//! report line on stderr (`NAME: OUTCOME in ELAPSED: A completed, B idle closed, C hijacked,
//! D killed`).
//!
//! # Invariants
//!
//! - An example's binary is asked of cargo once per test process (a no-op in a tenth of a
//!   second when it is fresh), so a test never runs a binary older than the sources. The
//!   build runs while no cargo of the outer `cargo test` holds the build directory (cargo
//!   releases it once the tests are built), and is bounded all the same: a build that
//!   waits on a lock fails with cargo's own words rather than hanging.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::process::{Launch, Process, START_BOUND};

/// How long building an example may take: a first build under load compiles the whole
/// dependency tree.
const BUILD_BOUND: Duration = Duration::from_secs(15 * 60);

/// The path of example `name`'s binary, `<target>/<profile>/examples/<name>` beside the
/// test binary's own profile directory; asked of cargo (`cargo build -p examples --example
/// NAME`, with the cargo that runs the tests) the first time this process needs it.
/// Without cargo (a test binary run by hand), the binary must be there already.
///
/// # Examples
///
/// ```no_run
/// let hello = graceful_harness::example::example_binary("hello_tokio");
/// assert!(hello.ends_with("examples/hello_tokio"));
/// ```
pub fn example_binary(name: &str) -> PathBuf {
    static ASKED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let layout = Layout::of_this_test();
    let binary = layout.profile_dir.join("examples").join(name);
    let mut asked = ASKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !asked.iter().any(|done| done == name) {
        match std::env::var_os("CARGO") {
            Some(cargo) => build(&cargo, &layout, name),
            None => assert!(
                binary.exists(),
                "{} is missing, and no CARGO variable says which cargo builds it: \
                 run the tests with `cargo test`, or `cargo build -p examples --example {name}`",
                binary.display()
            ),
        }
        asked.push(name.to_owned());
    }
    binary
}

/// Where the test binary was built, and how.
struct Layout {
    /// `<target>/<profile>` (or `<target>/<triple>/<profile>`).
    profile_dir: PathBuf,
    /// The cargo arguments that select that directory.
    cargo_args: Vec<String>,
}

impl Layout {
    fn of_this_test() -> Layout {
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe.parent().expect("the test binary's directory");
        let profile_dir = if dir.ends_with("deps") {
            dir.parent().expect("the profile directory")
        } else {
            dir
        };
        let profile = file_name(profile_dir);
        let mut cargo_args = match profile.as_str() {
            "debug" => Vec::new(),
            "release" => vec!["--release".to_owned()],
            other => vec!["--profile".to_owned(), other.to_owned()],
        };
        let above = profile_dir.parent().expect("the target directory");
        // cargo keeps `.rustc_info.json` and `CACHEDIR.TAG` at the root of its target
        // directory; when they are not beside the profile but one level up, the profile is
        // in the `<triple>` directory of a cross build.
        let is_root =
            |dir: &Path| dir.join(".rustc_info.json").exists() || dir.join("CACHEDIR.TAG").exists();
        let target_dir = match above.parent() {
            Some(root) if !is_root(above) && is_root(root) => {
                cargo_args.extend(["--target".to_owned(), file_name(above)]);
                root
            }
            _ => above,
        };
        cargo_args.extend(["--target-dir".to_owned(), target_dir.display().to_string()]);
        Layout {
            profile_dir: profile_dir.to_path_buf(),
            cargo_args,
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn build(cargo: &std::ffi::OsStr, layout: &Layout, name: &str) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    // cargo sets `CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR` and the like for the test, not for
    // itself: a build script that reads one (ring's does) would see it change between this
    // build and the outer `cargo test`, and each would build it, and all that depends on
    // it, again.
    let inherited = std::env::vars_os().map(|(key, _)| key).filter(|key| {
        let key = key.to_string_lossy();
        [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
        ]
        .iter()
        .chain(&["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"])
        .any(|set_for_the_test| key.starts_with(set_for_the_test))
    });
    let launch = inherited.fold(Launch::program(cargo), Launch::env_remove);
    let building = launch
        .named(&format!("cargo build --example {name}"))
        .args(["build", "--quiet", "-p", "examples", "--example", name])
        .arg("--manifest-path")
        .arg(workspace)
        .args(&layout.cargo_args)
        .spawn();
    let (_, status) = building.wait_exit(BUILD_BOUND);
    assert!(
        status.success(),
        "cargo could not build the example {name} ({status}): {:#?}",
        building.stderr()
    );
}

impl Launch {
    /// Runs the example binary `name` (see [`example_binary`]).
    pub fn example(name: &str) -> Launch {
        Launch::program(example_binary(name)).named(name)
    }

    /// Starts the child and waits until it says where it listens ([`Process::listening`]).
    pub fn start(self) -> Server {
        let mut process = self.spawn();
        let addr = process.listening(START_BOUND);
        Server { process, addr }
    }
}

/// A server that listens: a [`Process`] (which it dereferences to) and its address.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use graceful_harness::Server;
///
/// let mut server = Server::start("hello_tokio", &["--timeout", "1"]);
/// println!("serving on {}", server.addr);
/// server.terminate();
/// assert_eq!(server.report().outcome, "drained");
/// ```
#[derive(Debug)]
pub struct Server {
    process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts example `name` with `args` and `--addr 127.0.0.1:0`; returns once it listens.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Launch::example(name)
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .start()
    }

    /// Waits for the exit, and asserts that it is a success; returns when it was seen.
    #[track_caller]
    pub fn wait_success(&self, bound: Duration) -> Instant {
        let (at, status) = self.wait_exit(bound);
        assert!(
            status.success(),
            "{} exited with {status}; stderr: {:#?}",
            self.name(),
            self.stderr()
        );
        at
    }

    /// The report the server printed on stderr, once it has exited with success.
    #[track_caller]
    pub fn report(&self) -> Report {
        self.wait_success(Duration::from_secs(30));
        self.wait_output(
            "a shutdown report on stderr",
            Duration::from_secs(5),
            |output| output.stderr.iter().rev().find_map(|l| Report::parse(l)),
        )
    }
}

impl Deref for Server {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// The shutdown report, as an example prints it on stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// `drained`, `timed out` or `forced`.
    pub outcome: String,
    /// Connections whose work completed.
    pub completed: usize,
    /// Connections closed while idle.
    pub idle_closed: usize,
    /// Connections taken over by their application (upgrades).
    pub hijacked: usize,
    /// Connections killed at the end.
    pub killed: usize,
}

impl Report {
    /// Parses `NAME: OUTCOME in ELAPSED: A completed, B idle closed, C hijacked, D killed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_harness::Report;
    ///
    /// let line = "hello_tokio: timed out in 1.002s: 3 completed, 100 idle closed, 1 hijacked, 2 killed";
    /// let report = Report::parse(line).unwrap();
    /// assert_eq!(report.outcome, "timed out");
    /// assert_eq!((report.completed, report.idle_closed, report.hijacked, report.killed), (3, 100, 1, 2));
    /// assert_eq!(Report::parse("hello_tokio: listening"), None);
    /// ```
    pub fn parse(line: &str) -> Option<Report> {
        let (_, rest) = line.split_once(": ")?;
        let (outcome, rest) = rest.split_once(" in ")?;
        let (_, counts) = rest.split_once(": ")?;
        let mut numbers = counts
            .split(", ")
            .map(|part| part.split(' ').next().and_then(|n| n.parse().ok()));
        Some(Report {
            outcome: outcome.to_owned(),
            completed: numbers.next()??,
            idle_closed: numbers.next()??,
            hijacked: numbers.next()??,
            killed: numbers.next()??,
        })
    }
}
