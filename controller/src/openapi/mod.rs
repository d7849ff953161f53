//! The OpenAPI 3.1 document, generated from the code: every route is registered through utoipa-axum's
//! `OpenApiRouter` + `routes!` (routes/mod.rs), which takes the operation from the handler's
//! `#[utoipa::path]` and registers the handler with the methods it declares. The route list in the document
//! is therefore the router's own. This module holds what the routes share: the document's frame ([`ApiDoc`]),
//! reusable responses, parameter sets ([`params`]) and the schemas of bodies this crate cannot annotate
//! ([`schemas`], [`ad`]). Served at `GET /openapi.json` (routes/ops.rs), built once on first use.

pub mod ad;
pub mod check;
pub mod dns;
pub mod params;
pub mod responses;
pub mod schemas;

use responses::*;
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Object, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

const DESCRIPTION: &str = "Synapse runs plans (YAML workflows of handler actions). `/synapse/execute` is the \
generic plan API (upstream-compatible paths); `/ad` is the Active Directory API of seed 002, where every route runs \
one plan synchronously and answers with the ActiveDirectoryHandler's result envelope.\n\n\
**Every `/ad/...` path is also served under `/myriad/...`** (upstream's later name; identical behaviour, same \
operations). Only the `/ad` paths are listed here.\n\n\
Authentication: `Authorization: Bearer syn_...` API keys (`synapse token create --name N --roles \
read|execute|admin`). Each operation needs one permission (its `x-permission`); `read` keys have ReadPlans, \
ReadInstances and RunAdReads (look at plans and instances, AD reads and searches), `execute` keys also \
StartPlans, CancelInstances and RunAdWrites, `admin` keys everything. \
`/healthz`, `/readyz`, `/metrics` and `/openapi.json` are open. With `synapse serve --no-auth` (loopback addresses only) \
every request runs as `anonymous` with the admin role.\n\n\
Every response carries `x-request-id` (the client's own value is kept if it sends one). Errors are \
`{\"Error\": {\"Status\", \"Message\", \"Problems\"}}`, except that request errors on the AD routes are wrapped \
in an AD envelope. Request bodies are JSON or YAML (the seed documents' unquoted keys are YAML flow maps), at \
most `BodyLimit` bytes (default 1 MiB; 413 beyond), nested at most 64 levels, each key once, with a JSON or YAML \
`Content-Type` or none (415 otherwise). A trailing slash is ignored. A method a path does not \
serve answers 405. Query parameter names are case-insensitive. Prose and examples: docs/api.md.";

/// The description of every request body. The server reads bodies as JSON, then as YAML, with a JSON or YAML
/// `Content-Type` (or none); the document lists `application/json` only, which client generators understand.
pub const BODY: &str =
    "JSON, or the same in YAML (`Content-Type` application/json, application/*+json, application/yaml, \
    application/x-yaml, text/yaml, text/x-yaml, or none; others are 415. The body is parsed as JSON, then as \
    YAML; the seed documents' unquoted keys are YAML flow maps). At most `BodyLimit` bytes, nested at most 64 \
    levels, each key once (case-insensitively).";

/// The frame of the document: info, tags, the security scheme and the reusable responses. The paths and the
/// schemas they use are added by the router (routes/mod.rs).
#[derive(OpenApi)]
#[openapi(
    info(title = "Synapse controller API", description = DESCRIPTION),
    servers((url = "http://127.0.0.1:20000", description = "Default listen address (loopback).")),
    security(("bearerAuth" = [])),
    tags(
        (name = "ops", description = "Open operational routes."),
        (name = "execute", description = "The generic plan API."),
        (name = "schedules", description = "Scheduled plan execution (docs/scheduling.md)."),
        (name = "ad", description = "The Active Directory API (also under /myriad)."),
        (name = "admin", description = "Server administration: live plan reload, API keys (admin keys; a key may manage itself)."),
        (name = "dns", description = "The DNS API: AD-integrated zones and records (DnsHandler plans in plans/dns)."),
    ),
    components(
        // Schemas that the reusable responses and the parameter sets name (the routes add the ones their
        // bodies use).
        schemas(
            schemas::ErrorBody, schemas::PlanInstanceId, schemas::StillRunning, schemas::ProgressEvent,
            ad::AdEnvelope, SyncResult, params::OutputType, params::AdObject,
        ),
        responses(
            BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, TooManyRequests, InternalError,
            UnsupportedMediaType, AdUnsupportedMediaType,
            AdOk, AdBadRequest, AdUnauthorized, AdForbidden, AdNotFound, AdConflict, AdPayloadTooLarge, AdTooManyRequests,
            AdInternalError, AdNotImplemented, AdUnavailable, AdGatewayTimeout,
        )
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The `bearerAuth` scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("syn_<64 hex>")
                    .description(Some(
                        "An API key made by `synapse token create` (only its SHA-256 is stored). Roles grant \
                         permissions (`read`: plans, instances, AD reads and searches; `execute` and `admin`: \
                         everything). 401 without a key or with an unknown one, 403 when the key's roles do not \
                         grant the operation's `x-permission`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole document: the router's (routes/mod.rs) with the parts every response shares.
pub fn document() -> Value {
    let doc = crate::routes::openapi();
    let mut v = serde_json::to_value(&doc).unwrap_or_else(|e| json!({"error": e.to_string()}));
    finish(&mut v);
    v
}

/// Adds what applies to every response: the `x-request-id` header, set by a layer of the router.
fn finish(doc: &mut Value) {
    let header = serde_json::to_value(
        HeaderBuilder::new()
            .schema(Some(Object::with_type(SchemaType::Type(Type::String))))
            .description(Some(
                "The request id (a UUID, or the value the client sent in `x-request-id`).",
            ))
            .build(),
    )
    .unwrap_or(Value::Null);
    let mut add_header = |resp: &mut Value| {
        if let Some(m) = resp.as_object_mut().filter(|m| !m.contains_key("$ref")) {
            let headers = m.entry("headers").or_insert_with(|| json!({}));
            if let Some(h) = headers.as_object_mut() {
                h.insert("x-request-id".into(), header.clone());
            }
        }
    };
    if let Some(responses) = doc
        .pointer_mut("/components/responses")
        .and_then(Value::as_object_mut)
    {
        responses.values_mut().for_each(&mut add_header);
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut().filter_map(Value::as_object_mut) {
                if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    responses.values_mut().for_each(&mut add_header);
                }
            }
        }
    }
}

/// The document as JSON text, built on first use.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| document().to_string())
}

/// The document with `servers` set to `url` (the server's own address).
pub fn json_with_server(url: &str) -> String {
    let mut doc: Value = serde_json::from_str(json()).unwrap_or(Value::Null);
    doc["servers"] = json!([{"url": url, "description": "This server (its listen address)."}]);
    doc.to_string()
}

#[cfg(test)]
mod tests;
