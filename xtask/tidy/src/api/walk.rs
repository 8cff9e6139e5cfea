//! Which items are public, and under which paths: a walk from the crate root through the
//! public modules and the public `use` declarations.
//!
//! # Invariants
//!
//! - An item is reachable when a chain of public modules and public re-exports leads to it
//!   from the crate root; each such chain is one of its paths.
//! - Its canonical path is the shortest (then the first in byte order), so an item the
//!   root re-exports is listed at the root, and its longer paths become `pub use` lines.
//! - Re-exports of items the JSON does not hold (other crates' items) are kept apart with
//!   the path written in the source: their signatures belong to their own crate's listing.
//! - The walk visits a module at a given path once, so glob cycles end.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use super::types::{as_id, get, get_arr, get_bool, get_str, tagged, Res};

/// A re-export of an item outside this crate's JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct External {
    /// Where this crate exposes it.
    pub(crate) path: Vec<String>,
    /// What it names: the source's path, or rustdoc's definition path for a relative one.
    pub(crate) target: String,
    /// Its kind (`struct`, `trait`, `module`, …), as rustdoc says.
    pub(crate) kind: String,
}

/// The public paths of a crate's items.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// Every public path of each item the JSON holds.
    pub(crate) paths: BTreeMap<u64, BTreeSet<Vec<String>>>,
    /// Re-exports of items it does not hold.
    pub(crate) external: BTreeSet<External>,
}

impl Reach {
    /// The canonical (shortest, then first) path of `id`, if it is reachable.
    pub(crate) fn canonical(&self, id: u64) -> Option<&Vec<String>> {
        self.paths
            .get(&id)?
            .iter()
            .min_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
    }
}

/// An item of the index by id.
pub(crate) fn item(doc: &Value, id: u64) -> Option<&Value> {
    doc.get("index")?.get(id.to_string())
}

/// Walks the crate from its root.
pub(crate) fn reach(doc: &Value) -> Res<Reach> {
    let root = as_id(get(doc, "root")?).ok_or("rustdoc JSON: `root` is not an id")?;
    let name = item(doc, root)
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
        .ok_or("rustdoc JSON: the root module has no name")?;
    let mut walker = Walker {
        doc,
        reach: Reach::default(),
        visited: HashSet::new(),
    };
    walker.module(root, vec![name.to_string()])?;
    Ok(walker.reach)
}

struct Walker<'a> {
    doc: &'a Value,
    reach: Reach,
    visited: HashSet<(u64, Vec<String>)>,
}

impl Walker<'_> {
    fn module(&mut self, id: u64, prefix: Vec<String>) -> Res<()> {
        if !self.visited.insert((id, prefix.clone())) {
            return Ok(());
        }
        let Some(module) = item(self.doc, id) else {
            return Ok(());
        };
        let (kind, inner) = tagged(get(module, "inner")?)?;
        if kind != "module" {
            return Ok(());
        }
        for child in get_arr(inner, "items")? {
            let Some(child_id) = as_id(child) else {
                continue;
            };
            let Some(child) = item(self.doc, child_id) else {
                continue;
            };
            if child.get("visibility").and_then(Value::as_str) != Some("public") {
                continue;
            }
            let (kind, inner) = tagged(get(child, "inner")?)?;
            if kind == "use" {
                self.re_export(inner, &prefix)?;
            } else if let Some(name) = child.get("name").and_then(Value::as_str) {
                let mut path = prefix.clone();
                path.push(name.to_string());
                self.add(child_id, path)?;
            }
        }
        Ok(())
    }

    fn re_export(&mut self, u: &Value, prefix: &[String]) -> Res<()> {
        let target = u.get("id").and_then(as_id);
        let held = target.filter(|t| item(self.doc, *t).is_some());
        let glob = get_bool(u, "is_glob");
        match (held, glob) {
            (Some(t), true) => self.module(t, prefix.to_vec()),
            (Some(t), false) => {
                let mut path = prefix.to_vec();
                path.push(get_str(u, "name")?.to_string());
                self.add(t, path)
            }
            (None, _) => {
                let mut path = prefix.to_vec();
                path.push(if glob {
                    "*".to_string()
                } else {
                    get_str(u, "name")?.to_string()
                });
                let source = get_str(u, "source")?;
                let summary = target.and_then(|t| self.doc.get("paths")?.get(t.to_string()));
                let relative = ["crate::", "self::", "super::"]
                    .iter()
                    .any(|p| source.starts_with(p));
                let def_path = summary
                    .and_then(|s| s.get("path"))
                    .and_then(Value::as_array)
                    .map(|segs| {
                        let segs: Vec<&str> = segs.iter().filter_map(Value::as_str).collect();
                        segs.join("::")
                    });
                let target_path = match def_path {
                    Some(def) if relative => def,
                    _ => source.to_string(),
                };
                let kind = summary
                    .and_then(|s| s.get("kind"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                self.reach.external.insert(External {
                    path,
                    target: target_path,
                    kind: kind.to_string(),
                });
                Ok(())
            }
        }
    }

    fn add(&mut self, id: u64, path: Vec<String>) -> Res<()> {
        let is_module = item(self.doc, id)
            .and_then(|i| i.get("inner"))
            .is_some_and(|inner| inner.get("module").is_some());
        self.reach.paths.entry(id).or_default().insert(path.clone());
        if is_module {
            self.module(id, path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `krate` has a private module `inner` holding `Thing`, re-exported at the root and by
    /// the public module `api`, which also re-exports an item of another crate, globs a
    /// private module, and holds a `pub(crate)` item.
    #[test]
    fn paths_follow_public_modules_and_re_exports() {
        let module = |name: &str, vis: &str, items: &[u64]| json!({ "name": name, "visibility": vis, "inner": { "module": { "items": items } } });
        let re_export = |name: &str, source: &str, id: u64, glob: bool| {
            json!({ "name": null, "visibility": "public",
                    "inner": { "use": { "source": source, "name": name, "id": id, "is_glob": glob } } })
        };
        let doc = json!({
            "root": 0,
            "index": {
                "0": module("krate", "public", &[1, 2, 3]),
                "1": module("inner", "default", &[10, 11]),
                "2": module("api", "public", &[4, 5, 6, 12]),
                "3": re_export("Thing", "crate::inner::Thing", 10, false),
                "4": re_export("Thing", "crate::inner::Thing", 10, false),
                "5": re_export("Other", "other::Other", 99, false),
                "6": re_export("*", "crate::hidden", 7, true),
                "7": module("hidden", "default", &[13]),
                "10": { "name": "Thing", "visibility": "public", "inner": { "struct": {} } },
                "11": { "name": "Private", "visibility": "crate", "inner": { "struct": {} } },
                "12": { "name": "Narrow", "visibility": "crate", "inner": { "function": {} } },
                "13": { "name": "Globbed", "visibility": "public", "inner": { "function": {} } },
            },
            "paths": { "99": { "crate_id": 3, "path": ["other", "deep", "Other"], "kind": "struct" } },
        });
        let reach = reach(&doc).expect("the walk");
        let joined =
            |id: u64| -> Vec<String> { reach.paths[&id].iter().map(|p| p.join("::")).collect() };
        assert_eq!(joined(10), vec!["krate::Thing", "krate::api::Thing"]);
        assert_eq!(
            reach.canonical(10).map(|p| p.join("::")).as_deref(),
            Some("krate::Thing")
        );
        assert_eq!(joined(13), vec!["krate::api::Globbed"]);
        assert!(!reach.paths.contains_key(&11) && !reach.paths.contains_key(&12));
        assert!(!reach.paths.contains_key(&1), "a private module is no path");
        let ext: Vec<(String, &str, &str)> = reach
            .external
            .iter()
            .map(|e| (e.path.join("::"), e.target.as_str(), e.kind.as_str()))
            .collect();
        assert_eq!(
            ext,
            vec![("krate::api::Other".to_string(), "other::Other", "struct")]
        );
    }
}
