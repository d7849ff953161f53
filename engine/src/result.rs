//! The result tree of a plan run: serializable (JSON/YAML), one node per executed action (ForEach clones are
//! siblings with a `ForEachIndex`), with status, branch status, message, exit data and timing.

use crate::status::StatusType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The outcome of one executed (or deliberately not executed) action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionResult {
    pub name: String,
    pub instance_id: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handler: String,
    /// The action's own status.
    pub status: StatusType,
    /// The worst status in the action's subtree (itself included).
    pub branch_status: StatusType,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub exit_data: Value,
    #[serde(default)]
    pub exit_code: i32,
    /// Handler attempts (0 when the handler never ran, more than 1 after retries).
    pub attempts: u32,
    /// The node worker that ran the handler (absent when it ran in this process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How many times the request was delivered to a node, shown only when it was redelivered (more than 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<u32>,
    /// The node's answer reached the controller only after the instance had ended (the controller restarted
    /// while the action ran): recorded into the stored instance later, its status left as it was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each_index: Option<usize>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action_group: Vec<ActionResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionResult>,
}

/// The outcome of a plan run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlanResult {
    pub plan_name: String,
    pub instance_id: Uuid,
    /// The worst status of every executed action (Complete when nothing needed to run).
    pub status: StatusType,
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub actions: Vec<ActionResult>,
}

impl PlanResult {
    /// Depth-first search for the first action result with this name.
    pub fn find(&self, name: &str) -> Option<&ActionResult> {
        fn rec<'a>(list: &'a [ActionResult], name: &str) -> Option<&'a ActionResult> {
            list.iter().find_map(|a| {
                if a.name == name {
                    Some(a)
                } else {
                    rec(&a.action_group, name).or_else(|| rec(&a.actions, name))
                }
            })
        }
        rec(&self.actions, name)
    }

    /// Every action result with this name (ForEach clones share a name).
    pub fn find_all(&self, name: &str) -> Vec<&ActionResult> {
        fn rec<'a>(list: &'a [ActionResult], name: &str, out: &mut Vec<&'a ActionResult>) {
            for a in list {
                if a.name == name {
                    out.push(a);
                }
                rec(&a.action_group, name, out);
                rec(&a.actions, name, out);
            }
        }
        let mut out = Vec::new();
        rec(&self.actions, name, &mut out);
        out
    }

    /// Whether the plan succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == StatusType::Complete
    }
}
