//! The checks that keep graceful's house tidy, written as tests so that
//! `cargo test --workspace` runs them (`tests/tidy.rs`).
//!
//! - [`api`]: the public API of each library crate, rendered from rustdoc's JSON into a
//!   listing checked in under `api/`; a test regenerates it and fails on any difference.
//! - [`cycles`]: no cycle among the top-level modules of a library crate.
//! - [`glue`]: no hidden or private glue (`#[doc(hidden)]`, `__` items, `#[macro_export]`)
//!   and no `#[path]` include that leaves its crate.
//! - [`citations`]: user docs cite no issue numbers of this project.
//!
//! The crate is `publish = false` and depends on `serde_json` alone: the checks read
//! sources as text (through a small lexer) and rustdoc's JSON as plain values.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

pub mod api;
pub mod citations;
pub mod cycles;
pub mod diff;
pub mod glue;
mod lex;

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

/// Every `.rs` file below `dir`, sorted, skipping `target` and hidden directories.
///
/// # Examples
///
/// ```
/// let root = graceful_tidy::workspace_root();
/// let files = graceful_tidy::rust_files(&root.join("xtask/tidy/src")).unwrap();
/// assert!(files.iter().any(|f| f.ends_with("lib.rs")));
/// ```
pub fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                walk(&path, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a file as text, with the path in the error.
pub(crate) fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// `path` relative to `root`, with `/` separators, for messages.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.to_string_lossy().replace('\\', "/")
}

/// One thing a check found: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file, relative to the workspace root.
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub what: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}
