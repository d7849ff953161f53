//! Authentication and permissions as axum layers.
//!
//! - [`authenticated`] puts a group of routes behind authentication: every request gets a [`Principal`] in its
//!   extensions (from its bearer key, or the anonymous admin with `--no-auth`), and the group's refusal shape
//!   ([`Refusals`]: the AD API answers refusals as envelopes).
//! - [`require`] declares the [`Permission`] of a route where it is registered:
//!   `.routes(require(StartPlans, routes!(start_get, start_post)))`. Methods of one path that need different
//!   permissions are registered separately (utoipa-axum merges them into one path). The permission is also
//!   written into the OpenAPI operation as `x-permission`.
//! - A handler that needs the principal takes it as an extractor (`principal: Principal`).
//!
//! The layers find the application state in the request extensions (`routes::router` adds it), so route
//! groups can be built without it (the OpenAPI document is generated from the same routers).

use crate::auth::{self, Permission, Principal};
use crate::http::error::{ApiError, ErrorShape};
use crate::AppState;
use axum::extract::{FromRequestParts, OriginalUri, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

/// The OpenAPI extension that names an operation's permission.
pub const PERMISSION_EXTENSION: &str = "x-permission";

/// How a group of routes answers refusals (401, 403).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusals {
    /// `{"Error": {...}}`.
    Plain,
    /// The AD API's envelope (`AppState::ad_errors`).
    AdApi,
}

/// Every route of `router` behind authentication, refusing in the `refusals` shape. Apply it after the last
/// route of the group.
pub fn authenticated<S>(router: OpenApiRouter<S>, refusals: Refusals) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(middleware::from_fn(move |req: Request, next: Next| {
        authenticate(refusals, req, next)
    }))
}

async fn authenticate(refusals: Refusals, mut req: Request, next: Next) -> Response {
    // Fail closed: without the state there are no keys to check.
    let Some(state) = req.extensions().get::<Arc<AppState>>().cloned() else {
        return ErrorShape::Plain.respond(no_state(), "");
    };
    let shape = match refusals {
        Refusals::Plain => ErrorShape::Plain,
        Refusals::AdApi => state.ad_errors.clone(),
    };
    let principal = if state.no_auth {
        Ok(Principal::anonymous())
    } else {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let now = state.clock.now();
        auth::authenticate(header, state.keys.as_ref(), now).map(|(p, rec)| {
            touch(&state, rec, now);
            p
        })
    };
    match principal {
        Ok(p) => {
            let name = p.name.clone();
            req.extensions_mut().insert(p);
            req.extensions_mut().insert(shape);
            let mut resp = next.run(req).await;
            // For the request log (`routes::record_metrics`): who called, never a secret.
            resp.extensions_mut().insert(Caller(name));
            resp
        }
        Err(e) => {
            metrics::counter!("synapse_auth_failures_total", "reason" => e.reason()).increment(1);
            let mut resp = shape.respond(e.into(), "");
            resp.extensions_mut().insert(Caller(String::new()));
            resp
        }
    }
}

/// The name of the key (or `anonymous`) a request was authenticated as, in its response's extensions (empty:
/// authentication failed).
#[derive(Clone, Debug)]
pub struct Caller(pub String);

/// How often a key's `LastUsedAt` is written (at most once per this interval per key).
const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Records the key's use when its stored `LastUsedAt` is older than [`LAST_USED_EVERY`], off the request
/// path (a blocking task; a failure is logged, never the request's).
fn touch(
    state: &Arc<AppState>,
    rec: crate::store::TokenRecord,
    now: chrono::DateTime<chrono::Utc>,
) {
    if rec.last_used_at.is_some_and(|t| now - t < LAST_USED_EVERY) {
        return;
    }
    let keys = state.keys.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = keys.modify_token(&rec.name, &mut |t| {
            t.last_used_at = Some(t.last_used_at.map_or(now, |old| old.max(now)));
        }) {
            tracing::warn!(key = %rec.name, error = %e, "recording the key's last use failed");
        }
    });
}

/// The routes of `route` (one `routes!(...)`) need `permission`.
pub fn require<S>(
    permission: Permission,
    (schemas, mut paths, route): UtoipaMethodRouter<S>,
) -> UtoipaMethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    for item in paths.paths.values_mut() {
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
            op.extensions
                .get_or_insert_with(Default::default)
                .insert(PERMISSION_EXTENSION.into(), permission.to_string().into());
        }
    }
    let route = route.route_layer(middleware::from_fn(move |req: Request, next: Next| {
        authorize(permission, req, next)
    }));
    (schemas, paths, route)
}

async fn authorize(permission: Permission, req: Request, next: Next) -> Response {
    let shape = req
        .extensions()
        .get::<ErrorShape>()
        .cloned()
        .unwrap_or_default();
    // Fail closed: a route that declares a permission but is not behind authentication refuses.
    let Some(principal) = req.extensions().get::<Principal>() else {
        return shape.respond(no_principal(), "");
    };
    if principal.may(permission) {
        return next.run(req).await;
    }
    // Refused: the message names what was asked.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |u| u.0.path());
    let action = format!("{} {path}", req.method());
    match principal.require(permission, &action) {
        Ok(()) => next.run(req).await,
        Err(e) => shape.respond(e.into(), ""),
    }
}

fn no_principal() -> ApiError {
    ApiError::Internal("the route is not behind authentication".into())
}

fn no_state() -> ApiError {
    ApiError::Internal("the router has no application state".into())
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(no_principal)
    }
}
