//! What crosses NATS besides the [`synapse_engine::ActionRequest`] itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use synapse_engine::{DispatchOutcome, IdempotencyKey, ProgressEvent};

/// A node's message on the request's reply subject (core NATS; the controller waiting for the action
/// listens there).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "Type", rename_all_fields = "PascalCase")]
pub enum NodeReply {
    /// The handler reported progress (reaches the controller's SSE stream like a local event).
    Progress { event: ProgressEvent },
    /// The attempt ended; `ran_on` is set inside a `Done` outcome.
    Result {
        node: String,
        delivery: u32,
        outcome: DispatchOutcome,
    },
}

/// A node's heartbeat record in the `synapse_nodes` KV bucket (key: the node's name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Descriptor names of the handlers it runs.
    pub handlers: Vec<String>,
    pub version: String,
    pub in_flight: usize,
    pub concurrency: usize,
    /// Stopping: finishes what it holds, takes nothing new.
    #[serde(default)]
    pub draining: bool,
    pub last_seen: DateTime<Utc>,
    /// Its heartbeat period; the controller treats it as lost after `LeaseSeconds` of silence.
    pub lease_seconds: f64,
}

/// An attempt's result that no controller confirmed on the request's reply subject (the controller that sent
/// it restarted, or was cut off from NATS): the node stores it in the `SYNAPSE_LATE` stream instead of
/// dropping it, and the controller records it (into the waiting run, or into the stored instance, marked
/// `Late`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LateResult {
    pub key: IdempotencyKey,
    pub plan_name: String,
    pub action_name: String,
    /// The handler's type string as the plan wrote it.
    pub handler: String,
    pub node: String,
    pub delivery: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: DispatchOutcome,
}
