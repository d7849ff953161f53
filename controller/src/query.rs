//! The query string as a map, with repeated names refused (case-insensitively): `?name=a&Name=b` is a 400,
//! not a silent "last one wins". Flags are looked up case-insensitively ([`flag`]); boolean flags (`dryRun`,
//! `prettyprint`) have one reading on every route ([`parse_bool`]).

use crate::http::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::BTreeMap;

/// The query parameters of a request (names as given; each name at most once).
#[derive(Debug, Default, Clone)]
pub struct UniqueQuery(pub BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for UniqueQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map(|q| q.0)
                .map_err(|e| {
                    ApiError::BadRequest(format!("the query string '{raw}' is malformed: {e}"))
                })?;
        let mut map = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if !seen.insert(k.to_ascii_lowercase()) {
                return Err(ApiError::BadRequest(format!(
                    "query parameter '{k}' is given more than once"
                )));
            }
            map.insert(k, v);
        }
        Ok(UniqueQuery(map))
    }
}

/// A query flag by name, in any letter case (a [`UniqueQuery`] holds each name at most once).
pub fn flag<'a>(q: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A boolean query flag: nothing (`?dryRun`) is true, otherwise the engine's one boolean reader
/// ([`synapse_engine::model::parse_bool`]: true/1/yes, false/0/no, any case); anything else is a 400 naming
/// the flag.
pub fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    if value.is_empty() {
        return Ok(true);
    }
    synapse_engine::model::parse_bool(value).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{name}: '{}' is not true or false",
            value.to_ascii_lowercase()
        ))
    })
}

/// A boolean flag ([`parse_bool`]); false when absent.
pub fn bool_flag(q: &BTreeMap<String, String>, name: &str) -> Result<bool, ApiError> {
    flag(q, name).map_or(Ok(false), |v| parse_bool(name, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_of_booleans() {
        for (v, want) in [
            ("", true),
            ("1", true),
            ("TRUE", true),
            ("true", true),
            ("0", false),
            ("False", false),
        ] {
            assert_eq!(parse_bool("dryRun", v).unwrap(), want, "{v:?}");
        }
        let e = parse_bool("dryRun", "Maybe").unwrap_err().to_string();
        assert_eq!(e, "dryRun: 'maybe' is not true or false");
        let q: BTreeMap<String, String> = [("DRYRUN".to_string(), "1".to_string())].into();
        assert!(bool_flag(&q, "dryRun").unwrap());
        assert!(!bool_flag(&q, "prettyprint").unwrap());
        assert_eq!(flag(&q, "dryrun"), Some("1"));
    }
}
