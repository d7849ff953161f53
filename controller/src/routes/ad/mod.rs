//! The AD API (`/ad`, alias `/myriad`): every route is one plan invocation, answered with the plan's result
//! envelope as soon as the plan finishes. The controller knows the envelope only through handler descriptors:
//! the first action's descriptor (looked up when the catalog loads) gives the response body
//! (`result_body`), its outcome class (`outcome`: the worst Status, mapped to HTTP by
//! `http::error::outcome_status`) and whether the plan reads or searches (`action_kind`); request errors use
//! the ActiveDirectoryHandler descriptor's `request_error_body` (`AppState::ad_errors`).
//!
//! ```text
//! GET|POST|PUT|DELETE /{object}/{identity}              Get|Create|Modify|Delete{Type}   (object: user, group, ou, computer)
//! GET|POST|PUT|DELETE /{object}/{domain}/{identity}     the same, identity = domain\identity
//! POST|DELETE /{object}/{identity}/{group}              Add|Remove{Type}{To|From}Group (when the first segment is not a domain)
//! POST|DELETE /{object}/{identity}/group/{group}        Add|Remove{Type}{To|From}Group
//! PUT  /{object}/{identity}/ou/{moveto}                 Move{Type}
//! POST /search                                          Search (body: Filter, SearchBase, ReturnAttributes)
//! POST /search/{plan}                                   any plan; body keys are its dynamic parameters
//! GET  /search/{plan}/help                              its dynamic parameters
//! ```
//! Query flags (returnobjects, returnobjectproperties, returngroupmembership, returntransitivegroupmembership,
//! returnaccessrules, upsert, domain) become dynamic parameters; `outputtype` (json|yaml|xml) and `prettyprint`
//! choose the rendering.

mod operations;
use operations::*;

use crate::auth::{Permission, Principal};
use crate::body;
use crate::http::access::{authenticated, require, Refusals};
use crate::http::error::{outcome_status, ApiError};
use crate::openapi::ad::{AdCustomSearchBody, AdObjectBody, AdSearchBody};
use crate::openapi::params::{
    AdFlags, AdObjectFlags, MembershipPath, MembershipTwinPath, MovePath, MoveTwinPath, ObjectPath,
    ObjectTwoPath, PlanPath, UpsertFlag,
};
use crate::openapi::responses::{
    AdBodyResponses, AdForbidden, AdResponses, AdUnauthorized, NotFound,
};
use crate::openapi::schemas::AdSearchHelp;
use crate::openapi::BODY;
use crate::query::{bool_flag, flag, UniqueQuery};
use crate::render::{render, Format};
use crate::routes::execute::{check_known, timeout_of};
use crate::runner::{Keep, StartRequest, SyncOutcome};
use crate::AppState;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use synapse_engine::{ActionKind, DynamicParams, OutcomeClass};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The handler whose result envelope the AD API answers with, also for request errors (found by name in
/// the registry: the controller does not depend on the handler's types).
pub const ENVELOPE_HANDLER: &str = "ActiveDirectoryHandler";

/// Every route with the permission it needs (`http::access::require`): GETs and searches read, everything else
/// changes the directory. Behind authentication.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    use Permission::*;
    let routes = OpenApiRouter::new()
        .routes(require(RunAdReads, routes!(search)))
        .routes(require(RunAdReads, routes!(custom_search)))
        .routes(require(ReadPlans, routes!(custom_search_help)))
        .routes(require(RunAdReads, routes!(get_object)))
        .routes(require(
            RunAdWrites,
            routes!(create_object, modify_object, delete_object),
        ))
        .routes(require(RunAdReads, routes!(get_two)))
        .routes(require(
            RunAdWrites,
            routes!(modify_two, add_two, remove_two),
        ))
        .routes(require(
            RunAdWrites,
            routes!(add_to_group, remove_from_group),
        ))
        .routes(require(
            RunAdWrites,
            routes!(add_to_group_twin, remove_from_group_twin),
        ))
        .routes(require(RunAdWrites, routes!(move_to)))
        .routes(require(RunAdWrites, routes!(move_to_twin)));
    // AD API clients get refusals as envelopes too.
    authenticated(routes, Refusals::AdApi)
}

/// The plan-name part of an object segment.
fn object_type(object: &str) -> Result<&'static str, ApiError> {
    match object.to_ascii_lowercase().as_str() {
        "user" | "users" => Ok("User"),
        "group" | "groups" => Ok("Group"),
        "ou" | "orgunit" | "organizationalunit" => Ok("OrgUnit"),
        "computer" | "computers" => Ok("Computer"),
        other => Err(ApiError::NotFound(format!(
            "no AD object type '{other}' (user, group, ou, computer; access rules and roles are not available yet)"
        ))),
    }
}

/// Query keys that choose the rendering instead of being plan parameters.
const RENDER_FLAGS: &[&str] = &["outputtype", "prettyprint", "timeoutseconds", "dryrun"];

/// The request's rendering and its query flags as dynamic parameters.
pub(crate) fn split_query(
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Result<(Format, bool, DynamicParams), ApiError> {
    let format = Format::choose(flag(q, "outputtype"), headers).map_err(ApiError::BadRequest)?;
    let pretty = bool_flag(q, "prettyprint")?;
    let mut params = DynamicParams::new();
    for (k, v) in q {
        if RENDER_FLAGS.contains(&k.to_ascii_lowercase().as_str()) {
            continue;
        }
        body::check_name(k)?;
        params.insert(k.clone(), v.clone());
    }
    Ok((format, pretty, params))
}

/// Body keys (Create/Modify/custom searches) become parameters; lists and mappings travel as JSON text
/// (the plans parse them). A key that the query string (or the URL: `from_url`) already gives is ambiguous: a
/// 400 naming it, not "the body wins".
pub(crate) fn add_body(
    params: &mut DynamicParams,
    map: serde_json::Map<String, Value>,
    from_url: &[&str],
) -> Result<(), ApiError> {
    for (k, v) in map {
        body::check_name(&k)?;
        if let Some(u) = from_url.iter().find(|u| u.eq_ignore_ascii_case(&k)) {
            return Err(ApiError::BadRequest(format!(
                "body key '{k}' is ambiguous: the {u} comes from the URL"
            )));
        }
        refuse_twice(params, &k)?;
        let v = match v {
            Value::Array(_) | Value::Object(_) => Value::String(v.to_string()),
            other => other,
        };
        params.insert(k, v);
    }
    Ok(())
}

/// A parameter given in the query string and again in the body is ambiguous (400 naming it).
fn refuse_twice(params: &DynamicParams, k: &str) -> Result<(), ApiError> {
    if params.get(k).is_some() {
        return Err(ApiError::BadRequest(format!(
            "'{k}' is given in both the query string and the body: the request is ambiguous"
        )));
    }
    Ok(())
}

/// What every AD route (and `/dns` route) carries along, extracted once per request: the state, the query (each key once), the
/// headers and the authenticated principal.
pub(crate) struct Call {
    pub(crate) state: Arc<AppState>,
    pub(crate) q: BTreeMap<String, String>,
    pub(crate) headers: HeaderMap,
    pub(crate) principal: Principal,
}

impl FromRequestParts<Arc<AppState>> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let UniqueQuery(q) = UniqueQuery::from_request_parts(parts, state).await?;
        let principal = Principal::from_request_parts(parts, state).await?;
        Ok(Call {
            state: state.clone(),
            q,
            headers: parts.headers.clone(),
            principal,
        })
    }
}

/// Runs `plan` with `params` and answers with its first action's envelope.
pub(crate) async fn call(
    c: &Call,
    plan: &str,
    params: DynamicParams,
    format: Format,
    pretty: bool,
    identity: &str,
) -> Response {
    match call_inner(&c.state, plan, params, &c.q, c.principal.clone()).await {
        Ok((envelope, class)) => render(outcome_status(class), &envelope, format, pretty),
        Err(e) => c.state.ad_errors.respond(e, identity),
    }
}

async fn call_inner(
    state: &AppState,
    plan: &str,
    params: DynamicParams,
    q: &BTreeMap<String, String>,
    principal: Principal,
) -> Result<(Value, OutcomeClass), ApiError> {
    let (entry, p) = state.catalog.plan(plan)?;
    check_known(&entry, &params)?;
    let timeout = timeout_of(state, q)?;
    // `?dryRun=true`: the handler reports what it would do and changes nothing.
    let dry_run = bool_flag(q, "dryRun")?;
    // Reads keep only a summary in the store: their results are large and already in the caller's hands.
    let keep = if entry.kind().is_read() {
        Keep::Summary
    } else {
        Keep::Result
    };
    let outcome = state
        .runner
        .run_sync(
            StartRequest {
                plan_key: entry.key.clone(),
                plan: p,
                inputs: params,
                dry_run,
                principal,
                keep,
                // Writes answer once their record is committed; reads at once.
                durable: !entry.kind().is_read(),
            },
            timeout,
        )
        .await?;
    match outcome {
        SyncOutcome::StillRunning(id) => Err(ApiError::Timeout(format!(
            "the plan did not finish within {}s; it keeps running as instance {id} \
             (GET /synapse/execute/{}/{id})",
            timeout.as_secs_f64(),
            entry.key
        ))),
        SyncOutcome::Finished(result) => {
            let Some(action) = result.actions.first() else {
                return Err(ApiError::Internal(format!(
                    "plan '{}' ran no action: {}",
                    entry.key, result.message
                )));
            };
            // The first action's handler answers: its result body, and the outcome class of the result.
            let answer = entry.first.as_ref().and_then(|first| {
                let body = first.descriptor.result_body(&action.exit_data)?;
                let class = first.descriptor.outcome(action.status, &action.exit_data);
                Some((body, class))
            });
            answer.ok_or_else(|| {
                ApiError::Internal(format!(
                    "plan '{}' returned no result envelope ({}: {})",
                    entry.key, action.status, action.message
                ))
            })
        }
    }
}

/// Shared by every object route. `route` names the plan route when the verb does not imply it; `req` carries
/// the body of a Create or Modify (the other routes ignore bodies).
async fn object_call(
    c: &Call,
    method: &Method,
    object: &str,
    identity: String,
    extra: &[(&str, String)],
    req: Option<Request>,
    route: Option<&str>,
) -> Response {
    let prep = async {
        let t = object_type(object)?;
        let (format, pretty, mut params) = split_query(&c.q, &c.headers)?;
        let verb = match (route, method) {
            (Some(r), _) => r.to_string(),
            (None, &Method::GET) | (None, &Method::HEAD) => format!("Get{t}"),
            (None, &Method::POST) => format!("Create{t}"),
            (None, &Method::PUT) => format!("Modify{t}"),
            (None, &Method::DELETE) => format!("Delete{t}"),
            (None, m) => return Err(ApiError::NotFound(format!("{m} is not an AD API verb"))),
        };
        let plan = c.state.ad_plan(&verb);
        let takes_body = matches!(*method, Method::POST | Method::PUT) && route.is_none();
        if !takes_body {
            // The body is ignored, but a browser's cross-site form or text/plain POST is still refused.
            body::check_unread(&c.headers)?;
        }
        if let Some(req) = req.filter(|_| takes_body) {
            let from_url: Vec<&str> = ["identity"]
                .into_iter()
                .chain(extra.iter().map(|(k, _)| *k))
                .collect();
            add_body(
                &mut params,
                body::map(req, c.state.body_limit).await?,
                &from_url,
            )?;
        }
        params.insert("identity", identity.clone());
        for (k, v) in extra {
            params.insert(*k, v.clone());
        }
        Ok::<_, ApiError>((plan, params, format, pretty))
    };
    match prep.await {
        Ok((plan, params, format, pretty)) => {
            call(c, &plan, params, format, pretty, &identity).await
        }
        Err(e) => c.state.ad_errors.respond(e, &identity),
    }
}

async fn one(
    Path((object, identity)): Path<(String, String)>,
    method: Method,
    c: Call,
    req: Request,
) -> Response {
    object_call(&c, &method, &object, identity, &[], Some(req), None).await
}

fn is_domain(state: &AppState, segment: &str) -> bool {
    state
        .domain_names
        .iter()
        .any(|d| d.eq_ignore_ascii_case(segment))
}

async fn two(
    Path((object, a, b)): Path<(String, String, String)>,
    method: Method,
    c: Call,
    req: Request,
) -> Response {
    if matches!(method, Method::POST | Method::DELETE) && !is_domain(&c.state, &a) {
        // The seed's form: /ad/{object}/{identity}/{groupIdentity}.
        return membership_route(&c, &method, &object, a, b).await;
    }
    object_call(
        &c,
        &method,
        &object,
        format!("{a}\\{b}"),
        &[],
        Some(req),
        None,
    )
    .await
}

async fn membership_route(
    c: &Call,
    method: &Method,
    object: &str,
    identity: String,
    group: String,
) -> Response {
    let t = match object_type(object) {
        Ok(t) => t,
        Err(e) => return c.state.ad_errors.respond(e, &identity),
    };
    if t == "OrgUnit" {
        return c.state.ad_errors.respond(
            ApiError::BadRequest("organizational units cannot be group members".into()),
            &identity,
        );
    }
    let route = if *method == Method::POST {
        format!("Add{t}ToGroup")
    } else {
        format!("Remove{t}FromGroup")
    };
    object_call(
        c,
        method,
        object,
        identity,
        &[("group", group)],
        None,
        Some(&route),
    )
    .await
}

async fn membership(
    Path((object, identity, group)): Path<(String, String, String)>,
    c: Call,
    req: Request,
) -> Response {
    membership_route(&c, req.method(), &object, identity, group).await
}

async fn membership_twin(
    Path((object, domain, identity, group)): Path<(String, String, String, String)>,
    c: Call,
    req: Request,
) -> Response {
    membership_route(
        &c,
        req.method(),
        &object,
        format!("{domain}\\{identity}"),
        group,
    )
    .await
}

async fn move_route(c: &Call, object: &str, identity: String, moveto: String) -> Response {
    let t = match object_type(object) {
        Ok(t) => t,
        Err(e) => return c.state.ad_errors.respond(e, &identity),
    };
    let route = format!("Move{t}");
    object_call(
        c,
        &Method::PUT,
        object,
        identity,
        &[("moveto", moveto)],
        None,
        Some(&route),
    )
    .await
}

/// Move{Type}: move to another OU
///
/// Plan Move{Type} with identity `{identity}` and moveto `{moveto}`. A missing destination is InvalidPath
/// (400). The body is ignored.
#[utoipa::path(
    put,
    path = "/{object}/{identity}/ou/{moveto}",
    operation_id = "adMove",
    tag = "ad",
    params(MovePath, AdObjectFlags, AdFlags),
    responses(AdResponses)
)]
async fn move_to(
    Path((object, identity, moveto)): Path<(String, String, String)>,
    c: Call,
) -> Response {
    move_route(&c, &object, identity, moveto).await
}

/// Move{Type}: move to another OU
///
/// Plan Move{Type} with identity `{domain}\{identity}` and moveto `{moveto}`. A missing destination is
/// InvalidPath (400). The body is ignored.
#[utoipa::path(
    put,
    path = "/{object}/{domain}/{identity}/ou/{moveto}",
    operation_id = "adMoveTwin",
    tag = "ad",
    params(MoveTwinPath, AdObjectFlags, AdFlags),
    responses(AdResponses)
)]
async fn move_to_twin(
    Path((object, domain, identity, moveto)): Path<(String, String, String, String)>,
    c: Call,
) -> Response {
    move_route(&c, &object, format!("{domain}\\{identity}"), moveto).await
}

/// Search (LDAP filter)
///
/// `POST /ad/search`: body `{Filter, SearchBase, ReturnAttributes}` -> the Search plan (file Search.yaml): `Filter` -> filter, `SearchBase` -> searchbase, `ReturnAttributes` ->
/// attributes. Always paged; the result is in `Results[0].SearchResults` with `Type` 6.
#[utoipa::path(post, path = "/search", operation_id = "adSearch", tag = "ad",
    params(AdFlags),
    request_body(description = BODY, content((AdSearchBody = "application/json"))),
    responses(AdBodyResponses))]
async fn search(c: Call, req: Request) -> Response {
    let prep = async {
        let (format, pretty, mut params) = split_query(&c.q, &c.headers)?;
        for (k, v) in body::map(req, c.state.body_limit).await? {
            let name = match k.to_ascii_lowercase().as_str() {
                "filter" => "filter",
                "searchbase" => "searchbase",
                "returnattributes" | "attributes" => "attributes",
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown search field '{other}' (expected Filter, SearchBase, ReturnAttributes)"
                    )))
                }
            };
            if params.get(name).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "'{k}' is given twice (in the query string, or as both ReturnAttributes and \
                     Attributes): the request is ambiguous"
                )));
            }
            let v = match v {
                Value::Array(_) | Value::Object(_) => Value::String(v.to_string()),
                other => other,
            };
            params.insert(name, v);
        }
        Ok::<_, ApiError>((format, pretty, params))
    };
    match prep.await {
        Ok((format, pretty, params)) => {
            let identity = params
                .get("filter")
                .map(synapse_engine::path::scalar_text)
                .unwrap_or_default();
            call(
                &c,
                &c.state.ad_plan("Search"),
                params,
                format,
                pretty,
                &identity,
            )
            .await
        }
        Err(e) => c.state.ad_errors.respond(e, ""),
    }
}

/// Custom search: run a search plan by name
///
/// `POST /ad/search/{plan}`: body keys are the plan's dynamic parameters; a missing one is a 400 naming it.
/// Runs `plans/{plan}.yaml` (e.g. GetAllGroups: every group a principal belongs to, through nesting, plus
/// the principal itself). Only search plans (first action an ActiveDirectoryHandler Search) run here. Body keys
/// (and query keys other than outputtype, prettyprint, timeoutSeconds and dryRun) are the plan's dynamic
/// parameters.
#[utoipa::path(post, path = "/search/{plan}", operation_id = "adCustomSearch", tag = "ad",
    params(PlanPath, AdFlags),
    request_body(description = BODY, content((Option<AdCustomSearchBody> = "application/json"))),
    responses(AdBodyResponses))]
async fn custom_search(Path(plan): Path<String>, c: Call, req: Request) -> Response {
    let prep = async {
        // Custom searches run search plans only (upstream ran any plan file): the first action's handler
        // descriptor must call it a search.
        let (entry, _) = c.state.catalog.plan(&plan)?;
        if entry.kind() != ActionKind::Search {
            return Err(ApiError::BadRequest(format!(
                "plan '{plan}' is not a search (its first action must be a search, such as an \
                 ActiveDirectoryHandler Search); run other plans through /synapse/execute"
            )));
        }
        let (format, pretty, mut params) = split_query(&c.q, &c.headers)?;
        add_body(&mut params, body::map(req, c.state.body_limit).await?, &[])?;
        Ok::<_, ApiError>((format, pretty, params))
    };
    match prep.await {
        Ok((format, pretty, params)) => call(&c, &plan, params, format, pretty, &plan).await,
        Err(e) => c.state.ad_errors.respond(e, &plan),
    }
}

/// A custom search's parameters
///
/// Not an envelope: an `Error` body when the plan does not exist.
#[utoipa::path(get, path = "/search/{plan}/help", operation_id = "adCustomSearchHelp", tag = "ad",
    params(PlanPath),
    responses(
        (status = 200, description = "The plan's description and dynamic parameters.", body = AdSearchHelp),
        (status = 401, response = AdUnauthorized),
        (status = 403, response = AdForbidden),
        (status = 404, response = NotFound),
    ))]
async fn custom_search_help(
    State(state): State<Arc<AppState>>,
    Path(plan): Path<String>,
) -> Result<Response, ApiError> {
    let e = state.catalog.entry(&plan)?;
    let mut v = json!({
        "Plan": e.key,
        "Description": e.plan.as_ref().and_then(|p| p.description.clone()),
        "Parameters": e.params,
    });
    // A secret parameter's default is masked, as on /synapse/execute/{plan}/help.
    synapse_engine::wire::redact_value(&mut v);
    Ok(axum::Json(v).into_response())
}
