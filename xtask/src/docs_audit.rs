//! `cargo xtask docs-audit`: the public functions and methods of the library crates whose
//! docs have no `# Examples` section, so that "every public method has an example" is a
//! claim anyone can check.
//!
//! A text scan of `src/`, dependency free, so it is approximate in known ways:
//!
//! - counted: `pub fn` (also `async`, `const`), free or in an inherent `impl` of a type the
//!   crate declares `pub`, and the methods of a `pub trait`;
//! - skipped: `#[doc(hidden)]` items, names starting with `__`, `#[cfg(test)]` modules,
//!   `doctest_*.rs` files (code the doc examples include);
//! - an item is covered when its doc comment has a heading `# Examples` (or `# Example`);
//! - a method of a type re-exported from another crate is counted where it is written.
//!
//! `--missing` lists every item without an example (`file:line Type::method`); `--check`
//! fails if there is any; `--skip PATH` (repeatable, a prefix of a path such as
//! `graceful-core/src/deploy`) leaves files out; `--root DIR` audits another checkout.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::ci::root;

/// The library crates audited.
const CRATES: [&str; 4] = [
    "graceful-core",
    "graceful-hyper",
    "graceful-tokio",
    "graceful-smol",
];

/// One public function or method.
#[derive(Debug)]
struct Item {
    file: String,
    line: usize,
    name: String,
    has_example: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut list = false;
    let mut check = false;
    let mut skip = Vec::new();
    let mut root = root();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--missing" => list = true,
            "--check" => check = true,
            "--skip" => skip.push(it.next().ok_or("--skip needs a path")?.clone()),
            "--root" => root = PathBuf::from(it.next().ok_or("--root needs a path")?),
            other => {
                return Err(format!(
                    "unknown flag {other:?} (known: --missing --check --skip PATH --root PATH)"
                ))
            }
        }
    }
    let items = audit(&root, &skip)?;

    let mut per_file: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for item in &items {
        let entry = per_file.entry(&item.file).or_default();
        entry.0 += 1;
        entry.1 += usize::from(item.has_example);
    }
    println!(
        "{:<48} {:>6} {:>8} {:>8}",
        "file", "public", "examples", "missing"
    );
    for (file, (total, with)) in &per_file {
        println!("{file:<48} {total:>6} {with:>8} {:>8}", total - with);
    }
    let total = items.len();
    let with = items.iter().filter(|item| item.has_example).count();
    println!("{:<48} {total:>6} {with:>8} {:>8}", "total", total - with);
    let missing: Vec<&Item> = items.iter().filter(|item| !item.has_example).collect();
    if list {
        println!();
        for item in &missing {
            println!("{}:{} {}", item.file, item.line, item.name);
        }
    }
    if check && !missing.is_empty() {
        return Err(format!(
            "{} public functions have no `# Examples`",
            missing.len()
        ));
    }
    Ok(())
}

/// Every public function of the library crates under `root`, but those in files under a
/// path of `skip`.
fn audit(root: &Path, skip: &[String]) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files)?;
        files.sort();
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|file| {
                let rel = file.strip_prefix(root).unwrap_or(file);
                let text =
                    fs::read_to_string(file).map_err(|err| format!("{}: {err}", rel.display()))?;
                Ok((rel.display().to_string(), text))
            })
            .collect::<Result<_, String>>()?;
        let public_types = public_types(sources.iter().map(|(_, text)| text.as_str()));
        for (file, text) in &sources {
            // `doctest_*.rs`: code the doc examples include, not a module of the crate.
            let included = Path::new(file)
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("doctest_"));
            if included || skip.iter().any(|prefix| file.starts_with(prefix.as_str())) {
                continue;
            }
            items.extend(scan(file, text, &public_types));
        }
    }

    Ok(items)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|err| err.to_string())?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The names of the types a crate declares `pub` (not `pub(crate)`).
fn public_types<'a>(texts: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names = Vec::new();
    for text in texts {
        for line in text.lines() {
            let line = line.trim_start();
            for keyword in ["pub struct ", "pub enum ", "pub type ", "pub trait "] {
                if let Some(rest) = line.strip_prefix(keyword) {
                    names.push(ident(rest).to_string());
                }
            }
        }
    }
    names
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The type an `impl` line is for, or `None` for a trait impl (`impl Trait for Type`).
fn impl_type(line: &str) -> Option<String> {
    let rest = line.strip_prefix("impl")?;
    let rest = if rest.starts_with('<') {
        // Skip the generics, nested `<>` included.
        let mut depth = 0;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '<' => depth += 1,
                '>' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        &rest[end..]
    } else if rest.starts_with(' ') {
        rest
    } else {
        return None;
    };
    let head = rest.split(" where").next().unwrap_or(rest);
    if head.contains(" for ") {
        return None;
    }
    Some(ident(rest.trim_start()).to_string())
}

/// What the lines being read belong to.
#[derive(Clone, Debug)]
enum Owner {
    /// An inherent `impl` of a type; `None` for a trait impl (its methods are the trait's).
    Impl(Option<String>),
    /// A `pub trait`: its methods are public, written with `pub` or not.
    Trait(String),
}

/// The public functions of one file.
fn scan(file: &str, text: &str, public_types: &[String]) -> Vec<Item> {
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    let mut depth: i64 = 0;
    // The `impl` or `trait` block being read, and the depth it opened at.
    let mut block: Option<(Owner, i64)> = None;
    // A `#[cfg(test)]` module being skipped: the depth it ends at.
    let mut skipping: Option<i64> = None;
    let mut test_cfg = false;
    // An `impl` or `trait` whose head spans lines, until its block opens.
    let mut pending: Option<Owner> = None;
    for (index, raw) in lines.iter().enumerate() {
        let line = raw.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let code = line.split(" //").next().unwrap_or(line);
        let before = depth;
        depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
        if let Some(end) = skipping {
            if depth <= end {
                skipping = None;
            }
            continue;
        }
        if line.starts_with("#[cfg(test)]") {
            test_cfg = true;
            continue;
        }
        if test_cfg && (line.starts_with("mod ") || line.starts_with("pub(crate) mod ")) {
            test_cfg = false;
            if depth > before {
                skipping = Some(before);
            }
            continue;
        }
        if !line.starts_with("#[") {
            test_cfg = false;
        }
        if let Some((_, at)) = &block {
            if depth <= *at {
                block = None;
            }
        }
        let opens = if line.starts_with("impl") {
            Some(Owner::Impl(impl_type(line)))
        } else if let Some(rest) = line.strip_prefix("pub trait ") {
            match doc_block(&lines, index) {
                // A hidden trait: none of its methods counts.
                (_, true) => Some(Owner::Impl(None)),
                _ => Some(Owner::Trait(ident(rest).to_string())),
            }
        } else {
            None
        };
        if let Some(owner) = opens {
            if depth > before {
                block = Some((owner, before));
            } else {
                // The head goes on (`where` clauses): the block opens further down.
                pending = Some(owner);
            }
            continue;
        }
        if depth > before {
            if let Some(owner) = pending.take() {
                block = Some((owner, before));
                continue;
            }
        }
        let (name, owner) = match &block {
            Some((Owner::Trait(name), at)) if before == at + 1 => match trait_fn(line) {
                Some(method) => (method, Some(name.clone())),
                None => continue,
            },
            Some((Owner::Trait(_), _)) => continue,
            Some((Owner::Impl(None), _)) => continue,
            Some((Owner::Impl(Some(ty)), _)) => match pub_fn(line) {
                Some(_) if !public_types.contains(ty) => continue,
                Some(method) => (method, Some(ty.clone())),
                None => continue,
            },
            None => match pub_fn(line) {
                Some(function) => (function, None),
                None => continue,
            },
        };
        if name.starts_with("__") {
            continue;
        }
        let (docs, hidden) = doc_block(&lines, index);
        if hidden {
            continue;
        }
        let has_example = docs
            .iter()
            .any(|doc| matches!(doc.trim(), "# Examples" | "# Example"));
        items.push(Item {
            file: file.to_string(),
            line: index + 1,
            name: match owner {
                Some(ty) => format!("{ty}::{name}"),
                None => name.to_string(),
            },
            has_example,
        });
    }
    items
}

/// The name of the method a line of a trait declares, if it does.
fn trait_fn(line: &str) -> Option<&str> {
    let mut rest = line;
    for qualifier in ["const ", "async ", "unsafe "] {
        if let Some(after) = rest.strip_prefix(qualifier) {
            rest = after;
        }
    }
    let name = ident(rest.strip_prefix("fn ")?);
    (!name.is_empty()).then_some(name)
}

/// The name of the function a line declares `pub`, if it does.
fn pub_fn(line: &str) -> Option<&str> {
    let mut rest = line.strip_prefix("pub ")?;
    for qualifier in ["const ", "async ", "unsafe "] {
        if let Some(after) = rest.strip_prefix(qualifier) {
            rest = after;
        }
    }
    let name = ident(rest.strip_prefix("fn ")?);
    (!name.is_empty()).then_some(name)
}

/// The doc comment lines (without `///`) above line `index`, and whether the item is
/// `#[doc(hidden)]`.
fn doc_block<'a>(lines: &[&'a str], index: usize) -> (Vec<&'a str>, bool) {
    let mut docs = Vec::new();
    let mut hidden = false;
    for line in lines[..index].iter().rev() {
        let line = line.trim_start();
        if let Some(doc) = line.strip_prefix("///") {
            docs.push(doc);
        } else if line.starts_with("#[") || line.starts_with("//") {
            hidden |= line.contains("doc(hidden)");
        } else {
            break;
        }
    }
    (docs, hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
pub struct Shown;
struct Private;

impl Shown {
    /// Documented.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = { 1 };
    /// ```
    pub fn covered(&self) {}

    /// No example.
    #[must_use]
    pub async fn uncovered(&self) -> u8 { 0 }

    #[doc(hidden)]
    pub fn hidden(&self) {}

    pub(crate) fn internal(&self) {}
}

impl Private {
    pub fn not_public(&self) {}
}

impl<T> Shown
where
    T: Clone,
{
    /// # Examples
    pub fn multi_line_head(&self) {}
}

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { Ok(()) }
}

/// A free function.
pub fn free() {}

/// A trait.
pub trait Shape
where
    Self: Sized,
{
    /// # Examples
    fn area(&self) -> f64;

    /// No example.
    fn name(&self) -> String {
        fn nested() {}
        String::new()
    }
}

#[doc(hidden)]
pub trait Hidden {
    fn secret(&self);
}

#[cfg(test)]
mod tests {
    pub fn in_tests() {}
}
"#;

    #[test]
    fn finds_public_functions_and_their_examples() {
        let public = public_types(std::iter::once(SOURCE));
        let items = scan("lib.rs", SOURCE, &public);
        let found: Vec<(&str, bool)> = items
            .iter()
            .map(|item| (item.name.as_str(), item.has_example))
            .collect();
        assert_eq!(
            found,
            [
                ("Shown::covered", true),
                ("Shown::uncovered", false),
                ("Shown::multi_line_head", true),
                ("free", false),
                ("Shape::area", true),
                ("Shape::name", false)
            ]
        );
    }

    #[test]
    fn every_public_function_has_an_example() {
        let items = audit(&root(), &[]).unwrap();
        assert!(
            items.len() > 100,
            "the scan found only {} items",
            items.len()
        );
        let missing: Vec<String> = items
            .iter()
            .filter(|item| !item.has_example)
            .map(|item| format!("{}:{} {}", item.file, item.line, item.name))
            .collect();
        assert!(
            missing.is_empty(),
            "no `# Examples`:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn impl_lines_name_their_type() {
        assert_eq!(
            impl_type("impl<E: Clone> Http<E> {").as_deref(),
            Some("Http")
        );
        assert_eq!(impl_type("impl Server {").as_deref(), Some("Server"));
        assert_eq!(impl_type("impl<T> Read for Io<T> {"), None);
        assert_eq!(impl_type("implement"), None);
    }
}
