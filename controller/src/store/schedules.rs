//! Schedules and their occurrences. [`ScheduleStore`] is the seam; the scheduler (`crate::schedule`) claims
//! due schedules with a lease, and records each occurrence together with the instance it fires in one
//! transaction ([`ScheduleStore::commit_occurrence`]): an occurrence is fired at most once and never lost,
//! whatever moment the process dies at.
//!
//! The lease shape is what lets several controllers share one schedule table later (docs/decisions.md
//! "Schedules: claims with a lease"): a claim names its owner and a deadline; a commit checks that the
//! caller still holds the lease, so a controller that stalled past its deadline cannot fire what another
//! one has claimed since.

use super::{InstanceRecord, RequesterKind, StoreError};
use crate::schedule::model::{OccurrenceRecord, ScheduleSpec, Source};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The scheduler's bookkeeping of one schedule, stored with it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleState {
    /// The next occurrence not handled yet (None: the schedule has ended or never matches).
    #[serde(default)]
    pub next_fire_at: Option<DateTime<Utc>>,
    /// Instances this schedule fired that may still run (overlap, PauseOnFailure).
    #[serde(default)]
    pub running: Vec<Uuid>,
    /// `Overlap: BufferOne`: the occurrence waiting for the running one to end.
    #[serde(default)]
    pub buffered: Option<DateTime<Utc>>,
    /// Failed runs in a row (PauseOnFailure).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Why the schedule is paused, when it is (`paused through the API by X`, `3 consecutive failed runs`).
    #[serde(default)]
    pub paused_reason: Option<String>,
    /// When it was paused (missed occurrences before the resume count as `Paused`, not `Misfire`).
    #[serde(default)]
    pub paused_at: Option<DateTime<Utc>>,
    /// When it was last resumed.
    #[serde(default)]
    pub resumed_at: Option<DateTime<Utc>>,
    /// The last occurrence recorded.
    #[serde(default)]
    pub last: Option<OccurrenceRecord>,
}

/// A schedule as stored: its definition, where it comes from, who made it, and the scheduler's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleRecord {
    pub spec: ScheduleSpec,
    #[serde(default)]
    pub source: Source,
    /// The file it was read from (`Source: File`).
    #[serde(default)]
    pub file: Option<String>,
    /// Who created it (the API key's name; `file` for schedule files).
    #[serde(default)]
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub state: ScheduleState,
    /// A deferred one-shot run (`/start?at=`), not a schedule: fires once at `State.NextFireAt` and is
    /// deleted in the same transaction. Not listed with the schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<Deferred>,
}

/// What a deferred run needs besides its plan and parameters (in the record's spec).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deferred {
    /// The instance id it was answered with (status `Scheduled` until it fires).
    pub instance: Uuid,
    pub requester: String,
    pub requester_kind: RequesterKind,
    #[serde(default)]
    pub dry_run: bool,
}

/// The store key of the deferred run of `instance` (not a valid schedule name, so never a schedule's).
pub fn deferred_key(instance: Uuid) -> String {
    format!("~deferred:{instance}")
}

impl ScheduleRecord {
    /// The store key: the name, lower-case.
    pub fn key(&self) -> String {
        self.spec.name.to_ascii_lowercase()
    }
}

/// One occurrence's transaction: its record, the instance it fires (if any), and the schedule's state after
/// it. All or nothing.
#[derive(Clone, Debug)]
pub struct OccurrenceCommit<'a> {
    pub schedule: &'a ScheduleRecord,
    pub occurrence: Option<&'a OccurrenceRecord>,
    pub instance: Option<&'a InstanceRecord>,
}

/// One schedule's part of a batch: its occurrences, the instances they fire, and its next state.
#[derive(Clone, Debug)]
pub struct ScheduleCommit<'a> {
    pub schedule: &'a ScheduleRecord,
    pub occurrences: &'a [OccurrenceRecord],
    pub instances: &'a [InstanceRecord],
}

/// Persistence of schedules. Synchronous like every store trait (see the [module documentation](super)).
pub trait ScheduleStore: Send + Sync {
    /// Stores a new schedule; [`StoreError::AlreadyExists`] if the name (case-insensitive) is taken.
    fn insert_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError>;

    /// Replaces a schedule's definition and state (or stores it).
    fn put_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError>;

    /// Replaces (or stores) several schedules in one transaction (schedule files at start-up).
    fn put_schedules(&self, recs: &[ScheduleRecord]) -> Result<(), StoreError>;

    fn get_schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError>;

    /// Every schedule, by name.
    fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Deletes a schedule and its occurrences; false when there was none.
    fn delete_schedule(&self, name: &str) -> Result<bool, StoreError>;

    /// Claims up to `limit` enabled schedules whose next occurrence is due at `now`, that no other owner
    /// holds a live lease on, until `lease_until`. Returns them (oldest due first).
    fn claim_due(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Claims one schedule by name (a trigger, a finished run), unless another owner holds a live lease.
    fn claim(
        &self,
        owner: &str,
        name: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ScheduleRecord>, StoreError>;

    /// In one transaction: checks that `owner` holds the schedule's lease at `now` ([`StoreError::LeaseLost`]
    /// otherwise), stores the occurrence (new key, else [`StoreError::AlreadyExists`]), inserts its instance
    /// (new id) and replaces the schedule's state.
    fn commit_occurrence(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        commit: &OccurrenceCommit<'_>,
    ) -> Result<(), StoreError>;

    /// [`ScheduleStore::commit_occurrence`] for many schedules and occurrences in one transaction (one disk
    /// flush for a whole tick's batch), all or nothing; each schedule's lease is given back.
    fn commit_batch(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        commits: &[ScheduleCommit<'_>],
    ) -> Result<(), StoreError>;

    /// Gives a lease back (no-op when `owner` does not hold it).
    fn release(&self, owner: &str, name: &str) -> Result<(), StoreError>;

    /// A schedule's occurrences, newest first: at most `limit`, older than `before` when given.
    fn list_occurrences(
        &self,
        name: &str,
        limit: usize,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<OccurrenceRecord>, StoreError>;

    /// Stores a deferred run and its `Scheduled` instance record in one transaction.
    fn insert_deferred(
        &self,
        rec: &ScheduleRecord,
        instance: &InstanceRecord,
    ) -> Result<(), StoreError>;

    /// Fires a deferred run: in one transaction checks the lease and that the run is still there (else
    /// [`StoreError::LeaseLost`]: it was cancelled), replaces its instance record and deletes the run.
    fn fire_deferred(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        key: &str,
        instance: &InstanceRecord,
    ) -> Result<(), StoreError>;

    /// Cancels a deferred run before it fires: deletes it and stores its instance record (Cancelled) in one
    /// transaction. False when it is not there (fired already).
    fn cancel_deferred(&self, key: &str, instance: &InstanceRecord) -> Result<bool, StoreError>;

    /// The earliest next occurrence of any enabled schedule (the scheduler sleeps until then).
    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}
