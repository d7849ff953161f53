//! `/docs`: interactive API documentation (Swagger UI) over `/openapi.json`, served from assets compiled into
//! the binary (the `swagger-ui-dist` crate ships them; nothing is fetched from a CDN, so it works offline).
//! The two documented routes hand the request to that crate's small router.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(docs))
        .routes(routes!(docs_css))
        .routes(routes!(docs_js))
}

/// The Swagger UI router: `/docs` (the page, reading `/openapi.json`) and its assets under `/docs/`.
fn swagger() -> axum::Router {
    static UI: OnceLock<axum::Router> = OnceLock::new();
    UI.get_or_init(|| {
        swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
            uri_prefix: "/docs",
            api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
            title: Some("Synapse controller API"),
        })
    })
    .clone()
}

async fn serve(req: Request) -> Response {
    match swagger().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Interactive API documentation
///
/// Open. Swagger UI over `/openapi.json` ("Authorize" takes an API key; "Try it out" calls this server). The
/// page and its scripts are part of the binary: no CDN, works offline.
#[utoipa::path(get, path = "/docs", operation_id = "docs", tag = "ops",
    responses((status = 200, description = "The Swagger UI page.", body = inline(String), content_type = "text/html")))]
async fn docs(req: Request) -> Response {
    serve(req).await.into_response()
}

/// The documentation page's stylesheet
///
/// Open. Part of the binary.
#[utoipa::path(get, path = "/docs/swagger-ui.css", operation_id = "docsCss", tag = "ops",
    responses((status = 200, description = "Swagger UI's CSS.", body = inline(String), content_type = "text/css")))]
async fn docs_css(req: Request) -> Response {
    serve(req).await
}

/// The documentation page's script
///
/// Open. Part of the binary.
#[utoipa::path(get, path = "/docs/swagger-ui-bundle.js", operation_id = "docsJs", tag = "ops",
    responses((status = 200, description = "Swagger UI's JavaScript bundle.", body = inline(String), content_type = "text/javascript")))]
async fn docs_js(req: Request) -> Response {
    serve(req).await
}
