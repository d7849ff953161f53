//! The executor: walks the action tree, resolves each action's parameters, dispatches it, and rolls up
//! statuses.
//!
//! Semantics (upstream's, except where docs/plan-language.md says otherwise):
//! - Root actions are filtered against `None`, so only roots without an ExecuteCase (or `Any`) run.
//! - An action's `ActionGroup` (with its whole subtree) finishes before the action's `Actions` start; the
//!   children are filtered against the worst of the action's own status and its ActionGroup's statuses.
//! - Siblings and ForEach clones run concurrently.
//! - A resolve failure marks the action Failed without running its handler; its children are still
//!   evaluated, so `ExecuteCase: Failed` branches run.
//! - Cancellation is real: the handler's future is dropped, and actions not yet started are recorded as
//!   Cancelled. `Timeout` bounds each attempt; `Retry` re-runs failed attempts.

use crate::clock::{self, SharedClock};
use crate::descriptor::{ActionKind, HandlerDescriptor};
use crate::dispatch::{ActionJob, ActionRuntime, Dispatcher};
use crate::handler::{ExecuteResult, HandlerRegistry};
use crate::model::{ActionItem, Plan, RetryPolicy, SecurityContext};
use crate::params::DynamicParams;
use crate::progress::{ProgressEvent, ProgressSink};
use crate::resolve::{self, NamedSets, ResolveEnv, ResolveError, SetKind};
use crate::result::{ActionResult, PlanResult};
use crate::status::StatusType;
use crate::wire::{ActionRequest, DispatchOutcome, IdempotencyKey, WIRE_VERSION};
use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How one run is started.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub inputs: DynamicParams,
    pub dry_run: bool,
    pub cancel: CancellationToken,
    pub progress: ProgressSink,
    pub request_user: Option<String>,
    /// Defaults to a new v7 UUID.
    pub instance_id: Option<Uuid>,
    /// The caller already ran [`Executor::check_inputs`] on these inputs (the controller does, to refuse a
    /// start before storing it): the run does not check them again.
    pub inputs_checked: bool,
}

/// Why a run did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The inputs are missing or invalid; nothing ran.
    #[error("{0}")]
    Inputs(ResolveError),
    #[error("plan '{0}' is not active (IsActive: false)")]
    Inactive(String),
}

/// Runs plans with handlers from a registry through a dispatcher.
#[derive(Clone)]
pub struct Executor {
    registry: Arc<HandlerRegistry>,
    dispatcher: Arc<dyn Dispatcher>,
    clock: SharedClock,
}

impl Executor {
    pub fn new(registry: Arc<HandlerRegistry>, dispatcher: Arc<dyn Dispatcher>) -> Self {
        Executor {
            registry,
            dispatcher,
            clock: clock::system(),
        }
    }

    /// The same executor reading calendar time from `clock` (timestamps, progress events, deadlines).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// An executor that runs handlers in this process.
    pub fn in_process(registry: Arc<HandlerRegistry>) -> Self {
        let dispatcher = Arc::new(crate::dispatch::InProcess::new(registry.clone()));
        Executor::new(registry, dispatcher)
    }

    pub fn registry(&self) -> &HandlerRegistry {
        &self.registry
    }

    /// Why the dispatcher cannot dispatch now ([`Dispatcher::unavailable`]), or None.
    pub fn unavailable(&self) -> Option<String> {
        self.dispatcher.unavailable()
    }

    /// Checks every input before anything runs: required and token inputs ([`resolve::check_inputs`]) and the
    /// values tokens put into escaped places ([`resolve::check_escaped_inputs`], with each action's handler
    /// descriptor). Every problem at once.
    pub fn check_inputs(
        &self,
        plan: &Plan,
        inputs: &crate::DynamicParams,
    ) -> Result<(), resolve::ResolveError> {
        let missing = resolve::check_inputs(plan, inputs);
        let escaped = resolve::check_escaped_inputs(plan, inputs, &|item| {
            self.registry.descriptor(&handler_type(plan, item))
        });
        match (missing, escaped) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(mut a), Err(b)) => {
                a.problems.extend(b.problems);
                Err(a)
            }
        }
    }

    /// Checks inputs, then runs the plan to completion (or cancellation).
    pub async fn run(&self, plan: &Plan, opts: RunOptions) -> Result<PlanResult, RunError> {
        if !plan.is_active {
            return Err(RunError::Inactive(plan.name.clone()));
        }
        let instance_id = opts.instance_id.unwrap_or_else(Uuid::now_v7);
        let mut inputs = opts.inputs.clone();
        add_start_info(&mut inputs, plan, instance_id, opts.request_user.as_deref());
        if !opts.inputs_checked {
            self.check_inputs(plan, &inputs).map_err(RunError::Inputs)?;
        }
        let run = Run {
            executor: self,
            plan,
            inputs,
            token_defaults: resolve::token_defaults(plan),
            sets: NamedSets::default(),
            opts,
            instance_id,
            next_id: AtomicU64::new(1),
        };
        let started_at = self.clock.now();
        let clock = Instant::now();
        run.emit(None, &plan.name, StatusType::Running, "plan started".into());
        let roots: Vec<&ActionItem> = plan
            .actions
            .iter()
            .filter(|a| case_matches(a, StatusType::None))
            .collect();
        let results: Vec<ActionResult> = join_all(
            roots
                .iter()
                .map(|a| run.run_item(a, &Value::Null, plan.run_as.as_ref())),
        )
        .await
        .into_iter()
        .flatten()
        .collect();
        let mut status = roll_up(&results).unwrap_or(StatusType::Complete);
        let mut message = String::new();
        if results.is_empty() {
            status = StatusType::Complete;
            message = "no action ran".into();
        }
        if run.opts.cancel.is_cancelled() {
            status = status.worst(StatusType::Cancelled);
            message = "the plan was cancelled".into();
        }
        run.emit(None, &plan.name, status, "plan finished".into());
        Ok(PlanResult {
            plan_name: plan.name.clone(),
            instance_id,
            status,
            dry_run: run.opts.dry_run,
            message,
            started_at,
            finished_at: self.clock.now(),
            duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
            actions: results,
        })
    }
}

/// Upstream injects these into every run; they override caller keys of the same name.
fn add_start_info(inputs: &mut DynamicParams, plan: &Plan, id: Uuid, user: Option<&str>) {
    inputs.insert("PlanStartInfo_Name", plan.name.clone());
    inputs.insert(
        "PlanStartInfo_UniqueName",
        plan.unique_name
            .clone()
            .unwrap_or_else(|| plan.name.clone()),
    );
    inputs.insert("PlanStartInfo_IsActive", plan.is_active.to_string());
    inputs.insert("PlanStartInfo_InstanceId", id.to_string());
    inputs.insert("PlanStartInfo_RequestUser", user.unwrap_or("").to_string());
}

/// The handler type an action uses: its own `Handler.Type`, else the plan's `DefaultHandlerType` (empty when
/// neither is set).
fn handler_type(plan: &Plan, item: &ActionItem) -> String {
    item.handler
        .as_ref()
        .and_then(|h| h.r#type.clone())
        .filter(|t| !t.trim().is_empty())
        .or_else(|| plan.default_handler_type.clone())
        .unwrap_or_default()
}

fn case_matches(a: &ActionItem, status: StatusType) -> bool {
    a.execute_case.as_ref().is_none_or(|c| c.matches(status))
}

/// The `RunAs` an action runs with: its own when it blocks inheritance or nothing is inherited, else the
/// inherited one (upstream: inheritance overwrites the child's credentials unless BlockInheritance).
fn effective_run_as<'a>(
    own: Option<&'a SecurityContext>,
    inherited: Option<&'a SecurityContext>,
) -> Option<&'a SecurityContext> {
    match (own, inherited) {
        (Some(o), _) if o.blocks_inheritance() => Some(o),
        (_, Some(i)) if i.is_inheritable => Some(i),
        (o, _) => o,
    }
}

struct Run<'p> {
    executor: &'p Executor,
    plan: &'p Plan,
    inputs: DynamicParams,
    token_defaults: HashMap<String, Value>,
    sets: NamedSets,
    opts: RunOptions,
    instance_id: Uuid,
    next_id: AtomicU64,
}

/// Everything one expansion of an action needs to execute.
struct Expansion<'a> {
    item: &'a ActionItem,
    descriptor: Option<Arc<dyn HandlerDescriptor>>,
    handler_type: String,
    config: Value,
    params: Value,
    index: Option<usize>,
    run_as: Option<&'a SecurityContext>,
    parent_exit: &'a Value,
}

impl<'p> Run<'p> {
    fn emit(&self, id: Option<u64>, name: &str, status: StatusType, message: String) {
        if self.opts.progress.is_active() {
            self.opts.progress.emit(ProgressEvent::at(
                self.instance_id,
                id,
                name,
                status,
                message,
                self.executor.clock.now(),
            ));
        }
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A result for an action whose handler did not run.
    fn not_run(
        &self,
        item: &ActionItem,
        handler: &str,
        status: StatusType,
        message: String,
    ) -> ActionResult {
        let now = self.executor.clock.now();
        ActionResult {
            name: item.name.clone(),
            instance_id: self.new_id(),
            handler: handler.to_string(),
            status,
            branch_status: status,
            message,
            exit_data: Value::Null,
            exit_code: 0,
            attempts: 0,
            node: None,
            delivery: None,
            late: false,
            for_each_index: None,
            started_at: now,
            finished_at: now,
            duration_ms: 0.0,
            action_group: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Resolves and runs one action (all its ForEach clones) with its subtree.
    fn run_item<'a>(
        &'a self,
        item: &'a ActionItem,
        parent_exit: &'a Value,
        inherited_run_as: Option<&'a SecurityContext>,
    ) -> BoxFuture<'a, Vec<ActionResult>> {
        async move {
            let handler_type = handler_type(self.plan, item);
            if self.opts.cancel.is_cancelled() {
                let msg = "not started: the plan was cancelled".to_string();
                return vec![self.not_run(item, &handler_type, StatusType::Cancelled, msg)];
            }
            let descriptor = self.executor.registry.descriptor(&handler_type);
            let run_as = effective_run_as(item.run_as.as_ref(), inherited_run_as);
            let resolved = match &descriptor {
                None if handler_type.is_empty() => {
                    Err("Handler.Type is empty and the plan has no DefaultHandlerType".to_string())
                }
                None => Err(format!("unknown handler '{handler_type}'")),
                Some(h) => self.resolve_action(item, h.as_ref(), parent_exit),
            };
            let (configs, params) = match resolved {
                Ok(x) => x,
                Err(message) => {
                    let mut r = self.not_run(item, &handler_type, StatusType::Failed, message);
                    self.emit(Some(r.instance_id), &item.name, r.status, r.message.clone());
                    let (group, children) = self
                        .run_children(item, StatusType::Failed, &Value::Null, run_as)
                        .await;
                    r.branch_status = branch(r.status, &group, &children);
                    r.action_group = group;
                    r.actions = children;
                    return vec![r];
                }
            };
            let expand = configs.len() * params.len() > 1;
            let mut expansions = Vec::with_capacity(configs.len() * params.len());
            for c in &configs {
                for p in &params {
                    let index = expand.then_some(expansions.len());
                    expansions.push(Expansion {
                        item,
                        descriptor: descriptor.clone(),
                        handler_type: handler_type.clone(),
                        config: c.clone(),
                        params: p.clone(),
                        index,
                        run_as,
                        parent_exit,
                    });
                }
            }
            if expansions.is_empty() {
                let msg = "ForEach produced no values; the handler did not run".to_string();
                return vec![self.not_run(item, &handler_type, StatusType::Complete, msg)];
            }
            join_all(expansions.into_iter().map(|e| self.run_expansion(e))).await
        }
        .boxed()
    }

    fn resolve_action(
        &self,
        item: &ActionItem,
        handler: &dyn HandlerDescriptor,
        parent_exit: &Value,
    ) -> Result<(Vec<Value>, Vec<Value>), String> {
        let config_rules = handler.config_escaping();
        let param_rules = handler.parameter_escaping();
        let env = |kind, escaping| ResolveEnv {
            inputs: &self.inputs,
            token_defaults: &self.token_defaults,
            parent_exit_data: parent_exit,
            sets: &self.sets,
            kind,
            escaping,
        };
        let config = item.handler.as_ref().and_then(|h| h.config.as_ref());
        let configs = resolve::resolve(config, &env(SetKind::Config, config_rules))
            .map_err(|e| format!("resolving Handler.Config: {e}"))?;
        let params = resolve::resolve(
            item.parameters.as_ref(),
            &env(SetKind::Parameters, param_rules),
        )
        .map_err(|e| format!("resolving Parameters: {e}"))?;
        Ok((configs, params))
    }

    fn run_expansion<'a>(&'a self, e: Expansion<'a>) -> BoxFuture<'a, ActionResult> {
        async move {
            let id = self.new_id();
            let started_at = self.executor.clock.now();
            let clock = Instant::now();
            self.emit(
                Some(id),
                &e.item.name,
                StatusType::Running,
                "started".into(),
            );
            let (outcome, attempts) = self.execute_with_policy(&e, id).await;
            if let Some(save) = &e.item.save_exit_data_as {
                if let Some(name) = &save.config {
                    self.sets
                        .insert(SetKind::Config, name, outcome.exit_data.clone());
                }
                if let Some(name) = &save.parameters {
                    self.sets
                        .insert(SetKind::Parameters, name, outcome.exit_data.clone());
                }
            }
            self.emit(
                Some(id),
                &e.item.name,
                outcome.status,
                outcome.message.clone(),
            );
            let finished_at = self.executor.clock.now();
            let duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
            let (group, children) = self
                .run_children(e.item, outcome.status, &outcome.exit_data, e.run_as)
                .await;
            ActionResult {
                name: e.item.name.clone(),
                instance_id: id,
                handler: e
                    .descriptor
                    .as_ref()
                    .map(|h| h.name().to_string())
                    .unwrap_or(e.handler_type),
                status: outcome.status,
                branch_status: branch(outcome.status, &group, &children),
                message: outcome.message,
                exit_data: outcome.exit_data,
                exit_code: outcome.exit_code,
                attempts,
                node: outcome.ran_on.as_ref().map(|r| r.node.clone()),
                delivery: outcome
                    .ran_on
                    .as_ref()
                    .map(|r| r.delivery)
                    .filter(|d| *d > 1),
                late: false,
                for_each_index: e.index,
                started_at,
                finished_at,
                duration_ms,
                action_group: group,
                actions: children,
            }
        }
        .boxed()
    }

    /// Runs the handler with the action's Timeout and Retry, racing plan cancellation. A request that was not
    /// delivered is retried like a failure; one whose outcome is unknown is retried only when the action reads.
    async fn execute_with_policy(&self, e: &Expansion<'_>, id: u64) -> (ExecuteResult, u32) {
        let timeout = e.item.timeout.map(|t| t.0);
        let retry: Option<&RetryPolicy> = e.item.retry.as_ref();
        let mut delay = retry.map_or(Duration::ZERO, |r| r.delay.0);
        let kind = e
            .descriptor
            .as_ref()
            .map_or(ActionKind::Write, |d| d.action_kind(&e.config));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let token = self.opts.cancel.child_token();
            let request = ActionRequest {
                version: WIRE_VERSION,
                plan_name: self.plan.name.clone(),
                plan_instance_id: self.instance_id,
                action_instance_id: id,
                action_name: e.item.name.clone(),
                attempt: attempts,
                idempotency_key: IdempotencyKey::new(self.instance_id, id, attempts),
                handler_type: e.handler_type.clone(),
                kind,
                config: e.config.clone(),
                params: e.params.clone(),
                run_as: e.run_as.cloned(),
                principal: self.opts.request_user.clone(),
                // Read the clock only when there is a deadline to compute.
                deadline: timeout
                    .and_then(|t| chrono::Duration::from_std(t).ok())
                    .and_then(|t| self.executor.clock.now().checked_add_signed(t)),
                dry_run: self.opts.dry_run,
                parent_exit_data: e.parent_exit.clone(),
                run_on: e
                    .item
                    .run_on
                    .as_ref()
                    .or(self.plan.run_on.as_ref())
                    .cloned()
                    .unwrap_or_default(),
            };
            let runtime = ActionRuntime {
                cancel: token.clone(),
                progress: self.opts.progress.clone(),
                clock: self.executor.clock.clone(),
                deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
                delivery: 1,
            };
            let dispatch = self
                .executor
                .dispatcher
                .dispatch(ActionJob { request, runtime });
            let outcome = tokio::select! {
                r = run_bounded(dispatch, timeout) => r,
                _ = self.opts.cancel.cancelled() => DispatchOutcome::Done(
                    ExecuteResult::new(StatusType::Cancelled).with_message("cancelled while running")),
            };
            token.cancel();
            let retry_safe = match &outcome {
                DispatchOutcome::Done(_) | DispatchOutcome::NotDelivered { .. } => true,
                DispatchOutcome::Unknown { .. } => kind.is_read(),
            };
            let mut outcome = outcome.into_result();
            let wanted = retry.is_some_and(|r| {
                attempts <= r.count
                    && r.on.contains(&outcome.status)
                    && !self.opts.cancel.is_cancelled()
            });
            if wanted && !retry_safe {
                outcome.message.push_str(
                    "; not retried: the action writes and may have run (check before running it again)",
                );
            }
            if !(wanted && retry_safe) {
                return (outcome, attempts);
            }
            self.emit(
                Some(id),
                &e.item.name,
                StatusType::Waiting,
                format!(
                    "attempt {attempts} ended {}: {}; retrying in {delay:?}",
                    outcome.status, outcome.message
                ),
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.opts.cancel.cancelled() => {
                    return (ExecuteResult::new(StatusType::Cancelled).with_message("cancelled while waiting to retry"), attempts);
                }
            }
            delay = next_delay(delay, retry.map_or(1.0, |r| r.backoff));
        }
    }

    /// Runs the ActionGroup (if its ExecuteCase matches) and then the matching children.
    fn run_children<'a>(
        &'a self,
        item: &'a ActionItem,
        own_status: StatusType,
        exit_data: &'a Value,
        run_as: Option<&'a SecurityContext>,
    ) -> BoxFuture<'a, (Vec<ActionResult>, Vec<ActionResult>)> {
        async move {
            let mut filter = own_status;
            let mut group = Vec::new();
            if let Some(g) = item.action_group.as_deref() {
                if case_matches(g, own_status) {
                    group = self.run_item(g, exit_data, run_as).await;
                    filter = group
                        .iter()
                        .map(|r| r.status)
                        .fold(filter, StatusType::worst);
                }
            }
            let selected = item.actions.iter().filter(|c| case_matches(c, filter));
            let children = join_all(selected.map(|c| self.run_item(c, exit_data, run_as)))
                .await
                .into_iter()
                .flatten()
                .collect();
            (group, children)
        }
        .boxed()
    }
}

/// The longest wait between retries: the longest duration a plan can write (`DurationSpec`, 30 days).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2_592_000);

/// The wait after `delay` with backoff `factor`: grows by the factor up to [`MAX_RETRY_DELAY`]; a factor
/// that is not a finite number of at least 1 (validation refuses those; a plan built in code might not)
/// keeps the delay.
fn next_delay(delay: Duration, factor: f64) -> Duration {
    if !(factor.is_finite() && factor >= 1.0) {
        return delay.min(MAX_RETRY_DELAY);
    }
    let secs = delay.as_secs_f64() * factor;
    if secs.is_finite() && secs < MAX_RETRY_DELAY.as_secs_f64() {
        Duration::try_from_secs_f64(secs).unwrap_or(MAX_RETRY_DELAY)
    } else {
        MAX_RETRY_DELAY
    }
}

async fn run_bounded(
    fut: impl std::future::Future<Output = DispatchOutcome>,
    timeout: Option<Duration>,
) -> DispatchOutcome {
    match timeout {
        None => fut.await,
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            // The handler's future is dropped: a local action stops here. Whether it changed anything before
            // is not known, but a timeout is the plan author's own policy, so it stays an ordinary failure.
            Err(_) => DispatchOutcome::Done(ExecuteResult::failed(format!(
                "timed out after {}",
                crate::model::DurationSpec(t)
            ))),
        },
    }
}

fn branch(own: StatusType, group: &[ActionResult], children: &[ActionResult]) -> StatusType {
    [roll_up(group), roll_up(children)]
        .into_iter()
        .flatten()
        .fold(own, StatusType::worst)
}

/// The status a list of sibling results contributes to their parent (and the plan): the worst, except that
/// the ForEach clones of one action count together: when some clones' branches end `Failed` and others
/// succeed (`Complete` or `CompletedWithErrors`), together they are `CompletedWithErrors`; all failed is
/// `Failed`, and `Cancelled`/`Tombstoned` still rank above everything. The clones of one action are adjacent
/// in `results`, numbered from `ForEachIndex` 0. None for no results.
fn roll_up(results: &[ActionResult]) -> Option<StatusType> {
    let mut worst: Option<StatusType> = None;
    let mut i = 0;
    while i < results.len() {
        let mut end = i + 1;
        if results[i].for_each_index == Some(0) {
            while results
                .get(end)
                .is_some_and(|r| r.for_each_index == Some(end - i))
            {
                end += 1;
            }
        }
        let clones = &results[i..end];
        let max = clones
            .iter()
            .map(|r| r.branch_status)
            .fold(StatusType::None, StatusType::worst);
        let some_succeeded = clones.iter().any(|r| {
            matches!(
                r.branch_status,
                StatusType::Complete | StatusType::CompletedWithErrors
            )
        });
        let status = if max == StatusType::Failed && some_succeeded {
            StatusType::CompletedWithErrors
        } else {
            max
        };
        worst = Some(worst.map_or(status, |w| w.worst(status)));
        i = end;
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(branch_status: StatusType, for_each_index: Option<usize>) -> ActionResult {
        let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        ActionResult {
            name: "a".into(),
            instance_id: 1,
            handler: "Empty".into(),
            status: branch_status,
            branch_status,
            message: String::new(),
            exit_data: Value::Null,
            exit_code: 0,
            attempts: 1,
            node: None,
            delivery: None,
            late: false,
            for_each_index,
            started_at: now,
            finished_at: now,
            duration_ms: 0.0,
            action_group: Vec::new(),
            actions: Vec::new(),
        }
    }

    #[test]
    fn for_each_clones_partly_failed_roll_up_to_completed_with_errors() {
        use StatusType::{Cancelled, Complete, CompletedWithErrors, Failed};
        let clones = |s: &[StatusType]| -> Vec<ActionResult> {
            s.iter()
                .enumerate()
                .map(|(i, s)| result(*s, Some(i)))
                .collect()
        };
        assert_eq!(
            roll_up(&clones(&[Complete, Failed, Complete])),
            Some(CompletedWithErrors)
        );
        assert_eq!(roll_up(&clones(&[Failed, Failed])), Some(Failed));
        assert_eq!(roll_up(&clones(&[Complete, Cancelled])), Some(Cancelled));
        assert_eq!(roll_up(&clones(&[Complete, Complete])), Some(Complete));
        // Separate actions are not clones of each other: their worst counts.
        let siblings = vec![result(Complete, None), result(Failed, None)];
        assert_eq!(roll_up(&siblings), Some(Failed));
        // Two ForEach actions side by side: each set of clones on its own.
        let mut two = clones(&[Complete, Failed]);
        two.extend(clones(&[Failed, Failed]));
        assert_eq!(roll_up(&two), Some(Failed));
        assert_eq!(roll_up(&[]), Option::None);
    }

    #[test]
    fn retry_delays_grow_up_to_the_cap_and_never_overflow() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(s(1), 2.0), s(2));
        assert_eq!(next_delay(s(1), 1.0), s(1));
        assert_eq!(next_delay(s(2_000_000), 10.0), MAX_RETRY_DELAY);
        assert_eq!(next_delay(s(1), 1e308), MAX_RETRY_DELAY);
        assert_eq!(next_delay(MAX_RETRY_DELAY, 1e308), MAX_RETRY_DELAY);
        assert_eq!(next_delay(Duration::MAX, 1.0), MAX_RETRY_DELAY);
        for odd in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.5] {
            assert_eq!(next_delay(s(3), odd), s(3), "{odd}");
        }
        // Repeated growth stays at the cap.
        let mut d = Duration::from_millis(10);
        for _ in 0..100 {
            d = next_delay(d, 10.0);
        }
        assert_eq!(d, MAX_RETRY_DELAY);
    }
}
