//! API keys: `Authorization: Bearer syn_...`. Only a key's SHA-256 is stored (`synapse token create`).
//! Roles: `read` may use GET/HEAD routes except the ones that start plans (`.../start...`); `execute` and
//! `admin` may use every route. `/healthz` and
//! `/metrics` are open. With `--no-auth` (loopback only) every request runs as `anonymous`.

use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Who is calling (put in request extensions by the middleware).
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<String>,
}

pub const ROLES: &[&str] = &["read", "execute", "admin"];

/// The auth middleware for every protected route. AD API routes get their refusals as an envelope.
pub async fn require(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    match check(&state, &req) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let path = req.uri().path();
            if path.starts_with("/ad/") || path.starts_with("/myriad/") {
                state.ad_errors.respond(e, "")
            } else {
                e.into_response()
            }
        }
    }
}

fn check(state: &AppState, req: &Request) -> Result<Caller, ApiError> {
    let caller = if state.no_auth {
        Caller {
            name: "anonymous".into(),
            roles: vec!["admin".into()],
        }
    } else {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized("an API key is required: Authorization: Bearer <key>".into())
            })?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be 'Bearer <key>'".into())
            })?;
        let hash = crate::store::hash_token(key);
        let rec = state
            .keys
            .token_by_hash(&hash)?
            .ok_or_else(|| ApiError::Unauthorized("unknown API key".into()))?;
        Caller {
            name: rec.name,
            roles: rec.roles,
        }
    };
    // Starting a plan is a write even through GET (upstream's `GET /synapse/execute/{plan}/start?...`).
    let path = req.uri().path();
    let starts_plan =
        path.starts_with("/synapse/execute/") && path.split('/').any(|seg| seg == "start");
    let reading = matches!(*req.method(), Method::GET | Method::HEAD) && !starts_plan;
    let allowed = caller
        .roles
        .iter()
        .any(|r| r == "admin" || r == "execute" || (reading && r == "read"));
    if !allowed {
        return Err(ApiError::Forbidden(format!(
            "the key '{}' (roles: {}) may not {} {}",
            caller.name,
            caller.roles.join(","),
            req.method(),
            path
        )));
    }
    Ok(caller)
}
