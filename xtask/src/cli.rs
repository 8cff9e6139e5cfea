//! Flags of the measuring tasks (`--name value` and bare switches), and running a task
//! from the release build of xtask.

use std::collections::HashMap;
use std::process::Command;

use graceful_harness::build::cargo_command;

use crate::ci::root;

/// Parsed `--name value` flags.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `args` against the flags a task knows.
    pub(crate) fn parse(args: &[String], known: &[&str]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let name = arg.as_str();
            if !known.contains(&name) {
                return Err(format!(
                    "unknown flag {name:?} (known: {})",
                    known.join(" ")
                ));
            }
            let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            flags.values.insert(name.to_string(), value.clone());
        }
        Ok(flags)
    }

    /// The value of `name`, if given.
    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A number flag, or `default`.
    pub(crate) fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.str(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| format!("{name}: {value:?} is not a valid number")),
        }
    }
}

/// Set in the environment of the release xtask started by [`in_release`].
pub(crate) const RELEASE_MARK: &str = "XTASK_IN_RELEASE";

/// Whether this process is the release xtask started by [`in_release`] (which has built
/// xtask's binaries already).
pub(crate) fn reexecuted() -> bool {
    std::env::var_os(RELEASE_MARK).is_some()
}

/// Measurements must not run in a debug build (the load generator would be the bottleneck):
/// unless this already is the release build, builds xtask and the peers with
/// `cargo build --release -p xtask --bins` and runs `task args` with the release binary.
/// Returns `None` when the caller is the release build and should go on itself.
pub(crate) fn in_release(task: &str, args: &[String]) -> Option<Result<(), String>> {
    if cfg!(not(debug_assertions)) || reexecuted() {
        return None;
    }
    Some(reexec(task, args))
}

fn reexec(task: &str, args: &[String]) -> Result<(), String> {
    crate::server::progress("build", "cargo build --release -p xtask --bins");
    let status = cargo_command()
        .args(["build", "--release", "-p", "xtask", "--bins"])
        .current_dir(root())
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !status.success() {
        return Err(format!("building xtask in release mode failed: {status}"));
    }
    let exe = crate::server::target_dir().join("release/xtask");
    // Ctrl-C reaches the release build too (one process group): wait while it stops what it
    // started, rather than die first. A handler replaces the default action, which would
    // end this process; children start with the default again.
    let _wait_on_ctrl_c = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()
        .map(|rt| {
            let signal = rt.block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            });
            (signal, rt)
        });
    let status = Command::new(&exe)
        .arg(task)
        .args(args)
        .env(RELEASE_MARK, "1")
        .current_dir(root())
        .status()
        .map_err(|err| format!("cannot run {}: {err}", exe.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("xtask {task} (release build) failed: {status}"))
    }
}
