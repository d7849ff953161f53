//! Shared helpers of the store and writer tests: temp directories and deterministic instance records.

use super::InstanceRecord;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use synapse_engine::{ActionResult, PlanResult, StatusType};
use uuid::Uuid;

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "synapse-store-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    /// A store file in a subdirectory that does not exist yet (open creates it).
    pub(crate) fn file(&self) -> PathBuf {
        self.0.join("data").join("synapse.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// A deterministic v7 id for the instant `at` (the seed fills the random bits).
pub(crate) fn id_at(at: DateTime<Utc>, seed: u32) -> Uuid {
    let mut rand = [0u8; 10];
    rand[..4].copy_from_slice(&seed.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &rand).into_uuid()
}

pub(crate) fn running(plan: &str, at: DateTime<Utc>, seed: u32) -> InstanceRecord {
    InstanceRecord {
        id: id_at(at, seed),
        plan: plan.into(),
        requester: Some("mfox".into()),
        requester_kind: Some(super::RequesterKind::ApiKey),
        started_at: at,
        finished_at: None,
        status: StatusType::Running,
        dry_run: false,
        parameters: BTreeMap::from([
            ("user".to_string(), Value::from("mfox")),
            ("password".to_string(), Value::from(synapse_engine::MASK)),
        ]),
        message: None,
        result: None,
    }
}

fn action(name: &str, at: DateTime<Utc>) -> ActionResult {
    ActionResult {
        name: name.into(),
        instance_id: 1,
        handler: "Synapse.Handlers.Core:EchoHandler".into(),
        status: StatusType::Complete,
        branch_status: StatusType::Complete,
        message: String::new(),
        exit_data: serde_json::json!({"echo": name}),
        exit_code: 0,
        attempts: 1,
        node: None,
        delivery: None,
        late: false,
        for_each_index: None,
        started_at: at,
        finished_at: at,
        duration_ms: 1.5,
        action_group: Vec::new(),
        actions: Vec::new(),
    }
}

pub(crate) fn finished(mut rec: InstanceRecord, status: StatusType) -> InstanceRecord {
    let end = rec.started_at + Duration::seconds(2);
    let mut root = action("root", rec.started_at);
    root.actions = vec![action("child-1", end), action("child-2", end)];
    rec.finished_at = Some(end);
    rec.status = status;
    rec.result = Some(PlanResult {
        plan_name: rec.plan.clone(),
        instance_id: rec.id,
        status,
        dry_run: rec.dry_run,
        message: String::new(),
        started_at: rec.started_at,
        finished_at: end,
        duration_ms: 2000.0,
        actions: vec![root],
    });
    rec
}
