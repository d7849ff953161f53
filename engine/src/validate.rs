//! Semantic validation of a loaded plan: handler names, paths, regexes, ForEach sources, named sets,
//! timeouts and retries. Every problem is reported (with its position), not just the first.

use crate::descriptor::ActionBlock;
use crate::handler::HandlerRegistry;
use crate::load::{Diagnostic, LoadedPlan, Severity};
use crate::model::{ActionItem, ParameterInfo, SerializationType};
use crate::path::{ColonPath, Seg};
use crate::resolve::{replace_regex, validation_regex};
use crate::status::StatusType;
use std::collections::HashSet;

/// Upper bound on `Retry.Count`.
pub const MAX_RETRIES: u32 = 100;

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

fn with(path: &[Seg], more: &[Seg]) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.extend_from_slice(more);
    p
}

struct Checker<'a> {
    loaded: &'a LoadedPlan,
    registry: &'a HandlerRegistry,
    config_sets: HashSet<String>,
    param_sets: HashSet<String>,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, path: Vec<Seg>, message: impl Into<String>) {
        let d = self.loaded.diagnostic(&path, Severity::Error, message);
        self.out.push(d);
    }

    fn warn(&mut self, path: Vec<Seg>, message: impl Into<String>) {
        let d = self.loaded.diagnostic(&path, Severity::Warning, message);
        self.out.push(d);
    }

    fn colon_path(&mut self, path: Vec<Seg>, text: &str, what: &str) {
        if text.trim().is_empty() {
            self.error(path, format!("{what} is empty"));
        } else if let Err(e) = text.parse::<ColonPath>() {
            self.error(path, e.to_string());
        }
    }

    fn action(&mut self, path: Vec<Seg>, a: &ActionItem, root: bool) {
        if a.name.trim().is_empty() {
            self.warn(with(&path, &[key("Name")]), "the action has no Name");
        }
        if root {
            if let Some(ec) = &a.execute_case {
                if !ec.matches(StatusType::None) {
                    self.warn(
                        with(&path, &[key("ExecuteCase")]),
                        "root actions are matched against status None, so this action never runs \
                         (use None or Any, or move it under a parent)",
                    );
                }
            }
        }
        self.handler(&path, a);
        if let Some(r) = &a.run_on {
            self.run_on(with(&path, &[key("RunOn")]), r);
        }
        if let Some(t) = a.timeout {
            if t.0.is_zero() {
                self.error(
                    with(&path, &[key("Timeout")]),
                    "Timeout must be greater than zero",
                );
            }
        }
        if let Some(r) = &a.retry {
            let rp = with(&path, &[key("Retry")]);
            if r.count > MAX_RETRIES {
                self.error(
                    with(&rp, &[key("Count")]),
                    format!("Count must be at most {MAX_RETRIES}"),
                );
            }
            if !(r.backoff.is_finite() && (1.0..=10.0).contains(&r.backoff)) {
                self.error(
                    with(&rp, &[key("Backoff")]),
                    "Backoff must be a factor between 1 and 10",
                );
            }
            if r.on.is_empty() || r.on.iter().any(|s| !s.is_terminal()) {
                self.error(
                    with(&rp, &[key("On")]),
                    "On must list terminal statuses (Failed, CompletedWithErrors, Cancelled, ...)",
                );
            }
        }
        if let Some(h) = &a.handler {
            if let Some(c) = &h.config {
                self.block(with(&path, &[key("Handler"), key("Config")]), c, true);
            }
        }
        if let Some(p) = &a.parameters {
            self.block(with(&path, &[key("Parameters")]), p, false);
        }
        if let Some(g) = &a.action_group {
            self.action(with(&path, &[key("ActionGroup")]), g, false);
        }
        for (i, c) in a.actions.iter().enumerate() {
            self.action(with(&path, &[key("Actions"), Seg::Index(i)]), c, false);
        }
    }

    /// `RunOn` labels: 1 to 64 letters, digits, `-`, `_` or `.` per key and value, at most 6 labels (what a
    /// node's `--labels` accepts, so a requirement no node could ever meet is caught here).
    fn run_on(&mut self, path: Vec<Seg>, labels: &crate::model::RunOn) {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if labels.len() > 6 {
            self.error(path.clone(), "RunOn takes at most 6 labels");
        }
        for (k, v) in labels {
            if !ok(k) || !ok(v) {
                self.error(
                    with(&path, &[key(k)]),
                    format!(
                        "RunOn label '{k}: {v}': keys and values are 1 to 64 letters, digits, '-', '_' or '.'"
                    ),
                );
            }
        }
    }

    fn handler(&mut self, path: &[Seg], a: &ActionItem) {
        let declared = a
            .handler
            .as_ref()
            .and_then(|h| h.r#type.clone())
            .filter(|t| !t.trim().is_empty());
        let (ty, at) = match declared {
            Some(t) => (t, with(path, &[key("Handler"), key("Type")])),
            None => match &self.loaded.plan.default_handler_type {
                Some(t) => (t.clone(), vec![key("DefaultHandlerType")]),
                None => {
                    self.error(
                        with(path, &[key("Handler")]),
                        "no handler: set Handler.Type or the plan's DefaultHandlerType",
                    );
                    return;
                }
            },
        };
        let Some(descriptor) = self.registry.descriptor(&ty) else {
            let known = self.registry.names().join(", ");
            self.error(
                at,
                format!("unknown handler '{ty}' (known handlers: {known})"),
            );
            return;
        };
        // The handler's own static checks of what it will receive.
        let config = a.handler.as_ref().and_then(|h| h.config.as_ref());
        for p in descriptor.check_action(config, a.parameters.as_ref()) {
            let block = match p.block {
                ActionBlock::Config => vec![key("Handler"), key("Config")],
                ActionBlock::Parameters => vec![key("Parameters")],
            };
            let mut at = with(path, &block);
            at.extend(p.path);
            self.error(at, p.message);
        }
    }

    fn block(&mut self, path: Vec<Seg>, pi: &ParameterInfo, is_config: bool) {
        if pi.r#type == SerializationType::Xml {
            self.error(
                with(&path, &[key("Type")]),
                "Xml parameters are not supported; use Yaml or Json",
            );
        }
        if pi.uri.is_some() {
            self.error(
                with(&path, &[key("Uri")]),
                "Uri is not supported; put the values in the plan, or use InheritFrom or ParentExitData",
            );
        }
        if let Some(name) = &pi.inherit_from {
            let sets = if is_config {
                &self.config_sets
            } else {
                &self.param_sets
            };
            if !sets.contains(name) {
                let kind = if is_config { "config" } else { "parameter" };
                self.error(
                    with(&path, &[key("InheritFrom")]),
                    format!(
                        "no {kind} block in this plan is named '{name}' (Name or SaveExitDataAs)"
                    ),
                );
            }
        }
        if pi.r#type == SerializationType::Unspecified && !pi.dynamic.is_empty() {
            self.error(
                with(&path, &[key("Dynamic")]),
                "Dynamic entries need structured Values (Type Yaml or Json), not Unspecified",
            );
        }
        for (i, d) in pi.dynamic.iter().enumerate() {
            let dp = with(&path, &[key("Dynamic"), Seg::Index(i)]);
            if d.source.trim().is_empty() {
                self.error(
                    dp.clone(),
                    "the entry has no Source (or Name): which parameter fills it?",
                );
            }
            self.colon_path(with(&dp, &[key("Target")]), &d.target, "Target (or Path)");
            if let Some(v) = &d.validation {
                if let Err(e) = validation_regex(v) {
                    self.error(with(&dp, &[key("Validation")]), e);
                }
            }
            if let Some(r) = &d.replace {
                if let Err(e) = replace_regex(r) {
                    self.error(with(&dp, &[key("Replace")]), e);
                }
            }
            if d.parse && d.data_type.is_some() {
                self.warn(
                    with(&dp, &[key("DataType")]),
                    "DataType is ignored when Parse is true",
                );
            }
            if d.required && d.default.is_some() {
                self.warn(
                    with(&dp, &[key("Default")]),
                    "a Required parameter never uses its Default",
                );
            }
        }
        for (i, e) in pi.parent_exit_data.iter().enumerate() {
            let ep = with(&path, &[key("ParentExitData"), Seg::Index(i)]);
            if e.transform_in_place.is_none() && e.copy_to_values.is_none() {
                self.error(
                    ep.clone(),
                    "the entry needs TransformInPlace or CopyToValues",
                );
            }
            if let Some(t) = &e.transform_in_place {
                let tp = with(&ep, &[key("TransformInPlace")]);
                self.colon_path(with(&tp, &[key("Source")]), &t.source, "Source");
                self.colon_path(with(&tp, &[key("Target")]), &t.target, "Target");
            }
            if let Some(c) = &e.copy_to_values {
                let cp = with(&ep, &[key("CopyToValues")]);
                if !c.source.trim().is_empty() {
                    self.colon_path(with(&cp, &[key("Source")]), &c.source, "Source");
                }
                self.colon_path(with(&cp, &[key("Target")]), &c.target, "Target");
                for r in [
                    &c.replace,
                    &e.transform_in_place
                        .as_ref()
                        .and_then(|t| t.replace.clone()),
                ]
                .into_iter()
                .flatten()
                {
                    if let Err(msg) = replace_regex(r) {
                        self.error(with(&cp, &[key("Replace")]), msg);
                    }
                }
            }
        }
        for (i, f) in pi.for_each.iter().enumerate() {
            let fp = with(&path, &[key("ForEach"), Seg::Index(i)]);
            self.colon_path(with(&fp, &[key("Target")]), &f.target, "Target");
            match (&f.parameter_source, f.values.is_empty()) {
                (None, true) => {
                    self.error(fp.clone(), "the entry needs Values or a ParameterSource")
                }
                (Some(_), false) => {
                    self.error(fp.clone(), "give Values or a ParameterSource, not both")
                }
                _ => {}
            }
            if let Some(ps) = &f.parameter_source {
                let pp = with(&fp, &[key("ParameterSource")]);
                let sets = if is_config {
                    &self.config_sets
                } else {
                    &self.param_sets
                };
                if ps.name.trim().is_empty() {
                    self.error(
                        with(&pp, &[key("Name")]),
                        "Name is empty (ParentExitData or a named block)",
                    );
                } else if !ps.name.eq_ignore_ascii_case("ParentExitData")
                    && !sets.contains(&ps.name)
                {
                    let name = ps.name.clone();
                    self.error(
                        with(&pp, &[key("Name")]),
                        format!(
                            "'{name}' is neither ParentExitData nor a named block of this plan"
                        ),
                    );
                }
                if let Some(src) = ps.source.as_deref().filter(|s| !s.trim().is_empty()) {
                    self.colon_path(with(&pp, &[key("Source")]), src, "Source");
                }
            }
            if let Some(r) = &f.replace {
                if let Err(e) = replace_regex(r) {
                    self.error(with(&fp, &[key("Replace")]), e);
                }
            }
        }
    }
}

/// Checks a loaded plan against a handler registry. Returns every error and warning, in file order.
pub fn validate(loaded: &LoadedPlan, registry: &HandlerRegistry) -> Vec<Diagnostic> {
    let mut config_sets = HashSet::new();
    let mut param_sets = HashSet::new();
    loaded.plan.walk(|_, a| {
        if let Some(n) = a
            .handler
            .as_ref()
            .and_then(|h| h.config.as_ref())
            .and_then(|c| c.name.clone())
        {
            config_sets.insert(n);
        }
        if let Some(n) = a.parameters.as_ref().and_then(|p| p.name.clone()) {
            param_sets.insert(n);
        }
        if let Some(s) = &a.save_exit_data_as {
            config_sets.extend(s.config.clone());
            param_sets.extend(s.parameters.clone());
        }
    });
    let mut c = Checker {
        loaded,
        registry,
        config_sets,
        param_sets,
        out: loaded.warnings.clone(),
    };
    if loaded.plan.actions.is_empty() {
        c.warn(vec![key("Actions")], "the plan has no actions");
    }
    if let Some(r) = &loaded.plan.run_on {
        c.run_on(vec![key("RunOn")], r);
    }
    for (i, a) in loaded.plan.actions.iter().enumerate() {
        c.action(vec![key("Actions"), Seg::Index(i)], a, true);
    }
    let mut out = c.out;
    out.sort_by_key(|d| (d.line, d.column));
    out
}

/// Loads and validates a plan file, reporting every problem of both stages in one run: when the plan parses
/// despite unknown fields or duplicate keys, it is validated too (the handlers' static checks included). The
/// plan is returned only when it has no errors.
pub fn check_file(
    path: &std::path::Path,
    registry: &HandlerRegistry,
) -> (Option<LoadedPlan>, crate::Diagnostics) {
    let (loaded, mut diags) = crate::load::load_file_lenient(path);
    let Some(loaded) = loaded else {
        return (None, diags);
    };
    diags.0.extend(validate(&loaded, registry));
    diags.0.sort_by_key(|d| (d.line, d.column));
    diags.0.dedup();
    let ok = !diags.has_errors();
    (ok.then_some(loaded), diags)
}

/// One route a plan needs: a handler (its descriptor name) on a node with these labels (`RunOn` of the
/// action, else of the plan; empty: any node).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteNeed {
    pub handler: String,
    pub labels: crate::model::RunOn,
}

impl std::fmt::Display for RouteNeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.handler)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, " with labels {}", labels.join(","))?;
        }
        Ok(())
    }
}

/// Every route a plan's actions need, each once, sorted. Actions whose handler the registry does not know are
/// left out (validation reports those).
pub fn route_needs(plan: &crate::model::Plan, registry: &HandlerRegistry) -> Vec<RouteNeed> {
    let mut out = std::collections::BTreeSet::new();
    plan.walk(|_, item| {
        let handler_type = item
            .handler
            .as_ref()
            .and_then(|h| h.r#type.clone())
            .filter(|t| !t.trim().is_empty())
            .or_else(|| plan.default_handler_type.clone())
            .unwrap_or_default();
        if let Some(d) = registry.descriptor(&handler_type) {
            out.insert(RouteNeed {
                handler: d.name().to_string(),
                labels: item
                    .run_on
                    .as_ref()
                    .or(plan.run_on.as_ref())
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    });
    out.into_iter().collect()
}

#[cfg(test)]
mod route_tests {
    use super::*;

    #[test]
    fn route_needs_take_the_action_run_on_else_the_plan_s_each_once() {
        let y = "Name: r\nRunOn: {site: dc1}\nActions:\n- Name: a\n  Handler: {Type: EmptyHandler}\n- Name: b\n  Handler: {Type: Synapse.Core:EmptyHandler}\n  Actions:\n  - Name: c\n    Handler: {Type: EmptyHandler}\n    RunOn: {site: dc2}\n";
        let plan = crate::load::load_str(y, "r.yaml").unwrap().plan;
        let mut reg = HandlerRegistry::new();
        reg.register_descriptor(std::sync::Arc::new(crate::descriptor::BasicDescriptor {
            name: "EmptyHandler",
            aliases: &["Synapse.Core:EmptyHandler"],
        }));
        let needs = route_needs(&plan, &reg);
        assert_eq!(needs.len(), 2, "{needs:?}");
        assert_eq!(needs[0].to_string(), "EmptyHandler with labels site=dc1");
        assert_eq!(needs[1].to_string(), "EmptyHandler with labels site=dc2");
    }
}
