//! The public API of a library crate as a checked-in listing (`api/<crate>.txt`), rendered
//! from rustdoc's JSON.
//!
//! rustdoc writes the JSON with `RUSTC_BOOTSTRAP=1 cargo rustdoc -p <crate> --all-features
//! -- -Zunstable-options --output-format json` into `target/tidy`, a target directory of its
//! own, so the run never waits on the lock of the build that runs the tests (and the
//! variables cargo sets for the test process are left out, so the dependencies built there
//! stay fresh whether the listing is made from a test or a shell). The JSON is read as
//! plain `serde_json` values (rustdoc-types pins one format version per release);
//! [`FORMAT_VERSION`] names the one the renderer was written for, and any other is refused
//! with a message saying what to do.
//!
//! # The listing
//!
//! One line per public item path, sorted, so a diff of the file is a diff of the API:
//!
//! ```text
//! pub struct graceful_core::Acceptor
//!     impl graceful_core::Acceptor
//!         pub fn graceful_core::Acceptor::is_stopped(&self) -> bool
//!         pub async fn graceful_core::Acceptor::reserve(&self) -> Option<graceful_core::Slot>
//!     impl Clone for graceful_core::Acceptor
//!     impl Send for graceful_core::Acceptor
//!
//! pub use graceful_core::serve::Server = graceful_core::Server
//! pub use graceful_tokio::Conn = graceful_core::Conn (struct)
//! ```
//!
//! Items stand at their shortest path; `pub use A = B` says `A` is another path to `B`
//! (with `(kind)` when `B` is another crate's item, listed there).
//! Members are indented beneath their owner: fields, variants and trait items, then the
//! inherent impls (header with bounds, methods beneath), then the trait impls (every impl
//! written or derived in the crate, and the auto traits `Send`, `Sync`, `Unpin`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod impls;
mod items;
mod types;
mod walk;

use items::{Kind, Line, Lines};
use types::Names;

/// The rustdoc JSON format version this renderer reads (Rust 1.95).
pub const FORMAT_VERSION: u64 = 57;

/// Variables cargo sets for the crate it runs (besides `CARGO_PKG_*` and `CARGO_BIN_*`).
const SET_FOR_TESTS: [&str; 7] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// Where the listing of `package` lives: `api/<package>.txt` at the workspace root.
///
/// # Examples
///
/// ```
/// let root = graceful_tidy::workspace_root();
/// let file = graceful_tidy::api::listing_path(&root, "graceful-core");
/// assert!(file.ends_with("api/graceful-core.txt"));
/// ```
pub fn listing_path(root: &Path, package: &str) -> PathBuf {
    root.join("api").join(format!("{package}.txt"))
}

/// The target directory rustdoc's JSON is built in: `target/tidy`, apart from the build
/// that runs the tests.
pub fn target_dir(root: &Path) -> PathBuf {
    root.join("target").join("tidy")
}

/// Runs rustdoc on `package` (all features) and reads its JSON.
///
/// Uses the `cargo` that runs the tests (`$CARGO`), `--locked`, and [`target_dir`].
pub fn rustdoc_json(root: &Path, package: &str) -> Result<Value, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = target_dir(root);
    let mut command = Command::new(&cargo);
    // What cargo sets for the test process describes this package, not the build: some
    // build scripts (ring's) rerun when such a variable changes, so inheriting them would
    // rebuild half the tree whenever the listing is made from a test rather than a shell.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if SET_FOR_TESTS.contains(&name.as_ref())
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
        {
            command.env_remove(name.as_ref());
        }
    }
    let output = command
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "rustdoc",
            "--quiet",
            "--locked",
            "--all-features",
            "-p",
            package,
        ])
        .arg("--target-dir")
        .arg(&target)
        .args(["--", "-Zunstable-options", "--output-format", "json"])
        .output()
        .map_err(|e| format!("running {}: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "cargo rustdoc -p {package} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let file = target
        .join("doc")
        .join(format!("{}.json", package.replace('-', "_")));
    let text = crate::read(&file)?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", file.display()))
}

/// Refuses JSON in a format the renderer was not written for.
///
/// # Examples
///
/// ```
/// use graceful_tidy::api::{check_format, FORMAT_VERSION};
/// assert!(check_format(&serde_json::json!({ "format_version": FORMAT_VERSION })).is_ok());
/// let err = check_format(&serde_json::json!({ "format_version": 99 })).unwrap_err();
/// assert!(err.contains("format version 99"));
/// ```
pub fn check_format(doc: &Value) -> Result<(), String> {
    match doc.get("format_version").and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => Ok(()),
        found => Err(format!(
            "rustdoc JSON format version {} (from this toolchain's rustdoc), but the renderer in \
             xtask/tidy/src/api was written for version {FORMAT_VERSION}. Read what changed in \
             rustdoc's `src/rustdoc-json-types/lib.rs` between the two, update the renderer \
             (it fails on shapes it does not know), then bump `FORMAT_VERSION`.",
            found.map_or_else(|| "(none)".to_string(), |v| v.to_string())
        )),
    }
}

/// A rendered listing and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The file's text.
    pub text: String,
    /// Public item paths: items at their own path, their members (fields, variants,
    /// methods, trait items) and the other paths re-exports give them.
    pub items: usize,
    /// Of those, the paths that are re-exports.
    pub re_exports: usize,
    /// Trait impls listed.
    pub impls: usize,
}

/// Paths the listings of earlier crates gave their items, by rustdoc definition path, so
/// that a later crate names them as users do (`graceful_core::Conn`, not the private
/// `graceful_core::conn::Conn`). Render graceful-core first.
pub type PublicPaths = HashMap<String, String>;

/// Renders the listing of `package` from its rustdoc JSON, and adds its public paths to
/// `public` for the crates rendered after it.
pub fn render(doc: &Value, package: &str, public: &mut PublicPaths) -> Result<Listing, String> {
    check_format(doc)?;
    let reach = walk::reach(doc)?;
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("rustdoc JSON: no `paths` table")?;
    let local: HashMap<u64, String> = reach
        .paths
        .keys()
        .filter_map(|&id| Some((id, reach.canonical(id)?.join("::"))))
        .collect();
    let names = Names {
        paths,
        local: &local,
        public,
    };
    let crate_name = package.replace('-', "_");
    let mut lines = Lines::new(doc, names, &reach, &crate_name);
    lines.render()?;
    let mut out = lines.out;
    out.sort();
    out.dedup();
    let listing = layout(package, &out);
    for (id, path) in &local {
        if let Some(def) = types::def_path(paths, *id) {
            public.insert(def, path.clone());
        }
    }
    Ok(listing)
}

/// The file: a header with the counts, then the lines, indented by depth, with a blank
/// line around each item that has members.
fn layout(package: &str, lines: &[Line]) -> Listing {
    let items = lines
        .iter()
        .filter(|l| matches!(l.kind, Kind::Item | Kind::ReExport))
        .count();
    let re_exports = lines.iter().filter(|l| l.kind == Kind::ReExport).count();
    let impls = lines.iter().filter(|l| l.kind == Kind::TraitImpl).count();
    let mut text = format!(
        "# The public API of {package} (all features), from rustdoc's JSON.\n\
         # Checked by `cargo test -p graceful-tidy`; after a deliberate change:\n\
         #     TIDY_BLESS=1 cargo test -p graceful-tidy\n\
         # {items} public item paths ({re_exports} of them re-exports), {impls} trait impls.\n"
    );
    for (i, line) in lines.iter().enumerate() {
        let has_members = lines.get(i + 1).is_some_and(|next| next.depth > 0);
        let after_members = i > 0 && lines[i - 1].depth > 0;
        if line.depth == 0 && (i == 0 || has_members || after_members) {
            text.push('\n');
        }
        for _ in 0..line.depth {
            text.push_str("    ");
        }
        text.push_str(&line.text);
        text.push('\n');
    }
    Listing {
        text,
        items,
        re_exports,
        impls,
    }
}
