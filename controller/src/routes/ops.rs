//! Open routes: `/healthz`, `/metrics` (Prometheus text), `/openapi.json`.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// Always `ok` while the process serves.
#[derive(Serialize, ToSchema)]
pub enum HealthStatus {
    #[serde(rename = "ok")]
    Ok,
}

/// The answer of `/healthz`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    /// Plans in the catalog (valid or not).
    pub plans: usize,
    /// Plans that failed to load or validate (they refuse to run).
    pub invalid_plans: Vec<String>,
    /// Instances running now.
    pub running: usize,
    /// The last load of the plans directory (at start, or its latest live reload): what changed, and the
    /// plans whose current file is refused (`KeptLastGood`: the previous version keeps serving).
    pub plan_reload: crate::reload::ReloadReport,
    /// One line per valid plan whose handlers nothing can run now: with node workers, a handler (and RunOn
    /// labels) no live node serves; in process, a handler not configured here. Such plans still load; their
    /// actions would fail at once.
    pub plan_warnings: Vec<String>,
}

/// Liveness and catalog health
///
/// Open (no API key). Always 200 while the process serves.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops",
    responses((status = 200, description = "Health.", body = Health)))]
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let catalog = state.catalog.snapshot();
    let plan_warnings = state.plan_routes.warnings(&catalog);
    let invalid: Vec<String> = catalog
        .entries()
        .filter(|e| e.plan.is_none())
        .map(|e| e.key.clone())
        .collect();
    axum::Json(Health {
        status: HealthStatus::Ok,
        plans: state.catalog.len(),
        invalid_plans: invalid,
        running: state.runner.running(),
        plan_reload: crate::reload::Reload::last_report(state.catalog.as_ref()),
        plan_warnings,
    })
    .into_response()
}

/// Readiness per handler target
///
/// Open (no API key). Whether each handler's targets answer: each AD domain's pool connects, binds and reads the
/// rootDSE. Checked at start and every 30 s; `LastError` keeps the most recent failure after a recovery. 200 when
/// every target is ready, 503 when one is not (or not checked yet). Liveness is `/healthz`.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "ops",
    responses(
        (status = 200, description = "Every target is ready.", body = crate::readiness::ReadyReport),
        (status = 503, description = "A target is not ready (or not checked yet).", body = crate::readiness::ReadyReport),
    ))]
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let report = state.readiness.report();
    let status = match report.status {
        crate::readiness::ReadyStatus::Ready => StatusCode::OK,
        crate::readiness::ReadyStatus::NotReady => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(report)).into_response()
}

/// Prometheus metrics
///
/// Open. `synapse_http_requests_total{method,route,status}`, `synapse_http_request_seconds{method,route}` (route
/// = the first path segment), `synapse_plan_runs_total{status}`, `synapse_store_batch_records` (instance records
/// per store commit).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format.", body = inline(String), content_type = "text/plain"),
        (status = 404, description = "The metrics recorder could not be installed (plain text `metrics are not enabled`).",
            body = inline(String), content_type = "text/plain"),
    ))]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.readiness.record_pool_gauges();
    match &state.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

/// This document
///
/// Open. Generated from the routes and types (`crate::openapi`); docs/api.md is the prose form. `servers` is
/// this server: its listen address (the request's `Host` when it listens on all addresses).
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)))]
async fn openapi(State(state): State<Arc<AppState>>, headers: axum::http::HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()));
    let url = match host {
        Some(h) if state.listen.ip().is_unspecified() => format!("http://{h}"),
        _ => format!("http://{}", state.listen),
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json_with_server(&url),
    )
        .into_response()
}
