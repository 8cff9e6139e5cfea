//! Types, paths, generics and bounds from rustdoc's JSON, rendered as Rust-like text.
//!
//! # Invariants
//!
//! - A name is printed as the path a user writes: the listed public path for items of the
//!   crate at hand and of the other graceful crates, the bare name for items of the Rust
//!   prelude, and rustdoc's definition path for anything else (`core::time::Duration`).
//!   So the same type reads the same wherever it appears, whatever the source imported.
//! - A shape this renderer does not know is an error naming it, never a silent guess: the
//!   listing is only worth checking in if every line is exact.

use std::collections::HashMap;

use serde_json::Value;

/// Items of the Rust prelude (by rustdoc's definition path), printed by their bare name.
const PRELUDE: [&str; 36] = [
    "core::option::Option",
    "core::result::Result",
    "alloc::boxed::Box",
    "alloc::vec::Vec",
    "alloc::string::String",
    "alloc::string::ToString",
    "alloc::borrow::ToOwned",
    "core::marker::Send",
    "core::marker::Sync",
    "core::marker::Sized",
    "core::marker::Unpin",
    "core::marker::Copy",
    "core::clone::Clone",
    "core::default::Default",
    "core::ops::drop::Drop",
    "core::ops::function::Fn",
    "core::ops::function::FnMut",
    "core::ops::function::FnOnce",
    "core::ops::async_function::AsyncFn",
    "core::ops::async_function::AsyncFnMut",
    "core::ops::async_function::AsyncFnOnce",
    "core::cmp::Eq",
    "core::cmp::PartialEq",
    "core::cmp::Ord",
    "core::cmp::PartialOrd",
    "core::iter::traits::iterator::Iterator",
    "core::iter::traits::collect::IntoIterator",
    "core::iter::traits::collect::Extend",
    "core::iter::traits::collect::FromIterator",
    "core::iter::traits::double_ended::DoubleEndedIterator",
    "core::convert::From",
    "core::convert::Into",
    "core::convert::TryFrom",
    "core::convert::TryInto",
    "core::convert::AsRef",
    "core::convert::AsMut",
];

/// Shorthand for this module's results: errors are messages.
pub(crate) type Res<T> = Result<T, String>;

/// A short excerpt of a JSON value, for error messages.
pub(crate) fn excerpt(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The field `key` of an object.
pub(crate) fn get<'v>(v: &'v Value, key: &str) -> Res<&'v Value> {
    v.get(key)
        .ok_or_else(|| format!("rustdoc JSON: no `{key}` in {}", excerpt(v)))
}

/// The string field `key`.
pub(crate) fn get_str<'v>(v: &'v Value, key: &str) -> Res<&'v str> {
    get(v, key)?
        .as_str()
        .ok_or_else(|| format!("rustdoc JSON: `{key}` is not a string in {}", excerpt(v)))
}

/// The array field `key` (`null` reads as empty).
pub(crate) fn get_arr<'v>(v: &'v Value, key: &str) -> Res<&'v [Value]> {
    match get(v, key)? {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        _ => Err(format!(
            "rustdoc JSON: `{key}` is not an array in {}",
            excerpt(v)
        )),
    }
}

/// The boolean field `key` (absent reads as false).
pub(crate) fn get_bool(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// An id (rustdoc's ids are integers in this format).
pub(crate) fn as_id(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// An externally tagged enum: `"name"` or `{"name": payload}`.
pub(crate) fn tagged(v: &Value) -> Res<(&str, &Value)> {
    match v {
        Value::String(s) => Ok((s, &Value::Null)),
        Value::Object(m) if m.len() == 1 => {
            let (k, payload) = m.iter().next().ok_or("empty object")?;
            Ok((k, payload))
        }
        _ => Err(format!(
            "rustdoc JSON: expected a tagged value, got {}",
            excerpt(v)
        )),
    }
}

/// The definition path rustdoc records for `id` in a `paths` table.
pub(crate) fn def_path(paths: &serde_json::Map<String, Value>, id: u64) -> Option<String> {
    let segs = paths.get(&id.to_string())?.get("path")?.as_array()?;
    let segs: Vec<&str> = segs.iter().filter_map(Value::as_str).collect();
    Some(segs.join("::"))
}

/// How names are printed: the crate's JSON, its listed paths, and the other graceful
/// crates' listed paths keyed by their definition paths.
pub(crate) struct Names<'a> {
    /// The crate's `paths` table (id → summary with `path`).
    pub(crate) paths: &'a serde_json::Map<String, Value>,
    /// Listed public paths of this crate's items.
    pub(crate) local: &'a HashMap<u64, String>,
    /// Listed public paths of the other graceful crates, by definition path.
    pub(crate) public: &'a HashMap<String, String>,
}

impl Names<'_> {
    /// The definition path rustdoc records for `id`.
    pub(crate) fn def_path(&self, id: u64) -> Option<String> {
        def_path(self.paths, id)
    }

    /// How to print the item `id`, written `written` in the source.
    pub(crate) fn name(&self, id: Option<u64>, written: &str) -> String {
        let Some(id) = id else {
            return written.to_string();
        };
        if let Some(p) = self.local.get(&id) {
            return p.clone();
        }
        let Some(def) = self.def_path(id) else {
            return written.to_string();
        };
        if let Some(p) = self.public.get(&def) {
            return p.clone();
        }
        if PRELUDE.contains(&def.as_str()) {
            return def.rsplit("::").next().unwrap_or(&def).to_string();
        }
        def
    }

    /// A type.
    pub(crate) fn ty(&self, t: &Value) -> Res<String> {
        let (kind, v) = tagged(t)?;
        Ok(match kind {
            "resolved_path" => self.path(v)?,
            "generic" | "primitive" => v.as_str().unwrap_or("?").to_string(),
            "infer" => "_".to_string(),
            "tuple" => {
                let parts = self.tys(v.as_array().map_or(&[][..], Vec::as_slice))?;
                match parts.len() {
                    1 => format!("({},)", parts[0]),
                    _ => format!("({})", parts.join(", ")),
                }
            }
            "slice" => format!("[{}]", self.ty(v)?),
            "array" => format!("[{}; {}]", self.ty(get(v, "type")?)?, get_str(v, "len")?),
            "borrowed_ref" => {
                let lifetime = v.get("lifetime").and_then(Value::as_str);
                let lifetime = lifetime.map(|l| format!("{l} ")).unwrap_or_default();
                let mutability = when(get_bool(v, "is_mutable"), "mut ");
                format!("&{lifetime}{mutability}{}", self.ty(get(v, "type")?)?)
            }
            "raw_pointer" => {
                let mutability = if get_bool(v, "is_mutable") {
                    "mut"
                } else {
                    "const"
                };
                format!("*{mutability} {}", self.ty(get(v, "type")?)?)
            }
            "dyn_trait" => {
                let mut parts = Vec::new();
                for poly in get_arr(v, "traits")? {
                    let hrtb = self.hrtb(get_arr(poly, "generic_params")?)?;
                    parts.push(format!("{hrtb}{}", self.path(get(poly, "trait")?)?));
                }
                if let Some(l) = v.get("lifetime").and_then(Value::as_str) {
                    parts.push(l.to_string());
                }
                format!("dyn {}", parts.join(" + "))
            }
            "impl_trait" => {
                let bounds = v.as_array().map_or(&[][..], Vec::as_slice);
                format!("impl {}", self.bounds(bounds)?)
            }
            "qualified_path" => {
                let self_ty = self.ty(get(v, "self_type")?)?;
                let name = get_str(v, "name")?;
                let args = self.args(v.get("args").unwrap_or(&Value::Null))?;
                match v.get("trait") {
                    Some(tr) if !tr.is_null() && self_ty != "Self" => {
                        format!("<{self_ty} as {}>::{name}{args}", self.path(tr)?)
                    }
                    _ => format!("{self_ty}::{name}{args}"),
                }
            }
            "function_pointer" => {
                let hrtb = self.hrtb(get_arr(v, "generic_params")?)?;
                let header = header(get(v, "header")?)?;
                let sig = get(v, "sig")?;
                let inputs = get_arr(sig, "inputs")?
                    .iter()
                    .map(|p| self.ty(p.get(1).unwrap_or(&Value::Null)))
                    .collect::<Res<Vec<_>>>()?;
                format!(
                    "{hrtb}{header}fn({}){}",
                    inputs.join(", "),
                    self.output(sig)?
                )
            }
            other => return Err(format!("rustdoc JSON: unknown type kind `{other}`")),
        })
    }

    fn tys(&self, ts: &[Value]) -> Res<Vec<String>> {
        ts.iter().map(|t| self.ty(t)).collect()
    }

    /// A path with its generic arguments: `{path, id, args}`.
    pub(crate) fn path(&self, p: &Value) -> Res<String> {
        let written = get_str(p, "path")?;
        let id = p.get("id").and_then(as_id);
        let args = self.args(p.get("args").unwrap_or(&Value::Null))?;
        Ok(format!("{}{args}", self.name(id, written)))
    }

    /// Generic arguments: `<A, 'a, N = T>`, `(A, B) -> C`, or nothing.
    pub(crate) fn args(&self, a: &Value) -> Res<String> {
        if a.is_null() {
            return Ok(String::new());
        }
        let (kind, v) = tagged(a)?;
        match kind {
            "angle_bracketed" => {
                let mut parts = Vec::new();
                for arg in get_arr(v, "args")? {
                    let (k, x) = tagged(arg)?;
                    parts.push(match k {
                        "lifetime" => x.as_str().unwrap_or("'_").to_string(),
                        "type" => self.ty(x)?,
                        "const" => get_str(x, "expr")?.to_string(),
                        "infer" => "_".to_string(),
                        other => {
                            return Err(format!("rustdoc JSON: unknown generic arg `{other}`"))
                        }
                    });
                }
                for c in get_arr(v, "constraints")? {
                    let name = get_str(c, "name")?;
                    let args = self.args(c.get("args").unwrap_or(&Value::Null))?;
                    let (k, b) = tagged(get(c, "binding")?)?;
                    parts.push(match k {
                        "equality" => format!("{name}{args} = {}", self.term(b)?),
                        "constraint" => {
                            let bounds = b.as_array().map_or(&[][..], Vec::as_slice);
                            format!("{name}{args}: {}", self.bounds(bounds)?)
                        }
                        other => return Err(format!("rustdoc JSON: unknown binding `{other}`")),
                    });
                }
                Ok(if parts.is_empty() {
                    String::new()
                } else {
                    format!("<{}>", parts.join(", "))
                })
            }
            "parenthesized" => {
                let inputs = self.tys(get_arr(v, "inputs")?)?;
                let output = match v.get("output") {
                    Some(o) if !o.is_null() => format!(" -> {}", self.ty(o)?),
                    _ => String::new(),
                };
                Ok(format!("({}){output}", inputs.join(", ")))
            }
            "return_type_notation" => Ok("(..)".to_string()),
            other => Err(format!("rustdoc JSON: unknown generic args `{other}`")),
        }
    }

    /// A term: a type or a constant.
    fn term(&self, t: &Value) -> Res<String> {
        let (k, v) = tagged(t)?;
        match k {
            "type" => self.ty(v),
            "constant" => Ok(get_str(v, "expr")?.to_string()),
            other => Err(format!("rustdoc JSON: unknown term `{other}`")),
        }
    }

    /// Bounds joined by ` + `.
    pub(crate) fn bounds(&self, bounds: &[Value]) -> Res<String> {
        let mut parts = Vec::new();
        for b in bounds {
            let (k, v) = tagged(b)?;
            parts.push(match k {
                "trait_bound" => {
                    let hrtb = self.hrtb(get_arr(v, "generic_params")?)?;
                    let modifier = match v.get("modifier").and_then(Value::as_str) {
                        Some("maybe") => "?",
                        Some("maybe_const") => "~const ",
                        _ => "",
                    };
                    format!("{hrtb}{modifier}{}", self.path(get(v, "trait")?)?)
                }
                "outlives" => v.as_str().unwrap_or("'_").to_string(),
                "use" => {
                    let mut names = Vec::new();
                    for arg in v.as_array().map_or(&[][..], Vec::as_slice) {
                        names.push(match arg {
                            Value::String(s) => s.clone(),
                            other => tagged(other)?.1.as_str().unwrap_or("_").to_string(),
                        });
                    }
                    format!("use<{}>", names.join(", "))
                }
                other => return Err(format!("rustdoc JSON: unknown bound `{other}`")),
            });
        }
        Ok(parts.join(" + "))
    }

    /// `: A + B` for bounds, nothing when there are none.
    pub(crate) fn colon_bounds(&self, bounds: &[Value]) -> Res<String> {
        Ok(if bounds.is_empty() {
            String::new()
        } else {
            format!(": {}", self.bounds(bounds)?)
        })
    }

    /// `for<'a, …> ` for higher-ranked generic parameters, or nothing.
    fn hrtb(&self, params: &[Value]) -> Res<String> {
        let list = self.params(params)?;
        Ok(if list.is_empty() {
            String::new()
        } else {
            format!("for{list} ")
        })
    }

    /// Generic parameters `<'a, T: Bound = Default, const N: usize>`, leaving out the ones
    /// the compiler made up for `impl Trait` arguments; nothing when there are none.
    pub(crate) fn params(&self, params: &[Value]) -> Res<String> {
        let mut parts = Vec::new();
        for p in params {
            let name = get_str(p, "name")?;
            let (k, v) = tagged(get(p, "kind")?)?;
            parts.push(match k {
                "lifetime" => {
                    let outlives: Vec<&str> = get_arr(v, "outlives")?
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    if outlives.is_empty() {
                        name.to_string()
                    } else {
                        format!("{name}: {}", outlives.join(" + "))
                    }
                }
                "type" => {
                    if get_bool(v, "is_synthetic") {
                        continue;
                    }
                    let mut s = format!("{name}{}", self.colon_bounds(get_arr(v, "bounds")?)?);
                    if let Some(d) = v.get("default").filter(|d| !d.is_null()) {
                        s.push_str(&format!(" = {}", self.ty(d)?));
                    }
                    s
                }
                "const" => {
                    let mut s = format!("const {name}: {}", self.ty(get(v, "type")?)?);
                    if let Some(d) = v.get("default").and_then(Value::as_str) {
                        s.push_str(&format!(" = {d}"));
                    }
                    s
                }
                other => return Err(format!("rustdoc JSON: unknown generic param `{other}`")),
            });
        }
        Ok(if parts.is_empty() {
            String::new()
        } else {
            format!("<{}>", parts.join(", "))
        })
    }

    /// ` where A: B, 'a: 'b`, or nothing.
    pub(crate) fn where_clause(&self, generics: &Value) -> Res<String> {
        let mut parts = Vec::new();
        for p in get_arr(generics, "where_predicates")? {
            let (k, v) = tagged(p)?;
            parts.push(match k {
                "bound_predicate" => {
                    let hrtb = self.hrtb(get_arr(v, "generic_params")?)?;
                    let ty = self.ty(get(v, "type")?)?;
                    format!("{hrtb}{ty}: {}", self.bounds(get_arr(v, "bounds")?)?)
                }
                "lifetime_predicate" => {
                    let outlives: Vec<&str> = get_arr(v, "outlives")?
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    format!("{}: {}", get_str(v, "lifetime")?, outlives.join(" + "))
                }
                "eq_predicate" => {
                    format!(
                        "{} = {}",
                        self.ty(get(v, "lhs")?)?,
                        self.term(get(v, "rhs")?)?
                    )
                }
                other => return Err(format!("rustdoc JSON: unknown where predicate `{other}`")),
            });
        }
        Ok(if parts.is_empty() {
            String::new()
        } else {
            format!(" where {}", parts.join(", "))
        })
    }

    /// ` -> T` for a signature's output, or nothing for `()`.
    fn output(&self, sig: &Value) -> Res<String> {
        match sig.get("output") {
            Some(o) if !o.is_null() => Ok(format!(" -> {}", self.ty(o)?)),
            _ => Ok(String::new()),
        }
    }

    /// A function's signature after its name: `<G>(&self, a: A) -> R where …`.
    pub(crate) fn signature(&self, function: &Value) -> Res<String> {
        let generics = get(function, "generics")?;
        let sig = get(function, "sig")?;
        let mut inputs = Vec::new();
        for input in get_arr(sig, "inputs")? {
            let name = input.get(0).and_then(Value::as_str).unwrap_or("_");
            let ty = input.get(1).unwrap_or(&Value::Null);
            inputs.push(if name == "self" {
                self.self_param(ty)?
            } else {
                format!("{name}: {}", self.ty(ty)?)
            });
        }
        Ok(format!(
            "{}({}){}{}",
            self.params(get_arr(generics, "params")?)?,
            inputs.join(", "),
            self.output(sig)?,
            self.where_clause(generics)?
        ))
    }

    /// `self`, `&self`, `&mut self`, `&'a self`, or `self: T`.
    fn self_param(&self, ty: &Value) -> Res<String> {
        let ty = self.ty(ty)?;
        Ok(match ty.as_str() {
            "Self" => "self".to_string(),
            _ => match ty.strip_suffix("Self") {
                Some(prefix)
                    if prefix == "&" || (prefix.starts_with('&') && prefix.ends_with(' ')) =>
                {
                    format!("{prefix}self")
                }
                _ => format!("self: {ty}"),
            },
        })
    }
}

/// `word` when `flag` holds, else nothing.
pub(crate) fn when(flag: bool, word: &str) -> &str {
    if flag {
        word
    } else {
        ""
    }
}

/// A function header: `const async unsafe extern "C" `, each part only when it applies.
pub(crate) fn header(h: &Value) -> Res<String> {
    let mut s = String::new();
    for (key, word) in [
        ("is_const", "const "),
        ("is_async", "async "),
        ("is_unsafe", "unsafe "),
    ] {
        if get_bool(h, key) {
            s.push_str(word);
        }
    }
    let (abi, _) = tagged(get(h, "abi")?)?;
    if abi != "Rust" {
        s.push_str(&format!("extern {abi:?} "));
    }
    Ok(s)
}
