//! `/synapse/plans`: live plan administration. `POST /synapse/plans/reload` re-reads the plans directory now
//! (the server also reloads on changes to it and on SIGHUP: `crate::live_catalog`).

use crate::auth::Permission;
use crate::http::access::{authenticated, require, Refusals};
use crate::openapi::responses::{Forbidden, Unauthorized};
use crate::reload::{reload_now, Reload, ReloadReport};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    let routes = OpenApiRouter::new().routes(require(Permission::Admin, routes!(reload_plans)));
    authenticated(routes, Refusals::Plain)
}

/// Reload the plans now
///
/// Re-reads every plan file of the plans directory, validates the whole set and swaps it in at once: new
/// files are served at once, edited ones in their new version, removed ones no longer. A file whose new
/// version does not load or validate keeps its last good version serving and is listed in `Problems` with
/// `KeptLastGood: true` (also in `/healthz` `PlanReload` and the `synapse_reload_problems` metric). Running
/// instances finish with the version they started with. The server also reloads by itself when the directory
/// changes, and on SIGHUP. 200 with the report (also when some plans are refused).
#[utoipa::path(post, path = "/synapse/plans/reload", operation_id = "reloadPlans", tag = "admin",
    responses(
        (status = 200, description = "What the reload did.", body = ReloadReport),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn reload_plans(State(state): State<Arc<AppState>>) -> Json<ReloadReport> {
    let catalog: Arc<dyn Reload> = state.catalog.clone();
    Json(reload_now(catalog).await)
}
