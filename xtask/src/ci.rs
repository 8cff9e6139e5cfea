//! `cargo xtask ci`: runs `.ci/run`, the one definition of what CI checks.

use std::path::PathBuf;
use std::process::Command;

/// The workspace root: xtask lives one level below it.
pub(crate) fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

pub(crate) fn run() -> Result<(), String> {
    // Its cargo runs must not see what `cargo run` set for xtask (`CARGO_PKG_NAME`, ...):
    // some build scripts would run again, and all above them be rebuilt.
    let mut command = Command::new("bash");
    for name in graceful_harness::build::cargo_run_variables() {
        command.env_remove(name);
    }
    let status = command
        .arg(".ci/run")
        .current_dir(root())
        .status()
        .map_err(|err| format!("cannot start bash .ci/run: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(".ci/run failed: {status}"))
    }
}
