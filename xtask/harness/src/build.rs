//! The example binaries, found beside the test binary, and built by cargo when one is
//! missing or older than the sources.
//!
//! # Invariants
//!
//! - A binary that is there and newer than every source it is built from (the workspace's
//!   `src/` and `examples/` directories, manifests and lock file) is used as it is: `cargo
//!   test` (of the package or of the workspace) has just built it, with that invocation's
//!   features. Asking cargo again would rebuild it with another feature set whenever the
//!   outer invocation unified features differently (`--workspace`), for nothing.
//! - Otherwise cargo builds it (`cargo build -p examples --example NAME`, with the `CARGO`
//!   that runs the tests, for this test binary's profile and target directory), once per
//!   process and example. The outer `cargo test` holds the build directory only while it
//!   builds, not while the tests run, so the build does not wait on it; it is bounded all
//!   the same, and a build that never ends fails with cargo's own words.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::process::Launch;

/// How long a build may take: a first build under load compiles the whole dependency
/// tree.
const BUILD_BOUND: Duration = Duration::from_secs(15 * 60);

/// The path of example `name`'s binary, `<target>/<profile>/examples/<name>` beside the
/// test binary's own profile directory, built first if it is missing or older than the
/// sources (see the [module](self) docs). Without a `CARGO` variable (a test binary run by
/// hand) the binary must be there already.
///
/// # Examples
///
/// ```no_run
/// let hello = graceful_harness::build::example_binary("hello_tokio");
/// assert!(hello.ends_with("examples/hello_tokio"));
/// ```
pub fn example_binary(name: &str) -> PathBuf {
    static CHECKED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let layout = Layout::of_this_test();
    let binary = layout.profile_dir.join("examples").join(name);
    let mut checked = CHECKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !checked.iter().any(|done| done == name) {
        if !is_fresh(&binary) {
            match std::env::var_os("CARGO") {
                Some(cargo) => build(&cargo, &layout, &["-p", "examples", "--example", name]),
                None => panic!(
                    "{} is missing or older than the sources, and no CARGO variable says \
                     which cargo builds it: run the tests with `cargo test`, or \
                     `cargo build -p examples --example {name}`",
                    binary.display()
                ),
            }
        }
        checked.push(name.to_owned());
    }
    binary
}

/// Runs `cargo build` with `what` (`-p PACKAGE`, targets) for this test binary's profile
/// and target directory, with the cargo that runs the tests; panics, with cargo's output,
/// if it fails or outlasts its bound. The way [`example_binary`] builds.
///
/// # Examples
///
/// ```no_run
/// graceful_harness::build::cargo_build(&["-p", "examples", "--example", "hello_tokio"]);
/// ```
pub fn cargo_build(what: &[&str]) {
    let cargo = std::env::var_os("CARGO").expect("a CARGO variable: run under `cargo test`");
    build(&cargo, &Layout::of_this_test(), what);
}

fn build(cargo: &OsStr, layout: &Layout, what: &[&str]) {
    let workspace = workspace_root().join("Cargo.toml");
    let building = Launch::program(cargo)
        .named(&format!("cargo build {}", what.join(" ")))
        .args(["build", "--quiet"])
        .args(what)
        .arg("--manifest-path")
        .arg(workspace)
        .args(&layout.cargo_args)
        .spawn();
    let (_, status) = building.wait_exit(BUILD_BOUND);
    assert!(
        status.success(),
        "`cargo build {}` failed ({status}): {:#?}",
        what.join(" "),
        building.stderr()
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `binary` is there and newer than every source it may be built from.
fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|meta| meta.modified()) else {
        return false;
    };
    newest_source(&workspace_root()).is_none_or(|newest| newest <= built)
}

/// The newest modification time among the workspace's manifests, lock file, and the
/// files under its members' `src/` and `examples/` directories (tests, benches, `xtask/`
/// and `target/` aside: no example is built from them).
fn newest_source(root: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut note = |path: &Path| {
        if let Ok(modified) = path.metadata().and_then(|meta| meta.modified()) {
            newest = newest.max(Some(modified));
        }
    };
    note(&root.join("Cargo.toml"));
    note(&root.join("Cargo.lock"));
    let members = std::fs::read_dir(root).into_iter().flatten().flatten();
    for member in members.map(|entry| entry.path()) {
        let name = member.file_name().and_then(OsStr::to_str).unwrap_or("");
        if matches!(name, "target" | "xtask") || name.starts_with('.') || !member.is_dir() {
            continue;
        }
        note(&member.join("Cargo.toml"));
        for dir in ["src", "examples"] {
            walk(&member.join(dir), &mut note);
        }
    }
    newest
}

fn walk(dir: &Path, note: &mut impl FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, note);
        } else {
            note(&path);
        }
    }
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
