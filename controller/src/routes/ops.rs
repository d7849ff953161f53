//! Open routes: `/healthz`, `/metrics` (Prometheus text), `/openapi.json`.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::sync::Arc;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let invalid: Vec<&str> = state
        .catalog
        .entries()
        .filter(|e| e.plan.is_none())
        .map(|e| e.key.as_str())
        .collect();
    axum::Json(json!({
        "Status": "ok",
        "Plans": state.catalog.len(),
        "InvalidPlans": invalid,
        "Running": state.runner.running(),
    }))
    .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

/// The OpenAPI document (docs/api.md is the prose form).
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;
    use serde_json::Value;

    /// Every route of the router (routes/mod.rs, execute.rs, ad.rs, ops.rs) with its methods, as documented.
    /// `/myriad` serves the `/ad` routes again and is described in the document's text, not listed.
    const ROUTES: &[(&str, &[&str])] = &[
        ("/healthz", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
        ("/synapse/execute", &["get"]),
        ("/synapse/execute/{plan}", &["get"]),
        ("/synapse/execute/{plan}/item", &["get"]),
        ("/synapse/execute/{plan}/help", &["get"]),
        ("/synapse/execute/{plan}/start", &["get", "post"]),
        ("/synapse/execute/{plan}/start/async", &["get", "post"]),
        ("/synapse/execute/{plan}/start/sync", &["get", "post"]),
        ("/synapse/execute/{plan}/{id}", &["get", "delete"]),
        ("/synapse/execute/{plan}/{id}/part", &["get", "post"]),
        ("/synapse/execute/{plan}/{id}/events", &["get"]),
        ("/ad/search", &["post"]),
        ("/ad/search/{plan}", &["post"]),
        ("/ad/search/{plan}/help", &["get"]),
        ("/ad/{object}/{identity}", &["get", "post", "put", "delete"]),
        ("/ad/{object}/{a}/{b}", &["get", "post", "put", "delete"]),
        ("/ad/{object}/{identity}/group/{group}", &["post", "delete"]),
        (
            "/ad/{object}/{domain}/{identity}/group/{group}",
            &["post", "delete"],
        ),
        ("/ad/{object}/{identity}/ou/{moveto}", &["put"]),
        ("/ad/{object}/{domain}/{identity}/ou/{moveto}", &["put"]),
    ];

    /// In the order `ROUTES` lists methods.
    const METHODS: &[&str] = &[
        "get", "post", "put", "delete", "patch", "head", "options", "trace",
    ];

    fn doc() -> Value {
        serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON")
    }

    #[test]
    fn openapi_lists_exactly_the_routes_of_the_router() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, methods) in ROUTES {
            let item = paths
                .get(*path)
                .unwrap_or_else(|| panic!("openapi.json lacks {path}"));
            let documented: Vec<&str> = METHODS
                .iter()
                .copied()
                .filter(|m| item.get(*m).is_some())
                .collect();
            assert_eq!(&documented, methods, "methods of {path}");
        }
        for path in paths.keys() {
            assert!(
                ROUTES.iter().any(|(p, _)| p == path),
                "openapi.json documents {path}, which the router does not serve"
            );
        }
        let open = ["/healthz", "/metrics", "/openapi.json"];
        for (path, methods) in ROUTES {
            for m in *methods {
                let security = &paths[*path][*m]["security"];
                if open.contains(path) {
                    assert_eq!(security, &Value::Array(vec![]), "{path} is open");
                } else {
                    assert!(
                        security.is_null(),
                        "{m} {path} uses the global bearer scheme"
                    );
                }
            }
        }
        assert_eq!(doc["security"][0]["bearerAuth"], Value::Array(vec![]));
    }

    #[test]
    fn openapi_refs_resolve_and_key_schemas_exist() {
        fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|x| walk(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let doc = doc();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(refs.len() > 50);
        for r in refs {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
        let schemas = &doc["components"]["schemas"];
        for name in [
            "Error",
            "Problem",
            "AdEnvelope",
            "AdResult",
            "AdStatus",
            "PlanResult",
            "ActionResult",
            "PlanInstanceId",
            "InstanceRecord",
            "InstanceSummary",
            "ParamHelp",
        ] {
            assert!(schemas.get(name).is_some(), "schema {name}");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
    }
}
