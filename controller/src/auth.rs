//! Who may do what, without HTTP: [`Role`]s (what a key is given), [`Permission`]s (what a route requires),
//! the [`Principal`] a request runs as, and API key authentication (`Authorization: Bearer syn_...`; only a
//! key's SHA-256 is stored, see `synapse token create`).
//!
//! Routes declare the permission they need where they are registered (`http::access::require`); the HTTP
//! layer authenticates each request into a [`Principal`] and refuses what its roles do not permit. With
//! `--no-auth` (loopback only) every request runs as the anonymous admin.

use crate::store::{hash_token, KeyStore, StoreError, TokenRecord};
use chrono::{DateTime, Utc};
use std::fmt;

/// What a key is given. Stored as `read`, `execute`, `admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Looks at plans and instances, and runs AD reads and searches.
    Read,
    /// Everything `Read` may, plus starting and cancelling plans and AD changes.
    Execute,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Read, Role::Execute, Role::Admin];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Execute => "execute",
            Role::Admin => "admin",
        }
    }

    /// A stored name (case-insensitive, surrounding blanks ignored).
    pub fn parse(name: &str) -> Option<Role> {
        let name = name.trim();
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
    }

    /// `read, execute, admin`.
    pub fn names() -> String {
        Role::ALL.map(Role::name).join(", ")
    }

    /// What the role permits.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Read => &[ReadPlans, ReadInstances, RunAdReads, OwnKeys],
            Role::Execute => &[
                ReadPlans,
                ReadInstances,
                RunAdReads,
                StartPlans,
                CancelInstances,
                RunAdWrites,
                OwnKeys,
            ],
            Role::Admin => &Permission::ALL,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a route requires. Every protected route declares exactly one per method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// List plans, read a plan's definition and parameters (`/synapse/execute`, `.../item`, `.../help`,
    /// `/ad/search/{plan}/help`).
    ReadPlans,
    /// Read instances: lists, records, result parts, progress events.
    ReadInstances,
    /// Start plans through `/synapse/execute/{plan}/start...` (GET or POST).
    StartPlans,
    /// Cancel a running instance.
    CancelInstances,
    /// AD API reads: `GET /ad/...`, `POST /ad/search`, `POST /ad/search/{plan}` (search plans only).
    RunAdReads,
    /// AD API changes: `POST`/`PUT`/`DELETE /ad/...`.
    RunAdWrites,
    /// Manage the calling key's own keys (`/synapse/keys/own`: itself and the keys it created). Every role
    /// has it.
    OwnKeys,
    /// Administration: every key (`/synapse/keys`), plan reload, schedules.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Permission::ReadPlans,
        Permission::ReadInstances,
        Permission::StartPlans,
        Permission::CancelInstances,
        Permission::RunAdReads,
        Permission::RunAdWrites,
        Permission::OwnKeys,
        Permission::Admin,
    ];
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How a principal was established (what its instances record as `RequesterKind`).
pub use crate::store::RequesterKind as PrincipalKind;

/// Who a request runs as: the plan's `PlanStartInfo_RequestUser` and the instance's `Requester`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub kind: PrincipalKind,
    pub roles: Vec<Role>,
}

impl Principal {
    /// With `--no-auth`: `anonymous`, admin.
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".into(),
            kind: PrincipalKind::Anonymous,
            roles: vec![Role::Admin],
        }
    }

    /// The principal of a stored key. A role name this version does not know refuses the key (rather than
    /// guessing what it was meant to allow).
    pub fn of_key(rec: TokenRecord) -> Result<Principal, AuthError> {
        let mut roles = Vec::with_capacity(rec.roles.len());
        for r in &rec.roles {
            match Role::parse(r) {
                Some(role) => roles.push(role),
                None => {
                    return Err(AuthError::UnknownRole {
                        key: rec.name,
                        role: r.clone(),
                    })
                }
            }
        }
        Ok(Principal {
            name: rec.name,
            kind: PrincipalKind::ApiKey,
            roles,
        })
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.roles
            .iter()
            .any(|r| r.permissions().contains(&permission))
    }

    /// `Ok` when the roles permit `permission`; otherwise the refusal, naming `action` (e.g. `POST /ad/search`).
    pub fn require(&self, permission: Permission, action: &str) -> Result<(), AuthError> {
        if self.may(permission) {
            return Ok(());
        }
        Err(AuthError::Forbidden {
            principal: self.name.clone(),
            roles: self
                .roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(","),
            action: action.to_string(),
            permission,
        })
    }
}

/// Why a request was not authenticated or not permitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("an API key is required: Authorization: Bearer <key>")]
    MissingKey,
    #[error("the Authorization header must be 'Bearer <key>'")]
    MalformedHeader,
    #[error("unknown API key")]
    UnknownKey,
    #[error("the API key '{0}' is disabled")]
    DisabledKey(String),
    #[error("the API key '{key}' expired at {at}")]
    ExpiredKey { key: String, at: String },
    /// The stored key has a role this version does not know.
    #[error(
        "the key '{key}' has the unknown role '{role}' (roles are {}); recreate it with `synapse token create`",
        Role::names()
    )]
    UnknownRole { key: String, role: String },
    #[error("the key '{principal}' (roles: {roles}) may not {action}: that needs the {permission} permission")]
    Forbidden {
        principal: String,
        roles: String,
        action: String,
        permission: Permission,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// Whether the caller is not authenticated (as opposed to authenticated but not permitted).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::MissingKey
                | AuthError::MalformedHeader
                | AuthError::UnknownKey
                | AuthError::DisabledKey(_)
                | AuthError::ExpiredKey { .. }
        )
    }

    /// A short label for metrics (`synapse_auth_failures_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingKey => "missing_key",
            AuthError::MalformedHeader => "malformed_header",
            AuthError::UnknownKey => "unknown_key",
            AuthError::DisabledKey(_) => "disabled_key",
            AuthError::ExpiredKey { .. } => "expired_key",
            AuthError::UnknownRole { .. } => "unknown_role",
            AuthError::Forbidden { .. } => "forbidden",
            AuthError::Store(_) => "store",
        }
    }
}

/// The principal of an `Authorization` header value (`None`: no header, or not text) at `now`, with the key's
/// record: disabled keys and keys past their expiry are refused.
pub fn authenticate(
    header: Option<&str>,
    keys: &dyn KeyStore,
    now: DateTime<Utc>,
) -> Result<(Principal, TokenRecord), AuthError> {
    let header = header.ok_or(AuthError::MissingKey)?;
    let key = bearer_key(header).ok_or(AuthError::MalformedHeader)?;
    let rec = keys
        .token_by_hash(&hash_token(key))?
        .ok_or(AuthError::UnknownKey)?;
    if !rec.enabled {
        return Err(AuthError::DisabledKey(rec.name));
    }
    if let Some(at) = rec.expires_at.filter(|at| *at <= now) {
        return Err(AuthError::ExpiredKey {
            key: rec.name,
            at: at.to_rfc3339(),
        });
    }
    Ok((Principal::of_key(rec.clone())?, rec))
}

/// The key of `Bearer <key>`. The scheme is case-insensitive (RFC 7235 section 2.1: `bearer`, `BEARER`, ...)
/// and may be followed by any run of blanks.
fn bearer_key(header: &str) -> Option<&str> {
    let header = header.trim_start();
    let (scheme, rest) = header.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = rest.trim();
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(roles: &[&str]) -> TokenRecord {
        TokenRecord {
            name: "k".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            hash: hash_token("syn_k"),
            ..TokenRecord::default()
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for h in [
            "Bearer syn_k",
            "bearer syn_k",
            "BEARER syn_k",
            "BeArEr  syn_k ",
            "Bearer\tsyn_k",
        ] {
            assert_eq!(bearer_key(h), Some("syn_k"), "{h:?}");
        }
        for h in [
            "Basic syn_k",
            "Bearer",
            "Bearer   ",
            "Bearersyn_k",
            "Token syn_k",
            "",
        ] {
            assert_eq!(bearer_key(h), None, "{h:?}");
        }
    }

    #[test]
    fn roles_grant_what_they_always_did() {
        let read = Principal::of_key(key(&["read"])).unwrap();
        for p in [
            Permission::ReadPlans,
            Permission::ReadInstances,
            Permission::RunAdReads,
        ] {
            assert!(read.may(p), "{p}");
        }
        for p in [
            Permission::StartPlans,
            Permission::CancelInstances,
            Permission::RunAdWrites,
            Permission::Admin,
        ] {
            assert!(!read.may(p), "{p}");
        }
        let exec = Principal::of_key(key(&["execute"])).unwrap();
        assert!(Permission::ALL
            .iter()
            .all(|p| exec.may(*p) == (*p != Permission::Admin)));
        let admin = Principal::of_key(key(&["Admin"])).unwrap();
        assert!(Permission::ALL.iter().all(|p| admin.may(*p)));
        assert!(Permission::ALL
            .iter()
            .all(|p| Principal::anonymous().may(*p)));
        let none = Principal::of_key(key(&[])).unwrap();
        assert!(Permission::ALL.iter().all(|p| !none.may(*p)));
    }

    #[test]
    fn unknown_roles_refuse_the_key_and_refusals_name_the_permission() {
        let e = Principal::of_key(key(&["read", "superuser"])).unwrap_err();
        assert!(matches!(e, AuthError::UnknownRole { .. }));
        assert!(e.to_string().contains("'superuser'"), "{e}");
        let read = Principal::of_key(key(&["read"])).unwrap();
        let e = read
            .require(Permission::StartPlans, "GET /synapse/execute/x/start")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the key 'k' (roles: read) may not GET /synapse/execute/x/start: that needs the StartPlans permission"
        );
        assert_eq!(Role::parse(" EXECUTE "), Some(Role::Execute));
        assert_eq!(Role::names(), "read, execute, admin");
    }
}
