//! The query string as a map, with repeated names refused (case-insensitively): `?name=a&Name=b` is a 400,
//! not a silent "last one wins".

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
