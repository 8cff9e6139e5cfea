//! Impls in the listing: a type's inherent impls (grouped by header) and trait impls.
//!
//! # Invariants
//!
//! - Listed: every impl written or derived in the crate whose trait and type are public,
//!   and the auto traits `Send`, `Sync` and `Unpin` of each public type (as rustdoc
//!   derives them, `!Sync` included). Blanket impls from other crates (`From<T> for T`,
//!   `Any`, …), the other auto traits and compiler markers are left out.
//! - An impl in no public type's list (an impl of our trait for another crate's type, a
//!   blanket impl of our trait) is shown under its trait if the trait is ours, else under the
//!   first public item of ours it names, else at the top level.
//! - Each impl is listed once.

use serde_json::Value;

use super::items::{key, with, Kind, Lines};
use super::types::{as_id, get, get_arr, get_bool, get_str, tagged, when, Res};

/// Auto traits whose (derived) impls are part of the listing.
const AUTO_TRAITS: [&str; 3] = [
    "core::marker::Send",
    "core::marker::Sync",
    "core::marker::Unpin",
];

/// Traits the compiler implements for its own bookkeeping.
const SKIPPED_TRAITS: [&str; 1] = ["core::marker::StructuralPartialEq"];

impl Lines<'_> {
    /// A type's impls: inherent ones with their public items, and trait impls.
    pub(super) fn impls(&mut self, impls: &[Value], path: &[String]) -> Res<()> {
        for id in impls.iter().filter_map(as_id) {
            let imp = get(get(self.get_item(id)?, "inner")?, "impl")?;
            if !get(imp, "blanket_impl")?.is_null() {
                continue;
            }
            self.done.insert(id);
            if get(imp, "trait")?.is_null() {
                self.inherent(imp, path)?;
            } else {
                self.trait_impl(imp, Some(path))?;
            }
        }
        Ok(())
    }

    fn inherent(&mut self, imp: &Value, path: &[String]) -> Res<()> {
        let c = path.join("::");
        let generics = get(imp, "generics")?;
        let head = format!(
            "impl{} {}{}",
            self.names.params(get_arr(generics, "params")?)?,
            self.names.ty(get(imp, "for")?)?,
            self.names.where_clause(generics)?
        );
        let head_key = with(key(path), 1, &head);
        let mut any = false;
        for id in get_arr(imp, "items")?.iter().filter_map(as_id) {
            let member = self.get_item(id)?;
            if member.get("visibility").and_then(Value::as_str) != Some("public") {
                continue;
            }
            let name = get_str(member, "name")?;
            let text = self.assoc(member, &format!("{c}::{name}"), "pub ")?;
            self.push(with(head_key.clone(), 0, name), 2, Kind::Item, text);
            any = true;
        }
        if any {
            self.push(head_key, 1, Kind::ImplHeader, head);
        }
        Ok(())
    }

    /// A trait impl under `owner` (or under the trait, or the first public item it names).
    fn trait_impl(&mut self, imp: &Value, owner: Option<&[String]>) -> Res<()> {
        let n = &self.names;
        let tr = get(imp, "trait")?;
        let trait_id = tr.get("id").and_then(as_id);
        let def = trait_id.and_then(|id| n.def_path(id)).unwrap_or_default();
        if get_bool(imp, "is_synthetic") && !AUTO_TRAITS.contains(&def.as_str()) {
            return Ok(());
        }
        if SKIPPED_TRAITS.contains(&def.as_str()) {
            return Ok(());
        }
        // A private trait (a seal) or an impl for a private type is not public.
        let private =
            |id: Option<u64>| id.is_some_and(|id| self.is_local(id) && !n.local.contains_key(&id));
        let for_ty = get(imp, "for")?;
        let for_id = for_ty
            .get("resolved_path")
            .and_then(|p| p.get("id"))
            .and_then(as_id);
        if private(trait_id) || private(for_id) {
            return Ok(());
        }
        let generics = get(imp, "generics")?;
        let mut text = format!(
            "impl{} {}{} for {}{}",
            n.params(get_arr(generics, "params")?)?,
            when(get_bool(imp, "is_negative"), "!"),
            n.path(tr)?,
            n.ty(for_ty)?,
            n.where_clause(generics)?
        );
        let mut assoc = Vec::new();
        for id in get_arr(imp, "items")?.iter().filter_map(as_id) {
            let member = self.get_item(id)?;
            let (kind, inner) = tagged(get(member, "inner")?)?;
            let name = get_str(member, "name")?;
            match kind {
                "assoc_type" => {
                    let params = n.params(get_arr(get(inner, "generics")?, "params")?)?;
                    assoc.push(format!(
                        "type {name}{params} = {}",
                        n.ty(get(inner, "type")?)?
                    ));
                }
                "assoc_const" => {
                    assoc.push(format!("const {name}: {}", n.ty(get(inner, "type")?)?))
                }
                _ => {}
            }
        }
        if !assoc.is_empty() {
            text.push_str(&format!(" {{ {} }}", assoc.join("; ")));
        }
        let owner = match owner {
            Some(path) => path.to_vec(),
            None => self.owner_of(imp)?,
        };
        // The crate root has no line of its own: its impls stand at the top level.
        let depth = usize::from(owner.len() > 1);
        self.push(with(key(&owner), 2, &text), depth, Kind::TraitImpl, text);
        Ok(())
    }

    fn is_local(&self, id: u64) -> bool {
        let summary = self.doc.get("paths").and_then(|p| p.get(id.to_string()));
        summary
            .and_then(|s| s.get("crate_id"))
            .and_then(Value::as_u64)
            == Some(0)
    }

    /// Where an impl found outside a type's own list is shown: under its trait if the
    /// trait is ours, else under the first public item of ours it names, else at the root.
    fn owner_of(&self, imp: &Value) -> Res<Vec<String>> {
        let mut ids = Vec::new();
        collect_ids(get(imp, "trait")?, &mut ids);
        collect_ids(get(imp, "for")?, &mut ids);
        let owner = ids.into_iter().find_map(|id| self.reach.canonical(id));
        Ok(owner
            .cloned()
            .unwrap_or_else(|| vec![self.crate_name.clone()]))
    }

    /// Local impls that no public type lists (impls of public traits for other crates' types,
    /// blanket impls of our traits).
    pub(super) fn loose_impls(&mut self) -> Res<()> {
        let index = get(self.doc, "index")?
            .as_object()
            .ok_or("rustdoc JSON: `index` is not an object")?;
        let mut ids: Vec<u64> = index.keys().filter_map(|k| k.parse().ok()).collect();
        ids.sort_unstable();
        for id in ids {
            let it = self.get_item(id)?;
            if self.done.contains(&id) || it.get("crate_id").and_then(Value::as_u64) != Some(0) {
                continue;
            }
            let Some(imp) = get(it, "inner")?.get("impl") else {
                continue;
            };
            if get(imp, "trait")?.is_null()
                || !get(imp, "blanket_impl")?.is_null()
                || get_bool(imp, "is_synthetic")
            {
                continue;
            }
            self.done.insert(id);
            self.trait_impl(imp, None)?;
        }
        Ok(())
    }
}

/// Every `"id"` number in a JSON value, depth first.
fn collect_ids(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Object(m) => {
            if let Some(id) = m.get("id").and_then(as_id) {
                out.push(id);
            }
            for (k, x) in m {
                if k != "id" {
                    collect_ids(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ids(x, out)),
        _ => {}
    }
}
