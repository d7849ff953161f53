//! Checks of the document itself ([`lint`]) and of real responses against it ([`check_value`]). The tests use
//! them (`openapi::tests`, tests/api.rs): the schemas in `schemas`/`ad` describe bodies that other code
//! builds, and these checks keep both sides in step.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What would stop a client generator or a reader: `$ref`s that do not resolve, arrays without `items`,
/// enum values that differ only in letter case, missing or repeated operation ids, and path parameters an
/// operation does not declare.
pub fn lint(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_all(doc, "#", &mut |at, v| {
        let Some(m) = v.as_object() else { return };
        if let Some(Value::String(r)) = m.get("$ref") {
            match r.strip_prefix('#') {
                Some(p) if doc.pointer(p).is_some() => {}
                _ => out.push(format!("{at}: $ref {r} does not resolve")),
            }
        }
        let is_array = match m.get("type") {
            Some(Value::String(t)) => t == "array",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
            _ => false,
        };
        if is_array && !m.contains_key("items") && !at.contains("/example") {
            out.push(format!("{at}: array schema without items"));
        }
        if let Some(Value::Array(values)) = m.get("enum") {
            let mut seen = BTreeSet::new();
            for s in values.iter().filter_map(Value::as_str) {
                if !seen.insert(s.to_lowercase()) {
                    out.push(format!(
                        "{at}: enum value '{s}' repeats another in a different letter case"
                    ));
                }
            }
        }
    });
    let mut ids = BTreeMap::new();
    for (path, method, op) in operations(doc) {
        let shared = doc["paths"][path].get("parameters");
        match op.get("operationId").and_then(Value::as_str) {
            None => out.push(format!("{method} {path}: no operationId")),
            Some(id) => {
                if let Some(other) = ids.insert(id.to_string(), format!("{method} {path}")) {
                    out.push(format!(
                        "{method} {path}: operationId {id} is also used by {other}"
                    ));
                }
            }
        }
        let declared: BTreeSet<&str> = [op.get("parameters"), shared]
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter(|p| p.get("in").and_then(Value::as_str) == Some("path"))
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .collect();
        let in_path: BTreeSet<&str> = path_params(path).collect();
        if declared != in_path {
            out.push(format!(
                "{method} {path}: path parameters {declared:?}, the path has {in_path:?}"
            ));
        }
    }
    out
}

/// The `{name}` segments of a path template.
pub fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The HTTP methods an OpenAPI path item can hold.
pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation: (path, method, operation).
pub fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for m in METHODS {
                if let Some(op) = item.get(*m) {
                    out.push((path.as_str(), *m, op));
                }
            }
        }
    }
    out
}

fn walk_all(v: &Value, at: &str, f: &mut dyn FnMut(&str, &Value)) {
    f(at, v);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                walk_all(x, &format!("{at}/{k}"), f);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk_all(x, &format!("{at}/{i}"), f);
            }
        }
        _ => {}
    }
}

/// Whether `value` has the shape `schema` describes (`$ref`s resolve in `doc`): the places where it does not.
///
/// Stricter than JSON Schema in one way, on purpose: an object property that the schema does not declare is
/// reported unless the schema says `additionalProperties` (a new field on the wire must be documented).
/// Understood: `$ref`, `type`, `enum`, `const`, `properties`, `required`, `additionalProperties`, `items`,
/// `allOf`, `oneOf`/`anyOf` and the formats `date-time` and `uuid`.
pub fn check_value(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(doc, schema, value, "$", true, &mut out);
    out
}

fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| doc.pointer(p))
        {
            Some(next) => s = next,
            None => break,
        }
    }
    s
}

/// The properties `s` declares, through `allOf`, and whether it allows others.
fn declared<'a>(doc: &'a Value, s: &'a Value, names: &mut BTreeSet<&'a str>) -> bool {
    let s = resolve(doc, s);
    let mut open = matches!(s.get("additionalProperties"), Some(v) if v != &Value::Bool(false));
    if let Some(p) = s.get("properties").and_then(Value::as_object) {
        names.extend(p.keys().map(String::as_str));
    }
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        open |= declared(doc, part, names);
    }
    open
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn check(doc: &Value, s: &Value, v: &Value, at: &str, strict: bool, out: &mut Vec<String>) {
    let s = resolve(doc, s);
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let tried: Vec<Vec<String>> = alts
                .iter()
                .map(|a| {
                    let mut errs = Vec::new();
                    check(doc, a, v, at, strict, &mut errs);
                    errs
                })
                .collect();
            if tried.iter().all(|errs| !errs.is_empty()) {
                out.push(format!("{at}: matches none of the {key} alternatives"));
                // The reasons of the closest alternative of the value's own type (not `null`'s, say).
                let closest = alts
                    .iter()
                    .zip(&tried)
                    .filter(|(a, _)| match resolve(doc, a).get("type") {
                        Some(Value::String(t)) => type_matches(t, v),
                        _ => true,
                    })
                    .map(|(_, errs)| errs)
                    .min_by_key(|errs| errs.len());
                out.extend(closest.into_iter().flatten().cloned());
            }
        }
    }
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(doc, part, v, at, false, out);
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(t, v) => {
            out.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
        Some(Value::Array(ts))
            if !ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, v)) =>
        {
            out.push(format!(
                "{at}: {v} is not of type {}",
                Value::Array(ts.clone())
            ));
            return;
        }
        _ => {}
    }
    if let Some(Value::Array(values)) = s.get("enum") {
        if !values.contains(v) {
            out.push(format!(
                "{at}: {v} is not one of {}",
                Value::Array(values.clone())
            ));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            out.push(format!("{at}: {v} is not {c}"));
        }
    }
    if let (Some(Value::String(f)), Value::String(text)) = (s.get("format"), v) {
        let ok = match f.as_str() {
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            _ => true,
        };
        if !ok {
            out.push(format!("{at}: '{text}' is not a {f}"));
        }
    }
    match v {
        Value::Object(m) => {
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = r.as_str().filter(|n| !m.contains_key(*n)) {
                    out.push(format!("{at}: required property {name} is missing"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties");
            let mut names = BTreeSet::new();
            let open = declared(doc, s, &mut names);
            // Only schemas that list properties say which ones exist (a `oneOf` wrapper leaves it to its
            // alternatives).
            let listed = s.get("properties").is_some() || s.get("allOf").is_some();
            for (k, x) in m {
                let here = format!("{at}.{k}");
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    check(doc, p, x, &here, true, out);
                } else if let Some(e) = extra.filter(|e| e.is_object()) {
                    check(doc, e, x, &here, true, out);
                } else if extra == Some(&Value::Bool(false))
                    || (strict && listed && !open && !names.contains(k.as_str()))
                {
                    out.push(format!("{here}: property not in the schema"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    check(doc, item, x, &format!("{at}[{i}]"), true, out);
                }
            }
        }
        _ => {}
    }
}
