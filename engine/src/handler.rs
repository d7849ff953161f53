//! The handler seam: what a handler plugin implements, what it is given, and how handlers are found by name.

pub use crate::descriptor::{ActionKind, HandlerDescriptor, OutcomeClass, RequestErrorInfo};

use crate::clock::SharedClock;
use crate::model::SecurityContext;
use crate::progress::{ProgressEvent, ProgressSink};
use crate::status::StatusType;
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
    /// Where a remote dispatcher ran the handler (None in process). Set by the dispatcher, not the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_on: Option<RanOn>,
}

/// The node that ran an action and how many times its request was delivered (more than 1: redelivered after a
/// node was lost or timed out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RanOn {
    pub node: String,
    pub delivery: u32,
}

impl ExecuteResult {
    pub fn new(status: StatusType) -> Self {
        ExecuteResult {
            status,
            exit_data: Value::Null,
            message: String::new(),
            exit_code: 0,
            ran_on: None,
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

/// Everything a handler may know about the run it is part of: the fields of the wire request
/// ([`crate::wire::ActionRequest`]) except Config and Parameters, plus the parts that only exist where the
/// handler runs (cancellation, progress, the clock, a monotonic deadline).
#[derive(Clone)]
pub struct ActionContext {
    pub plan_name: String,
    pub plan_instance_id: Uuid,
    pub action_instance_id: u64,
    pub action_name: String,
    /// 1 for the first attempt, 2 after one retry, ...
    pub attempt: u32,
    /// Unique per (plan instance, action, attempt): a redelivered request carries the same key, a retry a new
    /// one. Handlers that talk to systems with idempotency support can pass it on.
    pub idempotency_key: crate::wire::IdempotencyKey,
    /// How many times this attempt's request has been delivered: 1, or more when a node worker was lost and
    /// the same request (same key) came again. A handler can check what a first delivery may have done.
    pub delivery: u32,
    /// The requesting principal.
    pub request_user: Option<String>,
    pub dry_run: bool,
    /// Cancelled when the plan is cancelled or the action's timeout fires. Long handlers should watch it; the
    /// executor also drops the handler's future, so cancellation is real even for handlers that do not.
    pub cancel: CancellationToken,
    /// When the current attempt must finish, if the action has a `Timeout` (monotonic, local).
    pub deadline: Option<Instant>,
    /// The effective `RunAs` (after inheritance), if any.
    pub run_as: Option<SecurityContext>,
    /// The parent's exit data (raw), as upstream's `HandlerStartInfo.ParentExitData`.
    pub parent_exit_data: Value,
    pub progress: ProgressSink,
    pub clock: SharedClock,
}

impl ActionContext {
    /// Reports progress from inside a handler.
    pub fn report(&self, status: StatusType, message: impl Into<String>) {
        self.progress.emit(ProgressEvent::at(
            self.plan_instance_id,
            Some(self.action_instance_id),
            &self.action_name,
            status,
            message.into(),
            self.clock.now(),
        ));
    }

    /// A context for running a handler outside a plan (tests, benches, ad-hoc calls).
    pub fn standalone(action_name: &str) -> Self {
        ActionContext {
            plan_name: String::new(),
            plan_instance_id: Uuid::nil(),
            action_instance_id: 0,
            action_name: action_name.to_string(),
            attempt: 1,
            idempotency_key: Default::default(),
            delivery: 1,
            request_user: None,
            dry_run: false,
            cancel: CancellationToken::new(),
            deadline: None,
            run_as: None,
            parent_exit_data: Value::Null,
            progress: ProgressSink::none(),
            clock: crate::clock::system(),
        }
    }
}

/// A handler plugin: runs actions. What the rest of the system needs to know about it without running it
/// (names, escaping, reads vs writes, outcome classes) is its [`HandlerDescriptor`].
#[async_trait]
pub trait Handler: Send + Sync {
    /// The handler's metadata. Called once, at registration.
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor>;

    /// Runs the action. `config` and `params` are the resolved `Handler.Config` and `Parameters` values.
    async fn execute(&self, ctx: &ActionContext, config: Value, params: Value) -> ExecuteResult;

    /// Checks what the handler talks to (an AD domain: connect, bind, read the rootDSE), one entry per
    /// target, bounded by the handler's own timeouts. The controller's `/readyz` and start-up check call it.
    /// Default: no targets (always ready).
    async fn check_targets(&self) -> Vec<TargetHealth> {
        Vec::new()
    }

    /// Why this handler, as configured, can run nothing (the ActiveDirectoryHandler without a domain), or
    /// None. The controller warns about plans that use such a handler (`/healthz` `PlanWarnings`,
    /// `synapse plan validate`). Default: None.
    fn unconfigured(&self) -> Option<String> {
        None
    }

    /// The connection pools' gauges per target, without I/O (for `/metrics`). Default: none.
    fn pool_gauges(&self) -> Vec<(String, PoolGauges)> {
        Vec::new()
    }
}

/// Whether one target of a handler (an AD domain) answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetHealth {
    /// The target's name (the AD domain's name).
    pub target: String,
    pub ready: bool,
    /// Why it is not ready (never a secret).
    pub error: Option<String>,
}

/// A connection pool's gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolGauges {
    pub in_use: usize,
    pub idle: usize,
    /// Connections opened since start.
    pub opened: u64,
    /// Connections that failed to open, broke or were dropped since start.
    pub errors: u64,
}

/// One registered handler: its descriptor always, its implementation when it runs in this process.
#[derive(Clone)]
struct Registered {
    descriptor: Arc<dyn HandlerDescriptor>,
    handler: Option<Arc<dyn Handler>>,
}

/// Handlers by name. Lookup accepts the short name (case-insensitive, `Handler` suffix optional) and upstream
/// `Assembly:Namespace.Class` strings, which resolve by their class name.
///
/// A handler is either registered with its implementation ([`HandlerRegistry::register`]: it can run in
/// this process) or by descriptor only ([`HandlerRegistry::register_descriptor`]: plans that use it
/// validate, resolve and route, and a remote node runs it). Registering a name again replaces it.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    by_key: BTreeMap<String, Registered>,
    names: Vec<&'static str>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a handler that runs in this process, under its name and aliases.
    pub fn register(&mut self, handler: Arc<dyn Handler>) {
        let descriptor = handler.descriptor();
        self.insert(Registered {
            descriptor,
            handler: Some(handler),
        });
    }

    /// Adds (or replaces) a handler known by its descriptor only (it runs elsewhere).
    pub fn register_descriptor(&mut self, descriptor: Arc<dyn HandlerDescriptor>) {
        self.insert(Registered {
            descriptor,
            handler: None,
        });
    }

    fn insert(&mut self, r: Registered) {
        let name = r.descriptor.name();
        if !self.names.contains(&name) {
            self.names.push(name);
        }
        // Drop the keys of an earlier registration under this name (its aliases may differ).
        self.by_key.retain(|_, v| v.descriptor.name() != name);
        for alias in r.descriptor.aliases() {
            self.by_key.insert(normalize(alias), r.clone());
        }
        self.by_key.insert(normalize(name), r);
    }

    /// The implementation of a handler that runs in this process, by any accepted spelling.
    pub fn get(&self, type_name: &str) -> Option<Arc<dyn Handler>> {
        self.by_key
            .get(&normalize(type_name))
            .and_then(|r| r.handler.clone())
    }

    /// A handler's descriptor (local or remote), by any accepted spelling.
    pub fn descriptor(&self, type_name: &str) -> Option<Arc<dyn HandlerDescriptor>> {
        self.by_key
            .get(&normalize(type_name))
            .map(|r| r.descriptor.clone())
    }

    /// The canonical names of every registered handler, once each, in registration order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The handlers that run in this process, once each (by canonical name), in registration order.
    pub fn implementations(&self) -> Vec<(&'static str, Arc<dyn Handler>)> {
        self.names
            .iter()
            .filter_map(|n| self.get(n).map(|h| (*n, h)))
            .collect()
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

    struct NopInfo;
    impl HandlerDescriptor for NopInfo {
        fn name(&self) -> &'static str {
            "EmptyHandler"
        }
        fn aliases(&self) -> &'static [&'static str] {
            &["Synapse.Core:Nothing"]
        }
    }

    #[async_trait]
    impl Handler for Nop {
        fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
            Arc::new(NopInfo)
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
        assert!(r.get("Nothing").is_some());
    }

    #[test]
    fn registering_again_replaces_and_lists_once() {
        let mut r = HandlerRegistry::new();
        r.register(Arc::new(Nop));
        r.register(Arc::new(Nop));
        assert_eq!(r.names(), &["EmptyHandler"]);
        r.register_descriptor(Arc::new(NopInfo));
        assert_eq!(r.names(), &["EmptyHandler"]);
        assert!(
            r.get("Empty").is_none(),
            "descriptor-only: nothing runs here"
        );
        assert!(r.descriptor("Synapse.Core:Nothing").is_some());
    }
}
