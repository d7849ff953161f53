//! Route assembly and the cross-cutting layers: request ids, metrics, the same-origin check
//! (`http::origin`), the body's size and read timeout (`http::edges`), authentication per route group (each
//! route declares its permission with `http::access::require` where it is registered).

/// Documented operations that delegate to one handler with the same extractors: each gets its own
/// `#[utoipa::path]` (so its own operation id, parameters and body); its body is one call.
macro_rules! delegate {
    ($target:ident $args:tt -> $ret:ty { $($(#[$attr:meta])* $name:ident;)* }) => {
        $( delegate!(@one $target $args $ret, $(#[$attr])* $name); )*
    };
    (@one $target:ident ($($arg:ident: $ty:ty),* $(,)?) $ret:ty, $(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        pub(super) async fn $name($($arg: $ty),*) -> $ret {
            $target($($arg),*).await
        }
    };
}

pub mod ad;
pub mod dns;
pub mod docs;
pub mod execute;
pub mod keys;
pub mod nodes;
pub mod ops;
pub mod plans;
pub mod schedules;

use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Extension;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The documented routes, open and protected. Every route is registered through `OpenApiRouter::routes` with
/// `routes!`, which takes the path and methods from the handler's `#[utoipa::path]`: the router serves what
/// the document lists, and nothing else (tests/api.rs probes it).
fn documented() -> (OpenApiRouter<Arc<AppState>>, OpenApiRouter<Arc<AppState>>) {
    let open = OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(ops::routes())
        .merge(docs::routes());
    let protected = OpenApiRouter::new()
        .nest("/synapse/execute", execute::routes())
        .merge(nodes::routes())
        .nest("/ad", ad::routes())
        .nest("/dns", dns::routes())
        .nest("/synapse/schedules", schedules::routes())
        .merge(plans::routes())
        .merge(keys::routes());
    (open, protected)
}

/// The OpenAPI document of [`router`] (without the parts `openapi::finish` adds).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (mut open, protected) = documented();
    // The open routes take no key: an empty requirement list overrides the document's bearerAuth.
    for item in open.get_openapi_mut().paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            op.security = Some(Vec::new());
        }
    }
    open.merge(protected).into_openapi()
}

pub fn router(state: Arc<AppState>) -> Router {
    let (open, protected) = documented();
    let (protected, _) = protected.split_for_parts();
    // `/myriad` serves the `/ad` routes again (upstream's later name). It is nested as a plain axum router:
    // through OpenApiRouter every AD operation would be listed twice, with clashing operation ids. The
    // document's description says that `/myriad/...` answers like `/ad/...`. Each group authenticates and
    // each route declares its permission in the group's module (`http::access`).
    let protected = protected.nest("/myriad", Router::from(ad::routes()));
    let header = axum::http::HeaderName::from_static("x-request-id");
    // The fallbacks answer unknown paths (404) and methods (405); they are not routes.
    Router::new()
        .merge(Router::from(open))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies beyond `BodyLimit` fail to read (413 from body::read).
        .layer(DefaultBodyLimit::max(state.body_limit))
        // A foreign Content-Length is refused and the body's read timeout set before any route reads it.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::edges::body_edges,
        ))
        // Foreign Origin/Host refused before anything else looks at the request.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::origin::same_origin,
        ))
        // For the authentication layers of the route groups (http::access).
        .layer(Extension(state.clone()))
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

/// The `method` label: the methods the API knows, every other one folds into `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Request counts and latencies, and the request log. The labels are bounded whatever clients send: `route`
/// is the matched route's template (`/synapse/execute/{plan}/{id}`, never the raw path; unmatched paths are
/// `other`) and `method` one of the known methods or `other`.
///
/// Every request is logged once, when its response starts (target `synapse::request`, level info; warn for
/// 5xx): method, route template, status, latency, request id, and the key's name (`-` for open routes, empty
/// when authentication failed). Never the path's values, the query, headers or bodies, so never a secret.
async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |m| m.as_str().to_string());
    let method = method_label(req.method());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let code = resp.status().as_u16();
    let key = resp
        .extensions()
        .get::<crate::http::access::Caller>()
        .map_or("-", |c| c.0.as_str());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if code >= 500 {
        tracing::warn!(target: "synapse::request", method, route = %route, status = code, latency_ms,
            request_id = %request_id, key, "request");
    } else {
        tracing::info!(target: "synapse::request", method, route = %route, status = code, latency_ms,
            request_id = %request_id, key, "request");
    }
    let status = code.to_string();
    metrics::counter!("synapse_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("synapse_http_request_seconds", "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    resp
}

#[cfg(test)]
mod tests;
