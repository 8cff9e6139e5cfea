//! One line per public item, member and trait impl, each keyed so that sorting groups a
//! type with its fields, variants, methods and impls.
//!
//! # Invariants
//!
//! - Every reachable item is rendered once, at its canonical path; its other paths become
//!   `pub use OTHER = CANONICAL` lines.
//! - Members sort under their owner: fields and variants and trait items first, then the
//!   inherent impls (a header with its bounds, its methods beneath), then trait impls.
//!   Inherent impl blocks with the same header merge, so moving a method between two such
//!   blocks changes nothing.
//! - Which trait impls are listed, and where: see `impls.rs`.

use std::collections::HashSet;

use serde_json::Value;

use super::types::{as_id, get, get_arr, get_bool, get_str, header, tagged, when, Names, Res};
use super::walk::{item, Reach};

/// What a line stands for, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A public item at its canonical path.
    Item,
    /// Another path to an item (a re-export).
    ReExport,
    /// An inherent impl's header (its methods are items).
    ImplHeader,
    /// A trait impl.
    TraitImpl,
}

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Line {
    /// Where it sorts: path segments, each with a rank (0 names, 1 inherent impls, 2 trait
    /// impls).
    pub(crate) key: Vec<(u8, String)>,
    /// The text, without indentation.
    pub(crate) text: String,
    /// How deep it is indented (0 for items, 1 for members, 2 for methods in an impl).
    pub(crate) depth: usize,
    /// What it is.
    pub(crate) kind: Kind,
}

pub(super) fn key(path: &[String]) -> Vec<(u8, String)> {
    path.iter().map(|s| (0, s.clone())).collect()
}

pub(super) fn with(mut key: Vec<(u8, String)>, rank: u8, seg: &str) -> Vec<(u8, String)> {
    key.push((rank, seg.to_string()));
    key
}

/// Renders the lines of a crate's listing.
pub(crate) struct Lines<'a> {
    pub(crate) doc: &'a Value,
    pub(crate) names: Names<'a>,
    pub(crate) reach: &'a Reach,
    pub(crate) out: Vec<Line>,
    pub(super) crate_name: String,
    /// Impls already listed.
    pub(super) done: HashSet<u64>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(
        doc: &'a Value,
        names: Names<'a>,
        reach: &'a Reach,
        crate_name: &str,
    ) -> Self {
        Lines {
            doc,
            names,
            reach,
            out: Vec::new(),
            crate_name: crate_name.to_string(),
            done: HashSet::new(),
        }
    }

    pub(super) fn push(&mut self, key: Vec<(u8, String)>, depth: usize, kind: Kind, text: String) {
        self.out.push(Line {
            key,
            text,
            depth,
            kind,
        });
    }

    pub(super) fn get_item(&self, id: u64) -> Res<&'a Value> {
        item(self.doc, id).ok_or_else(|| format!("rustdoc JSON: no item {id} in the index"))
    }

    /// Renders every reachable item, then the crate's impls not yet seen.
    pub(crate) fn render(&mut self) -> Res<()> {
        for (&id, paths) in &self.reach.paths {
            let canonical = self.reach.canonical(id).cloned().unwrap_or_default();
            let c = canonical.join("::");
            for other in paths.iter().filter(|p| **p != canonical) {
                let text = format!("pub use {} = {c}", other.join("::"));
                self.push(key(other), 0, Kind::ReExport, text);
            }
            self.item(id, &canonical)?;
        }
        for ext in &self.reach.external {
            let text = format!(
                "pub use {} = {} ({})",
                ext.path.join("::"),
                ext.target,
                ext.kind
            );
            self.push(key(&ext.path), 0, Kind::ReExport, text);
        }
        self.loose_impls()
    }

    fn item(&mut self, id: u64, path: &[String]) -> Res<()> {
        let it = self.get_item(id)?;
        let c = path.join("::");
        let attrs = attrs(it);
        let (kind, inner) = tagged(get(it, "inner")?)?;
        let n = &self.names;
        let text = match kind {
            "module" => format!("pub mod {c}"),
            "function" => format!(
                "{attrs}pub {}fn {c}{}",
                header(get(inner, "header")?)?,
                n.signature(inner)?
            ),
            "constant" => {
                let expr = get(inner, "const")?.get("expr").and_then(Value::as_str);
                let value = expr.filter(|e| *e != "_").map(|e| format!(" = {e}"));
                format!(
                    "{attrs}pub const {c}: {}{}",
                    n.ty(get(inner, "type")?)?,
                    value.unwrap_or_default()
                )
            }
            "static" => {
                let mutability = when(get_bool(inner, "is_mutable"), "mut ");
                format!(
                    "{attrs}pub static {mutability}{c}: {}",
                    n.ty(get(inner, "type")?)?
                )
            }
            "type_alias" => {
                let generics = get(inner, "generics")?;
                format!(
                    "{attrs}pub type {c}{} = {}{}",
                    n.params(get_arr(generics, "params")?)?,
                    n.ty(get(inner, "type")?)?,
                    n.where_clause(generics)?
                )
            }
            "macro" | "proc_macro" => format!("{attrs}pub macro {c}!"),
            "trait_alias" => format!(
                "{attrs}pub trait {c} = {}",
                n.bounds(get_arr(inner, "params")?)?
            ),
            "struct" | "union" => return self.struct_like(kind, inner, path, &attrs),
            "enum" => return self.enumeration(inner, path, &attrs),
            "trait" => return self.trait_(inner, path, &attrs),
            "primitive" | "keyword" => return Ok(()),
            other => {
                return Err(format!(
                    "rustdoc JSON: unexpected item kind `{other}` at {c}"
                ))
            }
        };
        self.push(key(path), 0, Kind::Item, text);
        Ok(())
    }

    fn struct_like(&mut self, kind: &str, inner: &Value, path: &[String], attrs: &str) -> Res<()> {
        let c = path.join("::");
        let generics = get(inner, "generics")?;
        let params = self.names.params(get_arr(generics, "params")?)?;
        let where_ = self.names.where_clause(generics)?;
        let mut fields_text = String::new();
        let mut field_ids = Vec::new();
        let mut stripped = get_bool(inner, "has_stripped_fields");
        if kind == "union" {
            field_ids.extend(get_arr(inner, "fields")?.iter().filter_map(as_id));
        } else {
            let (shape, body) = tagged(get(inner, "kind")?)?;
            match shape {
                "unit" => {}
                "tuple" => fields_text = self.tuple_fields(body, "pub ")?,
                "plain" => {
                    field_ids.extend(get_arr(body, "fields")?.iter().filter_map(as_id));
                    stripped = get_bool(body, "has_stripped_fields");
                }
                other => {
                    return Err(format!(
                        "rustdoc JSON: unknown struct kind `{other}` at {c}"
                    ))
                }
            }
        }
        let mut any_public = false;
        for id in field_ids {
            let field = self.get_item(id)?;
            if field.get("visibility").and_then(Value::as_str) != Some("public") {
                continue;
            }
            any_public = true;
            let name = get_str(field, "name")?;
            let ty = self.names.ty(get(get(field, "inner")?, "struct_field")?)?;
            let text = format!("{}pub {c}::{name}: {ty}", self::attrs(field));
            self.push(with(key(path), 0, name), 1, Kind::Item, text);
        }
        let rest = when(stripped && any_public, " { .. }");
        let text = format!("{attrs}pub {kind} {c}{params}{fields_text}{where_}{rest}");
        self.push(key(path), 0, Kind::Item, text);
        self.impls(get_arr(inner, "impls")?, path)
    }

    /// `(pub A, _)`: a tuple's fields, `_` for the private ones.
    fn tuple_fields(&self, fields: &Value, vis: &str) -> Res<String> {
        let mut parts = Vec::new();
        for f in fields.as_array().map_or(&[][..], Vec::as_slice) {
            let field = as_id(f).and_then(|id| item(self.doc, id));
            parts.push(match field {
                Some(field) => {
                    let ty = self.names.ty(get(get(field, "inner")?, "struct_field")?)?;
                    format!("{vis}{ty}")
                }
                None => "_".to_string(),
            });
        }
        Ok(format!("({})", parts.join(", ")))
    }

    fn enumeration(&mut self, inner: &Value, path: &[String], attrs: &str) -> Res<()> {
        let c = path.join("::");
        let generics = get(inner, "generics")?;
        let params = self.names.params(get_arr(generics, "params")?)?;
        let where_ = self.names.where_clause(generics)?;
        let rest = when(get_bool(inner, "has_stripped_variants"), " { .. }");
        let text = format!("{attrs}pub enum {c}{params}{where_}{rest}");
        self.push(key(path), 0, Kind::Item, text);
        for id in get_arr(inner, "variants")?.iter().filter_map(as_id) {
            let variant = self.get_item(id)?;
            let name = get_str(variant, "name")?;
            let v = get(get(variant, "inner")?, "variant")?;
            let (shape, body) = tagged(get(v, "kind")?)?;
            let fields = match shape {
                "plain" => String::new(),
                "tuple" => self.tuple_fields(body, "")?,
                "struct" => {
                    let mut parts = Vec::new();
                    for fid in get_arr(body, "fields")?.iter().filter_map(as_id) {
                        let field = self.get_item(fid)?;
                        let ty = self.names.ty(get(get(field, "inner")?, "struct_field")?)?;
                        parts.push(format!("{}: {ty}", get_str(field, "name")?));
                    }
                    if get_bool(body, "has_stripped_fields") {
                        parts.push("..".to_string());
                    }
                    format!(" {{ {} }}", parts.join(", "))
                }
                other => {
                    return Err(format!(
                        "rustdoc JSON: unknown variant kind `{other}` at {c}"
                    ))
                }
            };
            let discriminant = v
                .get("discriminant")
                .and_then(|d| d.get("expr"))
                .and_then(Value::as_str)
                .map(|e| format!(" = {e}"))
                .unwrap_or_default();
            let text = format!("{}{c}::{name}{fields}{discriminant}", self::attrs(variant));
            self.push(with(key(path), 0, name), 1, Kind::Item, text);
        }
        self.impls(get_arr(inner, "impls")?, path)
    }

    fn trait_(&mut self, inner: &Value, path: &[String], attrs: &str) -> Res<()> {
        let c = path.join("::");
        let n = &self.names;
        let generics = get(inner, "generics")?;
        let text = format!(
            "{attrs}pub {}{}trait {c}{}{}{}",
            when(get_bool(inner, "is_unsafe"), "unsafe "),
            when(get_bool(inner, "is_auto"), "auto "),
            n.params(get_arr(generics, "params")?)?,
            n.colon_bounds(get_arr(inner, "bounds")?)?,
            n.where_clause(generics)?
        );
        self.push(key(path), 0, Kind::Item, text);
        for id in get_arr(inner, "items")?.iter().filter_map(as_id) {
            let member = self.get_item(id)?;
            let name = get_str(member, "name")?;
            let text = self.assoc(member, &format!("{c}::{name}"), "")?;
            self.push(with(key(path), 0, name), 1, Kind::Item, text);
        }
        Ok(())
    }

    /// An associated function, const or type, at `path`, with `vis` before it.
    pub(super) fn assoc(&self, member: &Value, path: &str, vis: &str) -> Res<String> {
        let n = &self.names;
        let attrs = attrs(member);
        let (kind, inner) = tagged(get(member, "inner")?)?;
        Ok(match kind {
            "function" => {
                let provided = when(get_bool(inner, "has_body") && vis.is_empty(), " { .. }");
                let header = header(get(inner, "header")?)?;
                format!(
                    "{attrs}{vis}{header}fn {path}{}{provided}",
                    n.signature(inner)?
                )
            }
            "assoc_const" => {
                let value = inner.get("value").and_then(Value::as_str);
                let value = value.filter(|v| *v != "_").map(|v| format!(" = {v}"));
                let ty = n.ty(get(inner, "type")?)?;
                format!(
                    "{attrs}{vis}const {path}: {ty}{}",
                    value.unwrap_or_default()
                )
            }
            "assoc_type" => {
                let generics = get(inner, "generics")?;
                let bounds = n.colon_bounds(get_arr(inner, "bounds")?)?;
                let default = match inner.get("type") {
                    Some(t) if !t.is_null() => format!(" = {}", n.ty(t)?),
                    _ => String::new(),
                };
                format!(
                    "{attrs}{vis}type {path}{}{bounds}{}{default}",
                    n.params(get_arr(generics, "params")?)?,
                    n.where_clause(generics)?
                )
            }
            other => {
                return Err(format!(
                    "rustdoc JSON: unexpected associated item `{other}` at {path}"
                ))
            }
        })
    }
}

/// `#[non_exhaustive] ` and `#[deprecated] ` when they apply.
fn attrs(it: &Value) -> String {
    let mut s = String::new();
    let list = it.get("attrs").and_then(Value::as_array);
    if list.is_some_and(|a| a.iter().any(|x| x.as_str() == Some("non_exhaustive"))) {
        s.push_str("#[non_exhaustive] ");
    }
    if it.get("deprecation").is_some_and(|d| !d.is_null()) {
        s.push_str("#[deprecated] ");
    }
    s
}
