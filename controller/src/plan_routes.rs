//! Plans whose handlers nothing can run: with node workers (NATS), a handler (+ the action's `RunOn` labels)
//! that no live node serves; in process, a handler known by name only, not configured in this controller
//! (the ActiveDirectoryHandler without an AD domain). Such a plan still validates and loads (nodes may come
//! later); it is warned about:
//!
//! * `/healthz` `PlanWarnings` (computed on request from the live catalog and the live node directory);
//! * the log: [`PlanRoutes::watch`] checks at start (after a short wait for the nodes' heartbeats) and every
//!   few seconds after, so a plan reload or a node leaving shows within [`CHECK_EVERY`]; one warning line per
//!   plan when its warning appears (not repeated while it stays);
//! * the gauge `synapse_plans_unroutable` (plans with a warning).
//!
//! `synapse plan validate` gives the same warnings (src/main.rs).

use crate::catalog::Catalog;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use synapse_engine::validate::{route_needs, RouteNeed};
use synapse_engine::{HandlerRegistry, Plan};

/// How often [`PlanRoutes::watch`] checks.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Where this controller's actions can run.
#[derive(Clone)]
pub enum Routes {
    /// Node workers over NATS: their live directory.
    Nodes(synapse_node::NodeDirectory),
    /// In process: the handlers configured here.
    Local,
}

/// The check, over the controller's registry and routes.
#[derive(Clone)]
pub struct PlanRoutes {
    registry: Arc<HandlerRegistry>,
    routes: Routes,
}

/// Why `need` cannot run anywhere now (None: it can).
pub fn unroutable(registry: &HandlerRegistry, routes: &Routes, need: &RouteNeed) -> Option<String> {
    match routes {
        Routes::Nodes(dir) => (!dir.can_serve(&need.handler, &need.labels))
            .then(|| format!("no live node serves {need}")),
        Routes::Local => match registry.get(&need.handler) {
            None => Some(format!(
                "handler {} is not available in this controller (known by name only)",
                need.handler
            )),
            Some(h) => h.unconfigured().map(|why| {
                format!(
                    "handler {} is not configured in this controller: {why}",
                    need.handler
                )
            }),
        },
    }
}

/// One line per plan with unroutable needs: `plan X: no live node serves H with labels k=v; ...`.
pub fn plan_warning(
    name: &str,
    plan: &Plan,
    registry: &HandlerRegistry,
    routes: &Routes,
) -> Option<String> {
    let problems: Vec<String> = route_needs(plan, registry)
        .iter()
        .filter_map(|n| unroutable(registry, routes, n))
        .collect();
    (!problems.is_empty()).then(|| format!("plan {name}: {}", problems.join("; ")))
}

impl PlanRoutes {
    pub fn new(registry: Arc<HandlerRegistry>, routes: Routes) -> PlanRoutes {
        PlanRoutes { registry, routes }
    }

    /// The warnings for every valid plan of `catalog`, by plan name.
    pub fn warnings(&self, catalog: &Catalog) -> Vec<String> {
        let mut out: Vec<String> = catalog
            .entries()
            .filter_map(|e| {
                e.plan
                    .as_ref()
                    .and_then(|p| plan_warning(&e.key, p, &self.registry, &self.routes))
            })
            .collect();
        out.sort();
        out
    }

    /// Logs each plan's warning when it appears and keeps `synapse_plans_unroutable` current, until `stop`.
    pub async fn watch(
        self,
        catalog: Arc<crate::live_catalog::PlanCatalog>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        // Nodes heartbeat every 2 s by default; the directory reads the bucket's history at once, so a
        // short wait is enough for the first check to see them.
        let mut wait = Duration::from_secs(2);
        let mut shown = BTreeSet::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = CHECK_EVERY;
            let now: BTreeSet<String> = self.warnings(&catalog.snapshot()).into_iter().collect();
            for w in now.difference(&shown) {
                tracing::warn!("{w}");
            }
            metrics::gauge!("synapse_plans_unroutable").set(now.len() as f64);
            shown = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(y: &str) -> Plan {
        synapse_engine::load::load_str(y, "p.yaml").unwrap().plan
    }

    #[test]
    fn in_process_a_handler_without_configuration_is_warned_about() {
        let reg = synapse_handlers::builtin_registry();
        let ad = plan("Name: ad\nActions:\n- Name: a\n  Handler: {Type: ActiveDirectoryHandler, Config: {Values: {Action: Get}}}\n  Parameters: {Values: {Users: [{Identity: x}]}}\n");
        let w = plan_warning("GetX", &ad, &reg, &Routes::Local).expect("a warning");
        assert!(
            w.starts_with("plan GetX: handler ActiveDirectoryHandler is not configured"),
            "{w}"
        );
        let empty = plan("Name: e\nActions:\n- Name: a\n  Handler: {Type: EmptyHandler}\n");
        assert_eq!(plan_warning("E", &empty, &reg, &Routes::Local), None);
    }

    #[test]
    fn with_nodes_a_handler_no_live_node_serves_is_warned_about() {
        let reg = synapse_handlers::builtin_registry();
        let p = plan(
            "Name: e\nRunOn: {site: dc3}\nActions:\n- Name: a\n  Handler: {Type: EmptyHandler}\n",
        );
        let w = plan_warning(
            "E",
            &p,
            &reg,
            &Routes::Nodes(synapse_node::NodeDirectory::default()),
        );
        assert_eq!(
            w.as_deref(),
            Some("plan E: no live node serves EmptyHandler with labels site=dc3")
        );
    }
}
