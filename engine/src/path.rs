//! Colon paths (`SearchRequests[0]:Parameters[0]:ReplaceWith`): select and patch inside plan values.
//!
//! Semantics follow upstream where they are sane: a missing key is created, an out-of-range index appends.
//! Differences (documented in docs/plan-language.md): a segment may carry several indexes (`a[0][1]`);
//! `b[0]:a` on a missing `b` gives `b: [{a: v}]` (upstream lost the `a`); descending into a scalar is an error
//! instead of a silent overwrite; `Encode` applies to created keys too; a `Replace` replacement is literal.

use crate::model::EncodingType;
use base64::Engine as _;
use regex::{NoExpand, Regex};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// One step of a colon path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A parsed colon path. The empty path addresses the root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ColonPath(pub Vec<Seg>);

/// Errors of parsing or applying a colon path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("invalid path '{path}': {reason}")]
    Syntax { path: String, reason: String },
    #[error("cannot patch '{path}': '{at}' is a {found}, not a {wanted}")]
    NotContainer {
        path: String,
        at: String,
        found: &'static str,
        wanted: &'static str,
    },
}

impl ColonPath {
    /// The root path (patching it replaces the whole value).
    pub fn root() -> Self {
        ColonPath(Vec::new())
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for ColonPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| PathError::Syntax {
            path: s.to_string(),
            reason: reason.to_string(),
        };
        let mut segs = Vec::new();
        if s.trim().is_empty() {
            return Err(err("the path is empty"));
        }
        for part in s.split(':') {
            let part = part.trim();
            if part.is_empty() {
                return Err(err(
                    "empty segment (two ':' in a row, or a leading/trailing ':')",
                ));
            }
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.contains(']') {
                return Err(err("']' without '['"));
            }
            if !key.is_empty() {
                segs.push(Seg::Key(key.to_string()));
            }
            while !rest.is_empty() {
                let Some(body) = rest.strip_prefix('[') else {
                    return Err(err(
                        "text after ']' must start another '[index]' or a new ':' segment",
                    ));
                };
                let Some(end) = body.find(']') else {
                    return Err(err("'[' without ']'"));
                };
                let idx: usize = body[..end]
                    .trim()
                    .parse()
                    .map_err(|_| err("an index must be a non-negative integer"))?;
                segs.push(Seg::Index(idx));
                rest = &body[end + 1..];
            }
        }
        Ok(ColonPath(segs))
    }
}

impl fmt::Display for ColonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(":")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// How a value is written at its target.
#[derive(Clone, Copy, Debug, Default)]
pub struct PatchOptions<'a> {
    /// Replace the matches of this regex inside the existing (scalar) value instead of the whole value.
    pub replace: Option<&'a Regex>,
    pub encode: EncodingType,
}

/// The value at `path`, or `None` when a key is missing or an index is out of range.
pub fn select<'a>(root: &'a Value, path: &ColonPath) -> Option<&'a Value> {
    let mut cur = root;
    for seg in &path.0 {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// The string form of a scalar as it is spliced into text (strings without quotes).
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn encoded(value: Value, encode: EncodingType) -> Value {
    match encode {
        EncodingType::None => value,
        EncodingType::Base64 => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(scalar_text(&value)))
        }
    }
}

/// Writes `value` at `path`, creating missing keys and appending for out-of-range indexes.
pub fn patch(
    root: &mut Value,
    path: &ColonPath,
    value: Value,
    opts: PatchOptions<'_>,
) -> Result<(), PathError> {
    let mut cur = root;
    for (n, seg) in path.0.iter().enumerate() {
        let here = || ColonPath(path.0[..n].to_vec()).to_string();
        cur = match seg {
            Seg::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Map::new());
                }
                match cur {
                    Value::Object(m) => m.entry(k.clone()).or_insert(Value::Null),
                    other => {
                        return Err(PathError::NotContainer {
                            path: path.to_string(),
                            at: here(),
                            found: kind(other),
                            wanted: "mapping",
                        })
                    }
                }
            }
            Seg::Index(i) => {
                if cur.is_null() {
                    *cur = Value::Array(Vec::new());
                }
                match cur {
                    Value::Array(a) => {
                        let at = if *i < a.len() {
                            *i
                        } else {
                            a.push(Value::Null);
                            a.len() - 1
                        };
                        &mut a[at]
                    }
                    other => {
                        return Err(PathError::NotContainer {
                            path: path.to_string(),
                            at: here(),
                            found: kind(other),
                            wanted: "list",
                        })
                    }
                }
            }
        };
    }
    write_leaf(cur, value, opts);
    Ok(())
}

fn write_leaf(slot: &mut Value, value: Value, opts: PatchOptions<'_>) {
    match opts.replace {
        Some(re) if !slot.is_null() && !slot.is_array() && !slot.is_object() => {
            let existing = scalar_text(slot);
            let repl = scalar_text(&encoded(value, opts.encode));
            *slot = Value::String(re.replace_all(&existing, NoExpand(&repl)).into_owned());
        }
        _ => *slot = encoded(value, opts.encode),
    }
}

/// The first list found under `v`, depth first (upstream `ParameterSource` behaviour), or `v` itself if it is one.
pub fn first_list(v: &Value) -> Option<&Vec<Value>> {
    match v {
        Value::Array(a) => Some(a),
        Value::Object(m) => m.values().find_map(first_list),
        _ => None,
    }
}

/// Deep-merges `over` onto `base`: mappings merge key by key, anything else replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn p(s: &str) -> ColonPath {
        s.parse().unwrap()
    }

    #[test]
    fn parses_paths() {
        assert_eq!(
            p("SearchRequests[0]:Parameters[0]:ReplaceWith").0,
            vec![
                Seg::Key("SearchRequests".into()),
                Seg::Index(0),
                Seg::Key("Parameters".into()),
                Seg::Index(0),
                Seg::Key("ReplaceWith".into())
            ]
        );
        assert_eq!(p("a[1][2]").0.len(), 3);
        for bad in [
            "", "a::b", ":a", "a:", "a[", "a[x]", "a[-1]", "a]b", "a[0]b",
        ] {
            assert!(bad.parse::<ColonPath>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn select_missing_is_none() {
        let v = json!({"a": {"b": [1, 2]}});
        assert_eq!(select(&v, &p("a:b[1]")), Some(&json!(2)));
        assert_eq!(select(&v, &p("a:b[5]")), None);
        assert_eq!(select(&v, &p("a:c")), None);
        assert_eq!(select(&v, &p("a:b:c")), None);
    }

    #[test]
    fn patch_creates_and_appends() {
        let mut v = json!({"b": [{"x": 1}]});
        patch(&mut v, &p("a:c"), json!("new"), PatchOptions::default()).unwrap();
        patch(&mut v, &p("b[7]:x"), json!(2), PatchOptions::default()).unwrap();
        patch(&mut v, &p("d[0]:a"), json!("v"), PatchOptions::default()).unwrap();
        assert_eq!(
            v,
            json!({"b": [{"x": 1}, {"x": 2}], "a": {"c": "new"}, "d": [{"a": "v"}]})
        );
    }

    #[test]
    fn patch_into_scalar_is_an_error() {
        let mut v = json!({"a": "text"});
        let e = patch(&mut v, &p("a:b"), json!(1), PatchOptions::default()).unwrap_err();
        assert!(e.to_string().contains("'a' is a string"), "{e}");
        assert_eq!(v, json!({"a": "text"}));
    }

    #[test]
    fn replace_is_literal_and_case_insensitive() {
        let re = Regex::new("(?i)AAA").unwrap();
        let mut v = json!({"Args": "-p1 aaa -p2 aaa"});
        let opts = PatchOptions {
            replace: Some(&re),
            encode: EncodingType::None,
        };
        patch(&mut v, &p("Args"), json!("$1 x"), opts).unwrap();
        assert_eq!(v, json!({"Args": "-p1 $1 x -p2 $1 x"}));
    }

    #[test]
    fn encode_base64_applies_to_new_keys() {
        let mut v = json!({});
        let opts = PatchOptions {
            replace: None,
            encode: EncodingType::Base64,
        };
        patch(&mut v, &p("x"), json!("sss"), opts).unwrap();
        assert_eq!(v, json!({"x": "c3Nz"}));
    }

    fn arb_path() -> impl Strategy<Value = ColonPath> {
        prop::collection::vec(
            prop_oneof![
                "[A-Za-z_][A-Za-z0-9_]{0,6}".prop_map(Seg::Key),
                (0usize..4).prop_map(Seg::Index)
            ],
            1..5,
        )
        .prop_map(ColonPath)
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,5}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Where a patch of `path` into `before` actually lands (indexes past the end become the appended slot).
    fn landing(before: &Value, path: &ColonPath) -> ColonPath {
        let mut cur = Some(before);
        let mut out = Vec::new();
        for seg in &path.0 {
            match seg {
                Seg::Index(i) => {
                    let len = cur.and_then(Value::as_array).map_or(0, Vec::len);
                    let at = if *i < len { *i } else { len };
                    cur = cur.and_then(|c| c.as_array()).and_then(|a| a.get(at));
                    out.push(Seg::Index(at));
                }
                Seg::Key(k) => {
                    cur = cur.and_then(|c| c.get(k));
                    out.push(Seg::Key(k.clone()));
                }
            }
        }
        ColonPath(out)
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(path in arb_path()) {
            let text = path.to_string();
            let back: ColonPath = text.parse().unwrap();
            prop_assert_eq!(back, path);
        }

        #[test]
        fn patched_value_is_selected_and_nothing_else_changes(
            doc in arb_json(), path in arb_path(), val in arb_json(), probe in arb_path()
        ) {
            let mut after = doc.clone();
            match patch(&mut after, &path, val.clone(), PatchOptions::default()) {
                Err(_) => prop_assert_eq!(&after, &doc),
                Ok(()) => {
                    let at = landing(&doc, &path);
                    prop_assert_eq!(select(&after, &at), Some(&val));
                    // A probe that is not on the patched path (nor under it) reads the same as before.
                    let on_path = at.0.iter().zip(probe.0.iter()).all(|(a, b)| a == b);
                    if !on_path {
                        prop_assert_eq!(select(&after, &probe), select(&doc, &probe));
                    }
                }
            }
        }
    }
}
