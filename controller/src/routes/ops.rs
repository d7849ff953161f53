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
