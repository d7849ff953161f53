//! Persistence of the controller: plan instances (who ran which plan, when, with which inputs, and how it
//! ended, result tree included) and API tokens.
//!
//! [`Store`] is the seam; [`RedbStore`] is the embedded implementation (one redb file, ACID and crash-safe).
//! The trait is deliberately narrow (whole records in, whole records out, no query language) so that a
//! shared store can back several controllers later.
//!
//! # Synchronous methods, called from async code
//!
//! The methods are plain `fn`s. Handlers call them directly from async code: every write is one small
//! transaction (one record plus its index entries) that commits in about a millisecond. Calls that can touch
//! many records ([`Store::prune`] with a large backlog, [`Store::mark_interrupted`] at start-up) may be run on
//! `tokio::task::spawn_blocking` by callers that care; the store itself never spawns or blocks on async work.
//! Writers are serialized by the store (one write transaction at a time); readers never wait for writers.
//!
//! # Secrets
//!
//! [`InstanceRecord::parameters`] must already be masked by the caller (`DynamicParams::masked()`): the
//! store writes what it is given and never re-masks, so it must never be handed raw secrets. API tokens are
//! stored only as their SHA-256 hash ([`hash_token`]); the secret itself is shown once by whoever called
//! [`new_token`] and is never persisted.
//!
//! # Format
//!
//! Records are JSON (PascalCase keys, like the engine's result tree) so the file is inspectable and the
//! format can evolve: unknown fields are ignored on read, and new optional fields default when absent.

mod redb_store;

pub use redb_store::RedbStore;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use synapse_engine::{PlanResult, StatusType};
use uuid::Uuid;

/// The message [`Store::mark_interrupted`] gives the instances it fails.
pub const INTERRUPTED_MESSAGE: &str =
    "interrupted: the controller stopped while the plan was running";

/// The prefix of every API token [`new_token`] makes.
pub const TOKEN_PREFIX: &str = "syn_";

/// One plan run, as stored.
///
/// Inserted when the run starts (status `Running`, no `finished_at`, no `result`) and replaced when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceRecord {
    /// A UUID v7 (time-ordered): listing order and retention rely on it; the store rejects other versions.
    pub id: Uuid,
    /// The plan's file name (its catalog key).
    pub plan: String,
    #[serde(default)]
    pub requester: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// `Running` while the plan runs. Any non-terminal status (see `StatusType::is_terminal`) counts as
    /// running for [`Store::mark_interrupted`] and [`Store::prune`].
    pub status: StatusType,
    #[serde(default)]
    pub dry_run: bool,
    /// The dynamic parameters, ALREADY masked by the caller (`DynamicParams::masked()`). The store does not
    /// re-mask: never hand it raw secrets.
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub result: Option<PlanResult>,
}

impl InstanceRecord {
    /// Whether the instance is still running (its status is not terminal).
    pub fn is_running(&self) -> bool {
        !self.status.is_terminal()
    }
}

/// An instance without its parameters and result tree: what a listing returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceSummary {
    pub id: Uuid,
    pub plan: String,
    #[serde(default)]
    pub requester: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    pub status: StatusType,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub message: Option<String>,
}

impl From<&InstanceRecord> for InstanceSummary {
    fn from(r: &InstanceRecord) -> Self {
        InstanceSummary {
            id: r.id,
            plan: r.plan.clone(),
            requester: r.requester.clone(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            status: r.status,
            dry_run: r.dry_run,
            message: r.message.clone(),
        }
    }
}

/// One page of a listing, newest first. The cursor is the id of the last instance of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// How many to return at most; clamped to [`Page::MAX_LIMIT`]. Zero returns nothing.
    pub limit: usize,
    /// Only instances older than this one (exclusive); `None` starts at the newest.
    pub before: Option<Uuid>,
}

impl Page {
    /// The largest page a listing returns.
    pub const MAX_LIMIT: usize = 1000;

    /// The newest `limit` instances.
    pub fn first(limit: usize) -> Page {
        Page {
            limit,
            before: None,
        }
    }

    /// The `limit` instances that follow `before` (the last id of the previous page).
    pub fn after(before: Uuid, limit: usize) -> Page {
        Page {
            limit,
            before: Some(before),
        }
    }

    /// The limit, clamped to [`Page::MAX_LIMIT`].
    pub fn effective_limit(&self) -> usize {
        self.limit.min(Page::MAX_LIMIT)
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::first(100)
    }
}

/// An API token, as stored: its name, roles and the SHA-256 of its secret (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenRecord {
    /// Unique.
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Lowercase hex SHA-256 of the secret ([`hash_token`]).
    pub hash: String,
}

/// The errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation around the database failed (creating its directory, ...).
    #[error("the store {}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The database reported an error (the text is redb's).
    #[error("the store {}: {message}", path.display())]
    Database { path: PathBuf, message: String },
    /// Another process (or another handle in this one) has the file open.
    #[error(
        "the store {} is in use by another synapse process (only one controller may open it at a time)",
        path.display()
    )]
    InUse { path: PathBuf },
    /// A stored record could not be read back.
    #[error("the store {}: corrupt record {table}[{key}]: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        table: &'static str,
        key: String,
        reason: String,
    },
    /// An instance with this id, or a token with this name, is already stored.
    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },
    /// The caller handed the store a record it cannot keep (for example an instance id that is not a UUID v7).
    #[error("invalid {kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
    /// The operating system's random number generator failed (no weaker fallback is used).
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Persistence of instances and API tokens. See the module documentation for the calling convention
/// (synchronous, called from async code) and the secrets rule.
pub trait Store: Send + Sync {
    /// Stores a new instance (at the start of a run, status `Running`).
    /// [`StoreError::AlreadyExists`] if the id is taken; [`StoreError::Invalid`] if it is not a UUID v7.
    fn insert_instance(&self, rec: &InstanceRecord) -> Result<(), StoreError>;

    /// Replaces an instance (at the end of a run, with its terminal status, `finished_at` and result).
    /// Stores it if it was not there.
    fn finish_instance(&self, rec: &InstanceRecord) -> Result<(), StoreError>;

    /// Stores (inserts or replaces) several instances in one transaction: the group commit behind the
    /// runner's writer, one disk flush for many records. Records are applied in order.
    fn put_instances(&self, recs: &[InstanceRecord]) -> Result<(), StoreError>;

    fn get_instance(&self, id: Uuid) -> Result<Option<InstanceRecord>, StoreError>;

    /// The instances of one plan, newest first, one page at a time (see [`Page`]).
    fn list_instances(&self, plan: &str, page: Page) -> Result<Vec<InstanceSummary>, StoreError>;

    /// At start-up: every instance still running (left over by a process that died) becomes `Failed` with
    /// [`INTERRUPTED_MESSAGE`] and `finished_at = now`. Returns how many. Idempotent.
    fn mark_interrupted(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Retention: deletes the finished instances started before `older_than`; running ones are never
    /// deleted. Returns how many were deleted.
    fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Stores a token. [`StoreError::AlreadyExists`] if the name (or the hash) is taken.
    fn put_token(&self, rec: &TokenRecord) -> Result<(), StoreError>;

    /// The token whose secret hashes to `hash` ([`hash_token`]).
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, by name.
    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Deletes a token by name; `false` if there was none.
    fn delete_token(&self, name: &str) -> Result<bool, StoreError>;
}

/// The lowercase hex SHA-256 of a token secret (the whole string, prefix included): what the store keeps.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token secret: [`TOKEN_PREFIX`] followed by 64 hex digits (32 bytes, 256 bits, from the
/// operating system's random number generator). Show it once; store only [`hash_token`] of it.
pub fn new_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_token_is_stable_sha256_hex() {
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_token("syn_x"), hash_token("syn_x"));
        assert_ne!(hash_token("syn_x"), hash_token("syn_y"));
    }

    #[test]
    fn new_token_has_prefix_and_256_bits() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        for t in [&a, &b] {
            let hex_part = t.strip_prefix(TOKEN_PREFIX).unwrap();
            assert_eq!(hex_part.len(), 64);
            assert_eq!(hex::decode(hex_part).unwrap().len(), 32);
            assert!(hex_part
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert_eq!(hash_token(t).len(), 64);
        }
    }

    #[test]
    fn page_limit_is_clamped() {
        assert_eq!(Page::first(5000).effective_limit(), Page::MAX_LIMIT);
        assert_eq!(Page::first(7).effective_limit(), 7);
        assert_eq!(Page::default().limit, 100);
    }

    #[test]
    fn records_tolerate_unknown_and_missing_optional_fields() {
        let json = r#"{"Id":"0190c1b2-0000-7000-8000-000000000001","Plan":"p.yaml",
            "StartedAt":"2024-07-01T00:00:00Z","Status":"Complete","FutureField":{"x":1}}"#;
        let rec: InstanceRecord = serde_json::from_str(json).unwrap();
        assert_eq!(rec.plan, "p.yaml");
        assert!(rec.parameters.is_empty() && rec.result.is_none() && !rec.dry_run);
        let sum: InstanceSummary = serde_json::from_str(json).unwrap();
        assert_eq!(sum.status, StatusType::Complete);
    }
}
