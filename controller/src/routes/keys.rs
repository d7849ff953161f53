//! `/synapse/keys`: API keys managed while the server runs (KopiCloud's Token module: generate, list own, list
//! all, enable/disable own, enable/disable all, delete).
//!
//! ```text
//! GET    /synapse/keys              every key                                   Admin
//! POST   /synapse/keys              create a key (the secret is in the answer, once)  Admin
//! GET    /synapse/keys/{name}       one key                                     Admin
//! PATCH  /synapse/keys/{name}       enable/disable, description, expiry          Admin
//! DELETE /synapse/keys/{name}       delete                                      Admin
//! GET    /synapse/keys/own          the calling key and the keys it created     OwnKeys (every role)
//! POST   /synapse/keys/own          create a key owned by the caller, with at most the caller's roles
//! PATCH  /synapse/keys/own/{name}   change one of those
//! DELETE /synapse/keys/own/{name}   delete one of those
//! ```
//! Only the SHA-256 of a secret is stored; answers never carry a hash. A disabled or expired key is refused
//! (401) everywhere, these routes included.

use crate::auth::{Permission, Principal, Role};
use crate::body;
use crate::http::access::{authenticated, require, Refusals};
use crate::http::error::ApiError;
use crate::openapi::responses::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, Unauthorized,
};
use crate::openapi::BODY;
use crate::store::{hash_token, new_token, StoreError, TokenRecord};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    use Permission::*;
    let routes = OpenApiRouter::new()
        .routes(require(Admin, routes!(list_keys)))
        .routes(require(Admin, routes!(create_key)))
        .routes(require(OwnKeys, routes!(list_own_keys)))
        .routes(require(OwnKeys, routes!(create_own_key)))
        .routes(require(Admin, routes!(get_key)))
        .routes(require(Admin, routes!(change_key)))
        .routes(require(Admin, routes!(delete_key)))
        .routes(require(OwnKeys, routes!(change_own_key)))
        .routes(require(OwnKeys, routes!(delete_own_key)));
    authenticated(routes, Refusals::Plain)
}

/// The name `/synapse/keys/own` takes; no key may have it.
const OWN: &str = "own";

/// An API key as the API shows it (never its secret or hash).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct KeyInfo {
    pub name: String,
    pub roles: Vec<String>,
    pub enabled: bool,
    /// Whether `ExpiresAt` has passed (the key is refused).
    pub expired: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key last authenticated a request (recorded at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
    /// The key that created it through the API (none: made with the CLI on the store).
    pub owner: Option<String>,
}

impl KeyInfo {
    fn of(t: TokenRecord, now: DateTime<Utc>) -> KeyInfo {
        KeyInfo {
            expired: t.expires_at.is_some_and(|at| at <= now),
            name: t.name,
            roles: t.roles,
            enabled: t.enabled,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            description: t.description,
            owner: t.owner,
        }
    }
}

/// A new key.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NewKey {
    /// 1 to 128 characters, no `/` or control characters, not `own`; unique.
    pub name: String,
    /// `read`, `execute` and/or `admin` (own keys: at most the caller's roles).
    pub roles: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// When the key stops working (RFC 3339). At most one of ExpiresAt and ExpiresInDays.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Days from now until the key stops working (1 to 3650).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A created key: its secret is shown only in this answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedKey {
    /// `syn_` and 64 hex digits: send it as `Authorization: Bearer <Secret>`. Not stored; not shown again.
    pub secret: String,
    pub key: KeyInfo,
}

/// Changes to a key; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct KeyChange {
    /// false: the key is refused until enabled again.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The new description (an empty string removes it).
    #[serde(default)]
    pub description: Option<String>,
    /// The new expiry (RFC 3339), or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// `Some(None)` for an explicit null, `Some(Some(..))` for a value (absent: `None` by `default`).
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(d).map(Some)
}

async fn read_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: Request,
) -> Result<T, ApiError> {
    let map: Map<String, Value> = body::map(req, state.body_limit).await?;
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyExists { .. } => ApiError::Conflict(e.to_string()),
        StoreError::Invalid { .. } => ApiError::BadRequest(e.to_string()),
        e => ApiError::Store(e),
    }
}

fn no_key(name: &str) -> ApiError {
    ApiError::NotFound(format!("no API key named '{name}'"))
}

/// Whether `t` is the caller's own: the calling key itself or a key it created.
fn owns(p: &Principal, t: &TokenRecord) -> bool {
    t.name == p.name || t.owner.as_deref() == Some(p.name.as_str())
}

/// 403: creating a key with a role above the caller's needs the Admin permission.
fn refuse(caller: &Principal, action: &str) -> ApiError {
    match caller.require(Permission::Admin, action) {
        Err(e) => e.into(),
        Ok(()) => ApiError::Internal(format!("refusing '{action}' to an admin")),
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::BadRequest(format!("Name: {why}")));
    if name.trim().is_empty() || name.trim() != name {
        return bad("must not be empty or start or end with blanks");
    }
    if name.chars().count() > 128 {
        return bad("at most 128 characters");
    }
    if name.chars().any(|c| c == '/' || c.is_control()) {
        return bad("no '/' or control characters");
    }
    if name.eq_ignore_ascii_case(OWN) {
        return bad("'own' is reserved (/synapse/keys/own)");
    }
    Ok(())
}

/// Creates the key; `ceiling`: the highest role it may have (own keys).
async fn create(
    state: &AppState,
    caller: &Principal,
    req: Request,
    ceiling: Option<Role>,
) -> Result<Response, ApiError> {
    let new: NewKey = read_body(state, req).await?;
    check_name(&new.name)?;
    let mut roles = Vec::new();
    for r in &new.roles {
        let role = Role::parse(r).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Roles: unknown role '{r}' (roles: {})",
                Role::names()
            ))
        })?;
        if ceiling.is_some_and(|max| role > max) {
            return Err(refuse(
                caller,
                &format!("create a key with the role '{role}'"),
            ));
        }
        if !roles.contains(&role.name().to_string()) {
            roles.push(role.name().to_string());
        }
    }
    if roles.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Roles: at least one of {}",
            Role::names()
        )));
    }
    let now = state.clock.now();
    let expires_at = match (new.expires_at, new.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "ExpiresAt, ExpiresInDays: give at most one".into(),
            ))
        }
        (Some(at), None) if at <= now => {
            return Err(ApiError::BadRequest(
                "ExpiresAt: must be in the future".into(),
            ))
        }
        (Some(at), None) => Some(at),
        (None, Some(d)) if !(1..=3650).contains(&d) => {
            return Err(ApiError::BadRequest("ExpiresInDays: 1 to 3650".into()))
        }
        (None, Some(d)) => Some(now + chrono::TimeDelta::days(i64::from(d))),
        (None, None) => None,
    };
    let secret = new_token().map_err(store_error)?;
    let rec = TokenRecord {
        name: new.name,
        roles,
        created_at: now,
        hash: hash_token(&secret),
        enabled: true,
        expires_at,
        last_used_at: None,
        description: new.description.filter(|d| !d.is_empty()),
        owner: Some(caller.name.clone()),
    };
    state.keys.put_token(&rec).map_err(store_error)?;
    tracing::info!(key = %rec.name, roles = ?rec.roles, by = %caller.name, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            secret,
            key: KeyInfo::of(rec, now),
        }),
    )
        .into_response())
}

/// Applies `change` to the key `name` when `allowed` says the caller may (`own`: through `/own`, where a key
/// may not change its own expiry).
async fn change(
    state: &AppState,
    caller: &Principal,
    name: &str,
    req: Request,
    own: bool,
) -> Result<Json<KeyInfo>, ApiError> {
    let change: KeyChange = read_body(state, req).await?;
    let current = state
        .keys
        .token_by_name(name)
        .map_err(store_error)?
        .filter(|t| !own || owns(caller, t))
        .ok_or_else(|| no_key(name))?;
    if own && current.name == caller.name && change.expires_at.is_some() {
        return Err(refuse(caller, "change its own expiry"));
    }
    let changed = state
        .keys
        .modify_token(&current.name, &mut |t| {
            if let Some(e) = change.enabled {
                t.enabled = e;
            }
            if let Some(d) = &change.description {
                t.description = (!d.is_empty()).then(|| d.clone());
            }
            if let Some(at) = change.expires_at {
                t.expires_at = at;
            }
        })
        .map_err(store_error)?
        .ok_or_else(|| no_key(name))?;
    tracing::info!(key = %changed.name, enabled = changed.enabled, by = %caller.name, "API key changed");
    Ok(Json(KeyInfo::of(changed, state.clock.now())))
}

async fn delete(
    state: &AppState,
    caller: &Principal,
    name: &str,
    allowed: impl Fn(&TokenRecord) -> bool,
) -> Result<StatusCode, ApiError> {
    let found = state
        .keys
        .token_by_name(name)
        .map_err(store_error)?
        .filter(|t| allowed(t))
        .is_some();
    if !found || !state.keys.delete_token(name).map_err(store_error)? {
        return Err(no_key(name));
    }
    tracing::info!(key = %name, by = %caller.name, "API key deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn list(
    state: &AppState,
    keep: impl Fn(&TokenRecord) -> bool,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    let now = state.clock.now();
    Ok(Json(
        state
            .keys
            .list_tokens()
            .map_err(store_error)?
            .into_iter()
            .filter(|t| keep(t))
            .map(|t| KeyInfo::of(t, now))
            .collect(),
    ))
}

/// Every API key
#[utoipa::path(get, path = "/synapse/keys", operation_id = "listKeys", tag = "admin",
    responses(
        (status = 200, description = "Every key, by name (never secrets or hashes).", body = Vec<KeyInfo>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = InternalError),
    ))]
async fn list_keys(State(state): State<Arc<AppState>>) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    list(&state, |_| true)
}

/// Create an API key
///
/// The answer carries the key's secret, once: only its SHA-256 is stored. The calling key becomes its `Owner`.
#[utoipa::path(post, path = "/synapse/keys", operation_id = "createKey", tag = "admin",
    request_body(content = NewKey, description = BODY),
    responses(
        (status = 201, description = "Created; `Secret` is shown only now.", body = CreatedKey),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 500, response = InternalError),
    ))]
async fn create_key(
    State(state): State<Arc<AppState>>,
    caller: Principal,
    req: Request,
) -> Result<Response, ApiError> {
    create(&state, &caller, req, None).await
}

/// One API key
#[utoipa::path(get, path = "/synapse/keys/{name}", operation_id = "getKey", tag = "admin",
    params(("name" = String, Path, description = "The key's name.")),
    responses(
        (status = 200, description = "The key.", body = KeyInfo),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn get_key(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<KeyInfo>, ApiError> {
    let t = state
        .keys
        .token_by_name(&name)
        .map_err(store_error)?
        .ok_or_else(|| no_key(&name))?;
    Ok(Json(KeyInfo::of(t, state.clock.now())))
}

/// Change an API key
///
/// Enable or disable it (a disabled key is refused with 401 until enabled again), change its description or
/// expiry. Takes effect with the next request.
#[utoipa::path(patch, path = "/synapse/keys/{name}", operation_id = "changeKey", tag = "admin",
    params(("name" = String, Path, description = "The key's name.")),
    request_body(content = KeyChange, description = BODY),
    responses(
        (status = 200, description = "The changed key.", body = KeyInfo),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn change_key(
    State(state): State<Arc<AppState>>,
    caller: Principal,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<KeyInfo>, ApiError> {
    change(&state, &caller, &name, req, false).await
}

/// Delete an API key
#[utoipa::path(delete, path = "/synapse/keys/{name}", operation_id = "deleteKey", tag = "admin",
    params(("name" = String, Path, description = "The key's name.")),
    responses(
        (status = 204, description = "Deleted; the key is refused from now on."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn delete_key(
    State(state): State<Arc<AppState>>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, &caller, &name, |_| true).await
}

/// The caller's own keys
///
/// The calling key and the keys it created (`Owner`).
#[utoipa::path(get, path = "/synapse/keys/own", operation_id = "listOwnKeys", tag = "admin",
    responses(
        (status = 200, description = "The caller's keys.", body = Vec<KeyInfo>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = InternalError),
    ))]
async fn list_own_keys(
    State(state): State<Arc<AppState>>,
    caller: Principal,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    list(&state, |t| owns(&caller, t))
}

/// Create an own API key
///
/// A key owned by the caller, with at most the caller's highest role (a `read` key makes `read` keys).
#[utoipa::path(post, path = "/synapse/keys/own", operation_id = "createOwnKey", tag = "admin",
    request_body(content = NewKey, description = BODY),
    responses(
        (status = 201, description = "Created; `Secret` is shown only now.", body = CreatedKey),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 500, response = InternalError),
    ))]
async fn create_own_key(
    State(state): State<Arc<AppState>>,
    caller: Principal,
    req: Request,
) -> Result<Response, ApiError> {
    let Some(ceiling) = caller.roles.iter().copied().max() else {
        return Err(refuse(&caller, "create a key without having a role"));
    };
    create(&state, &caller, req, Some(ceiling)).await
}

/// Change an own API key
///
/// Like `PATCH /synapse/keys/{name}`, for the calling key and the keys it created (others: 404). A key may not
/// change its own `ExpiresAt` (403).
#[utoipa::path(patch, path = "/synapse/keys/own/{name}", operation_id = "changeOwnKey", tag = "admin",
    params(("name" = String, Path, description = "The key's name.")),
    request_body(content = KeyChange, description = BODY),
    responses(
        (status = 200, description = "The changed key.", body = KeyInfo),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn change_own_key(
    State(state): State<Arc<AppState>>,
    caller: Principal,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<KeyInfo>, ApiError> {
    change(&state, &caller, &name, req, true).await
}

/// Delete an own API key
///
/// The calling key itself or one it created (others: 404).
#[utoipa::path(delete, path = "/synapse/keys/own/{name}", operation_id = "deleteOwnKey", tag = "admin",
    params(("name" = String, Path, description = "The key's name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn delete_own_key(
    State(state): State<Arc<AppState>>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let who = caller.clone();
    delete(&state, &caller, &name, move |t| owns(&who, t)).await
}
