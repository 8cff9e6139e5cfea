//! No cycle among the top-level modules of a library crate.
//!
//! A port of the lead's `cycles.py`, counting the same way (text, not name resolution):
//!
//! - The top-level modules are the files and directories of `src/` (a directory counts with
//!   every `.rs` file below it, and with its `name.rs` sibling if there is one); `lib.rs`
//!   and `main.rs` are no module.
//! - Module `a` uses module `b` when a file of `a` mentions `crate::b`, or `crate::Name`
//!   where `lib.rs` re-exports `Name` from `b` (`pub use crate::b::Name` or
//!   `pub use self::b::{…}`), in code, comments and doc links alike; `crate::{b::X, c}`
//!   counts `b` and `c`.
//! - A cycle group is a set of two or more modules each of which reaches every other.
//!
//! Where `cycles.py` lists a directory and its `name.rs` sibling in the order the file
//! system gives, this port always counts both.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::{read, relative, rust_files};

/// A top-level module: its name and its files (path for messages, text).
#[derive(Debug, Clone, Default)]
pub struct Module {
    /// The files that make it up: a path for messages and the text.
    pub files: Vec<(String, String)>,
}

/// Where a use of one module by another was seen first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The file (as given in [`Module::files`]).
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// The text that counts: `crate::b` or `crate::Name`.
    pub text: String,
}

/// The uses between a crate's top-level modules and the cycles they make.
#[derive(Debug, Clone, Default)]
pub struct Layering {
    /// `a → b → evidence`: module `a` uses module `b`.
    pub uses: BTreeMap<String, BTreeMap<String, Evidence>>,
    /// The cycle groups, each sorted, in order.
    pub cycles: Vec<Vec<String>>,
}

impl Layering {
    /// The groups as `cycles.py` prints them, each with the uses that close it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_tidy::cycles::{analyse, Module};
    /// let module = |text: &str| Module { files: vec![("f.rs".into(), text.into())] };
    /// let modules = [("a".to_string(), module("crate::b")), ("b".to_string(), module("crate::a"))];
    /// let layering = analyse(&modules.into_iter().collect(), "");
    /// assert_eq!(layering.cycles, vec![vec!["a".to_string(), "b".to_string()]]);
    /// assert!(layering.report().contains("a <-> b"));
    /// ```
    pub fn report(&self) -> String {
        let mut out = String::new();
        for group in &self.cycles {
            out.push_str(&format!("   {}\n", group.join(" <-> ")));
            for from in group {
                for (to, ev) in self.uses.get(from).into_iter().flatten() {
                    if group.contains(to) {
                        out.push_str(&format!(
                            "      {from} -> {to}: {}:{} `{}`\n",
                            ev.file, ev.line, ev.text
                        ));
                    }
                }
            }
        }
        out
    }
}

/// Reads the top-level modules and `lib.rs` of `crate_dir/src`.
pub fn load(root: &Path, crate_dir: &Path) -> Result<(BTreeMap<String, Module>, String), String> {
    let src = crate_dir.join("src");
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    let entries = fs::read_dir(&src).map_err(|e| format!("reading {}: {e}", src.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("reading {}: {e}", src.display()))?
            .path();
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let files = if path.is_dir() {
            rust_files(&path)?
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            vec![path.clone()]
        } else {
            continue;
        };
        let module = modules.entry(stem).or_default();
        for file in files {
            module.files.push((relative(root, &file), read(&file)?));
        }
        module.files.sort();
    }
    let lib = read(&src.join("lib.rs"))?;
    Ok((modules, lib))
}

/// Finds the uses between `modules` (named as in `lib`'s re-exports) and their cycles.
pub fn analyse(modules: &BTreeMap<String, Module>, lib: &str) -> Layering {
    let re_exports = re_exports(lib);
    let mut uses: BTreeMap<String, BTreeMap<String, Evidence>> = BTreeMap::new();
    for (name, module) in modules {
        let entry = uses.entry(name.clone()).or_default();
        for (file, text) in &module.files {
            for (offset, mentioned) in crate_paths(text) {
                let target = if modules.contains_key(&mentioned) {
                    Some(&mentioned)
                } else {
                    re_exports.get(&mentioned)
                };
                let Some(target) = target.filter(|t| modules.contains_key(*t) && *t != name) else {
                    continue;
                };
                entry.entry(target.clone()).or_insert_with(|| Evidence {
                    file: file.clone(),
                    line: text[..offset].matches('\n').count() + 1,
                    text: format!("crate::{mentioned}"),
                });
            }
        }
    }
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in uses.get(&m).into_iter().flat_map(|u| u.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        modules.keys().map(|m| (m, reach(m))).collect();
    let mut cycles = BTreeSet::new();
    for m in modules.keys() {
        let group: Vec<String> = modules
            .keys()
            .filter(|x| reached[m].contains(*x) && reached[x].contains(m))
            .cloned()
            .collect();
        if group.len() > 1 {
            cycles.insert(group);
        }
    }
    Layering {
        uses,
        cycles: cycles.into_iter().collect(),
    }
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The run of word characters at the start of `s`.
fn word(s: &str) -> &str {
    let end = s.find(|c| !is_word(c)).unwrap_or(s.len());
    &s[..end]
}

/// `Name → module` for `lib.rs`'s `pub use crate::module::…` and `pub use self::module::…`
/// (every word after the module counts, the first re-export of a name wins).
fn re_exports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut rest = lib;
    while let Some(at) = rest.find("pub use ") {
        rest = &rest[at + "pub use ".len()..];
        let Some(after) = rest
            .strip_prefix("crate::")
            .or_else(|| rest.strip_prefix("self::"))
        else {
            continue;
        };
        let module = word(after);
        let Some(tail) = after[module.len()..]
            .strip_prefix("::")
            .filter(|_| !module.is_empty())
        else {
            continue;
        };
        let names = if let Some(inner) = tail.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => &inner[..end],
                None => continue,
            }
        } else {
            let end = tail
                .find(|c: char| !is_word(c) && c != ':')
                .unwrap_or(tail.len());
            &tail[..end]
        };
        for name in names.split(|c: char| !is_word(c)).filter(|n| !n.is_empty()) {
            map.entry(name.to_string())
                .or_insert_with(|| module.to_string());
        }
    }
    map
}

/// Every `crate::name` and `crate::{a::…, b}` in `text`: the byte offset and the first
/// segment of each path.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        if text[..at].chars().next_back().is_some_and(is_word) {
            continue;
        }
        let after = &text[at + "crate::".len()..];
        if let Some(inner) = after.strip_prefix('{') {
            if let Some(end) = inner.find('}') {
                for part in inner[..end].split(',') {
                    let first = part.trim().split("::").next().unwrap_or("");
                    if !first.is_empty() {
                        out.push((at, first.to_string()));
                    }
                }
            }
        } else if !word(after).is_empty() {
            out.push((at, word(after).to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(list: &[(&str, &[(&str, &str)])]) -> BTreeMap<String, Module> {
        list.iter()
            .map(|(name, files)| {
                let files = files
                    .iter()
                    .map(|(f, t)| (f.to_string(), t.to_string()))
                    .collect();
                (name.to_string(), Module { files })
            })
            .collect()
    }

    fn groups(layering: &Layering) -> Vec<String> {
        layering.cycles.iter().map(|g| g.join(" <-> ")).collect()
    }

    /// A small tree with the kinds of cycle graceful has today: through a module path,
    /// through a name `lib.rs` re-exports, through a doc link only, and into a directory
    /// module; with a layered part beside them that must not count.
    #[test]
    fn finds_the_cycles_of_a_fixture_tree() {
        let lib = "mod shared;\npub use crate::config::{Builder, ConfigError as Error};\n\
                   pub use self::conn::Conn;\npub use crate::clock::Tick;\n";
        let tree = modules(&[
            // shared → config by path, config → conn by the name `Conn` that lib.rs
            // re-exports, conn → shared by a path in a brace group.
            ("shared", &[("shared.rs", "use crate::config::Builder;\n")]),
            ("config", &[("config.rs", "fn f(c: crate::Conn) {}\n")]),
            (
                "conn",
                &[("conn.rs", "use crate::{shared::Shared, state};\n")],
            ),
            // clock ↔ serve through a doc link alone, serve being a directory module.
            (
                "clock",
                &[("clock.rs", "/// See [`serve`](crate::serve::run).\n")],
            ),
            (
                "serve",
                &[
                    ("serve/mod.rs", "mod x;\n"),
                    ("serve/x.rs", "// crate::Tick\n"),
                ],
            ),
            // state is used by conn and uses nothing: layered.
            ("state", &[("state.rs", "pub enum State {}\n")]),
            // `$crate::` counts; `my_crate::` and unknown names do not.
            (
                "timer",
                &[(
                    "timer.rs",
                    "my_crate::config; crate::Unknown; $crate::manual\n",
                )],
            ),
            ("manual", &[("manual.rs", "use crate::timer::Timer;\n")]),
        ]);
        let layering = analyse(&tree, lib);
        assert_eq!(
            groups(&layering),
            vec![
                "clock <-> serve",
                "config <-> conn <-> shared",
                "manual <-> timer"
            ]
        );
        let ev = &layering.uses["config"]["conn"];
        assert_eq!(
            (ev.file.as_str(), ev.line, ev.text.as_str()),
            ("config.rs", 1, "crate::Conn")
        );
        assert_eq!(layering.uses["serve"]["clock"].file, "serve/x.rs");
        assert!(layering.uses["state"].is_empty());
        assert!(!layering.uses["timer"].contains_key("config"));
    }

    #[test]
    fn a_layered_tree_has_no_cycle() {
        let tree = modules(&[
            ("state", &[("state.rs", "")]),
            ("conn", &[("conn.rs", "use crate::state::State;")]),
            ("serve", &[("serve.rs", "use crate::{conn::Conn, state};")]),
        ]);
        let layering = analyse(&tree, "");
        assert!(layering.cycles.is_empty(), "{:?}", layering.cycles);
        assert_eq!(layering.uses["serve"].len(), 2);
    }

    #[test]
    fn re_exports_read_like_cycles_py() {
        let map = re_exports("pub use crate::a::{X, Y as Z};\npub use self::b::c::W;\npub use crate::a;\npub use other::Q;");
        let got: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("W", "b"),
                ("X", "a"),
                ("Y", "a"),
                ("Z", "a"),
                ("as", "a"),
                ("c", "b")
            ]
        );
    }
}
