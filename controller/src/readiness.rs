//! Readiness (`/readyz`): whether each handler's targets (each AD domain) answer, with the last error. Liveness
//! is `/healthz` (the process serves).
//!
//! The targets are checked at start (one log line per target: ready, or why not; the server starts either
//! way) and then every [`CHECK_EVERY`] by a background task, through `Handler::check_targets` (for AD: open the
//! pool, bind, read the rootDSE), and again within seconds when an action's outcome is `Unavailable` (on use). A
//! change of state is logged. `/metrics` reads the pools' gauges without I/O
//! (`Handler::pool_gauges`). Handlers that run actions are also wrapped in [`Timed`], which records
//! `synapse_handler_action_seconds{handler,status}`.

use crate::reload::Live;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synapse_engine::{
    ActionContext, ExecuteResult, Handler, HandlerDescriptor, HandlerRegistry, OutcomeClass,
    PoolGauges, SharedClock, TargetHealth,
};
use utoipa::ToSchema;

/// How often the targets are checked again.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);
/// At most one extra check per this interval when actions find a target unavailable ("on use").
const RECHECK_SPACING: Duration = Duration::from_secs(5);
/// Upper bound of one round of checks (each handler bounds its own by its timeouts).
const CHECK_LIMIT: Duration = Duration::from_secs(90);

/// One target of one handler.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TargetReadiness {
    /// The handler's name (`ActiveDirectoryHandler`).
    pub handler: String,
    /// The target (the AD domain's name).
    pub target: String,
    pub ready: bool,
    /// When it was last checked (none: not yet).
    pub checked_at: Option<DateTime<Utc>>,
    /// Why the last check failed.
    pub error: Option<String>,
    /// The most recent failure, kept after it recovers.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Whether every target is ready.
#[derive(Clone, Copy, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub enum ReadyStatus {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "not ready")]
    NotReady,
}

/// The answer of `/readyz`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ReadyReport {
    pub status: ReadyStatus,
    /// Every target of every handler (empty, and not ready, until the first check at start is done).
    pub targets: Vec<TargetReadiness>,
}

/// The handlers' targets and their last check.
pub struct Readiness {
    handlers: Vec<(&'static str, Arc<dyn Handler>)>,
    /// Signalled by [`Timed`] when an action's outcome is `Unavailable`: check again soon.
    recheck: Arc<tokio::sync::Notify>,
    /// `None` until the first check is done (not ready).
    last: Live<Option<BTreeMap<(String, String), TargetReadiness>>>,
    clock: SharedClock,
}

impl Readiness {
    /// Over `registry`'s handlers; `recheck` is the signal given to [`timed`].
    pub fn new(
        registry: &HandlerRegistry,
        clock: SharedClock,
        recheck: Arc<tokio::sync::Notify>,
    ) -> Readiness {
        Readiness {
            recheck,
            handlers: registry.implementations(),
            last: Live::new(None),
            clock,
        }
    }

    /// Checks every target once, logs what changed, and keeps the result.
    pub async fn check(&self) -> ReadyReport {
        let rounds = self.handlers.iter().map(|(name, h)| async move {
            let found = tokio::time::timeout(CHECK_LIMIT, h.check_targets())
                .await
                .unwrap_or_else(|_| {
                    vec![TargetHealth {
                        target: "*".into(),
                        ready: false,
                        error: Some(format!("the check took longer than {CHECK_LIMIT:?}")),
                    }]
                });
            (*name, found)
        });
        let results = futures::future::join_all(rounds).await;
        let now = self.clock.now();
        let old = self.last.snapshot();
        let old = old.as_ref().clone().unwrap_or_default();
        let mut next = BTreeMap::new();
        for (handler, targets) in results {
            for t in targets {
                let key = (handler.to_string(), t.target.clone());
                let before = old.get(&key);
                let first = before.is_none_or(|b| b.checked_at.is_none());
                let changed = before.is_none_or(|b| b.ready != t.ready);
                if first || changed {
                    match &t.error {
                        None => {
                            tracing::info!(handler, target = %t.target, "ready: connected and bound")
                        }
                        Some(e) => tracing::error!(handler, target = %t.target, error = %e,
                            "NOT READY: requests that need it fail until it answers (checked every {CHECK_EVERY:?})"),
                    }
                }
                metrics::gauge!("synapse_ready", "handler" => handler.to_string(), "target" => t.target.clone())
                    .set(if t.ready { 1.0 } else { 0.0 });
                let (last_error, last_error_at) = match &t.error {
                    Some(e) => (Some(e.clone()), Some(now)),
                    None => {
                        before.map_or((None, None), |b| (b.last_error.clone(), b.last_error_at))
                    }
                };
                next.insert(
                    key,
                    TargetReadiness {
                        handler: handler.to_string(),
                        target: t.target,
                        ready: t.ready,
                        checked_at: Some(now),
                        error: t.error,
                        last_error,
                        last_error_at,
                    },
                );
            }
        }
        self.last.swap(Some(next));
        self.report()
    }

    /// The last check's result.
    pub fn report(&self) -> ReadyReport {
        let last = self.last.snapshot();
        let targets: Vec<TargetReadiness> = last
            .as_ref()
            .as_ref()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        let ready = last.is_some() && targets.iter().all(|t| t.ready);
        ReadyReport {
            status: if ready {
                ReadyStatus::Ready
            } else {
                ReadyStatus::NotReady
            },
            targets,
        }
    }

    /// Sets the pool gauges (`synapse_ldap_pool_*{handler,target}`) from the handlers' pools.
    pub fn record_pool_gauges(&self) {
        for (handler, h) in &self.handlers {
            for (target, g) in h.pool_gauges() {
                record_pool(handler, &target, g);
            }
        }
    }

    /// Checks now, then every [`CHECK_EVERY`], and soon after an action finds a target unavailable (at most
    /// once per [`RECHECK_SPACING`]). Must be called inside a Tokio runtime.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = self.recheck.notified() => {}
                }
                self.check().await;
                tokio::time::sleep(RECHECK_SPACING).await;
            }
        })
    }
}

// Counts and sizes far below 2^52 are exact in an f64.
#[allow(clippy::cast_precision_loss)]
fn record_pool(handler: &str, target: &str, g: PoolGauges) {
    let (h, t) = (handler.to_string(), target.to_string());
    metrics::gauge!("synapse_ldap_pool_connections", "handler" => h.clone(), "target" => t.clone(), "state" => "in_use")
        .set(g.in_use as f64);
    metrics::gauge!("synapse_ldap_pool_connections", "handler" => h.clone(), "target" => t.clone(), "state" => "idle")
        .set(g.idle as f64);
    metrics::counter!("synapse_ldap_pool_opened_total", "handler" => h.clone(), "target" => t.clone())
        .absolute(g.opened);
    metrics::counter!("synapse_ldap_pool_errors_total", "handler" => h, "target" => t)
        .absolute(g.errors);
}

/// A handler whose actions are timed (`synapse_handler_action_seconds{handler,status}`) and whose
/// `Unavailable` outcomes ask for a readiness check.
pub struct Timed {
    inner: Arc<dyn Handler>,
    descriptor: Arc<dyn HandlerDescriptor>,
    name: &'static str,
    recheck: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Handler for Timed {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        self.inner.descriptor()
    }

    async fn execute(&self, ctx: &ActionContext, config: Value, params: Value) -> ExecuteResult {
        let started = Instant::now();
        let r = self.inner.execute(ctx, config, params).await;
        metrics::histogram!("synapse_handler_action_seconds", "handler" => self.name, "status" => format!("{:?}", r.status))
            .record(started.elapsed().as_secs_f64());
        if r.status != synapse_engine::StatusType::Complete
            && self.descriptor.outcome(r.status, &r.exit_data) == OutcomeClass::Unavailable
        {
            self.recheck.notify_one();
        }
        r
    }

    async fn check_targets(&self) -> Vec<TargetHealth> {
        self.inner.check_targets().await
    }

    fn pool_gauges(&self) -> Vec<(String, PoolGauges)> {
        self.inner.pool_gauges()
    }

    fn unconfigured(&self) -> Option<String> {
        self.inner.unconfigured()
    }
}

/// The registry with every in-process handler wrapped in [`Timed`].
pub fn timed(mut registry: HandlerRegistry, recheck: &Arc<tokio::sync::Notify>) -> HandlerRegistry {
    for (name, h) in registry.implementations() {
        registry.register(Arc::new(Timed {
            descriptor: h.descriptor(),
            inner: h,
            name,
            recheck: recheck.clone(),
        }));
    }
    registry
}

/// Describes the metrics this crate records (`# HELP` lines on `/metrics`). Call once after installing the
/// recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "synapse_http_requests_total",
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        "synapse_http_request_seconds",
        Unit::Seconds,
        "HTTP request latency by method and route template."
    );
    describe_counter!("synapse_auth_failures_total", "Requests refused before their route ran: no key, malformed header, unknown, disabled or expired key.");
    describe_counter!(
        "synapse_plan_runs_total",
        "Finished plan instances by status."
    );
    describe_histogram!(
        "synapse_store_batch_records",
        "Records per store commit (group commit)."
    );
    describe_histogram!(
        "synapse_handler_action_seconds",
        Unit::Seconds,
        "Handler action latency by handler and status."
    );
    describe_gauge!(
        "synapse_plans_unroutable",
        "Valid plans with a handler nothing can run now (no live node serves it, or not configured here): /healthz PlanWarnings."
    );
    describe_counter!(
        "synapse_node_late_results_total",
        "Node results recorded into an instance after it ended here (controller restarted while they ran)."
    );
    describe_gauge!(
        "synapse_ready",
        "1 when the handler's target (an AD domain) answered its last check, else 0."
    );
    describe_gauge!(
        "synapse_ldap_pool_connections",
        "LDAP pool connections by state (in_use, idle)."
    );
    describe_counter!(
        "synapse_ldap_pool_opened_total",
        "LDAP connections opened and bound since start."
    );
    describe_counter!(
        "synapse_ldap_pool_errors_total",
        "LDAP connections that failed to open, broke or were dropped since start."
    );
    describe_counter!(
        "synapse_reloads_total",
        "Live reloads by what was reloaded and result (ok, problems, failed)."
    );
    describe_gauge!(
        "synapse_reload_problems",
        "Files of the last reload whose current version is refused."
    );
}
