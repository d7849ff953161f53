//! Plan instances: start (the instance is stored as Running), run on the executor in a task, publish progress
//! events, store the result, and let callers await completion (no polling), cancel, or stream events.

use crate::auth::Principal;
use crate::store::{Durability, InstanceRecord, InstanceStore};
use crate::writer::{InstanceWriter, Writer};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synapse_engine::resolve::ResolveError;
use synapse_engine::{
    DynamicParams, Executor, Plan, PlanResult, ProgressEvent, ProgressSink, RunError, RunOptions,
    StatusType,
};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A running instance's handles.
struct Live {
    cancel: CancellationToken,
    /// Created by the first subscriber: most runs have no watcher, and a channel per run costs.
    events: Arc<std::sync::OnceLock<broadcast::Sender<ProgressEvent>>>,
    done: watch::Receiver<Option<Arc<PlanResult>>>,
}

/// Starts and tracks plan instances.
pub struct Runner {
    executor: Executor,
    store: Arc<dyn InstanceStore>,
    writer: InstanceWriter,
    live: Mutex<HashMap<Uuid, Live>>,
    /// Most instances running at once (`MaxRunningInstances`).
    max_running: usize,
}

/// Progress events and the completion signal of a running instance.
pub type Subscription = (
    broadcast::Receiver<ProgressEvent>,
    watch::Receiver<Option<Arc<PlanResult>>>,
);

/// A start between [`Runner::prepare`] and [`Runner::launch`].
pub struct Prepared {
    /// The instance record to store (status Running) before launching.
    pub record: InstanceRecord,
    req: StartRequest,
    events: Arc<std::sync::OnceLock<broadcast::Sender<ProgressEvent>>>,
    done_tx: watch::Sender<Option<Arc<PlanResult>>>,
    done_rx: watch::Receiver<Option<Arc<PlanResult>>>,
    cancel: CancellationToken,
}

/// A started instance.
pub struct Started {
    pub id: Uuid,
    pub done: watch::Receiver<Option<Arc<PlanResult>>>,
}

/// How a sync call ended.
pub enum SyncOutcome {
    Finished(Arc<PlanResult>),
    /// Still running after the timeout (it keeps running; poll or stream it by id).
    StillRunning(Uuid),
}

/// Why a plan did not start (nothing ran, nothing was stored).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The plan says `IsActive: false`.
    #[error("plan '{plan}' is not active (IsActive: false)")]
    Inactive { plan: String },
    /// Missing or invalid inputs, every problem listed.
    #[error("{0}")]
    Inputs(#[from] ResolveError),
    /// `MaxRunningInstances` instances are running already; try again when some have finished.
    #[error("{running} plan instances are running, the most this server runs at once (MaxRunningInstances = {limit}); try again later")]
    Busy { running: usize, limit: usize },
    /// The caller's commit of the new instance record failed (scheduled starts: `Runner::start_committed`).
    #[error("the instance could not be recorded: {0}")]
    Record(crate::store::StoreError),
    /// The dispatcher cannot reach its nodes (NATS down); starts work again once it is back.
    #[error("{0}")]
    Unavailable(String),
}

/// Stores a new instance record for [`Runner::start_committed`].
pub type CommitRecord<'a> = dyn FnMut(&InstanceRecord) -> Result<(), crate::store::StoreError> + 'a;

/// Who starts a plan and how.
pub struct StartRequest {
    pub plan_key: String,
    pub plan: Arc<Plan>,
    pub inputs: DynamicParams,
    pub dry_run: bool,
    /// Who starts it: recorded as the instance's `Requester`, passed to the plan as
    /// `PlanStartInfo_RequestUser` and to handlers as the requesting principal.
    pub principal: Principal,
    /// What the store keeps of the finished instance.
    pub keep: Keep,
    /// Publish the result only once the finished record is committed (writes: an answered change must
    /// survive a crash). Reads publish at once; their record follows within milliseconds.
    pub durable: bool,
}

/// How much of a finished instance the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Keep {
    /// The whole result tree.
    #[default]
    Result,
    /// Status, times, parameters and message, without the result tree: for read-only calls (AD gets and
    /// searches), whose results are large and already in the caller's hands.
    Summary,
}

impl Runner {
    /// Instance records go through `writer` (group commit, shared with other record kinds) and are read
    /// back from `store`. [`Runner::shutdown`] closes the writer.
    /// At most `max_running` instances run at once (further starts are refused with [`StartError::Busy`]).
    pub fn new(
        executor: Executor,
        store: Arc<dyn InstanceStore>,
        writer: Arc<Writer>,
        max_running: usize,
    ) -> Self {
        let writer = InstanceWriter::new(writer);
        Runner {
            executor,
            store,
            writer,
            live: Mutex::new(HashMap::new()),
            max_running,
        }
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Checks the inputs (every problem at once), stores the instance as Running, and starts it.
    pub fn start(self: &Arc<Self>, req: StartRequest) -> Result<Started, StartError> {
        self.start_inner(req, None, None)
    }

    /// Like [`Runner::start`], but the new instance record (status Running) is stored by `commit` instead
    /// of the group-commit writer, before the run begins: the scheduler stores it in the same transaction
    /// as the occurrence that fires it. When `commit` fails nothing runs ([`StartError::Record`]).
    pub fn start_committed(
        self: &Arc<Self>,
        req: StartRequest,
        commit: &mut CommitRecord<'_>,
    ) -> Result<Started, StartError> {
        self.start_inner(req, None, Some(commit))
    }

    /// [`Runner::start_committed`] under a given instance id (a deferred run keeps the id it was answered
    /// with; its `Scheduled` record is replaced by the Running one).
    pub fn start_committed_as(
        self: &Arc<Self>,
        req: StartRequest,
        id: Uuid,
        commit: &mut CommitRecord<'_>,
    ) -> Result<Started, StartError> {
        self.start_inner(req, Some(id), Some(commit))
    }

    /// The first half of a start: checks, the record (status Running) and a place among the running
    /// instances (the cap counts it from here). Nothing is stored and nothing runs until
    /// [`Runner::launch`]; [`Runner::abandon`] gives the place back. The scheduler stores the records of many
    /// prepared starts in one transaction with their occurrences, then launches them.
    pub fn prepare(
        self: &Arc<Self>,
        req: StartRequest,
        fixed_id: Option<Uuid>,
    ) -> Result<Prepared, StartError> {
        if !req.plan.is_active {
            return Err(StartError::Inactive {
                plan: req.plan_key.clone(),
            });
        }
        self.executor.check_inputs(&req.plan, &req.inputs)?;
        if let Some(reason) = self.executor.unavailable() {
            return Err(StartError::Unavailable(reason));
        }
        let id = fixed_id.unwrap_or_else(Uuid::now_v7);
        let record = InstanceRecord {
            id,
            plan: req.plan_key.clone(),
            requester: Some(req.principal.name.clone()),
            requester_kind: Some(req.principal.kind),
            started_at: self.executor.clock().now(),
            finished_at: None,
            status: StatusType::Running,
            dry_run: req.dry_run,
            parameters: req.inputs.masked(),
            message: None,
            result: None,
        };
        let events: Arc<std::sync::OnceLock<broadcast::Sender<ProgressEvent>>> = Arc::default();
        let (done_tx, done_rx) = watch::channel(None);
        let cancel = CancellationToken::new();
        {
            // Count and register under one lock, so concurrent starts cannot overshoot the cap.
            let mut live = self.live.lock().map_err(|_| StartError::Busy {
                running: 0,
                limit: self.max_running,
            })?;
            if live.len() >= self.max_running {
                return Err(StartError::Busy {
                    running: live.len(),
                    limit: self.max_running,
                });
            }
            live.insert(
                id,
                Live {
                    cancel: cancel.clone(),
                    events: events.clone(),
                    done: done_rx.clone(),
                },
            );
        }
        Ok(Prepared {
            record,
            req,
            events,
            done_tx,
            done_rx,
            cancel,
        })
    }

    /// Gives back the place of a prepared start that will not run (its record was not stored).
    pub fn abandon(&self, p: Prepared) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&p.record.id);
        }
    }

    /// The second half of a start: runs a prepared instance (its Running record must be stored or queued).
    pub fn launch(self: &Arc<Self>, p: Prepared) -> Started {
        let Prepared {
            record,
            req,
            events,
            done_tx,
            done_rx,
            cancel,
        } = p;
        let id = record.id;
        let sink_events = events.clone();
        let progress = ProgressSink::new(move |e| {
            // Events are best-effort for watchers; without one there is nothing to do.
            if let Some(tx) = sink_events.get() {
                let _ = tx.send(e.clone());
            }
        });
        let opts = RunOptions {
            inputs: req.inputs,
            dry_run: req.dry_run,
            cancel,
            progress,
            request_user: Some(req.principal.name),
            instance_id: Some(id),
            // Checked above, before the instance was stored.
            inputs_checked: true,
        };
        let this = self.clone();
        let plan = req.plan;
        let req_keep = req.keep;
        let durable = req.durable;
        tokio::spawn(async move {
            let outcome = this.executor.run(&plan, opts).await;
            let mut record = record;
            record.finished_at = Some(this.executor.clock().now());
            let result = match outcome {
                Ok(r) => {
                    record.status = r.status;
                    record.message = (!r.message.is_empty()).then(|| r.message.clone());
                    Arc::new(r)
                }
                Err(e) => {
                    // Inputs were checked before; this is a race (plan deactivated) or a bug: record it.
                    record.status = StatusType::Failed;
                    record.message = Some(e.to_string());
                    Arc::new(failed_result(&plan, id, &e, this.executor.clock().now()))
                }
            };
            if req_keep == Keep::Result {
                record.result = Some((*result).clone());
            }
            // The final record is readable (pending) from here on, so the instance can leave the live set: a
            // cancel now finds it finished (409), a new subscriber reads the final record.
            let settled = if durable {
                Some(this.writer.put_settled(record.clone()))
            } else {
                this.writer.put_with(record.clone(), Durability::Later);
                None
            };
            if let Ok(mut live) = this.live.lock() {
                live.remove(&id);
            }
            metrics::counter!("synapse_plan_runs_total", "status" => record.status.name())
                .increment(1);
            if let Some(settled) = settled {
                // A write is answered only once its record is on disk (group commit: concurrent writes share
                // the flush). A record that cannot be stored is logged by the writer; the answer still goes.
                let _ = settled.await;
            }
            let _ = done_tx.send(Some(result));
        });
        Started { id, done: done_rx }
    }

    fn start_inner(
        self: &Arc<Self>,
        req: StartRequest,
        fixed_id: Option<Uuid>,
        commit: Option<&mut CommitRecord<'_>>,
    ) -> Result<Started, StartError> {
        let p = self.prepare(req, fixed_id)?;
        match commit {
            // A write's Running record must reach the disk (a crash then marks the instance interrupted); a
            // read's may follow within MAX_UNFLUSHED: losing it in a crash loses no trace of a change.
            None => {
                let durability = if p.req.durable {
                    Durability::Now
                } else {
                    Durability::Later
                };
                self.writer.put_with(p.record.clone(), durability)
            }
            Some(commit) => {
                if let Err(e) = commit(&p.record) {
                    self.abandon(p);
                    return Err(StartError::Record(e));
                }
            }
        }
        Ok(self.launch(p))
    }

    /// Starts and awaits the result (up to `timeout`).
    pub async fn run_sync(
        self: &Arc<Self>,
        req: StartRequest,
        timeout: Duration,
    ) -> Result<SyncOutcome, StartError> {
        let started = self.start(req)?;
        Ok(wait(started.id, started.done, timeout).await)
    }

    /// Requests cancellation; false when the instance is not running here.
    pub fn cancel(&self, id: Uuid) -> bool {
        match self
            .live
            .lock()
            .ok()
            .and_then(|l| l.get(&id).map(|x| x.cancel.clone()))
        {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }

    /// Progress events of a running instance (None when it is not running here).
    pub fn subscribe(&self, id: Uuid) -> Option<Subscription> {
        self.live.lock().ok().and_then(|l| {
            l.get(&id).map(|x| {
                (
                    x.events
                        .get_or_init(|| broadcast::channel(256).0)
                        .subscribe(),
                    x.done.clone(),
                )
            })
        })
    }

    /// Cancels everything still running (shutdown) and waits up to `grace` for the results to be stored.
    pub async fn shutdown(&self, grace: Duration) {
        let waiting: Vec<(Uuid, watch::Receiver<Option<Arc<PlanResult>>>)> = match self.live.lock()
        {
            Ok(l) => l
                .iter()
                .map(|(id, x)| {
                    x.cancel.cancel();
                    (*id, x.done.clone())
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for (id, rx) in waiting {
            let _ = wait(id, rx, grace).await;
        }
        self.writer.close();
    }

    /// An instance: queued for the store, or stored.
    pub fn instance(&self, id: Uuid) -> Result<Option<InstanceRecord>, crate::store::StoreError> {
        match self.writer.pending(id) {
            Some(r) => Ok(Some(r)),
            None => self.store.get_instance(id),
        }
    }

    /// Stores a changed record of a finished instance (late node results): readable at once, on disk when
    /// the receiver says `true`.
    pub fn store_now(&self, rec: InstanceRecord) -> tokio::sync::oneshot::Receiver<bool> {
        self.writer.put_settled(rec)
    }

    /// Waits until every queued instance record is committed (tests, shutdown).
    pub fn flush(&self) {
        self.writer.flush();
    }

    /// Whether an instance is running here.
    pub fn is_live(&self, id: Uuid) -> bool {
        self.live.lock().is_ok_and(|l| l.contains_key(&id))
    }

    pub fn running(&self) -> usize {
        self.live.lock().map(|l| l.len()).unwrap_or(0)
    }
}

async fn wait(
    id: Uuid,
    mut done: watch::Receiver<Option<Arc<PlanResult>>>,
    timeout: Duration,
) -> SyncOutcome {
    let res = tokio::time::timeout(timeout, async {
        loop {
            if let Some(r) = done.borrow().clone() {
                return Some(r);
            }
            if done.changed().await.is_err() {
                return done.borrow().clone();
            }
        }
    })
    .await;
    match res {
        Ok(Some(r)) => SyncOutcome::Finished(r),
        _ => SyncOutcome::StillRunning(id),
    }
}

fn failed_result(plan: &Plan, id: Uuid, e: &RunError, now: DateTime<Utc>) -> PlanResult {
    PlanResult {
        plan_name: plan.name.clone(),
        instance_id: id,
        status: StatusType::Failed,
        dry_run: false,
        message: e.to_string(),
        started_at: now,
        finished_at: now,
        duration_ms: 0.0,
        actions: Vec::new(),
    }
}
