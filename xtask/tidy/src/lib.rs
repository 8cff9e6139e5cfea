//! The checks that keep graceful's house tidy, written as tests so that
//! `cargo test --workspace` runs them (`tests/tidy.rs`).
//!
//! - [`api`]: the public API of each library crate, rendered from rustdoc's JSON into a
//!   listing checked in under `api/`; a test regenerates it and fails on any difference.
//!
//! The crate is `publish = false` and depends on `serde_json` alone: it reads rustdoc's
//! JSON as plain values.

use std::fs;
use std::path::{Path, PathBuf};

pub mod api;
pub mod diff;

/// The library crates: the ones users depend on, whose API and layering are checked.
pub const LIBRARY_CRATES: [&str; 4] = [
    "graceful-core",
    "graceful-hyper",
    "graceful-tokio",
    "graceful-smol",
];

/// The workspace root: two levels above this package (`xtask/tidy`).
///
/// # Examples
///
/// ```
/// let root = graceful_tidy::workspace_root();
/// assert!(root.join("Cargo.toml").is_file());
/// ```
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// Reads a file as text, with the path in the error.
pub(crate) fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}
