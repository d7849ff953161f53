//! Request bodies and query strings: JSON or YAML (the seed documents' bodies use unquoted keys: they are YAML
//! flow maps), size-limited (axum's `DefaultBodyLimit`), with parse errors that give the position.
//!
//! Hostile bodies are refused before and while parsing:
//! - a body with a content type other than JSON or YAML is a 415 ([`check_content_type`]: browsers can send
//!   `text/plain` and form bodies cross-site without asking; they cannot send JSON or YAML types);
//! - nesting deeper than [`MAX_DEPTH`] (and, for YAML, more than [`MAX_YAML_FLOW`] flow collections) is a 400
//!   before any parser sees the text ([`synapse_engine::nesting`]);
//! - text that is clearly JSON never falls back to the (slower) YAML parser;
//! - a key given twice in one mapping (`name`/`Name` too: names are case-insensitive) is a 400, not "last one
//!   wins";
//! - large bodies are parsed on a blocking thread ([`map`], [`dynamic`]), off the async workers.

use crate::http::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::collections::HashSet;
use std::fmt;
use synapse_engine::nesting::{self, NestingError};
use synapse_engine::DynamicParams;

pub use synapse_engine::nesting::{MAX_DEPTH, MAX_YAML_FLOW};

/// The content types a body may have (charset and other parameters allowed); a body without a content type is
/// accepted too.
pub const ACCEPTED_TYPES: &str = "application/json, application/*+json, application/yaml, \
                                  application/x-yaml, text/yaml, text/x-yaml";

/// Bodies larger than this are parsed on a blocking thread.
const INLINE_PARSE: usize = 16 * 1024;

/// Is `value` (a Content-Type header) JSON or YAML?
fn accepted_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/json"
            | "application/yaml"
            | "application/x-yaml"
            | "text/yaml"
            | "text/x-yaml"
    ) || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A non-empty body must come with a JSON or YAML content type (or none): 415 otherwise.
pub fn check_content_type(headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    let mut types = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(first), None) = (types.next(), types.next()) else {
        if headers.contains_key(header::CONTENT_TYPE) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the request has more than one Content-Type; send one of {ACCEPTED_TYPES}"
            )));
        }
        return Ok(());
    };
    let text = first.to_str().unwrap_or("");
    if accepted_type(text) {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "Content-Type '{}' is not accepted for a request body: send one of {ACCEPTED_TYPES} \
         (or no Content-Type)",
        text.escape_debug()
    )))
}

/// For routes that ignore the body: a body announced by the headers (`Content-Length` above 0, or a
/// `Transfer-Encoding`) must still have a JSON or YAML content type (or none), so that a cross-site form or
/// `text/plain` POST runs nothing there either.
pub fn check_unread(headers: &HeaderMap) -> Result<(), ApiError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let announced = length.is_some_and(|n| n > 0)
        || (length.is_none() && headers.contains_key(header::TRANSFER_ENCODING));
    check_content_type(headers, if announced { b"?" } else { b"" })
}

/// Reads the whole body and checks its content type. The size limit is axum's `DefaultBodyLimit` (set on the
/// router from `BodyLimit`); `limit` only names it in the 413.
pub async fn read(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let headers = req.headers().clone();
    let bytes = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            return Err(ApiError::PayloadTooLarge(limit))
        }
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "could not read the request body: {e}"
            )))
        }
    };
    check_content_type(&headers, &bytes)?;
    Ok(bytes)
}

/// Runs a parse inline for small bodies, on a blocking thread for large ones.
async fn off_the_workers<T: Send + 'static>(
    bytes: Bytes,
    f: fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if bytes.len() <= INLINE_PARSE {
        return f(&bytes);
    }
    tokio::task::spawn_blocking(move || f(&bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("the body parser failed: {e}")))?
}

/// Reads the body ([`read`]) and parses it as a mapping ([`parse_map`]).
pub async fn map(req: Request, limit: usize) -> Result<Map<String, Value>, ApiError> {
    off_the_workers(read(req, limit).await?, parse_map).await
}

/// Reads the body ([`read`]) and parses the dynamic parameters of a start ([`dynamic_parameters`]).
pub async fn dynamic(req: Request, limit: usize) -> Result<DynamicParams, ApiError> {
    off_the_workers(read(req, limit).await?, dynamic_parameters).await
}

/// Builds a `serde_json::Value`, refusing a key given twice in one mapping (case-insensitively).
#[derive(Clone, Copy)]
struct Strict;

/// The message of a duplicate key; [`parse`] recognizes it in parser errors.
const DUPLICATE: &str = "is given more than once";

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Number::from_i128(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("the number {v} is out of range")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Number::from_u128(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("the number {v} is out of range")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // Like serde_json::Value: non-finite numbers (YAML .inf, .nan) become null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut seen = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k.to_lowercase()) {
                return Err(de::Error::custom(format!(
                    "key '{}' {DUPLICATE} (keys are case-insensitive): the request is ambiguous",
                    k.escape_debug()
                )));
            }
            let v = map.next_value_seed(self)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Text that is clearly JSON (a mapping whose first key is quoted, or a list) is parsed as JSON only.
fn clearly_json(text: &str) -> bool {
    let t = text.trim_start();
    if t.starts_with('[') {
        return true;
    }
    t.strip_prefix('{')
        .is_some_and(|rest| rest.trim_start().starts_with(['"', '}']))
}

/// The message without serde's trailing " at line L column C" (the position is given separately).
fn without_position(msg: String) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn refused(e: NestingError) -> ApiError {
    ApiError::BadRequest(format!("the body is refused before parsing: {e}"))
}

/// Parses a body as JSON or YAML into a value. Empty bodies are `Null`.
pub fn parse(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    nesting::json_depth(text, MAX_DEPTH).map_err(refused)?;
    let mut json = serde_json::Deserializer::from_str(text);
    let json_err = match Strict
        .deserialize(&mut json)
        .and_then(|v| json.end().map(|()| v))
    {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let json_answer = |e: serde_json::Error| {
        let (line, col) = (e.line(), e.column());
        ApiError::BadRequest(format!(
            "the body is not valid JSON: line {line}, column {col}: {}",
            without_position(e.to_string())
        ))
    };
    if clearly_json(text) || json_err.to_string().contains(DUPLICATE) {
        return Err(json_answer(json_err));
    }
    nesting::yaml_bounds(text, MAX_DEPTH).map_err(refused)?;
    let yaml_err = match serde_yaml::Deserializer::from_str(text).deserialize_any(Strict) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let loc = yaml_err.location();
    let (line, col) = (
        loc.as_ref().map_or(1, |l| l.line()),
        loc.as_ref().map_or(1, |l| l.column()),
    );
    let msg = without_position(yaml_err.to_string());
    if msg.contains(DUPLICATE) {
        return Err(ApiError::BadRequest(format!(
            "the body is not valid YAML: line {line}, column {col}: {msg}"
        )));
    }
    Err(ApiError::BadRequest(format!(
        "the body is neither valid JSON nor YAML: line {line}, column {col}: {msg}"
    )))
}

/// A body that must be a mapping (or empty).
pub fn parse_map(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse(bytes)? {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        other => Err(ApiError::BadRequest(format!(
            "the body must be a mapping of names to values, not {}",
            match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                _ => "a scalar",
            }
        ))),
    }
}

/// Upstream's start body `{"DynamicParameters": {...}}`, or a plain map.
pub fn dynamic_parameters(bytes: &[u8]) -> Result<DynamicParams, ApiError> {
    let map = parse_map(bytes)?;
    let map = match map
        .get("DynamicParameters")
        .or_else(|| map.get("dynamicParameters"))
    {
        Some(Value::Object(inner)) if map.len() == 1 => inner.clone(),
        Some(_) if map.len() == 1 => {
            return Err(ApiError::BadRequest(
                "DynamicParameters must be a mapping".into(),
            ));
        }
        _ => map,
    };
    let mut p = DynamicParams::new();
    for (k, v) in map {
        check_name(&k)?;
        p.insert(k, v);
    }
    Ok(p)
}

/// Parameter names: printable, bounded.
pub fn check_name(k: &str) -> Result<(), ApiError> {
    if k.is_empty() || k.len() > 128 || k.chars().any(|c| c.is_control()) {
        return Err(ApiError::BadRequest(format!(
            "'{}' is not a valid parameter name",
            k.escape_debug()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_yaml_and_the_seeds_unquoted_keys() {
        let v = parse(br#"{"a": 1}"#).unwrap();
        assert_eq!(v["a"], 1);
        let seed = br#"{
  Password: "bi@02LL49_VWQ{b",
  GivenName: "Michael",
  Enabled: true,
  HomeDirectory: "C:\\Temp"
}"#;
        let v = parse(seed).unwrap();
        assert_eq!(v["Password"], "bi@02LL49_VWQ{b");
        assert_eq!(v["Enabled"], true);
        assert_eq!(v["HomeDirectory"], "C:\\Temp");
        let e = parse(b"{\"a\": [1, 2}").unwrap_err().to_string();
        assert!(e.contains("line 1, column"), "{e}");
        assert!(parse_map(b"[1]").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing_naming_the_limit() {
        let n = 100_000;
        let array = format!("{{\"name\":{}{}}}", "[".repeat(n), "]".repeat(n));
        let objects = "{\"a\":".repeat(50_000) + "1" + &"}".repeat(50_000);
        let yaml_flow = format!("name: {}{}", "[".repeat(n), "]".repeat(n));
        let dashes = format!("{}x\n", "- ".repeat(n));
        for body in [&array, &objects, &yaml_flow, &dashes] {
            let e = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(
                e.contains("refused before parsing") && e.contains("limit"),
                "{e}"
            );
        }
        // 64 levels parse, 65 do not.
        let at = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(at.as_bytes()).is_ok());
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(over.as_bytes()).is_err());
        // Brackets inside JSON strings are text.
        let quoted = format!("{{\"a\": \"{}\"}}", "[".repeat(1000));
        assert!(parse(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn clearly_json_text_does_not_fall_back_to_yaml() {
        let e = parse(br#"{"a": 1,}"#).unwrap_err().to_string();
        assert!(e.starts_with("the body is not valid JSON: line 1"), "{e}");
        let e = parse(b"{a: [1}").unwrap_err().to_string();
        assert!(e.contains("neither valid JSON nor YAML"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_ambiguous() {
        for body in [
            r#"{"name":"a","name":"b"}"#,
            r#"{"name":"a","Name":"b"}"#,
            "name: a\nNAME: b\n",
            "{name: a, Name: b}",
            r#"{"x": {"k": 1, "K": 2}}"#,
        ] {
            let e = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("is given more than once"), "{body}: {e}");
            assert!(
                e.contains("'name'")
                    || e.contains("'Name'")
                    || e.contains("'NAME'")
                    || e.contains("'K'"),
                "{body}: {e}"
            );
        }
        assert!(parse(br#"{"a": {"name": 1}, "b": {"name": 2}}"#).is_ok());
    }

    #[test]
    fn content_types() {
        use axum::http::HeaderValue;
        let with = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
            h
        };
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "application/yaml",
            "application/x-yaml",
            "text/yaml",
            "text/x-yaml; charset=UTF-8",
        ] {
            assert!(check_content_type(&with(ok), b"{}").is_ok(), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/html",
            "application/jsonx",
        ] {
            let e = check_content_type(&with(bad), b"{}").unwrap_err();
            assert_eq!(e.status().as_u16(), 415, "{bad}");
            assert!(e.to_string().contains("application/json"), "{e}");
            // An empty body has nothing to refuse.
            assert!(check_content_type(&with(bad), b"").is_ok());
        }
        assert!(check_content_type(&HeaderMap::new(), b"{}").is_ok());
    }

    #[test]
    fn dynamic_parameter_forms() {
        let p = dynamic_parameters(br#"{"DynamicParameters": {"x": "1"}}"#).unwrap();
        assert_eq!(p.get("X"), Some(&Value::String("1".into())));
        let p = dynamic_parameters(b"x: 2\ny: three\n").unwrap();
        assert_eq!(p.len(), 2);
    }
}
