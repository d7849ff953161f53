//! `/synapse/execute`: the generic plan API (upstream-compatible paths).
//!
//! ```text
//! GET    /                          plan names (?filter=regex)
//! GET    /{plan}/item               the plan definition
//! GET    /{plan}/help               its dynamic parameters
//! GET    /{plan}                    its instances, newest first (?limit=&before=)
//! GET|POST /{plan}/start[/async]    start; 202 {"PlanInstanceId": ...}
//! GET|POST /{plan}/start/sync       start and await (?timeoutSeconds=&path=); 200 result, 202 if still running
//! GET    /{plan}/{id}               the instance (with its result when finished)
//! DELETE /{plan}/{id}               cancel
//! GET|POST /{plan}/{id}/part        a part of the result by colon path (?elementPath=)
//! GET    /{plan}/{id}/events        progress events (server-sent events)
//! ```
//! Dynamic parameters: the query string on GET, the body on POST (`{"DynamicParameters": {...}}` or a plain
//! map; JSON or YAML). `dryRun=true` on either.

mod operations;
use operations::*;

use crate::auth::{Permission, Principal};
use crate::body;
use crate::catalog::Entry;
use crate::http::access::{authenticated, require, Refusals};
use crate::http::error::ApiError;
use crate::openapi::params::{
    AtFlag, DryRunFlag, InstancePath, ListInstancesQuery, ListPlansQuery, PartQuery, PlanPath,
    QueryParameters, SyncFlags,
};
use crate::openapi::responses::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, PartResponses, PayloadTooLarge,
    StartResponses, SyncResponses, Unauthorized, UnsupportedMediaType,
};
use crate::openapi::schemas::{
    CancelAccepted, DynamicParameters, ElementPaths, InstanceRecord, InstanceSummary, ParamHelp,
    Plan,
};
use crate::openapi::BODY;
use crate::query::{bool_flag, flag, UniqueQuery};
use crate::render::{render, Format};
use crate::runner::{StartRequest, SyncOutcome};
use crate::store::Page;
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::Stream;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use synapse_engine::model::DurationSpec;
use synapse_engine::path::{select, ColonPath};
use synapse_engine::DynamicParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Every route with the permission it needs (`http::access::require`), behind authentication.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    use Permission::*;
    let routes = OpenApiRouter::new()
        .routes(require(ReadPlans, routes!(list_plans)))
        .routes(require(ReadInstances, routes!(list_instances)))
        .routes(require(ReadPlans, routes!(plan_item)))
        .routes(require(ReadPlans, routes!(plan_help)))
        // Starting is a write also through GET (upstream's `GET /synapse/execute/{plan}/start?...`).
        .routes(require(StartPlans, routes!(start_get, start_post)))
        .routes(require(
            StartPlans,
            routes!(start_async_get, start_async_post),
        ))
        .routes(require(
            StartPlans,
            routes!(start_sync_get, start_sync_post),
        ))
        .routes(require(ReadInstances, routes!(get_instance)))
        .routes(require(CancelInstances, routes!(cancel_instance)))
        // POST only carries the paths to select: a read.
        .routes(require(ReadInstances, routes!(part_get, part_post)))
        .routes(require(ReadInstances, routes!(events)));
    authenticated(routes, Refusals::Plain)
}

/// Query keys that steer the API and are never dynamic parameters.
const RESERVED: &[&str] = &[
    "dryrun",
    "at",
    "timeoutseconds",
    "path",
    "requestnumber",
    "serializationtype",
    "setcontenttype",
    "pollingintervalseconds",
    "noderooturl",
    "outputtype",
    "prettyprint",
    "elementpath",
];

fn reserved(k: &str) -> bool {
    RESERVED.contains(&k.to_ascii_lowercase().as_str())
}

/// Rejects parameters the plan does not take (upstream silently passed every query key along).
pub fn check_known(entry: &Entry, inputs: &DynamicParams) -> Result<(), ApiError> {
    match synapse_engine::help::unknown_parameters(
        &entry.key,
        &entry.params,
        inputs.iter().map(|(k, _)| k),
    ) {
        None => Ok(()),
        Some(message) => Err(ApiError::BadRequest(message)),
    }
}

/// Dynamic parameters of a start call: query (GET) or body (POST).
async fn inputs_of(
    state: &AppState,
    q: &BTreeMap<String, String>,
    req: Request,
) -> Result<DynamicParams, ApiError> {
    let mut inputs = DynamicParams::new();
    if *req.method() == Method::GET || *req.method() == Method::HEAD {
        for (k, v) in q.iter().filter(|(k, _)| !reserved(k)) {
            body::check_name(k)?;
            inputs.insert(k.clone(), v.clone());
        }
    } else {
        if let Some(k) = q.keys().find(|k| !reserved(k)) {
            return Err(ApiError::BadRequest(format!(
                "query parameter '{k}' is not used on POST: send dynamic parameters in the body"
            )));
        }
        inputs = body::dynamic(req, state.body_limit).await?;
    }
    Ok(inputs)
}

/// Plan names
///
/// Every plan in the catalog (valid or not), by file name.
#[utoipa::path(get, path = "/", operation_id = "listPlans", tag = "execute",
    params(ListPlansQuery),
    responses(
        (status = 200, description = "Plan names.", body = Vec<String>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn list_plans(
    State(state): State<Arc<AppState>>,
    UniqueQuery(q): UniqueQuery,
) -> Result<Response, ApiError> {
    let filter = match flag(&q, "filter") {
        Some(f) if !f.is_empty() => Some(
            regex::RegexBuilder::new(f)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| ApiError::BadRequest(format!("filter: {e}")))?,
        ),
        _ => None,
    };
    let names: Vec<Value> = state
        .catalog
        .snapshot()
        .entries()
        .filter(|e| filter.as_ref().is_none_or(|re| re.is_match(&e.key)))
        .map(|e| json!(e.key))
        .collect();
    Ok(axum::Json(Value::Array(names)).into_response())
}

/// The plan definition
#[utoipa::path(get, path = "/{plan}/item", operation_id = "getPlan", tag = "execute",
    params(PlanPath),
    responses(
        (status = 200, description = "The plan.", body = Plan),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn plan_item(
    State(state): State<Arc<AppState>>,
    Path(plan): Path<String>,
) -> Result<Response, ApiError> {
    let (_, p) = state.catalog.plan(&plan)?;
    // Plans are shown with their secrets masked (the one masking rule: synapse_engine::wire::redact_value).
    let mut v = serde_json::to_value(&*p).unwrap_or_default();
    synapse_engine::wire::redact_value(&mut v);
    Ok(axum::Json(v).into_response())
}

/// The plan's dynamic parameters
#[utoipa::path(get, path = "/{plan}/help", operation_id = "planHelp", tag = "execute",
    params(PlanPath),
    responses(
        (status = 200, description = "Parameters, sorted by name.", body = Vec<ParamHelp>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
async fn plan_help(
    State(state): State<Arc<AppState>>,
    Path(plan): Path<String>,
) -> Result<Response, ApiError> {
    let e = state.catalog.entry(&plan)?;
    // A secret parameter's default and options are masked (synapse_engine::wire::redact_value).
    let mut v = serde_json::to_value(&e.params).unwrap_or_default();
    synapse_engine::wire::redact_value(&mut v);
    Ok(axum::Json(v).into_response())
}

/// Instances of a plan, newest first
#[utoipa::path(get, path = "/{plan}", operation_id = "listInstances", tag = "execute",
    params(PlanPath, ListInstancesQuery),
    responses(
        (status = 200, description = "One page of instances.", body = Vec<InstanceSummary>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn list_instances(
    State(state): State<Arc<AppState>>,
    Path(plan): Path<String>,
    UniqueQuery(q): UniqueQuery,
) -> Result<Response, ApiError> {
    let e = state.catalog.entry(&plan)?;
    let limit = match flag(&q, "limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("limit: '{l}' is not a number")))?,
        None => 100,
    };
    let before =
        match flag(&q, "before") {
            Some(b) => Some(Uuid::parse_str(b).map_err(|_| {
                ApiError::BadRequest(format!("before: '{b}' is not an instance id"))
            })?),
            None => None,
        };
    // Instances still queued for the store are committed first, so the list is complete.
    let runner = state.runner.clone();
    let _ = tokio::task::spawn_blocking(move || runner.flush()).await;
    let list = state.instances.list_instances(
        &e.key,
        Page {
            limit: limit.clamp(1, 1000),
            before,
        },
    )?;
    Ok(axum::Json(serde_json::to_value(list).unwrap_or_default()).into_response())
}

async fn start_async(
    State(state): State<Arc<AppState>>,
    Path(plan): Path<String>,
    UniqueQuery(q): UniqueQuery,
    principal: Principal,
    req: Request,
) -> Result<Response, ApiError> {
    let (entry, p) = state.catalog.plan(&plan)?;
    let inputs = inputs_of(&state, &q, req).await?;
    check_known(&entry, &inputs)?;
    if let Some(at) = deferred_at(&state, &q)? {
        // Checked now like a start (the same 400s), run later (docs/scheduling.md "Deferred runs").
        if !p.is_active {
            return Err(crate::runner::StartError::Inactive {
                plan: entry.key.clone(),
            }
            .into());
        }
        state
            .runner
            .executor()
            .check_inputs(&p, &inputs)
            .map_err(|e| ApiError::Start(e.into()))?;
        let dry_run = bool_flag(&q, "dryRun")?;
        let id = state
            .scheduler
            .defer(&entry.key, &inputs, dry_run, &principal, at)?;
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"PlanInstanceId": id, "Status": "Scheduled", "ScheduledFor": at})),
        )
            .into_response());
    }
    let started = state.runner.start(StartRequest {
        plan_key: entry.key.clone(),
        plan: p,
        inputs,
        dry_run: bool_flag(&q, "dryRun")?,
        principal,
        keep: Default::default(),
        durable: !entry.kind().is_read(),
    })?;
    // An acknowledged id must survive a crash: wait until the Running record is committed (group commit,
    // so concurrent starts share the flush).
    let runner = state.runner.clone();
    let _ = tokio::task::spawn_blocking(move || runner.flush()).await;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"PlanInstanceId": started.id})),
    )
        .into_response())
}

/// `at`: a future instant for a deferred run (None: start now, also for a time not in the future).
fn deferred_at(
    state: &AppState,
    q: &BTreeMap<String, String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(at) = flag(q, "at") else {
        return Ok(None);
    };
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "at: '{at}' is not an RFC 3339 instant with an offset (e.g. 2026-12-24T08:00:00+01:00): {e}"
            ))
        })?
        .with_timezone(&chrono::Utc);
    Ok((at > state.scheduler.clock().now()).then_some(at))
}

/// The sync timeout of a request: `timeoutSeconds`, bounded by the server's setting. The value is read like a
/// plan's `Timeout` (engine `DurationSpec`): seconds, fractions allowed, or with a unit (`500ms`, `2m`).
pub fn timeout_of(state: &AppState, q: &BTreeMap<String, String>) -> Result<Duration, ApiError> {
    match flag(q, "timeoutSeconds") {
        None => Ok(state.sync_timeout),
        Some(t) => {
            let d = DurationSpec::parse(t)
                .map_err(|e| ApiError::BadRequest(format!("timeoutSeconds: {e}")))?
                .0;
            if d.is_zero() {
                return Err(ApiError::BadRequest(
                    "timeoutSeconds must be positive".into(),
                ));
            }
            Ok(d.min(state.sync_timeout))
        }
    }
}

/// A colon path into a result (`Actions[0]:ExitData`; upstream's `Actions[0]:Result:ExitData` works too).
fn part(value: &Value, path: &str) -> Result<Value, ApiError> {
    Ok(part_ref(value, path)?.cloned().unwrap_or(Value::Null))
}

/// [`part`] without copying: the selected value (None: nothing there).
fn part_ref<'v>(value: &'v Value, path: &str) -> Result<Option<&'v Value>, ApiError> {
    let cleaned = path.replace(":Result:", ":").replace(":Result", "");
    let cleaned = cleaned
        .strip_prefix("Result:")
        .unwrap_or(&cleaned)
        .to_string();
    if cleaned.is_empty() || cleaned == "Result" {
        return Ok(Some(value));
    }
    let p: ColonPath = cleaned
        .parse()
        .map_err(|e: synapse_engine::path::PathError| ApiError::BadRequest(e.to_string()))?;
    Ok(select(value, &p))
}

/// Counts the bytes written to it (the JSON size of a value, without building the text).
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON size of `value` in bytes, counted while serializing into nothing.
fn json_size(value: &Value) -> usize {
    let mut n = ByteCount(0);
    match serde_json::to_writer(&mut n, value) {
        Ok(()) => n.0,
        Err(_) => usize::MAX,
    }
}

/// The parts of `result` at `paths`, refused before anything is copied when there are more paths than
/// `PartMaxPaths` or the answer would be larger than `PartMaxBytes` (sizes are counted, not built).
fn select_parts(
    result: Value,
    paths: &[String],
    limits: &crate::config::InstanceLimits,
) -> Result<Value, ApiError> {
    if paths.is_empty() {
        return Ok(result);
    }
    if paths.len() > limits.part_max_paths {
        return Err(ApiError::BadRequest(format!(
            "ElementPaths: {} paths, more than the {} one request may select (PartMaxPaths)",
            paths.len(),
            limits.part_max_paths
        )));
    }
    let selected: Vec<Option<&Value>> = paths
        .iter()
        .map(|p| part_ref(&result, p))
        .collect::<Result<_, _>>()?;
    // The same value selected twice is counted twice: it is sent twice.
    let mut sizes: HashMap<*const Value, usize> = HashMap::new();
    let mut total: usize = 2;
    for v in &selected {
        let size = match v {
            Some(v) => *sizes
                .entry(*v as *const Value)
                .or_insert_with(|| json_size(v)),
            None => 4,
        };
        total = total.saturating_add(size).saturating_add(1);
        if total > limits.part_max_bytes {
            return Err(ApiError::BadRequest(format!(
                "the selected parts are larger than {} bytes, the most one answer may hold (PartMaxBytes): \
                 select fewer or smaller parts",
                limits.part_max_bytes
            )));
        }
    }
    Ok(match selected.as_slice() {
        [one] => one.cloned().unwrap_or(Value::Null),
        many => Value::Array(
            many.iter()
                .map(|v| v.cloned().unwrap_or(Value::Null))
                .collect(),
        ),
    })
}

async fn start_sync(
    State(state): State<Arc<AppState>>,
    Path(plan): Path<String>,
    UniqueQuery(q): UniqueQuery,
    headers: HeaderMap,
    principal: Principal,
    req: Request,
) -> Result<Response, ApiError> {
    let (entry, p) = state.catalog.plan(&plan)?;
    let inputs = inputs_of(&state, &q, req).await?;
    check_known(&entry, &inputs)?;
    let timeout = timeout_of(&state, &q)?;
    let format = Format::choose(flag(&q, "outputtype"), &headers).map_err(ApiError::BadRequest)?;
    // Every flag is checked before the plan runs.
    let pretty = bool_flag(&q, "prettyprint")?;
    let path = flag(&q, "path").filter(|p| !p.is_empty());
    if let Some(p) = &path {
        part(&Value::Null, p)?;
    }
    let outcome = state
        .runner
        .run_sync(
            StartRequest {
                plan_key: entry.key.clone(),
                plan: p,
                inputs,
                dry_run: bool_flag(&q, "dryRun")?,
                principal,
                keep: Default::default(),
                // A write is answered once its record is committed (it survives a crash).
                durable: !entry.kind().is_read(),
            },
            timeout,
        )
        .await?;
    match outcome {
        SyncOutcome::Finished(result) => {
            let value = serde_json::to_value(&*result).unwrap_or_default();
            let value = match &path {
                Some(p) => part(&value, p)?,
                None => value,
            };
            let mut resp = render(StatusCode::OK, &value, format, pretty);
            if let Ok(h) = axum::http::HeaderValue::from_str(result.status.name()) {
                resp.headers_mut().insert("x-synapse-status", h);
            }
            Ok(resp)
        }
        SyncOutcome::StillRunning(id) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"PlanInstanceId": id, "Status": "Running",
                "Message": format!("still running after {}s; GET /synapse/execute/{}/{id} for the result", timeout.as_secs_f64(), entry.key)})),
        )
            .into_response()),
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::BadRequest(format!("'{id}' is not an instance id")))
}

async fn instance_value(state: &AppState, plan: &str, id: &str) -> Result<Value, ApiError> {
    let e = state.catalog.entry(plan)?;
    let id = parse_id(id)?;
    let rec = state
        .runner
        .instance(id)?
        .filter(|r| r.plan.eq_ignore_ascii_case(&e.key))
        .ok_or_else(|| ApiError::NotFound(format!("plan '{}' has no instance {id}", e.key)))?;
    Ok(serde_json::to_value(rec).unwrap_or_default())
}

/// An instance (with its result when finished)
#[utoipa::path(get, path = "/{plan}/{id}", operation_id = "getInstance", tag = "execute",
    params(InstancePath),
    responses(
        (status = 200, description = "The instance.", body = InstanceRecord),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn get_instance(
    State(state): State<Arc<AppState>>,
    Path((plan, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(instance_value(&state, &plan, &id).await?).into_response())
}

/// Cancel a running instance
///
/// Requests cancellation; the instance ends as Cancelled (see its record or /events).
#[utoipa::path(delete, path = "/{plan}/{id}", operation_id = "cancelInstance", tag = "execute",
    params(InstancePath),
    responses(
        (status = 202, description = "Cancellation requested.", body = CancelAccepted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = InternalError),
    ))]
async fn cancel_instance(
    State(state): State<Arc<AppState>>,
    Path((plan, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let value = instance_value(&state, &plan, &id).await?;
    let uid = parse_id(&id)?;
    if value["Status"] == "Scheduled" {
        // A deferred run that has not fired: cancelled before it runs.
        if let Some(rec) = state.runner.instance(uid)? {
            if state.scheduler.cancel_deferred(&rec)? {
                return Ok((
                    StatusCode::ACCEPTED,
                    axum::Json(
                        json!({"PlanInstanceId": uid, "Message": "cancelled before it ran"}),
                    ),
                )
                    .into_response());
            }
        }
    }
    if state.runner.cancel(uid) {
        Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"PlanInstanceId": uid, "Message": "cancellation requested"})),
        )
            .into_response())
    } else {
        Err(ApiError::Conflict(format!(
            "instance {uid} is not running (status {})",
            value["Status"].as_str().unwrap_or("unknown")
        )))
    }
}

async fn get_part(
    State(state): State<Arc<AppState>>,
    Path((plan, id)): Path<(String, String)>,
    UniqueQuery(q): UniqueQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let mut value = instance_value(&state, &plan, &id).await?;
    let result = value
        .get_mut("Result")
        .map(Value::take)
        .unwrap_or(Value::Null);
    let mut paths: Vec<String> = flag(&q, "elementPath")
        .map(str::to_string)
        .into_iter()
        .collect();
    if *req.method() == Method::POST {
        let m = body::map(req, state.body_limit).await?;
        if let Some(Value::Array(list)) = m.get("ElementPaths") {
            paths.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
    }
    // The result moves out of the record (no copy); only the selected parts are copied, within the limits.
    Ok(axum::Json(select_parts(result, &paths, &state.instance_limits)?).into_response())
}

/// Progress events (server-sent events)
///
/// `event: progress` (data: a `ProgressEvent`) while the instance runs; `event: lagged` (data:
/// `{"Missed": n}`) when the client fell behind and events were dropped; then one `event: finished` (data:
/// `{"Status": "<plan status>"}`) and the stream ends. For an instance that is not running, a single
/// `finished` event with the stored status. Keep-alive comments every 15 s.
#[utoipa::path(get, path = "/{plan}/{id}/events", operation_id = "instanceEvents", tag = "execute",
    params(InstancePath),
    responses(
        (status = 200, description = "An SSE stream.", body = String, content_type = "text/event-stream",
            example = "event: progress\ndata: {\"PlanInstanceId\":\"...\",\"ActionInstanceId\":1,\"ActionName\":\"wait\",\"Status\":\"Running\",\"Message\":\"\",\"Time\":\"...\"}\n\nevent: finished\ndata: {\"Status\":\"Complete\"}\n\n"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn events(
    State(state): State<Arc<AppState>>,
    Path((plan, id)): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let uid = parse_id(&id)?;
    // Subscribe first: if the instance finishes in between, the stored record is already final.
    let live = state.runner.subscribe(uid);
    let value = instance_value(&state, &plan, &id).await?;
    let stream = async_stream(value, live);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

type Live = crate::runner::Subscription;

/// Progress events until the instance finishes, then one `finished` event with the plan status.
fn async_stream(
    stored: Value,
    live: Option<Live>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(
        (stored, live, false),
        |(stored, live, finished)| async move {
            if finished {
                return None;
            }
            let Some((mut rx, mut done)) = live else {
                // Not running here: report what the store says and end.
                let ev = Event::default()
                    .event("finished")
                    .data(json!({"Status": stored["Status"]}).to_string());
                return Some((Ok(ev), (stored, None, true)));
            };
            loop {
                tokio::select! {
                    e = rx.recv() => match e {
                        Ok(ev) => {
                            let data = serde_json::to_string(&ev).unwrap_or_default();
                            return Some((Ok(Event::default().event("progress").data(data)), (stored, Some((rx, done)), false)));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            let ev = Event::default().event("lagged").data(json!({"Missed": n}).to_string());
                            return Some((Ok(ev), (stored, Some((rx, done)), false)));
                        }
                        Err(_) => {}
                    },
                    _ = done.changed() => {}
                }
                let finished_status = done.borrow().as_ref().map(|r| r.status);
                if let Some(status) = finished_status {
                    // Drain what is already queued, then finish.
                    if let Ok(ev) = rx.try_recv() {
                        let data = serde_json::to_string(&ev).unwrap_or_default();
                        return Some((
                            Ok(Event::default().event("progress").data(data)),
                            (stored, Some((rx, done)), false),
                        ));
                    }
                    let ev = Event::default()
                        .event("finished")
                        .data(json!({"Status": status}).to_string());
                    return Some((Ok(ev), (stored, None, true)));
                }
            }
        },
    )
}
