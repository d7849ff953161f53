//! The loop that fires schedules, driven by a [`Clock`] (tests use `ManualClock` and call
//! [`Scheduler::tick`]; `serve` runs [`Scheduler::run`]).
//!
//! Each tick claims the due schedules from the store (a lease per schedule), works out their due
//! occurrences, applies the misfire policy to those handled more than [`MISFIRE_THRESHOLD_SECS`] late and the
//! overlap policy to each run, and commits every occurrence on its own: the occurrence record, the instance
//! it fires and the schedule's next state in one transaction ([`ScheduleStore::commit_occurrence`]). A crash
//! before that commit leaves the occurrence due (the misfire policy decides after the restart); a crash
//! after it leaves a fired occurrence with its instance (failed as interrupted at start-up). Never both,
//! never twice.

use super::cron::{describe, CronSpec};
use super::model::{
    Misfire, OccurrenceRecord, OccurrenceStatus, Overlap, ScheduleSpec, SkipReason, Trigger,
    MISFIRE_THRESHOLD_SECS,
};
use crate::auth::{Principal, PrincipalKind};
use crate::catalog::{Catalog, CatalogError, Entry};
use crate::runner::{Keep, Runner, StartError, StartRequest};
use crate::store::schedules::{
    deferred_key, Deferred, ScheduleCommit, ScheduleRecord, ScheduleState, ScheduleStore,
};
use crate::store::{InstanceRecord, StoreError, INTERRUPTED_MESSAGE};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use synapse_engine::model::DurationSpec;
use synapse_engine::{DynamicParams, Plan, SharedClock, StatusType};
use tokio_util::sync::CancellationToken;

/// Where the scheduler finds plans (the catalog; a reloadable catalog implements it the same way).
pub trait PlanSource: Send + Sync {
    /// A runnable plan by name: unknown names and plans with errors are refused.
    fn runnable(&self, plan: &str) -> Result<(Arc<Entry>, Arc<Plan>), CatalogError>;
}

impl PlanSource for Catalog {
    fn runnable(&self, plan: &str) -> Result<(Arc<Entry>, Arc<Plan>), CatalogError> {
        self.plan(plan)
    }
}

/// The live catalog: each look-up sees the plans as last (re)loaded, so an edit is picked up by the next
/// occurrence, and an edit that broke a plan keeps its last good version (the reload's rule).
impl PlanSource for crate::live_catalog::PlanCatalog {
    fn runnable(&self, plan: &str) -> Result<(Arc<Entry>, Arc<Plan>), CatalogError> {
        self.plan(plan)
    }
}

impl<T: PlanSource + ?Sized> PlanSource for Arc<T> {
    fn runnable(&self, plan: &str) -> Result<(Arc<Entry>, Arc<Plan>), CatalogError> {
        (**self).runnable(plan)
    }
}

/// How long a claim holds a schedule.
const LEASE_SECS: i64 = 60;
/// Schedules claimed per store transaction.
const BATCH: usize = 256;
/// Missed occurrences recorded one by one; beyond this they are counted in one summary record.
const MAX_RECORDED_MISSES: usize = 1000;
/// Cron steps looked at per schedule and tick.
const MAX_STEPS: usize = 100_000;
/// Longest sleep of the loop between ticks (the store is looked at again at least this often).
const MAX_SLEEP_SECS: i64 = 30;

/// Fires schedules. One per controller; cheap to share.
pub struct Scheduler {
    store: Arc<dyn ScheduleStore>,
    runner: Arc<Runner>,
    clock: SharedClock,
    /// This controller's name in leases.
    owner: String,
    wake: Arc<tokio::sync::Notify>,
    /// Schedules with runs that may still run or a buffered occurrence (looked at every tick).
    watched: Mutex<BTreeSet<String>>,
    /// Serializes ticks and API changes within this process (leases serialize across processes).
    busy: Mutex<()>,
}

/// The work of one processed schedule, stored by [`Scheduler::commit`].
struct Pending {
    /// The schedule with its next state.
    rec: ScheduleRecord,
    occurrences: Vec<OccurrenceRecord>,
    /// Runs to launch once stored.
    prepared: Vec<crate::runner::Prepared>,
}

impl Pending {
    fn push(&mut self, occ: OccurrenceRecord) {
        self.rec.state.last = Some(occ.clone());
        self.occurrences.push(occ);
    }
}

/// What one occurrence turns into.
enum Step {
    Fire(DateTime<Utc>, Trigger),
    Skip(DateTime<Utc>, SkipReason, Option<String>),
}

/// The parameters of a schedule as a start's dynamic parameters.
pub fn inputs_of(spec: &ScheduleSpec) -> DynamicParams {
    let mut p = DynamicParams::new();
    for (k, v) in &spec.parameters {
        p.insert(k.clone(), v.clone());
    }
    p
}

/// The catch-up window of a spec (its text was checked when the schedule was accepted).
pub fn window_of(spec: &ScheduleSpec) -> Duration {
    DurationSpec::parse(&spec.catch_up_window)
        .ok()
        .and_then(|d| Duration::from_std(d.0).ok())
        .unwrap_or_else(|| Duration::hours(1))
}

/// The first occurrence of `spec` strictly after `after` that is within its start and end (None: none).
pub fn next_occurrence(
    spec: &ScheduleSpec,
    cron: &CronSpec,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let from = match spec.start_at {
        Some(s) => {
            let s = s.with_timezone(&Utc);
            if s > after {
                s - Duration::milliseconds(1)
            } else {
                after
            }
        }
        None => after,
    };
    let at = cron.next_after(from)?.at;
    match spec.end_at {
        Some(end) if at > end.with_timezone(&Utc) => None,
        _ => Some(at),
    }
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn ScheduleStore>,
        runner: Arc<Runner>,
        clock: SharedClock,
    ) -> Scheduler {
        let all = store.list_schedules().unwrap_or_default();
        metrics::gauge!("synapse_schedules")
            .set(all.iter().filter(|r| r.deferred.is_none()).count() as f64);
        let watched = all
            .into_iter()
            .filter(|r| !r.state.running.is_empty() || r.state.buffered.is_some())
            .map(|r| r.key())
            .collect();
        Scheduler {
            store,
            runner,
            clock,
            owner: format!("controller-{}", uuid::Uuid::now_v7()),
            wake: Arc::new(tokio::sync::Notify::new()),
            watched: Mutex::new(watched),
            busy: Mutex::new(()),
        }
    }

    pub fn store(&self) -> &Arc<dyn ScheduleStore> {
        &self.store
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Wakes the loop (a schedule changed).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Runs `f` with this process's scheduler lock held (API changes: no tick interleaves).
    pub fn exclusive<T>(&self, f: impl FnOnce() -> T) -> T {
        let _g = self.busy.lock();
        let out = f();
        self.poke();
        out
    }

    /// Handles everything due at the clock's now. Returns how many occurrences were recorded.
    pub fn tick(&self, plans: &dyn PlanSource) -> Result<usize, StoreError> {
        let _g = self.busy.lock();
        let now = self.clock.now();
        let lease_until = now + Duration::seconds(LEASE_SECS);
        let mut recorded = 0;
        let watched: Vec<String> = self
            .watched
            .lock()
            .map(|w| w.iter().cloned().collect())
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        let mut pending = Vec::new();
        for name in watched {
            if let Some(rec) = self.store.claim(&self.owner, &name, now, lease_until)? {
                seen.insert(rec.key());
                pending.extend(self.process(plans, rec, now, None));
            }
        }
        recorded += self.commit(pending, now);
        for _ in 0..1000 {
            let batch = self.store.claim_due(&self.owner, now, lease_until, BATCH)?;
            let n = batch.len();
            let mut fresh = 0;
            let mut pending = Vec::new();
            for rec in batch {
                if seen.insert(rec.key()) {
                    fresh += 1;
                    pending.extend(self.process(plans, rec, now, None));
                } else {
                    let _ = self.store.release(&self.owner, &rec.key());
                }
            }
            recorded += self.commit(pending, now);
            if n < BATCH || fresh == 0 {
                break;
            }
        }
        Ok(recorded)
    }

    /// Fires a schedule now (`POST /synapse/schedules/{name}/trigger`), under its overlap policy. Returns
    /// the occurrence recorded (None: no such schedule, or another controller holds it).
    pub fn trigger(
        &self,
        plans: &dyn PlanSource,
        name: &str,
    ) -> Result<Option<OccurrenceRecord>, StoreError> {
        let _g = self.busy.lock();
        let now = self.clock.now();
        let Some(rec) =
            self.store
                .claim(&self.owner, name, now, now + Duration::seconds(LEASE_SECS))?
        else {
            return Ok(None);
        };
        let key = rec.key();
        let pending: Vec<Pending> = self
            .process(plans, rec, now, Some(now))
            .into_iter()
            .collect();
        self.commit(pending, now);
        Ok(self
            .store
            .get_schedule(&key)?
            .and_then(|r| r.state.last)
            .filter(|o| o.scheduled_for == now))
    }

    /// Stores the work of processed schedules (occurrences, instance records, next states; leases given
    /// back) in one transaction, then launches the prepared runs. When the batch cannot be stored, each
    /// schedule is tried on its own; a schedule whose transaction fails runs nothing and stays due.
    /// Returns how many occurrences were recorded.
    fn commit(&self, pending: Vec<Pending>, now: DateTime<Utc>) -> usize {
        if pending.is_empty() {
            return 0;
        }
        let instances: Vec<Vec<InstanceRecord>> = pending
            .iter()
            .map(|p| p.prepared.iter().map(|x| x.record.clone()).collect())
            .collect();
        let commits: Vec<ScheduleCommit<'_>> = pending
            .iter()
            .zip(&instances)
            .map(|(p, inst)| ScheduleCommit {
                schedule: &p.rec,
                occurrences: &p.occurrences,
                instances: inst,
            })
            .collect();
        let stored: Vec<bool> = match self.store.commit_batch(&self.owner, now, &commits) {
            Ok(()) => vec![true; commits.len()],
            Err(e) => {
                tracing::warn!(error = %e, "scheduler batch not stored: storing schedule by schedule");
                commits
                    .iter()
                    .map(|c| {
                        match self
                            .store
                            .commit_batch(&self.owner, now, std::slice::from_ref(c))
                        {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!(schedule = %c.schedule.spec.name, error = %e,
                                "schedule occurrence not recorded");
                                let _ = self.store.release(&self.owner, &c.schedule.key());
                                false
                            }
                        }
                    })
                    .collect()
            }
        };
        drop(commits);
        let mut recorded = 0;
        for (p, ok) in pending.into_iter().zip(stored) {
            let key = p.rec.key();
            if !ok {
                for x in p.prepared {
                    self.runner.abandon(x);
                }
                continue;
            }
            recorded += p.occurrences.len();
            for o in &p.occurrences {
                match o.status {
                    OccurrenceStatus::Fired => {
                        metrics::counter!("synapse_schedule_fired_total").increment(1);
                        metrics::histogram!("synapse_schedule_lateness_seconds")
                            .record(o.lateness_ms.max(0) as f64 / 1000.0);
                    }
                    OccurrenceStatus::Skipped => {
                        let reason = o.reason.map_or("Unknown", SkipReason::name);
                        metrics::counter!("synapse_schedule_skipped_total", "reason" => reason)
                            .increment(1);
                    }
                }
            }
            for x in p.prepared {
                let started = self.runner.launch(x);
                // Wake the loop when the run ends (overlap, BufferOne, PauseOnFailure).
                let mut done = started.done;
                let notify = self.wake.clone();
                tokio::spawn(async move {
                    while done.borrow().is_none() {
                        if done.changed().await.is_err() {
                            break;
                        }
                    }
                    notify.notify_one();
                });
            }
            if let Ok(mut w) = self.watched.lock() {
                if p.rec.state.running.is_empty() && p.rec.state.buffered.is_none() {
                    w.remove(&key);
                } else {
                    w.insert(key);
                }
            }
        }
        recorded
    }

    /// Stores a deferred run (`/start?at=`): its instance is `Scheduled` until `at`, then it fires once
    /// (also after a restart, however late). The plan and inputs were checked by the caller. Returns the id.
    pub fn defer(
        &self,
        plan_key: &str,
        inputs: &DynamicParams,
        dry_run: bool,
        principal: &Principal,
        at: DateTime<Utc>,
    ) -> Result<uuid::Uuid, StoreError> {
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7();
        let instance = InstanceRecord {
            id,
            plan: plan_key.to_string(),
            requester: Some(principal.name.clone()),
            requester_kind: Some(principal.kind),
            started_at: now,
            finished_at: None,
            status: StatusType::Scheduled,
            dry_run,
            parameters: inputs.masked(),
            message: Some(format!("scheduled for {}", at.to_rfc3339())),
            result: None,
        };
        let mut spec: ScheduleSpec = serde_json::from_value(serde_json::json!({
            "Name": deferred_key(id), "Plan": plan_key, "Cron": "@yearly"}))
        .map_err(|e| StoreError::Invalid {
            kind: "deferred run",
            reason: e.to_string(),
        })?;
        spec.parameters = inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let rec = ScheduleRecord {
            spec,
            source: Default::default(),
            file: None,
            owner: Some(principal.name.clone()),
            created_at: now,
            updated_at: now,
            state: ScheduleState {
                next_fire_at: Some(at),
                ..Default::default()
            },
            deferred: Some(Deferred {
                instance: id,
                requester: principal.name.clone(),
                requester_kind: principal.kind,
                dry_run,
            }),
        };
        self.exclusive(|| self.store.insert_deferred(&rec, &instance))?;
        Ok(id)
    }

    /// Cancels a deferred run before it fires (its instance becomes Cancelled). False when it is not waiting.
    pub fn cancel_deferred(&self, instance: &InstanceRecord) -> Result<bool, StoreError> {
        let mut cancelled = instance.clone();
        cancelled.status = StatusType::Cancelled;
        cancelled.finished_at = Some(self.clock.now());
        cancelled.message = Some("cancelled before it ran".into());
        self.exclusive(|| {
            self.store
                .cancel_deferred(&deferred_key(instance.id), &cancelled)
        })
    }

    /// A claimed deferred run: fires it under its instance id, or fails the instance with the reason (plan
    /// gone or invalid, inputs no longer valid).
    fn fire_deferred(
        &self,
        plans: &dyn PlanSource,
        rec: ScheduleRecord,
        d: Deferred,
        now: DateTime<Utc>,
    ) {
        let key = rec.key();
        let inputs = inputs_of(&rec.spec);
        let fail = |message: String| {
            let inst = InstanceRecord {
                id: d.instance,
                plan: rec.spec.plan.clone(),
                requester: Some(d.requester.clone()),
                requester_kind: Some(d.requester_kind),
                started_at: now,
                finished_at: Some(now),
                status: StatusType::Failed,
                dry_run: d.dry_run,
                parameters: inputs.masked(),
                message: Some(message),
                result: None,
            };
            if let Err(e) = self.store.fire_deferred(&self.owner, now, &key, &inst) {
                tracing::warn!(run = %key, error = %e, "deferred run not settled");
            }
        };
        let (entry, plan) = match plans.runnable(&rec.spec.plan) {
            Ok(p) => p,
            Err(e) => return fail(format!("the deferred run could not start: {e}")),
        };
        let req = StartRequest {
            plan_key: entry.key.clone(),
            plan,
            inputs: inputs.clone(),
            dry_run: d.dry_run,
            principal: Principal {
                name: d.requester.clone(),
                kind: d.requester_kind,
                roles: Vec::new(),
            },
            keep: Keep::Result,
            durable: true,
        };
        let store = self.store.clone();
        let owner = self.owner.clone();
        let started = self
            .runner
            .start_committed_as(req, d.instance, &mut |inst| {
                store.fire_deferred(&owner, now, &key, inst)
            });
        match started {
            Ok(_) => {
                metrics::counter!("synapse_deferred_fired_total").increment(1);
                metrics::histogram!("synapse_schedule_lateness_seconds").record(
                    rec.state.next_fire_at.map_or(0.0, |at| {
                        (now - at).num_milliseconds().max(0) as f64 / 1000.0
                    }),
                );
            }
            Err(StartError::Record(e)) => {
                tracing::warn!(run = %key, error = %e, "deferred run not fired");
            }
            Err(e) => fail(format!("the deferred run could not start: {e}")),
        }
    }

    /// One claimed schedule: settle finished runs, fire a buffered occurrence, handle due ones (and a manual
    /// trigger at `manual`). Nothing is stored here: the result goes to [`Scheduler::commit`] (None for a
    /// deferred run, which fires in its own transaction).
    fn process(
        &self,
        plans: &dyn PlanSource,
        mut rec: ScheduleRecord,
        now: DateTime<Utc>,
        manual: Option<DateTime<Utc>>,
    ) -> Option<Pending> {
        let key = rec.key();
        if let Some(d) = rec.deferred.clone() {
            if manual.is_none() {
                self.fire_deferred(plans, rec, d, now);
            }
            let _ = self.store.release(&self.owner, &key);
            return None;
        }
        self.settle_runs(&mut rec, now);
        let cron = CronSpec::parse(&rec.spec.cron, &rec.spec.time_zone);
        let mut work: Vec<Step> = Vec::new();
        if rec.spec.enabled {
            if let Some(b) = rec.state.buffered {
                if rec.state.running.is_empty() {
                    rec.state.buffered = None;
                    work.push(Step::Fire(b, Trigger::Cron));
                }
            }
            if let Ok(cron) = &cron {
                work.extend(self.due(&mut rec, cron, now));
            }
        }
        if let Some(at) = manual {
            work.push(Step::Fire(at, Trigger::Manual));
        }
        let cron = cron.ok();
        let mut out = Pending {
            rec,
            occurrences: Vec::new(),
            prepared: Vec::new(),
        };
        for item in work {
            let at = match &item {
                Step::Fire(at, _) | Step::Skip(at, ..) => *at,
            };
            // The schedule's next occurrence after this one.
            if let Some(cron) = &cron {
                if out.rec.state.next_fire_at.is_some_and(|n| n <= at) {
                    out.rec.state.next_fire_at = next_occurrence(&out.rec.spec, cron, at);
                }
            }
            match item {
                Step::Skip(at, reason, detail) => {
                    self.record_skip(&mut out, at, reason, detail, Trigger::Cron)
                }
                Step::Fire(at, trigger) => self.fire(plans, &mut out, at, trigger, cron.as_ref()),
            }
        }
        Some(out)
    }

    /// The due occurrences from `next_fire_at` to `now`, each turned into a fire or a skip by the misfire
    /// policy (late ones) or fired (on time).
    fn due(&self, rec: &mut ScheduleRecord, cron: &CronSpec, now: DateTime<Utc>) -> Vec<Step> {
        let mut on_time = Vec::new();
        let mut missed = Vec::new();
        let mut uncounted = 0usize;
        let mut t = rec.state.next_fire_at;
        let threshold = Duration::seconds(MISFIRE_THRESHOLD_SECS);
        let mut steps = 0;
        while let Some(at) = t.filter(|at| *at <= now) {
            steps += 1;
            if steps > MAX_STEPS {
                // Far too many to list: jump to the recent past.
                uncounted += 1;
                t = next_occurrence(&rec.spec, cron, now - threshold);
                rec.state.next_fire_at = t;
                continue;
            }
            if now - at > threshold {
                missed.push(at);
            } else {
                on_time.push(at);
            }
            t = next_occurrence(&rec.spec, cron, at);
        }
        let paused_until = rec.state.resumed_at;
        let reason = |at: DateTime<Utc>| {
            if paused_until.is_some_and(|r| at < r) {
                SkipReason::Paused
            } else {
                SkipReason::Misfire
            }
        };
        let mut out = Vec::new();
        let fire_from = match rec.spec.misfire {
            Misfire::Skip => missed.len(),
            Misfire::RunOnce => missed.len().saturating_sub(1),
            Misfire::CatchUp => {
                let window = window_of(&rec.spec);
                missed.iter().take_while(|at| now - **at > window).count()
            }
        };
        let skipped = &missed[..fire_from];
        let drop = skipped.len().saturating_sub(MAX_RECORDED_MISSES);
        if drop > 0 || uncounted > 0 {
            out.push(Step::Skip(
                skipped[0],
                reason(skipped[0]),
                Some(format!(
                    "{} missed occurrences from {} to {} are summarized in this record",
                    drop + uncounted + 1,
                    skipped[0].to_rfc3339(),
                    skipped[drop.min(skipped.len() - 1)].to_rfc3339()
                )),
            ));
        }
        for at in skipped.iter().skip(if drop > 0 || uncounted > 0 {
            drop + 1
        } else {
            0
        }) {
            out.push(Step::Skip(*at, reason(*at), None));
        }
        for at in &missed[fire_from..] {
            out.push(Step::Fire(*at, Trigger::CatchUp));
        }
        for at in on_time {
            out.push(Step::Fire(at, Trigger::Cron));
        }
        out
    }

    /// Drops finished runs from the schedule's running list, counting failures (PauseOnFailure).
    fn settle_runs(&self, rec: &mut ScheduleRecord, now: DateTime<Utc>) -> bool {
        let before = rec.state.running.len();
        let mut still = Vec::new();
        for id in std::mem::take(&mut rec.state.running) {
            if self.runner.is_live(id) {
                still.push(id);
                continue;
            }
            let Ok(Some(inst)) = self.runner.instance(id) else {
                continue;
            };
            if inst.is_running() {
                still.push(id);
                continue;
            }
            let interrupted = inst.message.as_deref() == Some(INTERRUPTED_MESSAGE);
            match inst.status {
                StatusType::Failed if !interrupted => {
                    rec.state.consecutive_failures += 1;
                    if let Some(n) = rec.spec.pause_on_failure {
                        if n > 0 && rec.state.consecutive_failures >= n && rec.spec.enabled {
                            rec.spec.enabled = false;
                            rec.state.paused_at = Some(now);
                            rec.state.paused_reason = Some(format!(
                                "paused after {} consecutive failed runs (PauseOnFailure: {n}; last: instance {id}{})",
                                rec.state.consecutive_failures,
                                inst.message.map(|m| format!(": {m}")).unwrap_or_default()
                            ));
                            metrics::counter!("synapse_schedule_paused_on_failure_total")
                                .increment(1);
                        }
                    }
                }
                StatusType::Complete | StatusType::CompletedWithErrors => {
                    rec.state.consecutive_failures = 0
                }
                _ => {}
            }
        }
        rec.state.running = still;
        rec.state.running.len() != before
    }

    fn record_skip(
        &self,
        out: &mut Pending,
        at: DateTime<Utc>,
        reason: SkipReason,
        detail: Option<String>,
        trigger: Trigger,
    ) {
        let recorded_at = self.clock.now();
        let occ = OccurrenceRecord {
            schedule: out.rec.spec.name.clone(),
            scheduled_for: at,
            status: OccurrenceStatus::Skipped,
            instance: None,
            reason: Some(reason),
            detail,
            trigger,
            // The actual moment (a tick handles many schedules one after the other).
            recorded_at,
            lateness_ms: (recorded_at - at).num_milliseconds(),
        };
        out.push(occ);
    }

    /// Fires one occurrence under the overlap policy (prepared here, launched once stored), or records why
    /// not.
    fn fire(
        &self,
        plans: &dyn PlanSource,
        out: &mut Pending,
        at: DateTime<Utc>,
        trigger: Trigger,
        cron: Option<&CronSpec>,
    ) {
        let running: Vec<uuid::Uuid> = out.rec.state.running.clone();
        if !running.is_empty() {
            match out.rec.spec.overlap {
                Overlap::Skip => {
                    let detail = format!("the previous run {} still runs", running[0]);
                    return self.record_skip(out, at, SkipReason::Overlap, Some(detail), trigger);
                }
                Overlap::BufferOne => {
                    if let Some(old) = out.rec.state.buffered.replace(at).filter(|o| *o != at) {
                        let detail = format!(
                            "replaced in the BufferOne slot by the occurrence of {}",
                            at.to_rfc3339()
                        );
                        self.record_skip(
                            out,
                            old,
                            SkipReason::Overlap,
                            Some(detail),
                            Trigger::Cron,
                        );
                    }
                    return;
                }
                Overlap::CancelOther => {
                    for id in &running {
                        self.runner.cancel(*id);
                    }
                }
                Overlap::AllowAll => {}
            }
        }
        let (entry, plan) = match plans.runnable(&out.rec.spec.plan) {
            Ok(p) => p,
            Err(CatalogError::NoSuchPlan { .. }) => {
                let detail = format!("no plan named '{}'", out.rec.spec.plan);
                return self.record_skip(out, at, SkipReason::PlanMissing, Some(detail), trigger);
            }
            Err(e) => {
                return self.record_skip(
                    out,
                    at,
                    SkipReason::PlanInvalid,
                    Some(e.to_string()),
                    trigger,
                );
            }
        };
        let inputs = inputs_of(&out.rec.spec);
        if let Err(e) = crate::routes::execute::check_known(&entry, &inputs) {
            let detail = Some(e.to_string());
            return self.record_skip(out, at, SkipReason::ParametersInvalid, detail, trigger);
        }
        let dst = cron.and_then(|c| {
            c.upcoming(at - Duration::milliseconds(1), 1)
                .first()
                .filter(|f| f.at == at)
                .and_then(|f| describe(c, f))
        });
        let req = StartRequest {
            plan_key: entry.key.clone(),
            plan,
            inputs,
            dry_run: false,
            principal: Principal {
                name: format!("schedule:{}", out.rec.spec.name),
                kind: PrincipalKind::Schedule,
                roles: Vec::new(),
            },
            keep: Keep::Result,
            durable: true,
        };
        match self.runner.prepare(req, None) {
            Ok(prepared) => {
                let recorded_at = self.clock.now();
                let id = prepared.record.id;
                out.rec.state.running.push(id);
                out.prepared.push(prepared);
                out.push(OccurrenceRecord {
                    schedule: out.rec.spec.name.clone(),
                    scheduled_for: at,
                    status: OccurrenceStatus::Fired,
                    instance: Some(id),
                    reason: None,
                    detail: dst,
                    trigger,
                    recorded_at,
                    lateness_ms: (recorded_at - at).num_milliseconds(),
                });
            }
            Err(StartError::Inactive { plan }) => {
                let detail = format!("plan '{plan}' is not active (IsActive: false)");
                self.record_skip(out, at, SkipReason::PlanInvalid, Some(detail), trigger)
            }
            Err(StartError::Inputs(e)) => self.record_skip(
                out,
                at,
                SkipReason::ParametersInvalid,
                Some(e.to_string()),
                trigger,
            ),
            Err(e) => self.record_skip(out, at, SkipReason::Busy, Some(e.to_string()), trigger),
        }
    }

    /// The loop: ticks when something is due (the store's earliest due instant), when a schedule changes
    /// ([`Scheduler::poke`]) or a fired run ends, and at least every 30 seconds; until `shutdown`.
    pub async fn run(self: Arc<Self>, state: Arc<crate::AppState>, shutdown: CancellationToken) {
        loop {
            let this = self.clone();
            let st = state.clone();
            // Store transactions and plan lookups are blocking work: off the async workers.
            let ticked = tokio::task::spawn_blocking(move || this.tick(&st.catalog)).await;
            if let Ok(Err(e)) = ticked {
                tracing::error!(error = %e, "scheduler tick failed");
            }
            let now = self.clock.now();
            let watching = self.watched.lock().is_ok_and(|w| !w.is_empty());
            let mut wait = Duration::seconds(if watching { 1 } else { MAX_SLEEP_SECS });
            if let Ok(Some(due)) = self.store.next_due() {
                wait = wait.min(due - now);
            }
            let wait = wait
                .to_std()
                .unwrap_or_default()
                .max(std::time::Duration::from_millis(1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
