//! [`ScheduleStore`] on the redb file: schedules, their due index, leases and occurrences.
//!
//! | table              | key                                         | value                      |
//! |--------------------|---------------------------------------------|----------------------------|
//! | `schedules`        | lower-case name                             | [`ScheduleRecord`] JSON    |
//! | `schedules_due`    | 8-byte due instant (ms, sortable), name     | `()`                       |
//! | `schedule_leases`  | lower-case name                             | `{Owner, Until}` JSON      |
//! | `occurrences`      | lower-case name, `0x00`, 8-byte instant     | [`OccurrenceRecord`] JSON  |
//!
//! `schedules_due` holds the enabled schedules with something due (their next occurrence, or a buffered one),
//! so finding due work and the next wake-up reads the start of one index, whatever the number of schedules.

use super::{OrDb, RedbStore};
use crate::schedule::model::OccurrenceRecord;
use crate::store::schedules::{OccurrenceCommit, ScheduleCommit, ScheduleRecord, ScheduleStore};
use crate::store::{InstanceRecord, StoreError};
use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

const SCHEDULES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");
const DUE: TableDefinition<&[u8], ()> = TableDefinition::new("schedules_due");
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedule_leases");
const OCCURRENCES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("occurrences");

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Lease {
    owner: String,
    until: DateTime<Utc>,
}

/// Creates the tables (at open) and drops every lease: one process at a time opens the file, so a lease
/// found at open belongs to a process that died (its schedules are free again at once, not after the lease).
pub(super) fn create_tables(store: &RedbStore, txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(SCHEDULES).db(store)?;
    txn.open_table(DUE).db(store)?;
    txn.open_table(LEASES)
        .db(store)?
        .retain(|_, _| false)
        .db(store)?;
    txn.open_table(OCCURRENCES).db(store)?;
    Ok(())
}

/// Milliseconds since the epoch as 8 bytes that sort like the instants.
fn instant_bytes(t: DateTime<Utc>) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn bytes_instant(b: [u8; 8]) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// When a record is due: enabled, and its next occurrence or buffered one (the earlier).
fn due_at(rec: &ScheduleRecord) -> Option<DateTime<Utc>> {
    if !rec.spec.enabled {
        return None;
    }
    match (rec.state.next_fire_at, rec.state.buffered) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn due_key(at: DateTime<Utc>, key: &str) -> Vec<u8> {
    let mut k = instant_bytes(at).to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

fn occ_key(key: &str, at: DateTime<Utc>) -> Vec<u8> {
    let mut k = key.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&instant_bytes(at));
    k
}

fn to_json<T: Serialize>(kind: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Invalid {
        kind,
        reason: e.to_string(),
    })
}

impl RedbStore {
    /// Writes a schedule and its due entry inside `txn`.
    fn write_schedule(
        &self,
        txn: &WriteTransaction,
        rec: &ScheduleRecord,
        must_be_new: bool,
    ) -> Result<(), StoreError> {
        let key = rec.key();
        let json = to_json("schedule", rec)?;
        let mut schedules = txn.open_table(SCHEDULES).db(self)?;
        let old = schedules
            .insert(key.as_str(), json.as_slice())
            .db(self)?
            .map(|g| g.value().to_vec());
        if let Some(old) = old {
            if must_be_new {
                return Err(StoreError::AlreadyExists {
                    kind: "schedule",
                    key: rec.spec.name.clone(),
                });
            }
            let old: ScheduleRecord =
                serde_json::from_slice(&old).map_err(|e| self.corrupt("schedules", &key, e))?;
            if let Some(at) = due_at(&old) {
                txn.open_table(DUE)
                    .db(self)?
                    .remove(due_key(at, &key).as_slice())
                    .db(self)?;
            }
        }
        if let Some(at) = due_at(rec) {
            txn.open_table(DUE)
                .db(self)?
                .insert(due_key(at, &key).as_slice(), ())
                .db(self)?;
        }
        Ok(())
    }

    fn read_schedule(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        key: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        match table.get(key).db(self)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| self.corrupt("schedules", key, e)),
        }
    }

    /// Takes the lease on `key` unless another owner holds a live one.
    fn take_lease(
        &self,
        txn: &WriteTransaction,
        owner: &str,
        key: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut leases = txn.open_table(LEASES).db(self)?;
        if let Some(v) = leases.get(key).db(self)? {
            if let Ok(l) = serde_json::from_slice::<Lease>(v.value()) {
                if l.owner != owner && l.until > now {
                    return Ok(false);
                }
            }
        }
        let json = to_json(
            "lease",
            &Lease {
                owner: owner.to_string(),
                until,
            },
        )?;
        leases.insert(key, json.as_slice()).db(self)?;
        Ok(true)
    }
}

impl RedbStore {
    /// Deletes a schedule record, its due entry and its lease inside `txn` (not its occurrences). False when
    /// it is not there.
    fn remove_schedule(&self, txn: &WriteTransaction, key: &str) -> Result<bool, StoreError> {
        let old = txn
            .open_table(SCHEDULES)
            .db(self)?
            .remove(key)
            .db(self)?
            .map(|g| g.value().to_vec());
        let Some(old) = old else { return Ok(false) };
        if let Ok(old) = serde_json::from_slice::<ScheduleRecord>(&old) {
            if let Some(at) = due_at(&old) {
                txn.open_table(DUE)
                    .db(self)?
                    .remove(due_key(at, key).as_slice())
                    .db(self)?;
            }
        }
        txn.open_table(LEASES).db(self)?.remove(key).db(self)?;
        Ok(true)
    }
}

impl ScheduleStore for RedbStore {
    fn insert_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        self.write_schedule(&txn, rec, true)?;
        txn.commit().db(self)
    }

    fn put_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        self.write_schedule(&txn, rec, false)?;
        txn.commit().db(self)
    }

    fn put_schedules(&self, recs: &[ScheduleRecord]) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        for rec in recs {
            self.write_schedule(&txn, rec, false)?;
        }
        txn.commit().db(self)
    }

    fn get_schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let txn = self.database()?.begin_read().db(self)?;
        let t = txn.open_table(SCHEDULES).db(self)?;
        self.read_schedule(&t, &name.to_ascii_lowercase())
    }

    fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let txn = self.database()?.begin_read().db(self)?;
        let t = txn.open_table(SCHEDULES).db(self)?;
        let mut out = Vec::new();
        for e in t.iter().db(self)? {
            let (k, v) = e.db(self)?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|err| self.corrupt("schedules", k.value(), err))?,
            );
        }
        Ok(out)
    }

    fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let key = name.to_ascii_lowercase();
        let txn = self.database()?.begin_write().db(self)?;
        let found = {
            let mut schedules = txn.open_table(SCHEDULES).db(self)?;
            let old = schedules
                .remove(key.as_str())
                .db(self)?
                .map(|g| g.value().to_vec());
            match old {
                None => false,
                Some(old) => {
                    if let Ok(old) = serde_json::from_slice::<ScheduleRecord>(&old) {
                        if let Some(at) = due_at(&old) {
                            txn.open_table(DUE)
                                .db(self)?
                                .remove(due_key(at, &key).as_slice())
                                .db(self)?;
                        }
                    }
                    txn.open_table(LEASES)
                        .db(self)?
                        .remove(key.as_str())
                        .db(self)?;
                    let mut occ = txn.open_table(OCCURRENCES).db(self)?;
                    let mut lo = key.as_bytes().to_vec();
                    lo.push(0);
                    let mut hi = key.as_bytes().to_vec();
                    hi.push(1);
                    occ.retain_in::<&[u8], _>(lo.as_slice()..hi.as_slice(), |k, _| {
                        k.len() != lo.len() + 8
                    })
                    .db(self)?;
                    true
                }
            }
        };
        txn.commit().db(self)?;
        Ok(found)
    }

    fn claim_due(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        let mut out = Vec::new();
        {
            let due = txn.open_table(DUE).db(self)?;
            let hi = instant_bytes(now + chrono::Duration::milliseconds(1));
            let keys: Vec<String> = due
                .range::<&[u8]>(..hi.as_slice())
                .db(self)?
                .map(|e| {
                    e.map(|(k, _)| {
                        String::from_utf8_lossy(k.value().get(8..).unwrap_or(&[])).into_owned()
                    })
                })
                .collect::<Result<_, _>>()
                .db(self)?;
            drop(due);
            let schedules = txn.open_table(SCHEDULES).db(self)?;
            for key in keys {
                if out.len() >= limit {
                    break;
                }
                let Some(rec) = self.read_schedule(&schedules, &key)? else {
                    continue;
                };
                if self.take_lease(&txn, owner, &key, now, lease_until)? {
                    out.push(rec);
                }
            }
        }
        txn.commit().db(self)?;
        Ok(out)
    }

    fn claim(
        &self,
        owner: &str,
        name: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        let key = name.to_ascii_lowercase();
        let txn = self.database()?.begin_write().db(self)?;
        let rec = {
            let schedules = txn.open_table(SCHEDULES).db(self)?;
            self.read_schedule(&schedules, &key)?
        };
        let Some(rec) = rec else { return Ok(None) };
        if !self.take_lease(&txn, owner, &key, now, lease_until)? {
            return Ok(None);
        }
        txn.commit().db(self)?;
        Ok(Some(rec))
    }

    fn commit_occurrence(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        commit: &OccurrenceCommit<'_>,
    ) -> Result<(), StoreError> {
        let key = commit.schedule.key();
        let txn = self.database()?.begin_write().db(self)?;
        {
            let leases = txn.open_table(LEASES).db(self)?;
            let held = leases
                .get(key.as_str())
                .db(self)?
                .and_then(|v| serde_json::from_slice::<Lease>(v.value()).ok())
                .is_some_and(|l| l.owner == owner && l.until > now);
            if !held {
                return Err(StoreError::LeaseLost {
                    schedule: commit.schedule.spec.name.clone(),
                });
            }
        }
        {
            // A schedule deleted meanwhile fires nothing more.
            let schedules = txn.open_table(SCHEDULES).db(self)?;
            if schedules.get(key.as_str()).db(self)?.is_none() {
                return Err(StoreError::LeaseLost {
                    schedule: commit.schedule.spec.name.clone(),
                });
            }
        }
        if let Some(occ) = commit.occurrence {
            let mut t = txn.open_table(OCCURRENCES).db(self)?;
            let k = occ_key(&key, occ.scheduled_for);
            if t.get(k.as_slice()).db(self)?.is_some() {
                return Err(StoreError::AlreadyExists {
                    kind: "occurrence",
                    key: format!("{}@{}", occ.schedule, occ.scheduled_for.to_rfc3339()),
                });
            }
            let json = to_json("occurrence", occ)?;
            t.insert(k.as_slice(), json.as_slice()).db(self)?;
        }
        if let Some(inst) = commit.instance {
            self.write_instance(&txn, inst, true)?;
        }
        self.write_schedule(&txn, commit.schedule, false)?;
        txn.commit().db(self)
    }

    fn commit_batch(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        commits: &[ScheduleCommit<'_>],
    ) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        for c in commits {
            let key = c.schedule.key();
            let held = txn
                .open_table(LEASES)
                .db(self)?
                .get(key.as_str())
                .db(self)?
                .and_then(|v| serde_json::from_slice::<Lease>(v.value()).ok())
                .is_some_and(|l| l.owner == owner && l.until > now);
            let exists = txn
                .open_table(SCHEDULES)
                .db(self)?
                .get(key.as_str())
                .db(self)?
                .is_some();
            if !held || !exists {
                return Err(StoreError::LeaseLost {
                    schedule: c.schedule.spec.name.clone(),
                });
            }
            {
                let mut t = txn.open_table(OCCURRENCES).db(self)?;
                for occ in c.occurrences {
                    let k = occ_key(&key, occ.scheduled_for);
                    if t.get(k.as_slice()).db(self)?.is_some() {
                        return Err(StoreError::AlreadyExists {
                            kind: "occurrence",
                            key: format!("{}@{}", occ.schedule, occ.scheduled_for.to_rfc3339()),
                        });
                    }
                    let json = to_json("occurrence", occ)?;
                    t.insert(k.as_slice(), json.as_slice()).db(self)?;
                }
            }
            for inst in c.instances {
                self.write_instance(&txn, inst, true)?;
            }
            self.write_schedule(&txn, c.schedule, false)?;
            txn.open_table(LEASES)
                .db(self)?
                .remove(key.as_str())
                .db(self)?;
        }
        txn.commit().db(self)
    }

    fn release(&self, owner: &str, name: &str) -> Result<(), StoreError> {
        let key = name.to_ascii_lowercase();
        let txn = self.database()?.begin_write().db(self)?;
        {
            let mut leases = txn.open_table(LEASES).db(self)?;
            let mine = leases
                .get(key.as_str())
                .db(self)?
                .and_then(|v| serde_json::from_slice::<Lease>(v.value()).ok())
                .is_some_and(|l| l.owner == owner);
            if mine {
                leases.remove(key.as_str()).db(self)?;
            }
        }
        txn.commit().db(self)
    }

    fn list_occurrences(
        &self,
        name: &str,
        limit: usize,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<OccurrenceRecord>, StoreError> {
        let key = name.to_ascii_lowercase();
        let txn = self.database()?.begin_read().db(self)?;
        let t = txn.open_table(OCCURRENCES).db(self)?;
        let mut lo = key.as_bytes().to_vec();
        lo.push(0);
        let hi = match before {
            Some(b) => occ_key(&key, b),
            None => {
                let mut hi = key.as_bytes().to_vec();
                hi.push(1);
                hi
            }
        };
        let mut out = Vec::new();
        for e in t
            .range::<&[u8]>(lo.as_slice()..hi.as_slice())
            .db(self)?
            .rev()
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e.db(self)?;
            if k.value().len() != lo.len() + 8 {
                continue; // another schedule whose name starts with this one and a NUL
            }
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|err| self.corrupt("occurrences", &key, err))?,
            );
        }
        Ok(out)
    }

    fn insert_deferred(
        &self,
        rec: &ScheduleRecord,
        instance: &InstanceRecord,
    ) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        self.write_instance(&txn, instance, true)?;
        self.write_schedule(&txn, rec, true)?;
        txn.commit().db(self)
    }

    fn fire_deferred(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        key: &str,
        instance: &InstanceRecord,
    ) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        let held = txn
            .open_table(LEASES)
            .db(self)?
            .get(key)
            .db(self)?
            .and_then(|v| serde_json::from_slice::<Lease>(v.value()).ok())
            .is_some_and(|l| l.owner == owner && l.until > now);
        if !held || !self.remove_schedule(&txn, key)? {
            return Err(StoreError::LeaseLost {
                schedule: key.to_string(),
            });
        }
        self.write_instance(&txn, instance, false)?;
        txn.commit().db(self)
    }

    fn cancel_deferred(&self, key: &str, instance: &InstanceRecord) -> Result<bool, StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        if !self.remove_schedule(&txn, key)? {
            return Ok(false);
        }
        self.write_instance(&txn, instance, false)?;
        txn.commit().db(self)?;
        Ok(true)
    }

    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let txn = self.database()?.begin_read().db(self)?;
        let due = txn.open_table(DUE).db(self)?;
        let first = due.first().db(self)?;
        Ok(first.and_then(|(k, _)| {
            let b: [u8; 8] = k.value().get(..8)?.try_into().ok()?;
            bytes_instant(b)
        }))
    }
}
