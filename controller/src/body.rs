//! Request bodies and query strings: JSON or YAML (the seed documents' bodies use unquoted keys: they are YAML
//! flow maps), size-limited (axum's `DefaultBodyLimit`), with parse errors that give the position.

use crate::http::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};
use synapse_engine::DynamicParams;

/// Reads the whole body. The size limit is axum's `DefaultBodyLimit` (set on the router from `BodyLimit`);
/// `limit` only names it in the 413.
pub async fn read(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    match Bytes::from_request(req, &()).await {
        Ok(b) => Ok(b),
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            Err(ApiError::PayloadTooLarge(limit))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Parses a body as JSON or YAML into a value. Empty bodies are `Null`.
pub fn parse(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(json_err) => match serde_yaml::from_str::<Value>(text) {
            Ok(v) => Ok(v),
            Err(yaml_err) => {
                let looks_json = text.trim_start().starts_with(['{', '[']) && text.contains('"');
                let (line, col, msg) = if looks_json {
                    (json_err.line(), json_err.column(), json_err.to_string())
                } else {
                    let loc = yaml_err.location();
                    (
                        loc.as_ref().map_or(1, |l| l.line()),
                        loc.as_ref().map_or(1, |l| l.column()),
                        yaml_err.to_string(),
                    )
                };
                let msg = match msg.rfind(" at line ") {
                    Some(i) => msg[..i].to_string(),
                    None => msg,
                };
                Err(ApiError::BadRequest(format!(
                    "the body is neither valid JSON nor YAML: line {line}, column {col}: {msg}"
                )))
            }
        },
    }
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
    fn dynamic_parameter_forms() {
        let p = dynamic_parameters(br#"{"DynamicParameters": {"x": "1"}}"#).unwrap();
        assert_eq!(p.get("X"), Some(&Value::String("1".into())));
        let p = dynamic_parameters(b"x: 2\ny: three\n").unwrap();
        assert_eq!(p.len(), 2);
    }
}
