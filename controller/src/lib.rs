//! synapse-controller: the HTTP API (plan execution, the AD API, custom searches), the plan catalog, the
//! instance store, auth and request handling. Routes are thin: request -> (plan, parameters) -> engine.
//!
//! - `config`: synapse.yaml + SYNAPSE_* + flags; `catalog`: plans by file name; `runner`: instances
//!   (start, await, cancel, events); `store`: one narrow trait per record kind (instances, API keys) on one
//!   redb file; `writer`: group commit of records of any kind; `auth`: API keys;
//!   `body`/`render`: request parsing and response formats; `http`: the one error -> HTTP mapping
//!   (`http::error`) and route permissions (`http::access`);
//!   `routes`: `/synapse/execute`, `/ad` (alias `/myriad`), `/healthz`, `/metrics`, `/openapi.json`;
//!   `openapi`: the OpenAPI document, generated from the routes (utoipa).

pub mod auth;
pub mod body;
pub mod catalog;
pub mod config;
pub mod http;
pub mod late;
pub mod live_catalog;
pub mod openapi;
pub mod plan_routes;
pub mod query;
pub mod readiness;
pub mod reload;
pub mod render;
pub mod routes;
pub mod runner;
pub mod schedule;
pub mod serve;
pub mod store;
pub mod writer;

use crate::config::ServeConfig;
use crate::http::error::ErrorShape;
use crate::live_catalog::PlanCatalog;
use crate::runner::Runner;
use crate::serve::ServeError;
use crate::store::{InstanceStore, KeyStore, Stores};
use crate::writer::Writer;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use synapse_engine::{Executor, HandlerRegistry};

/// Everything routes need.
pub struct AppState {
    /// The plans, reloaded live (`live_catalog`).
    pub catalog: Arc<PlanCatalog>,
    pub runner: Arc<Runner>,
    pub instances: Arc<dyn InstanceStore>,
    pub keys: Arc<dyn KeyStore>,
    /// Fires schedules (`schedule::Scheduler::run` is started by `serve`).
    pub scheduler: Arc<crate::schedule::Scheduler>,
    pub no_auth: bool,
    pub body_limit: usize,
    /// Default and upper bound for sync calls.
    pub sync_timeout: Duration,
    /// Running and stored instances, `/part` answers.
    pub instance_limits: crate::config::InstanceLimits,
    /// AD API route name (GetUser, ...) -> plan name.
    pub ad_routes: BTreeMap<String, String>,
    /// Names and aliases of the configured AD domains (to read `/ad/{object}/{domain}/{identity}`).
    pub domain_names: Vec<String>,
    pub metrics: Option<PrometheusHandle>,
    /// How request errors look on the AD API: the ActiveDirectoryHandler's envelope (from its descriptor,
    /// found by name in the registry), or the plain error body when that handler is not registered.
    pub ad_errors: ErrorShape,
    /// Which `Origin`/`Host` values requests may carry (`http::origin`).
    pub origins: crate::http::origin::SameOrigin,
    /// Time to send a request's body once its headers are in (`BodyReadTimeout`).
    pub body_read_timeout: Duration,
    /// Calendar time for key expiry and last use.
    pub clock: Arc<dyn synapse_engine::Clock>,
    /// The address the server listens on (`servers` of `/openapi.json`).
    pub listen: std::net::SocketAddr,
    /// Whether the handlers' targets (AD domains) answer (`/readyz`).
    pub readiness: Arc<crate::readiness::Readiness>,
    /// The node workers' directory when actions go over NATS (`GET /synapse/nodes`).
    pub nodes: Option<synapse_node::NodeDirectory>,
    /// Which plans nothing here can run (`/healthz` `PlanWarnings`, the log, a gauge).
    pub plan_routes: crate::plan_routes::PlanRoutes,
}

impl AppState {
    /// Builds the state: loads the catalog and starts the store writer; opens nothing else (the stores and
    /// registry are given).
    pub fn new(
        cfg: &ServeConfig,
        registry: HandlerRegistry,
        stores: Stores,
        metrics: Option<PrometheusHandle>,
    ) -> Result<AppState, ServeError> {
        Self::with_dispatch(cfg, Arc::new(registry), None, stores, metrics)
    }

    /// [`AppState::new`] with actions sent to node workers over NATS (`nats`), or in process (None).
    pub fn with_dispatch(
        cfg: &ServeConfig,
        registry: Arc<HandlerRegistry>,
        nats: Option<synapse_node::NatsDispatcher>,
        stores: Stores,
        metrics: Option<PrometheusHandle>,
    ) -> Result<AppState, ServeError> {
        // Local handlers are timed and their targets checked (`/readyz`); remote ones run on the nodes.
        let recheck = Arc::new(tokio::sync::Notify::new());
        let registry = crate::readiness::timed((*registry).clone(), &recheck);
        let clock = synapse_engine::clock::system();
        let readiness = Arc::new(crate::readiness::Readiness::new(
            &registry,
            clock.clone(),
            recheck,
        ));
        let registry = Arc::new(registry);
        let catalog = Arc::new(PlanCatalog::load(&cfg.plans, registry.clone())?);
        let ad_errors = registry
            .descriptor(routes::ad::ENVELOPE_HANDLER)
            .map(ErrorShape::Handler)
            .unwrap_or_default();
        let nodes = nats.as_ref().map(|d| d.directory().clone());
        let plan_routes = crate::plan_routes::PlanRoutes::new(
            registry.clone(),
            match &nodes {
                Some(d) => crate::plan_routes::Routes::Nodes(d.clone()),
                None => crate::plan_routes::Routes::Local,
            },
        );
        let executor = match nats {
            Some(d) => Executor::new(registry, Arc::new(d)),
            None => Executor::in_process(registry),
        };
        let writer = Arc::new(Writer::start(stores.batch.clone()));
        let runner = Arc::new(Runner::new(
            executor,
            stores.instances.clone(),
            writer,
            cfg.instance_limits.max_running_instances,
        ));
        let scheduler = Arc::new(crate::schedule::Scheduler::new(
            stores.schedules.clone(),
            runner.clone(),
            runner.executor().clock().clone(),
        ));
        let domain_names = cfg.domain_names();
        Ok(AppState {
            catalog,
            runner,
            instances: stores.instances,
            keys: stores.keys,
            scheduler,
            no_auth: cfg.no_auth,
            body_limit: cfg.body_limit,
            sync_timeout: Duration::from_secs(cfg.sync_timeout_seconds),
            instance_limits: cfg.instance_limits,
            ad_routes: cfg.ad_routes.clone(),
            domain_names,
            metrics,
            ad_errors,
            origins: crate::http::origin::SameOrigin::new(
                cfg.listen,
                cfg.no_auth,
                &cfg.edge.allowed_hosts,
            ),
            body_read_timeout: cfg.edge.body_read_timeout,
            clock,
            listen: cfg.listen,
            readiness,
            nodes,
            plan_routes,
        })
    }

    /// The plan an AD API route runs (configurable), e.g. `GetUser`.
    pub fn ad_plan(&self, route: &str) -> String {
        self.ad_routes
            .get(route)
            .cloned()
            .unwrap_or_else(|| route.to_string())
    }
}

/// The whole HTTP API.
pub fn router(state: Arc<AppState>) -> Router {
    routes::router(state)
}
