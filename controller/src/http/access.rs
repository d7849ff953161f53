//! Authentication and permissions as axum layers.
//!
//! - [`authenticated`] puts a group of routes behind authentication: every request gets a [`Principal`] in its
//!   extensions (from its bearer key, or the anonymous admin with `--no-auth`), and the group's
//!   [`ErrorShape`] for refusals (the AD API answers them as envelopes).
//! - [`require`] declares the [`Permission`] a route's methods need, where the route is registered:
//!   `.route("/{plan}/start", require(StartPlans, get(start).post(start)))`. Methods of one path that need
//!   different permissions are declared separately and merged.
//! - A handler that needs the principal takes it as an extractor (`principal: Principal`).

use crate::auth::{self, Permission, Principal};
use crate::http::error::{ApiError, ErrorShape};
use crate::AppState;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;
use std::sync::Arc;

/// A group's authentication: the state (keys, `--no-auth`) and how the group answers refusals.
#[derive(Clone)]
struct Gate {
    state: Arc<AppState>,
    shape: ErrorShape,
}

/// Every route of `router` behind authentication; refusals (401) in `shape`.
pub fn authenticated(
    router: Router<Arc<AppState>>,
    state: &Arc<AppState>,
    shape: ErrorShape,
) -> Router<Arc<AppState>> {
    router.route_layer(middleware::from_fn_with_state(
        Gate {
            state: state.clone(),
            shape,
        },
        authenticate,
    ))
}

async fn authenticate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let principal = if gate.state.no_auth {
        Ok(Principal::anonymous())
    } else {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        auth::authenticate(header, gate.state.keys.as_ref())
    };
    match principal {
        Ok(p) => {
            req.extensions_mut().insert(p);
            req.extensions_mut().insert(gate.shape);
            next.run(req).await
        }
        Err(e) => gate.shape.respond(e.into(), ""),
    }
}

/// `route`'s methods need `permission`. Wrap every method router of a protected group with it.
pub fn require<S>(permission: Permission, route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.route_layer(middleware::from_fn(move |req: Request, next: Next| {
        authorize(permission, req, next)
    }))
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
