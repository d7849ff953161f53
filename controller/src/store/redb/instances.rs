//! [`InstanceStore`] on the redb file: the instance records and their two indexes.
//!
//! UUID v7 ids sort by creation time, so a plan's instances are a contiguous, time-ordered key range of
//! `instances_by_plan` (read backwards for newest first), and retention scans only the old end of
//! `instances`. `instances_running` keeps [`InstanceStore::mark_interrupted`] from scanning everything.

use super::{OrDb, RedbStore};
use crate::store::{
    InstanceRecord, InstanceStore, InstanceSummary, Page, StoreError, INTERRUPTED_MESSAGE,
};
use chrono::{DateTime, Utc};
use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde_json::Value;
use synapse_engine::StatusType;
use uuid::Uuid;

const INSTANCES: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("instances");
const INSTANCES_BY_PLAN: TableDefinition<&[u8], ()> = TableDefinition::new("instances_by_plan");
const RUNNING: TableDefinition<&[u8; 16], ()> = TableDefinition::new("instances_running");

/// How far past `older_than` (by the timestamp in the id) [`InstanceStore::prune`] looks, in milliseconds:
/// the id is taken at about the same time as `started_at`, not necessarily before it.
const PRUNE_ID_SLACK_MS: i64 = 60_000;

/// Creates the instance tables (at open).
pub(super) fn create_tables(store: &RedbStore, txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(INSTANCES).db(store)?;
    txn.open_table(INSTANCES_BY_PLAN).db(store)?;
    txn.open_table(RUNNING).db(store)?;
    Ok(())
}

impl RedbStore {
    /// Writes an instance and its index entries inside `txn`.
    pub(super) fn write_instance(
        &self,
        txn: &WriteTransaction,
        rec: &InstanceRecord,
        must_be_new: bool,
    ) -> Result<(), StoreError> {
        rec.check()?;
        let key = *rec.id.as_bytes();
        let json = serde_json::to_vec(rec).map_err(|e| StoreError::Invalid {
            kind: "instance",
            reason: e.to_string(),
        })?;
        let mut instances = txn.open_table(INSTANCES).db(self)?;
        if must_be_new && instances.get(&key).db(self)?.is_some() {
            return Err(StoreError::AlreadyExists {
                kind: "instance",
                key: rec.id.to_string(),
            });
        }
        let old_plan = instances
            .insert(&key, json.as_slice())
            .db(self)?
            .and_then(|old| serde_json::from_slice::<PlanOnly>(old.value()).ok())
            .map(|p| p.plan);
        let mut by_plan = txn.open_table(INSTANCES_BY_PLAN).db(self)?;
        if let Some(old) = old_plan.filter(|old| *old != rec.plan) {
            by_plan.remove(plan_key(&old, rec.id).as_slice()).db(self)?;
        }
        by_plan
            .insert(plan_key(&rec.plan, rec.id).as_slice(), ())
            .db(self)?;
        let mut running = txn.open_table(RUNNING).db(self)?;
        if rec.is_running() && rec.status != StatusType::Scheduled {
            running.insert(&key, ()).db(self)?;
        } else {
            running.remove(&key).db(self)?;
        }
        Ok(())
    }
}

/// Just the plan of a stored instance.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlanOnly {
    plan: String,
}

/// The `instances_by_plan` key: plan name, `0x00`, the 16 id bytes.
fn plan_key(plan: &str, id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(plan.len() + 17);
    k.extend_from_slice(plan.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The largest UUID v7 key whose timestamp is at most `ms` (milliseconds since the Unix epoch).
fn v7_upper_bound(ms: i64) -> [u8; 16] {
    let ms = u64::try_from(ms.clamp(0, 0xFFFF_FFFF_FFFF)).unwrap_or(0);
    let mut k = [0xFFu8; 16];
    k[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    k
}

impl InstanceStore for RedbStore {
    fn insert_instance(&self, rec: &InstanceRecord) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        self.write_instance(&txn, rec, true)?;
        txn.commit().db(self)
    }

    fn finish_instance(&self, rec: &InstanceRecord) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        self.write_instance(&txn, rec, false)?;
        txn.commit().db(self)
    }

    fn put_instances(&self, recs: &[InstanceRecord]) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        for rec in recs {
            self.write_instance(&txn, rec, false)?;
        }
        txn.commit().db(self)
    }

    fn get_instance(&self, id: Uuid) -> Result<Option<InstanceRecord>, StoreError> {
        let txn = self.database()?.begin_read().db(self)?;
        let instances = txn.open_table(INSTANCES).db(self)?;
        let Some(v) = instances.get(id.as_bytes()).db(self)? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| self.corrupt("instances", id, e))
    }

    fn list_instances(&self, plan: &str, page: Page) -> Result<Vec<InstanceSummary>, StoreError> {
        let limit = page.effective_limit();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.database()?.begin_read().db(self)?;
        let by_plan = txn.open_table(INSTANCES_BY_PLAN).db(self)?;
        let instances = txn.open_table(INSTANCES).db(self)?;
        let mut lo = plan.as_bytes().to_vec();
        lo.push(0);
        let hi = match page.before {
            Some(before) => plan_key(plan, before),
            None => {
                let mut hi = plan.as_bytes().to_vec();
                hi.push(1);
                hi
            }
        };
        let mut out = Vec::with_capacity(limit.min(256));
        for entry in by_plan
            .range::<&[u8]>(lo.as_slice()..hi.as_slice())
            .db(self)?
            .rev()
        {
            let (k, _) = entry.db(self)?;
            let k = k.value();
            // A longer key belongs to another plan whose name starts with this one and a NUL.
            let Some(id) = k
                .strip_prefix(lo.as_slice())
                .and_then(|rest| <[u8; 16]>::try_from(rest).ok())
            else {
                continue;
            };
            let Some(v) = instances.get(&id).db(self)? else {
                return Err(self.corrupt(
                    "instances_by_plan",
                    format!("{plan}/{}", Uuid::from_bytes(id)),
                    "the instance it indexes is missing",
                ));
            };
            let summary: InstanceSummary = serde_json::from_slice(v.value())
                .map_err(|e| self.corrupt("instances", Uuid::from_bytes(id), e))?;
            if summary.plan != plan {
                continue; // a stale index entry (the record moved to another plan)
            }
            out.push(summary);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn mark_interrupted(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        let mut count = 0;
        {
            let mut running = txn.open_table(RUNNING).db(self)?;
            let mut instances = txn.open_table(INSTANCES).db(self)?;
            let ids = running
                .iter()
                .db(self)?
                .map(|e| e.map(|(k, _)| *k.value()))
                .collect::<Result<Vec<[u8; 16]>, _>>()
                .db(self)?;
            let finished_at = serde_json::to_value(now).map_err(|e| StoreError::Invalid {
                kind: "time",
                reason: e.to_string(),
            })?;
            for id in ids {
                running.remove(&id).db(self)?;
                let Some(bytes) = instances.get(&id).db(self)?.map(|g| g.value().to_vec()) else {
                    continue;
                };
                let uuid = Uuid::from_bytes(id);
                // Patch the JSON rather than round-trip the typed record, so fields this build does not
                // know survive.
                let mut json: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| self.corrupt("instances", uuid, e))?;
                let Some(obj) = json.as_object_mut() else {
                    return Err(self.corrupt("instances", uuid, "not a JSON object"));
                };
                let status: StatusType =
                    serde_json::from_value(obj.get("Status").cloned().unwrap_or(Value::Null))
                        .map_err(|e| self.corrupt("instances", uuid, e))?;
                // A deferred run waiting for its time was not cut short.
                if status.is_terminal() || status == StatusType::Scheduled {
                    continue;
                }
                obj.insert(
                    "Status".into(),
                    Value::String(StatusType::Failed.name().into()),
                );
                obj.insert("Message".into(), Value::String(INTERRUPTED_MESSAGE.into()));
                obj.insert("FinishedAt".into(), finished_at.clone());
                let patched = serde_json::to_vec(&json).map_err(|e| StoreError::Invalid {
                    kind: "instance",
                    reason: e.to_string(),
                })?;
                instances.insert(&id, patched.as_slice()).db(self)?;
                count += 1;
            }
        }
        txn.commit().db(self)?;
        Ok(count)
    }

    fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let bound = v7_upper_bound(
            older_than
                .timestamp_millis()
                .saturating_add(PRUNE_ID_SLACK_MS),
        );
        let txn = self.database()?.begin_write().db(self)?;
        let mut count = 0;
        {
            let mut instances = txn.open_table(INSTANCES).db(self)?;
            let mut by_plan = txn.open_table(INSTANCES_BY_PLAN).db(self)?;
            let running = txn.open_table(RUNNING).db(self)?;
            let mut doomed: Vec<([u8; 16], String)> = Vec::new();
            for entry in instances.range::<&[u8; 16]>(..=&bound).db(self)? {
                let (k, v) = entry.db(self)?;
                let id = *k.value();
                if running.get(&id).db(self)?.is_some() {
                    continue;
                }
                let s: InstanceSummary = serde_json::from_slice(v.value())
                    .map_err(|e| self.corrupt("instances", Uuid::from_bytes(id), e))?;
                if s.started_at < older_than && s.status.is_terminal() {
                    doomed.push((id, s.plan));
                }
            }
            for (id, plan) in doomed {
                instances.remove(&id).db(self)?;
                by_plan
                    .remove(plan_key(&plan, Uuid::from_bytes(id)).as_slice())
                    .db(self)?;
                count += 1;
            }
        }
        txn.commit().db(self)?;
        Ok(count)
    }

    fn prune_beyond(&self, keep: u64) -> Result<usize, StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        let mut count = 0;
        {
            let mut instances = txn.open_table(INSTANCES).db(self)?;
            let mut by_plan = txn.open_table(INSTANCES_BY_PLAN).db(self)?;
            let running = txn.open_table(RUNNING).db(self)?;
            let finished = instances
                .len()
                .db(self)?
                .saturating_sub(running.len().db(self)?);
            let excess = usize::try_from(finished.saturating_sub(keep)).unwrap_or(usize::MAX);
            if excess == 0 {
                return Ok(0);
            }
            // Ids are UUID v7: ascending order is oldest first.
            let mut doomed: Vec<([u8; 16], String)> = Vec::new();
            for entry in instances.iter().db(self)? {
                if doomed.len() == excess {
                    break;
                }
                let (k, v) = entry.db(self)?;
                let id = *k.value();
                if running.get(&id).db(self)?.is_some() {
                    continue;
                }
                let s: InstanceSummary = serde_json::from_slice(v.value())
                    .map_err(|e| self.corrupt("instances", Uuid::from_bytes(id), e))?;
                if s.status.is_terminal() {
                    doomed.push((id, s.plan));
                }
            }
            for (id, plan) in doomed {
                instances.remove(&id).db(self)?;
                by_plan
                    .remove(plan_key(&plan, Uuid::from_bytes(id)).as_slice())
                    .db(self)?;
                count += 1;
            }
        }
        txn.commit().db(self)?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{finished, id_at, running, t0, TempDir};
    use chrono::Duration;

    #[test]
    fn instance_round_trip() {
        let dir = TempDir::new("round-trip");
        let store = RedbStore::open(&dir.file()).unwrap();
        let rec = running("users/add.yaml", t0(), 1);
        store.insert_instance(&rec).unwrap();
        assert_eq!(store.get_instance(rec.id).unwrap(), Some(rec.clone()));

        let done = finished(rec.clone(), StatusType::Complete);
        store.finish_instance(&done).unwrap();
        let back = store.get_instance(rec.id).unwrap().unwrap();
        assert_eq!(back, done);
        assert_eq!(
            back.result.unwrap().find("child-2").unwrap().exit_data["echo"],
            "child-2"
        );
        assert_eq!(store.get_instance(id_at(t0(), 99)).unwrap(), None);

        let err = store.insert_instance(&rec).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::AlreadyExists {
                    kind: "instance",
                    ..
                }
            ),
            "{err}"
        );
        let mut v4 = rec.clone();
        v4.id = Uuid::from_u128(0x1234_5678_9abc_4def_8000_0000_0000_0001);
        let err = store.insert_instance(&v4).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        // The finished instance is no longer "running".
        assert_eq!(store.mark_interrupted(t0()).unwrap(), 0);
    }

    #[test]
    fn listing_is_per_plan_newest_first_with_cursor_paging() {
        let dir = TempDir::new("listing");
        let store = RedbStore::open(&dir.file()).unwrap();
        let mut expected = Vec::new();
        for i in 0..250u32 {
            let at = t0() + Duration::milliseconds(i64::from(i) * 7);
            let rec = finished(running("a.yaml", at, i), StatusType::Complete);
            store.insert_instance(&rec).unwrap();
            expected.push(rec.id);
            // Neighbours that share a prefix with "a.yaml" must never show up in its listing.
            if i % 5 == 0 {
                store
                    .insert_instance(&running("a.yaml\0b", at, 10_000 + i))
                    .unwrap();
                store
                    .insert_instance(&running("a.yaml2", at, 20_000 + i))
                    .unwrap();
                store
                    .insert_instance(&running("a.yam", at, 30_000 + i))
                    .unwrap();
            }
        }
        expected.reverse(); // newest first

        let mut seen = Vec::new();
        let mut page = Page::first(100);
        let mut sizes = Vec::new();
        loop {
            let items = store.list_instances("a.yaml", page).unwrap();
            sizes.push(items.len());
            let Some(last) = items.last() else { break };
            page = Page::after(last.id, 100);
            assert!(items
                .iter()
                .all(|s| s.plan == "a.yaml" && s.status == StatusType::Complete));
            seen.extend(items.iter().map(|s| s.id));
        }
        assert_eq!(sizes, vec![100, 100, 50, 0]);
        assert_eq!(seen, expected);

        assert_eq!(
            store
                .list_instances("a.yaml", Page::first(5000))
                .unwrap()
                .len(),
            250
        );
        assert!(store
            .list_instances("a.yaml", Page::first(0))
            .unwrap()
            .is_empty());
        assert!(store
            .list_instances("nope.yaml", Page::default())
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .list_instances("a.yaml\0b", Page::default())
                .unwrap()
                .len(),
            50
        );
        assert_eq!(
            store
                .list_instances("a.yam", Page::default())
                .unwrap()
                .len(),
            50
        );
        let oldest = *expected.last().unwrap();
        assert!(store
            .list_instances("a.yaml", Page::after(oldest, 10))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn finish_moves_the_index_when_the_plan_changes() {
        let dir = TempDir::new("move");
        let store = RedbStore::open(&dir.file()).unwrap();
        let rec = running("old.yaml", t0(), 1);
        store.insert_instance(&rec).unwrap();
        let mut moved = finished(rec, StatusType::Failed);
        moved.plan = "new.yaml".into();
        store.finish_instance(&moved).unwrap();
        assert!(store
            .list_instances("old.yaml", Page::default())
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .list_instances("new.yaml", Page::default())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn put_instances_stores_in_order_and_all_or_nothing() {
        let dir = TempDir::new("put-many");
        let store = RedbStore::open(&dir.file()).unwrap();
        let a = running("p.yaml", t0(), 1);
        let b = running("q.yaml", t0() + Duration::seconds(1), 2);
        let a_done = finished(a.clone(), StatusType::Complete);
        store
            .put_instances(&[a.clone(), b.clone(), a_done.clone()])
            .unwrap();
        assert_eq!(store.get_instance(a.id).unwrap(), Some(a_done));
        assert_eq!(store.get_instance(b.id).unwrap(), Some(b.clone()));
        // Only `b` is still running.
        assert_eq!(store.mark_interrupted(t0()).unwrap(), 1);

        let c = running("p.yaml", t0() + Duration::seconds(2), 3);
        let mut v4 = running("p.yaml", t0(), 4);
        v4.id = Uuid::from_u128(0x1234_5678_9abc_4def_8000_0000_0000_0001);
        let err = store.put_instances(&[c.clone(), v4]).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        assert_eq!(store.get_instance(c.id).unwrap(), None);
        store.put_instances(&[]).unwrap();
    }

    #[test]
    fn mark_interrupted_fails_only_running_instances_and_is_idempotent() {
        let dir = TempDir::new("interrupted");
        let store = RedbStore::open(&dir.file()).unwrap();
        let now = t0() + Duration::hours(1);
        let r1 = running("p.yaml", t0(), 1);
        let mut r2 = running("p.yaml", t0() + Duration::seconds(1), 2);
        r2.status = StatusType::Cancelling; // also not terminal
        let r3 = running("q.yaml", t0() + Duration::seconds(2), 3);
        let done = finished(
            running("p.yaml", t0() + Duration::seconds(3), 4),
            StatusType::Complete,
        );
        let mut failed = finished(
            running("p.yaml", t0() + Duration::seconds(4), 5),
            StatusType::Failed,
        );
        failed.message = Some("LDAP said no".into());
        for r in [&r1, &r2, &r3, &done, &failed] {
            store.insert_instance(r).unwrap();
        }

        assert_eq!(store.mark_interrupted(now).unwrap(), 3);
        for r in [&r1, &r2, &r3] {
            let back = store.get_instance(r.id).unwrap().unwrap();
            assert_eq!(back.status, StatusType::Failed);
            assert_eq!(back.message.as_deref(), Some(INTERRUPTED_MESSAGE));
            assert_eq!(back.finished_at, Some(now));
            assert_eq!(back.parameters, r.parameters);
        }
        assert_eq!(store.get_instance(done.id).unwrap().unwrap(), done);
        assert_eq!(store.get_instance(failed.id).unwrap().unwrap(), failed);
        assert_eq!(store.mark_interrupted(now + Duration::hours(1)).unwrap(), 0);
        assert_eq!(
            store.get_instance(r1.id).unwrap().unwrap().finished_at,
            Some(now)
        );
    }

    #[test]
    fn mark_interrupted_keeps_fields_it_does_not_know() {
        let dir = TempDir::new("unknown-fields");
        let store = RedbStore::open(&dir.file()).unwrap();
        let rec = running("p.yaml", t0(), 1);
        let mut json = serde_json::to_value(&rec).unwrap();
        json["FromTheFuture"] = serde_json::json!({"Node": "n2"});
        {
            let txn = store.database().unwrap().begin_write().unwrap();
            {
                let mut t = txn.open_table(INSTANCES).unwrap();
                let bytes = serde_json::to_vec(&json).unwrap();
                t.insert(rec.id.as_bytes(), bytes.as_slice()).unwrap();
                let mut r = txn.open_table(RUNNING).unwrap();
                r.insert(rec.id.as_bytes(), ()).unwrap();
            }
            txn.commit().unwrap();
        }
        assert_eq!(store.get_instance(rec.id).unwrap().unwrap(), rec);
        assert_eq!(store.mark_interrupted(t0()).unwrap(), 1);
        let txn = store.database().unwrap().begin_read().unwrap();
        let t = txn.open_table(INSTANCES).unwrap();
        let raw: Value =
            serde_json::from_slice(t.get(rec.id.as_bytes()).unwrap().unwrap().value()).unwrap();
        assert_eq!(raw["FromTheFuture"]["Node"], "n2");
        assert_eq!(raw["Status"], "Failed");
    }

    #[test]
    fn prune_beyond_keeps_the_newest_finished_and_every_running_instance() {
        let dir = TempDir::new("prune-beyond");
        let store = RedbStore::open(&dir.file()).unwrap();
        let recs: Vec<InstanceRecord> = (0..10u32)
            .map(|i| {
                let r = running("p.yaml", t0() + Duration::seconds(i64::from(i)), i);
                // The oldest two are still running.
                if i < 2 {
                    r
                } else {
                    finished(r, StatusType::Complete)
                }
            })
            .collect();
        for r in &recs {
            store.insert_instance(r).unwrap();
        }
        assert_eq!(store.prune_beyond(100).unwrap(), 0);
        // 8 finished, keep 3: the 5 oldest finished go, the running ones stay.
        assert_eq!(store.prune_beyond(3).unwrap(), 5);
        let left: Vec<Uuid> = store
            .list_instances("p.yaml", Page::default())
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        let expected: Vec<Uuid> = [9usize, 8, 7, 1, 0].iter().map(|&i| recs[i].id).collect();
        assert_eq!(left, expected);
        assert_eq!(store.prune_beyond(3).unwrap(), 0);
        assert_eq!(store.prune_beyond(0).unwrap(), 3);
    }

    #[test]
    fn prune_keeps_running_and_recent_instances() {
        let dir = TempDir::new("prune");
        let store = RedbStore::open(&dir.file()).unwrap();
        let cutoff = t0() + Duration::days(30);
        let old_done = finished(running("p.yaml", t0(), 1), StatusType::Complete);
        let old_failed = finished(
            running("q.yaml", t0() + Duration::days(1), 2),
            StatusType::Failed,
        );
        let old_running = running("p.yaml", t0() + Duration::days(2), 3);
        let recent = finished(
            running("p.yaml", cutoff + Duration::seconds(1), 4),
            StatusType::Complete,
        );
        // Started just before the cutoff, but its id was taken a few milliseconds later.
        let mut edge = finished(running("p.yaml", cutoff, 5), StatusType::Complete);
        edge.started_at = cutoff - Duration::milliseconds(3);
        for r in [&old_done, &old_failed, &old_running, &recent, &edge] {
            store.insert_instance(r).unwrap();
        }

        assert_eq!(store.prune(cutoff).unwrap(), 3);
        assert_eq!(store.get_instance(old_done.id).unwrap(), None);
        assert_eq!(store.get_instance(old_failed.id).unwrap(), None);
        assert_eq!(store.get_instance(edge.id).unwrap(), None);
        assert!(store.get_instance(old_running.id).unwrap().is_some());
        assert!(store.get_instance(recent.id).unwrap().is_some());
        let listed: Vec<Uuid> = store
            .list_instances("p.yaml", Page::default())
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(listed, vec![recent.id, old_running.id]);
        assert!(store
            .list_instances("q.yaml", Page::default())
            .unwrap()
            .is_empty());
        assert_eq!(store.prune(cutoff).unwrap(), 0);

        // Once interrupted (finished), the old running one goes too.
        assert_eq!(store.mark_interrupted(cutoff).unwrap(), 1);
        assert_eq!(store.prune(cutoff).unwrap(), 1);
        assert!(store.get_instance(old_running.id).unwrap().is_none());
    }
}
