//! The dispatch seam: how one resolved action reaches a handler. A job is the serializable
//! [`ActionRequest`] (what a remote node would receive) plus the [`ActionRuntime`] that stays in this process
//! (cancellation, progress, the clock, the monotonic deadline). `InProcess` calls the handler directly, with
//! no serialization and no copies; a remote dispatcher (NATS, later) sends the request and maps what it knows
//! about delivery into a [`DispatchOutcome`].

use crate::clock::SharedClock;
use crate::handler::{ActionContext, HandlerRegistry};
use crate::progress::ProgressSink;
use crate::wire::{ActionRequest, DispatchOutcome};
use async_trait::async_trait;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The parts of a job that never cross a process boundary.
#[derive(Clone)]
pub struct ActionRuntime {
    /// Cancelled when the plan is cancelled or the attempt's timeout fires.
    pub cancel: CancellationToken,
    pub progress: ProgressSink,
    pub clock: SharedClock,
    /// The attempt's deadline on this machine's monotonic clock.
    pub deadline: Option<Instant>,
    /// Deliveries of this request so far (1 in process; more when a node worker redelivers it).
    pub delivery: u32,
}

/// One resolved action, ready to run.
pub struct ActionJob {
    pub request: ActionRequest,
    pub runtime: ActionRuntime,
}

impl ActionJob {
    /// Splits the job into the handler's context and its Config and Parameters (moved, not copied).
    pub fn into_parts(self) -> (ActionContext, serde_json::Value, serde_json::Value) {
        let r = self.request;
        let ctx = ActionContext {
            plan_name: r.plan_name,
            plan_instance_id: r.plan_instance_id,
            action_instance_id: r.action_instance_id,
            action_name: r.action_name,
            attempt: r.attempt,
            idempotency_key: r.idempotency_key,
            delivery: self.runtime.delivery,
            request_user: r.principal,
            dry_run: r.dry_run,
            cancel: self.runtime.cancel,
            deadline: self.runtime.deadline,
            run_as: r.run_as,
            parent_exit_data: r.parent_exit_data,
            progress: self.runtime.progress,
            clock: self.runtime.clock,
        };
        (ctx, r.config, r.params)
    }
}

/// Sends an action to wherever its handler runs and awaits the outcome. Transport problems are not
/// `Failed` results: they say whether the request was delivered ([`DispatchOutcome::NotDelivered`] is safe to
/// retry, [`DispatchOutcome::Unknown`] is not for writes).
#[async_trait]
pub trait Dispatcher: Send + Sync {
    async fn dispatch(&self, job: ActionJob) -> DispatchOutcome;

    /// Why nothing can be dispatched right now (a remote transport that lost its server), or None. Starts
    /// are refused with this message instead of failing every action.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// Runs handlers in this process (the embedded default). A panicking handler fails its action, not the run;
/// its outcome is unknown (it may have changed something before it panicked).
#[derive(Clone)]
pub struct InProcess {
    registry: Arc<HandlerRegistry>,
}

impl InProcess {
    pub fn new(registry: Arc<HandlerRegistry>) -> Self {
        InProcess { registry }
    }
}

#[async_trait]
impl Dispatcher for InProcess {
    async fn dispatch(&self, job: ActionJob) -> DispatchOutcome {
        let Some(handler) = self.registry.get(&job.request.handler_type) else {
            let reason = match self.registry.descriptor(&job.request.handler_type) {
                Some(d) => format!("handler '{}' does not run in this process", d.name()),
                None => format!("unknown handler '{}'", job.request.handler_type),
            };
            return DispatchOutcome::NotDelivered { reason };
        };
        let (ctx, config, params) = job.into_parts();
        let fut = handler.execute(&ctx, config, params);
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(r) => DispatchOutcome::Done(r),
            Err(_) => DispatchOutcome::Unknown {
                reason: format!("handler '{}' panicked", handler.descriptor().name()),
            },
        }
    }
}
