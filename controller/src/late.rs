//! Late results from node workers: an action's answer that reached the controller only after its instance
//! had ended here (typically: the controller restarted while the action ran on a node, so the instance was
//! marked interrupted at start-up). The NATS dispatcher hands them over ([`synapse_node::dispatcher::LateSink`]);
//! [`sink`] records each into the stored instance through the store writer, durably, before the node's
//! message is acked.
//!
//! The rule (docs/decisions.md "Late results"):
//!
//! * the action's result is written into the instance's result tree with `Late: true`, `Node` and the node's
//!   status, message and exit data: into the action with the same instance id when the tree has one that no
//!   node answered (it timed out or was cancelled here), else appended to the top-level `Actions` (an
//!   interrupted instance has no tree: one is created, holding only the late results, in arrival order);
//! * the instance's own status, message and end time are left as they were: an interrupted instance stays
//!   Failed (interrupted) even when the late action succeeded, because the rest of the plan never ran;
//! * a result for an action already answered by a node is a duplicate (at-least-once delivery) and ignored;
//! * while the instance still runs here, the result is refused for now and offered again a few seconds
//!   later (the run's final record would overwrite it);
//! * an instance this store does not know (pruned, or another controller's) is logged and dropped.

use crate::runner::Runner;
use crate::store::InstanceRecord;
use std::sync::Arc;
use synapse_engine::{ActionResult, PlanResult};
use synapse_node::messages::LateResult;

/// What [`apply`] did to the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The result is in the tree now (the record must be stored).
    Recorded,
    /// The action was answered by a node already: nothing changed.
    Duplicate,
}

/// The late result as an action result (`Late: true`).
fn late_action(late: &LateResult) -> ActionResult {
    let r = late.outcome.clone().into_result();
    let duration_ms = (late.finished_at - late.started_at)
        .to_std()
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    ActionResult {
        name: late.action_name.clone(),
        instance_id: late.key.action_instance_id,
        handler: late.handler.clone(),
        status: r.status,
        branch_status: r.status,
        message: r.message,
        exit_data: r.exit_data,
        exit_code: r.exit_code,
        attempts: late.key.attempt,
        node: Some(late.node.clone()),
        delivery: Some(late.delivery).filter(|d| *d > 1),
        late: true,
        for_each_index: None,
        started_at: late.started_at,
        finished_at: late.finished_at,
        duration_ms,
        action_group: Vec::new(),
        actions: Vec::new(),
    }
}

fn find_mut(list: &mut [ActionResult], id: u64) -> Option<&mut ActionResult> {
    for a in list {
        if a.instance_id == id {
            return Some(a);
        }
        if let Some(x) = find_mut(&mut a.action_group, id) {
            return Some(x);
        }
        if let Some(x) = find_mut(&mut a.actions, id) {
            return Some(x);
        }
    }
    None
}

/// Writes `late` into a finished instance's record (see the module's rule). The instance's status is never
/// changed.
pub fn apply(record: &mut InstanceRecord, late: &LateResult) -> Applied {
    let action = late_action(late);
    let tree = record.result.get_or_insert_with(|| PlanResult {
        plan_name: late.plan_name.clone(),
        instance_id: record.id,
        status: record.status,
        dry_run: record.dry_run,
        message: record.message.clone().unwrap_or_default(),
        started_at: record.started_at,
        finished_at: record.finished_at.unwrap_or(late.finished_at),
        duration_ms: record
            .finished_at
            .and_then(|f| (f - record.started_at).to_std().ok())
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        actions: Vec::new(),
    });
    match find_mut(&mut tree.actions, late.key.action_instance_id) {
        Some(existing) if existing.node.is_some() => Applied::Duplicate,
        Some(existing) => {
            let children = (
                std::mem::take(&mut existing.action_group),
                std::mem::take(&mut existing.actions),
            );
            let index = existing.for_each_index;
            let branch = existing.branch_status;
            *existing = ActionResult {
                for_each_index: index,
                action_group: children.0,
                actions: children.1,
                // The worst of the subtree as recorded and of the late answer.
                branch_status: branch.worst(action.status),
                ..action
            };
            Applied::Recorded
        }
        None => {
            tree.actions.push(action);
            Applied::Recorded
        }
    }
}

/// The controller's late-result recorder: into the stored instance, durably (flushed) before the node's
/// message is acked.
pub fn sink(runner: Arc<Runner>) -> synapse_node::dispatcher::LateSink {
    Arc::new(move |late: LateResult| {
        let runner = runner.clone();
        Box::pin(async move { record(&runner, late).await })
    })
}

async fn record(runner: &Runner, late: LateResult) -> Result<(), String> {
    let id = late.key.plan_instance_id;
    if runner.is_live(id) {
        return Err(format!("instance {id} still runs here"));
    }
    let mut rec = match runner.instance(id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::warn!(
                instance = %id, node = %late.node, action = %late.action_name,
                "late result for an instance this store does not hold (pruned, or another controller's): dropped"
            );
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    if rec.is_running() {
        return Err(format!("instance {id} is not finished yet"));
    }
    if apply(&mut rec, &late) == Applied::Duplicate {
        tracing::debug!(instance = %id, action = late.key.action_instance_id, "late duplicate ignored");
        return Ok(());
    }
    match runner.store_now(rec).await {
        Ok(true) => {
            metrics::counter!("synapse_node_late_results_total").increment(1);
            tracing::info!(
                instance = %id, node = %late.node, action = %late.action_name,
                "late result recorded into the stored instance (marked Late)"
            );
            Ok(())
        }
        _ => Err(format!(
            "instance {id}: the late result could not be stored"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::INTERRUPTED_MESSAGE;
    use chrono::Utc;
    use synapse_engine::{DispatchOutcome, ExecuteResult, IdempotencyKey, StatusType};
    use uuid::Uuid;

    fn interrupted() -> InstanceRecord {
        let now = chrono::DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        InstanceRecord {
            id: Uuid::now_v7(),
            plan: "Sleepy".into(),
            requester: None,
            requester_kind: None,
            started_at: now,
            finished_at: Some(now),
            status: StatusType::Failed,
            dry_run: false,
            parameters: Default::default(),
            message: Some(INTERRUPTED_MESSAGE.into()),
            result: None,
        }
    }

    fn late(id: Uuid, action: u64, status: StatusType) -> LateResult {
        let now = chrono::DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        LateResult {
            key: IdempotencyKey::new(id, action, 1),
            plan_name: "Sleepy".into(),
            action_name: format!("a{action}"),
            handler: "EmptyHandler".into(),
            node: "n1".into(),
            delivery: 1,
            started_at: now,
            finished_at: now,
            outcome: DispatchOutcome::Done(ExecuteResult::new(status).with_message("done")),
        }
    }

    #[test]
    fn late_results_fill_an_interrupted_instance_without_changing_its_status() {
        let mut rec = interrupted();
        let id = rec.id;
        assert_eq!(
            apply(&mut rec, &late(id, 1, StatusType::Complete)),
            Applied::Recorded
        );
        assert_eq!(
            apply(&mut rec, &late(id, 2, StatusType::Complete)),
            Applied::Recorded
        );
        // Delivered twice (at least once): the first answer stays.
        assert_eq!(
            apply(&mut rec, &late(id, 1, StatusType::Failed)),
            Applied::Duplicate
        );
        assert_eq!(rec.status, StatusType::Failed);
        let tree = rec.result.as_ref().unwrap();
        assert_eq!(tree.status, StatusType::Failed);
        assert_eq!(tree.message, INTERRUPTED_MESSAGE);
        assert_eq!(tree.actions.len(), 2);
        let a = &tree.actions[0];
        assert!(a.late);
        assert_eq!(a.node.as_deref(), Some("n1"));
        assert_eq!(a.status, StatusType::Complete);
        assert_eq!(a.name, "a1");
    }

    #[test]
    fn a_late_answer_fills_an_action_that_timed_out_here() {
        let mut rec = interrupted();
        let id = rec.id;
        apply(&mut rec, &late(id, 7, StatusType::Failed));
        // Make it look like an action the controller itself gave up on (no node).
        let tree = rec.result.as_mut().unwrap();
        tree.actions[0].node = None;
        tree.actions[0].late = false;
        tree.actions[0].message = "timed out".into();
        assert_eq!(
            apply(&mut rec, &late(id, 7, StatusType::Complete)),
            Applied::Recorded
        );
        let a = &rec.result.as_ref().unwrap().actions[0];
        assert!(a.late);
        assert_eq!(a.status, StatusType::Complete);
        assert_eq!(a.branch_status, StatusType::Failed);
        assert_eq!(rec.result.as_ref().unwrap().actions.len(), 1);
    }
}
