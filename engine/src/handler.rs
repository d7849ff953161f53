//! The handler seam: what a handler plugin implements, what it is given, and how handlers are found by name.

use crate::model::SecurityContext;
use crate::progress::{ProgressEvent, ProgressSink};
use crate::status::StatusType;
use crate::token::EscapeRule;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What a handler returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecuteResult {
    pub status: StatusType,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub exit_data: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub exit_code: i32,
}

impl ExecuteResult {
    pub fn new(status: StatusType) -> Self {
        ExecuteResult {
            status,
            exit_data: Value::Null,
            message: String::new(),
            exit_code: 0,
        }
    }

    pub fn complete(exit_data: Value) -> Self {
        ExecuteResult {
            exit_data,
            ..Self::new(StatusType::Complete)
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        ExecuteResult {
            message: message.into(),
            ..Self::new(StatusType::Failed)
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

/// Everything a handler may know about the run it is part of.
#[derive(Clone)]
pub struct ActionContext {
    pub plan_name: String,
    pub plan_instance_id: Uuid,
    pub action_instance_id: u64,
    pub action_name: String,
    pub request_user: Option<String>,
    pub dry_run: bool,
    /// Cancelled when the plan is cancelled or the action's timeout fires. Long handlers should watch it; the
    /// executor also drops the handler's future, so cancellation is real even for handlers that do not.
    pub cancel: CancellationToken,
    /// When the current attempt must finish, if the action has a `Timeout`.
    pub deadline: Option<Instant>,
    /// The effective `RunAs` (after inheritance), if any.
    pub run_as: Option<SecurityContext>,
    /// The parent's exit data (raw), as upstream's `HandlerStartInfo.ParentExitData`.
    pub parent_exit_data: Value,
    pub progress: ProgressSink,
}

impl ActionContext {
    /// Reports progress from inside a handler.
    pub fn report(&self, status: StatusType, message: impl Into<String>) {
        self.progress.emit(ProgressEvent::new(
            self.plan_instance_id,
            Some(self.action_instance_id),
            &self.action_name,
            status,
            message.into(),
        ));
    }

    /// A context for running a handler outside a plan (tests, benches, ad-hoc calls).
    pub fn standalone(action_name: &str) -> Self {
        ActionContext {
            plan_name: String::new(),
            plan_instance_id: Uuid::nil(),
            action_instance_id: 0,
            action_name: action_name.to_string(),
            request_user: None,
            dry_run: false,
            cancel: CancellationToken::new(),
            deadline: None,
            run_as: None,
            parent_exit_data: Value::Null,
            progress: ProgressSink::none(),
        }
    }
}

/// A handler plugin.
#[async_trait]
pub trait Handler: Send + Sync {
    /// The canonical short name, e.g. `EmptyHandler`.
    fn name(&self) -> &'static str;

    /// Other names this handler answers to, e.g. upstream type strings
    /// (`Synapse.Handlers.ActiveDirectory:ActiveDirectoryHandler`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// Which `Config` paths hold LDAP filters or DNs (for `~~token~~` escaping).
    fn config_escaping(&self) -> Vec<EscapeRule> {
        Vec::new()
    }

    /// Which `Parameters` paths hold LDAP filters or DNs (for `~~token~~` escaping).
    fn parameter_escaping(&self) -> Vec<EscapeRule> {
        Vec::new()
    }

    /// Runs the action. `config` and `params` are the resolved `Handler.Config` and `Parameters` values.
    async fn execute(&self, ctx: &ActionContext, config: Value, params: Value) -> ExecuteResult;
}

/// Handlers by name. Lookup accepts the short name (case-insensitive, `Handler` suffix optional) and upstream
/// `Assembly:Namespace.Class` strings, which resolve by their class name.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    by_key: BTreeMap<String, Arc<dyn Handler>>,
    names: Vec<&'static str>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler under its name and aliases.
    pub fn register(&mut self, handler: Arc<dyn Handler>) {
        self.names.push(handler.name());
        self.by_key
            .insert(normalize(handler.name()), handler.clone());
        for alias in handler.aliases() {
            self.by_key.insert(normalize(alias), handler.clone());
        }
    }

    /// Finds a handler by any accepted spelling.
    pub fn get(&self, type_name: &str) -> Option<Arc<dyn Handler>> {
        self.by_key.get(&normalize(type_name)).cloned()
    }

    /// The canonical names of every registered handler.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// `Synapse.Core:EmptyHandler` -> `emptyhandler`; `Empty` -> `emptyhandler`.
fn normalize(type_name: &str) -> String {
    let t = type_name.trim();
    let class = match t.rsplit_once(':') {
        Some((_, class)) => class,
        None => t,
    };
    let class = class
        .rsplit('.')
        .next()
        .unwrap_or(class)
        .to_ascii_lowercase();
    if class.ends_with("handler") {
        class
    } else {
        format!("{class}handler")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nop;

    #[async_trait]
    impl Handler for Nop {
        fn name(&self) -> &'static str {
            "EmptyHandler"
        }
        async fn execute(&self, _: &ActionContext, _: Value, _: Value) -> ExecuteResult {
            ExecuteResult::new(StatusType::Complete)
        }
    }

    #[test]
    fn resolves_every_spelling() {
        let mut r = HandlerRegistry::new();
        r.register(Arc::new(Nop));
        for n in [
            "EmptyHandler",
            "emptyhandler",
            "Empty",
            "Synapse.Core:EmptyHandler",
            "Synapse.Core:Synapse.Core.EmptyHandler",
        ] {
            assert!(r.get(n).is_some(), "{n}");
        }
        assert!(r.get("Synapse.Core:EchoHandler").is_none());
    }
}
