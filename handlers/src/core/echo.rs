//! `EchoHandler`: returns what it was given (start info, Config, Parameters, parent exit data) as exit data,
//! with secret-looking values masked. Useful to see what a plan resolves to.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;
use synapse_engine::{ActionContext, BasicDescriptor, ExecuteResult, Handler, HandlerDescriptor};

/// See the module docs.
pub struct EchoHandler;

/// The one masking rule of the engine (secret-looking names, name/value pairs, JSON/YAML text).
fn masked(mut v: Value) -> Value {
    synapse_engine::wire::redact_value(&mut v);
    v
}

#[async_trait]
impl Handler for EchoHandler {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        Arc::new(BasicDescriptor {
            name: "EchoHandler",
            aliases: &[
                "Synapse.Core:EchoHandler",
                "Synapse.Handlers.Core:EchoHandler",
            ],
        })
    }

    async fn execute(&self, ctx: &ActionContext, config: Value, params: Value) -> ExecuteResult {
        let run_as = ctx
            .run_as
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok())
            .unwrap_or(Value::Null);
        ExecuteResult::complete(json!({
            "ActionName": ctx.action_name,
            "PlanName": ctx.plan_name,
            "PlanInstanceId": ctx.plan_instance_id.to_string(),
            "InstanceId": ctx.action_instance_id,
            "IsDryRun": ctx.dry_run,
            "RequestUser": ctx.request_user,
            "RunAs": run_as,
            "ParentExitData": ctx.parent_exit_data,
            "Config": masked(config),
            "Parameters": masked(params),
        }))
    }
}
