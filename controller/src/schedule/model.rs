//! What a schedule is: its definition ([`ScheduleSpec`], what the API and schedule files write), its policies,
//! and the occurrences it records. The stored forms live in `crate::store::schedules`.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What happens to occurrences whose time passed while the controller was down or the schedule paused (an
/// occurrence is missed when it is handled more than [`MISFIRE_THRESHOLD_SECS`] after its time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Misfire {
    /// Every missed occurrence is recorded as skipped (reason `Misfire`); the next one runs on time.
    Skip,
    /// One catch-up run for the newest missed occurrence; the older ones are skipped.
    #[default]
    RunOnce,
    /// Every missed occurrence within `CatchUpWindow` of now runs, oldest first; older ones are skipped.
    CatchUp,
}

/// What happens when an occurrence comes while the previous run of the same schedule still runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Overlap {
    /// The new occurrence is skipped (reason `Overlap`).
    #[default]
    Skip,
    /// The new occurrence waits and runs when the previous run ends; at most one waits (a newer one
    /// replaces it, and the replaced one is skipped).
    BufferOne,
    /// Runs start regardless.
    AllowAll,
    /// The running ones are cancelled and the new occurrence starts.
    CancelOther,
}

/// Where a schedule is defined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Source {
    /// Created through `/synapse/schedules` (editable there).
    #[default]
    Api,
    /// A file of the schedules directory (read-only through the API).
    File,
}

/// Lateness beyond which an occurrence counts as missed (the misfire policy decides what happens).
pub const MISFIRE_THRESHOLD_SECS: i64 = 60;

/// The catch-up window when `Misfire: CatchUp` names none.
pub const DEFAULT_CATCH_UP_WINDOW: &str = "1h";

fn default_zone() -> String {
    "UTC".to_string()
}

fn default_window() -> String {
    DEFAULT_CATCH_UP_WINDOW.to_string()
}

fn yes() -> bool {
    true
}

/// A schedule as the API and schedule files write it (PascalCase keys). Every policy has an explicit default
/// and every view shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleSpec {
    /// Unique (case-insensitive); letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The plan to run (its file name, as `/synapse/execute/{plan}`).
    pub plan: String,
    /// 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or `@hourly`,
    /// `@daily`, `@weekly`, `@monthly`, `@yearly`.
    pub cron: String,
    /// An IANA time zone name (`Europe/Berlin`); default `UTC`.
    #[serde(default = "default_zone")]
    pub time_zone: String,
    /// The plan's dynamic parameters, checked like a start's.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: BTreeMap<String, Value>,
    #[serde(default)]
    pub misfire: Misfire,
    /// How far back `Misfire: CatchUp` runs missed occurrences (`30m`, `1h`, ...; at most 30 days).
    #[serde(default = "default_window")]
    pub catch_up_window: String,
    #[serde(default)]
    pub overlap: Overlap,
    /// False: paused (no occurrence runs; missed ones are handled by `Misfire` on resume).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// No occurrence before this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<DateTime<FixedOffset>>,
    /// No occurrence after this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Pause the schedule after this many consecutive failed runs (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_on_failure: Option<u32>,
}

/// What became of an occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OccurrenceStatus {
    /// Its instance was created (in the same store transaction as this record).
    Fired,
    /// Nothing ran; `Reason` says why.
    Skipped,
}

/// Why an occurrence was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SkipReason {
    /// The previous run still ran (`Overlap: Skip`, or replaced in the `BufferOne` slot).
    Overlap,
    /// Missed while the controller was down, beyond what the misfire policy runs.
    Misfire,
    /// Missed while the schedule was paused, beyond what the misfire policy runs.
    Paused,
    /// The plan does not exist (any more).
    PlanMissing,
    /// The plan has errors or is inactive.
    PlanInvalid,
    /// The schedule's parameters do not fit the plan (any more).
    ParametersInvalid,
    /// `MaxRunningInstances` runs were running.
    Busy,
}

impl SkipReason {
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::Overlap => "Overlap",
            SkipReason::Misfire => "Misfire",
            SkipReason::Paused => "Paused",
            SkipReason::PlanMissing => "PlanMissing",
            SkipReason::PlanInvalid => "PlanInvalid",
            SkipReason::ParametersInvalid => "ParametersInvalid",
            SkipReason::Busy => "Busy",
        }
    }
}

/// What made an occurrence happen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Trigger {
    /// Its cron time came.
    #[default]
    Cron,
    /// A missed occurrence run by the misfire policy.
    CatchUp,
    /// `POST /synapse/schedules/{name}/trigger`.
    Manual,
}

/// One occurrence of a schedule, keyed by (schedule, scheduled instant): recorded once, fired or skipped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct OccurrenceRecord {
    pub schedule: String,
    /// The instant the occurrence was due (for manual triggers: the moment of the trigger).
    pub scheduled_for: DateTime<Utc>,
    pub status: OccurrenceStatus,
    /// The instance it created, when fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<SkipReason>,
    /// More about the reason (the plan's errors, the invalid parameters, the DST shift, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default)]
    pub trigger: Trigger,
    /// When it was handled (the actual start when fired).
    pub recorded_at: DateTime<Utc>,
    /// `RecordedAt - ScheduledFor`, in milliseconds.
    pub lateness_ms: i64,
}
