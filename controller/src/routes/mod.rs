//! Route assembly and the cross-cutting layers: request ids, authentication per route group (each route
//! declares its permission with `http::access::require` where it is registered), metrics.

pub mod ad;
pub mod execute;
pub mod ops;

use crate::http::access::authenticated;
use crate::http::error::{ApiError, ErrorShape};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub fn router(state: Arc<AppState>) -> Router {
    // AD API clients get refusals as envelopes too.
    let execute = authenticated(execute::routes(), &state, ErrorShape::Plain);
    let ad = authenticated(ad::routes(), &state, state.ad_errors.clone());
    let protected = Router::new()
        .nest("/synapse/execute", execute)
        .nest("/ad", ad.clone())
        .nest("/myriad", ad);
    let header = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .merge(ops::routes())
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies beyond `BodyLimit` fail to read (413 from body::read).
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // A coarse label (the first path segment): per-identity paths would explode the label space.
    let first = req.uri().path().split('/').nth(1).unwrap_or("");
    let route = match first {
        "ad" | "myriad" | "synapse" | "healthz" | "metrics" | "openapi.json" => first.to_string(),
        _ => "other".to_string(),
    };
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("synapse_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("synapse_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}
