//! No hidden or private glue: what a library crate exports is what its docs show, and no
//! source file borrows another crate's files.
//!
//! - [`hidden_items`]: in a library crate's code (comments and strings aside), no
//!   `doc(hidden)` (in `#[doc(…)]` or `#[cfg_attr(…, doc(…))]`), no `#[macro_export]`, and no
//!   `pub` item, field or re-export whose name starts with `__` (`pub(crate)` and narrower
//!   are not public and pass).
//! - [`includes`]: every `#[path = "…"]` attribute (in code and in doc-test code) and every
//!   `include!("…")`, with the crate it reaches into. An include may not leave its own crate:
//!   the crate of a file is the nearest directory above it with a `Cargo.toml` that has a
//!   `[package]`, so `xtask/src/bin` reaching `xtask/src` passes and reaching `xtask/tidy`
//!   (another package nested in xtask's directory) does not.

use std::path::{Component, Path, PathBuf};

use crate::lex::{tokens, Tok, Token};
use crate::{read, relative, rust_files, Finding};

/// The hidden-glue findings in one file's text (`file` names it in the findings).
///
/// # Examples
///
/// ```
/// let found = graceful_tidy::glue::hidden_items("lib.rs", "#[doc(hidden)]\npub fn __f() {}");
/// assert_eq!(found.len(), 2);
/// assert_eq!(found[1].to_string(), "lib.rs:2: `pub` item named `__f`");
/// ```
pub fn hidden_items(file: &str, text: &str) -> Vec<Finding> {
    let toks = tokens(text);
    let mut out = Vec::new();
    let found = |line: usize, what: String| Finding {
        file: file.to_string(),
        line,
        what,
    };
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(word) = &t.tok else {
            continue;
        };
        match word.as_str() {
            "doc" if is_punct(toks.get(i + 1), '(') && group_has(&toks[i + 2..], "hidden") => {
                out.push(found(t.line, "`doc(hidden)`".to_string()));
            }
            "macro_export" => {
                let name = macro_name(&toks[i..]).unwrap_or_else(|| "?".to_string());
                out.push(found(t.line, format!("`#[macro_export]` on `{name}!`")));
            }
            "pub" if !is_punct(toks.get(i + 1), '(') => {
                for name in public_names(&toks[i + 1..]) {
                    if name.starts_with("__") {
                        out.push(found(t.line, format!("`pub` item named `{name}`")));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn is_punct(t: Option<&Token>, c: char) -> bool {
    t.is_some_and(|t| t.tok == Tok::Punct(c))
}

/// Whether the parenthesised group that `toks` starts inside (just after its `(`) holds the
/// identifier `word` at its own depth.
fn group_has(toks: &[Token], word: &str) -> bool {
    let mut depth = 1;
    for t in toks {
        match &t.tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return false;
                }
            }
            Tok::Ident(w) if depth == 1 && w == word => return true,
            _ => {}
        }
    }
    false
}

/// The name of the `macro_rules!` that follows an attribute, if it comes soon.
fn macro_name(toks: &[Token]) -> Option<String> {
    let at = toks
        .iter()
        .take(40)
        .position(|t| t.tok == Tok::Ident("macro_rules".into()))?;
    match (&toks.get(at + 1)?.tok, &toks.get(at + 2)?.tok) {
        (Tok::Punct('!'), Tok::Ident(name)) => Some(name.clone()),
        _ => None,
    }
}

/// The names a `pub` declares, from the tokens after `pub`: an item's name, a field's
/// name, or every name in a `pub use …;`.
fn public_names(toks: &[Token]) -> Vec<String> {
    const QUALIFIERS: [&str; 5] = ["async", "unsafe", "extern", "safe", "auto"];
    const ITEMS: [&str; 8] = [
        "fn", "struct", "enum", "union", "trait", "type", "mod", "macro",
    ];
    let ident = |k: usize| match toks.get(k).map(|t| &t.tok) {
        Some(Tok::Ident(w)) => Some(w.as_str()),
        _ => None,
    };
    let mut k = 0;
    loop {
        match ident(k) {
            Some("use") => {
                return toks[k + 1..]
                    .iter()
                    .take_while(|t| t.tok != Tok::Punct(';'))
                    .filter_map(|t| match &t.tok {
                        Tok::Ident(w) => Some(w.clone()),
                        _ => None,
                    })
                    .collect();
            }
            Some(w) if ITEMS.contains(&w) => {
                return ident(k + 1).map(str::to_string).into_iter().collect();
            }
            Some("const" | "static") => match ident(k + 1) {
                Some("fn" | "unsafe" | "async" | "extern") => k += 1,
                Some("mut") => return ident(k + 2).map(str::to_string).into_iter().collect(),
                Some(name) => return vec![name.to_string()],
                None => return Vec::new(),
            },
            Some(w) if QUALIFIERS.contains(&w) => k += 1,
            // `extern "C" fn`: the ABI string.
            None if matches!(toks.get(k).map(|t| &t.tok), Some(Tok::Str(_))) => k += 1,
            // A field: `pub name: Type`.
            Some(name) if is_punct(toks.get(k + 1), ':') && !is_punct(toks.get(k + 2), ':') => {
                return vec![name.to_string()];
            }
            _ => return Vec::new(),
        }
    }
}

/// An include of another file by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// Where it is written.
    pub at: Finding,
    /// The path as written.
    pub target: String,
    /// The file it names, relative to the workspace root (`..` resolved).
    pub resolved: String,
    /// Whether the file it names lies in the crate of the file that names it.
    pub same_crate: bool,
}

/// Every `#[path = "…"]` (code and doc tests) and `include!("…")` in `text`: the line and
/// the path as written.
///
/// # Examples
///
/// ```
/// let text = "#[path = \"../peer.rs\"]\nmod peer;\n/// # #[path = \"x.rs\"] mod x;\n/// Not `#[path = \"y\"]`.\nfn f() {}";
/// assert_eq!(
///     graceful_tidy::glue::path_attributes(text),
///     vec![(1, "../peer.rs".to_string()), (3, "x.rs".to_string())]
/// );
/// ```
pub fn path_attributes(text: &str) -> Vec<(usize, String)> {
    let toks = tokens(text);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let next = |k: usize| toks.get(i + k).map(|t| &t.tok);
        match &t.tok {
            Tok::Punct('#') => {
                if let (
                    Some(Tok::Punct('[')),
                    Some(Tok::Ident(w)),
                    Some(Tok::Punct('=')),
                    Some(Tok::Str(s)),
                ) = (next(1), next(2), next(3), next(4))
                {
                    if w == "path" {
                        out.push((t.line, s.clone()));
                    }
                }
            }
            Tok::Ident(w) if w == "include" => {
                if let (Some(Tok::Punct('!')), Some(Tok::Punct('(')), Some(Tok::Str(s))) =
                    (next(1), next(2), next(3))
                {
                    out.push((t.line, s.clone()));
                }
            }
            Tok::Doc(doc) => {
                // Doc-test code: a line that is the attribute (`# ` hides it), not prose
                // that mentions one.
                let line = doc.trim_start();
                let line = line.strip_prefix("# ").unwrap_or(line).trim_start();
                let value = line
                    .strip_prefix("#[path")
                    .and_then(|rest| rest.trim_start().strip_prefix('='))
                    .and_then(|rest| rest.trim_start().strip_prefix('"'));
                if let Some(end) = value.and_then(|v| v.find('"')) {
                    out.push((t.line, value.unwrap_or_default()[..end].to_string()));
                }
            }
            _ => {}
        }
    }
    out
}

/// `dir/written` with `.` and `..` resolved by the text alone.
fn join_lexically(dir: &Path, written: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in dir.join(written).components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The crate a path lies in: the nearest directory at or above `path`'s parent (and
/// inside `root`) whose `Cargo.toml` declares a `[package]`.
pub fn crate_of(root: &Path, path: &Path, is_package: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .take_while(|dir| dir.starts_with(root))
        .find(|dir| is_package(dir))
        .map(Path::to_path_buf)
}

/// Whether `dir` holds a `Cargo.toml` with a `[package]` section.
pub fn is_package_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[package]"))
}

/// The includes written in `file`'s `text`, each with the crate question answered.
pub fn includes_in(
    root: &Path,
    file: &Path,
    text: &str,
    is_package: &dyn Fn(&Path) -> bool,
) -> Vec<Include> {
    let dir = file.parent().unwrap_or(root);
    let own = crate_of(root, file, is_package);
    path_attributes(text)
        .into_iter()
        .map(|(line, target)| {
            let resolved = join_lexically(dir, &target);
            let same_crate = own.is_some() && crate_of(root, &resolved, is_package) == own;
            Include {
                at: Finding {
                    file: relative(root, file),
                    line,
                    what: format!("#[path = \"{target}\"]"),
                },
                resolved: relative(root, &resolved),
                target,
                same_crate,
            }
        })
        .collect()
}

/// Every include in the workspace's `.rs` files (`target/` and hidden directories aside).
pub fn includes(root: &Path) -> Result<Vec<Include>, String> {
    let mut out = Vec::new();
    for file in rust_files(root)? {
        out.extend(includes_in(root, &file, &read(&file)?, &is_package_dir));
    }
    Ok(out)
}

/// The hidden-glue findings in the `src/` of each of `crates` (directories under `root`).
pub fn hidden_items_in(root: &Path, crates: &[&str]) -> Result<Vec<Finding>, String> {
    let mut out = Vec::new();
    for krate in crates {
        for file in rust_files(&root.join(krate).join("src"))? {
            out.extend(hidden_items(&relative(root, &file), &read(&file)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(text: &str) -> Vec<String> {
        hidden_items("f.rs", text)
            .into_iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect()
    }

    /// Today's glue in graceful-hyper, as a fixture.
    #[test]
    fn finds_the_macro_glue() {
        let text = "#[doc(hidden)]\n#[macro_export]\nmacro_rules! __serve_http_on {\n    () => { $crate::__private::X };\n}\n\
                    #[doc(hidden)]\npub mod __private {}\n\
                    impl Http {\n    #[doc(hidden)]\n    pub fn __serve(&self) {}\n}\n\
                    pub use crate::make::{__private, MakeService};\n";
        assert_eq!(
            whats(text),
            vec![
                "1: `doc(hidden)`",
                "2: `#[macro_export]` on `__serve_http_on!`",
                "6: `doc(hidden)`",
                "7: `pub` item named `__private`",
                "9: `doc(hidden)`",
                "10: `pub` item named `__serve`",
                "12: `pub` item named `__private`",
            ]
        );
    }

    #[test]
    fn every_public_form_and_nothing_else() {
        let text = "#![cfg_attr(docsrs, doc(hidden))]\npub const __A: u8 = 0;\npub static mut __B: u8 = 0;\n\
                    pub const unsafe fn __c() {}\npub extern \"C\" fn __d() {}\npub struct S { pub __e: u8 }\n\
                    pub(crate) fn __private_ok() {}\nfn __also_ok() {}\n// #[doc(hidden)] pub fn __no()\n\
                    const S: &str = \"#[doc(hidden)] #[macro_export]\";\n#[doc(alias = \"hidden\")]\npub fn fine() {}\n\
                    #[doc(cfg(feature = \"hidden\"))] pub fn x(a: crate::__Y) {}\n";
        assert_eq!(
            whats(text),
            vec![
                "1: `doc(hidden)`",
                "2: `pub` item named `__A`",
                "3: `pub` item named `__B`",
                "4: `pub` item named `__c`",
                "5: `pub` item named `__d`",
                "6: `pub` item named `__e`",
            ]
        );
    }

    #[test]
    fn includes_may_not_leave_their_crate() {
        let root = Path::new("/w");
        let packages = [
            "/w/graceful-core",
            "/w/graceful-tokio",
            "/w/xtask",
            "/w/xtask/tidy",
        ];
        let is_package = |d: &Path| packages.iter().any(|p| Path::new(p) == d);
        let check = |file: &str, text: &str| -> Vec<(String, String, bool)> {
            includes_in(root, Path::new(file), text, &is_package)
                .into_iter()
                .map(|i| (i.at.file, i.resolved, i.same_crate))
                .collect()
        };
        // The adapters' old `#[path]` into graceful-core's tests.
        assert_eq!(
            check(
                "/w/graceful-tokio/tests/deploy.rs",
                "#[path = \"../../graceful-core/tests/support/deploy_harness.rs\"]\nmod harness;"
            ),
            vec![(
                "graceful-tokio/tests/deploy.rs".into(),
                "graceful-core/tests/support/deploy_harness.rs".into(),
                false
            )]
        );
        // xtask's peers share a file of xtask's: allowed.
        let peer = check(
            "/w/xtask/src/bin/peer.rs",
            "#[path = \"../peer.rs\"] mod peer;",
        );
        assert_eq!(peer[0].1, "xtask/src/peer.rs");
        assert!(peer[0].2);
        // …but not one of a package nested in xtask's directory.
        let nested = check(
            "/w/xtask/src/bin/peer.rs",
            "include!(\"../../tidy/src/x.rs\");",
        );
        assert_eq!(nested[0].1, "xtask/tidy/src/x.rs");
        assert!(!nested[0].2);
        // A doc test's include next to its file.
        assert_eq!(
            check(
                "/w/graceful-core/src/serve/server.rs",
                "/// # #[path = \"doctest_runtime.rs\"] mod rt;\nfn f() {}"
            )[0],
            (
                "graceful-core/src/serve/server.rs".into(),
                "graceful-core/src/serve/doctest_runtime.rs".into(),
                true
            )
        );
        // A string that merely mentions the attribute is no include.
        assert!(check(
            "/w/xtask/tidy/src/a.rs",
            "const A: &str = \"#[path = \\\"../../x\\\"]\";"
        )
        .is_empty());
    }
}
