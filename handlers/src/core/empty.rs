//! `EmptyHandler {SleepMilliseconds, ReturnStatus, ExitData, Message, ProgressCount}`: sleeps (cancellably),
//! then returns the given status and data. With `ProgressCount: N` it reports N progress events
//! (`step i/N`), one after each N-th of the sleep. The engine's test workhorse, as upstream's.

use super::field;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use synapse_engine::{
    ActionContext, BasicDescriptor, ExecuteResult, Handler, HandlerDescriptor, StatusType,
};

/// See the module docs.
pub struct EmptyHandler;

#[async_trait]
impl Handler for EmptyHandler {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        Arc::new(BasicDescriptor {
            name: "EmptyHandler",
            aliases: &[
                "Synapse.Core:EmptyHandler",
                "Synapse.Handlers.Core:EmptyHandler",
            ],
        })
    }

    async fn execute(&self, ctx: &ActionContext, config: Value, params: Value) -> ExecuteResult {
        let sleep_ms = match field(&params, &config, "SleepMilliseconds") {
            None => 0,
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(ms) => ms,
                None => {
                    return ExecuteResult::failed(format!(
                        "SleepMilliseconds: '{v}' is not a number of milliseconds"
                    ))
                }
            },
        };
        let status = match field(&params, &config, "ReturnStatus") {
            None => StatusType::Complete,
            Some(v) => {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                match text.parse::<StatusType>() {
                    Ok(s) => s,
                    Err(e) => return ExecuteResult::failed(format!("ReturnStatus: {e}")),
                }
            }
        };
        let steps = match field(&params, &config, "ProgressCount") {
            None => 0,
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| *n <= 1000)
            {
                Some(n) => n,
                None => {
                    return ExecuteResult::failed(format!(
                        "ProgressCount: '{v}' is not a number from 0 to 1000"
                    ))
                }
            },
        };
        let parts = steps.max(1);
        for step in 1..=parts {
            if sleep_ms > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(sleep_ms / parts)) => {}
                    _ = ctx.cancel.cancelled() => {
                        return ExecuteResult::new(StatusType::Cancelled).with_message("cancelled while sleeping");
                    }
                }
            }
            if steps > 0 {
                ctx.report(StatusType::Running, format!("step {step}/{steps}"));
            }
        }
        let exit_data = field(&params, &config, "ExitData")
            .cloned()
            .unwrap_or(Value::Null);
        let message = field(&params, &config, "Message")
            .map(|m| {
                m.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| m.to_string())
            })
            .unwrap_or_default();
        ExecuteResult {
            status,
            exit_data,
            message,
            exit_code: 0,
            ran_on: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn returns_what_it_is_told() {
        let ctx = ActionContext::standalone("t");
        let r = EmptyHandler
            .execute(
                &ctx,
                Value::Null,
                json!({"ReturnStatus": "Failed", "ExitData": {"a": 1}}),
            )
            .await;
        assert_eq!(r.status, StatusType::Failed);
        assert_eq!(r.exit_data, json!({"a": 1}));
        let r = EmptyHandler
            .execute(&ctx, Value::Null, json!({"ReturnStatus": "Nope"}))
            .await;
        assert_eq!(r.status, StatusType::Failed);
        assert!(r.message.contains("Nope"));
    }

    #[tokio::test]
    async fn sleep_is_cancellable() {
        let ctx = ActionContext::standalone("t");
        ctx.cancel.cancel();
        let r = EmptyHandler
            .execute(&ctx, Value::Null, json!({"SleepMilliseconds": 60000}))
            .await;
        assert_eq!(r.status, StatusType::Cancelled);
    }
}
