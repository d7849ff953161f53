//! Plan instances: who ran which plan, when, with which (masked) inputs, and how it ended, result tree
//! included. [`InstanceStore`] is the seam; the runner writes through the group-commit writer
//! (`crate::writer`) and reads through this trait.

use super::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use synapse_engine::{PlanResult, StatusType};
use uuid::Uuid;

/// The message [`InstanceStore::mark_interrupted`] gives the instances it fails.
pub const INTERRUPTED_MESSAGE: &str =
    "interrupted: the controller stopped while the plan was running";

/// How an instance's requester was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequesterKind {
    /// A bearer API key (the requester is its name).
    ApiKey,
    /// Nobody in particular: `--no-auth`.
    Anonymous,
    /// A schedule (the requester is `schedule:NAME`).
    Schedule,
}

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
    /// Who started it: the API key's name (`anonymous` with `--no-auth`).
    #[serde(default)]
    pub requester: Option<String>,
    /// How the requester was authenticated (absent in records older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_kind: Option<RequesterKind>,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// `Running` while the plan runs. Any non-terminal status (see `StatusType::is_terminal`) counts as
    /// running for [`InstanceStore::mark_interrupted`] and [`InstanceStore::prune`].
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

    /// What every [`InstanceStore`] checks before storing an instance: a UUID v7 id.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.id.get_version_num() != 7 {
            return Err(StoreError::Invalid {
                kind: "instance",
                reason: format!("id {} is not a UUID v7 (time-ordered)", self.id),
            });
        }
        Ok(())
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

/// Persistence of plan instances. See the [module documentation](super) for the calling convention
/// (synchronous, called from async code) and the secrets rule.
pub trait InstanceStore: Send + Sync {
    /// Stores a new instance (at the start of a run, status `Running`).
    /// [`StoreError::AlreadyExists`] if the id is taken; [`StoreError::Invalid`] if it is not a UUID v7.
    fn insert_instance(&self, rec: &InstanceRecord) -> Result<(), StoreError>;

    /// Replaces an instance (at the end of a run, with its terminal status, `finished_at` and result).
    /// Stores it if it was not there.
    fn finish_instance(&self, rec: &InstanceRecord) -> Result<(), StoreError>;

    /// Stores (inserts or replaces) several instances in one transaction, in order: one disk flush for
    /// many records. (The runner's writer batches through [`super::BatchStore`] instead, which can mix
    /// record kinds in one transaction; each instance is written the same way.)
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

    /// Size-based retention: deletes the oldest finished instances until at most `keep` finished ones
    /// remain; running ones are never deleted (nor counted). Returns how many were deleted.
    fn prune_beyond(&self, keep: u64) -> Result<usize, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

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
