//! The dispatch seam: how one resolved action reaches a handler. `InProcess` calls the handler directly;
//! remote implementations (NATS, later) send the job to a node and await its outcome.

use crate::handler::{ActionContext, ExecuteResult, HandlerRegistry};
use async_trait::async_trait;
use futures::FutureExt;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// One resolved action, ready to run.
pub struct ActionJob {
    /// The handler's type string as the plan wrote it (any accepted spelling).
    pub handler_type: String,
    pub config: Value,
    pub params: Value,
    pub ctx: ActionContext,
}

/// Sends an action to wherever handlers run and awaits the outcome. Never fails: transport problems come
/// back as a `Failed` result with a message.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    async fn dispatch(&self, job: ActionJob) -> ExecuteResult;
}

/// Runs handlers in this process (the embedded default). A panicking handler fails its action, not the run.
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
    async fn dispatch(&self, job: ActionJob) -> ExecuteResult {
        let Some(handler) = self.registry.get(&job.handler_type) else {
            return ExecuteResult::failed(format!("unknown handler '{}'", job.handler_type));
        };
        let ctx = job.ctx;
        let fut = handler.execute(&ctx, job.config, job.params);
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(r) => r,
            Err(_) => ExecuteResult::failed(format!("handler '{}' panicked", handler.name())),
        }
    }
}
