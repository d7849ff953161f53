//! `GET /synapse/nodes`: the node workers this controller dispatches to (NATS), from their heartbeats.

use crate::auth::Permission;
use crate::http::access::{authenticated, require, Refusals};
use crate::http::error::ApiError;
use crate::openapi::responses::{Forbidden, Unauthorized};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    authenticated(
        OpenApiRouter::new().routes(require(Permission::ReadInstances, routes!(list_nodes))),
        Refusals::Plain,
    )
}

/// One node worker (schema of `synapse_node::NodeView`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Handlers it runs (descriptor names).
    pub handlers: Vec<String>,
    pub version: String,
    /// Actions it runs now.
    pub in_flight: usize,
    /// Actions it runs at once at most.
    pub concurrency: usize,
    /// Stopping: finishes its work, takes no new work.
    pub draining: bool,
    /// Its last heartbeat (its own clock).
    pub last_seen: DateTime<Utc>,
    /// Silent past its lease: gets no work.
    pub lost: bool,
}

/// Node workers
///
/// Every node that heartbeats into the NATS KV bucket, by name; an empty list when actions run in
/// process (no `Nats` configured).
#[utoipa::path(get, path = "/synapse/nodes", operation_id = "listNodes", tag = "nodes",
    responses(
        (status = 200, description = "Nodes.", body = Vec<Node>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn list_nodes(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let nodes = state.nodes.as_ref().map(|d| d.list()).unwrap_or_default();
    Ok(axum::Json(nodes).into_response())
}
