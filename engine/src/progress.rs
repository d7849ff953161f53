//! Progress events: what the executor (and handlers, through [`crate::ActionContext::report`]) tell watchers
//! while a plan runs. The controller turns them into an SSE stream; the CLI can print them.

use crate::status::StatusType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// One progress event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProgressEvent {
    pub plan_instance_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_instance_id: Option<u64>,
    pub action_name: String,
    pub status: StatusType,
    pub message: String,
    pub time: DateTime<Utc>,
}

impl ProgressEvent {
    /// An event stamped `time` (from the run's [`crate::clock::Clock`]).
    pub fn at(
        plan_instance_id: Uuid,
        action_instance_id: Option<u64>,
        action_name: &str,
        status: StatusType,
        message: String,
        time: DateTime<Utc>,
    ) -> Self {
        ProgressEvent {
            plan_instance_id,
            action_instance_id,
            action_name: action_name.to_string(),
            status,
            message,
            time,
        }
    }
}

type Callback = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// Where progress events go. Cheap to clone; the default discards events.
#[derive(Clone, Default)]
pub struct ProgressSink(Option<Callback>);

impl ProgressSink {
    /// A sink that discards everything.
    pub fn none() -> Self {
        ProgressSink(None)
    }

    /// A sink that calls `f` for every event (it must not block).
    pub fn new(f: impl Fn(&ProgressEvent) + Send + Sync + 'static) -> Self {
        ProgressSink(Some(Arc::new(f)))
    }

    pub fn emit(&self, event: ProgressEvent) {
        if let Some(f) = &self.0 {
            f(&event);
        }
    }

    /// Whether anyone listens (lets callers skip building events).
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressSink(active)"
        } else {
            "ProgressSink(none)"
        })
    }
}
