//! `/synapse/schedules`: schedules from the API and from schedule files, in one list with their source.
//!
//! ```text
//! GET    /                       every schedule (views: policies, next fire times, last result)
//! POST   /                       create (Admin): 201 with the schedule
//! GET    /{name}                 one schedule
//! PUT    /{name}                 replace its definition (Admin; API schedules only)
//! DELETE /{name}                 delete it and its occurrences (Admin; API schedules only)
//! POST   /{name}/pause|resume    (Admin)
//! POST   /{name}/trigger         fire now under its overlap policy (Admin)
//! GET    /{name}/occurrences     fired and skipped occurrences, newest first (?limit=&before=)
//! ```
//! A definition is checked like a start: the plan must exist and validate, its parameters must be ones the
//! plan takes and pass its input checks (the same 400 a start gives); the cron expression, the zone and the
//! policies are checked with the field named.

use crate::auth::{Permission, Principal};
use crate::body;
use crate::catalog::CatalogError;
use crate::http::access::{authenticated, require, Refusals};
use crate::http::error::ApiError;
use crate::openapi::responses::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, PayloadTooLarge, Unauthorized,
    UnsupportedMediaType,
};
use crate::query::{flag, UniqueQuery};
use crate::schedule::cron::CronSpec;
use crate::schedule::model::{OccurrenceRecord, ScheduleSpec, Source};
use crate::schedule::scheduler::{inputs_of, next_occurrence};
use crate::store::schedules::{ScheduleRecord, ScheduleState};
use crate::store::StoreError;
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use synapse_engine::model::DurationSpec;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    use Permission::*;
    let routes = OpenApiRouter::new()
        .routes(require(ReadPlans, routes!(list_schedules)))
        .routes(require(Admin, routes!(create_schedule)))
        .routes(require(ReadPlans, routes!(get_schedule)))
        .routes(require(Admin, routes!(update_schedule)))
        .routes(require(Admin, routes!(delete_schedule)))
        .routes(require(Admin, routes!(pause_schedule)))
        .routes(require(Admin, routes!(resume_schedule)))
        .routes(require(Admin, routes!(trigger_schedule)))
        .routes(require(ReadInstances, routes!(list_occurrences)));
    authenticated(routes, Refusals::Plain)
}

/// `{name}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NamePath {
    /// The schedule's name (case-insensitive).
    #[param(example = "nightly-report")]
    pub name: String,
}

/// `GET /synapse/schedules/{name}/occurrences`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OccurrencesQuery {
    /// How many to return (default 100; clamped to 1..1000).
    pub limit: Option<u32>,
    /// Paging cursor: only occurrences scheduled before this instant (RFC 3339).
    pub before: Option<String>,
}

/// A next fire time, in the schedule's zone and in UTC.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct FireTime {
    /// RFC 3339 with the zone's offset.
    pub local: String,
    pub utc: DateTime<Utc>,
}

/// A schedule as every view shows it: its definition with every policy (defaults spelled out), where it
/// comes from, its state, its next fire times and its last result.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleView {
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `!Enabled`.
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// The next (up to 5) occurrences; empty when it has ended or never matches.
    pub next_fire_times: Vec<FireTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<OccurrenceRecord>,
    pub consecutive_failures: u32,
    /// Instances it fired that still run.
    pub running: Vec<Uuid>,
    /// `Overlap: BufferOne`: the occurrence waiting for the running one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffered: Option<DateTime<Utc>>,
}

fn view(rec: ScheduleRecord) -> ScheduleView {
    let mut next = Vec::new();
    if let (Ok(cron), Some(first)) = (
        CronSpec::parse(&rec.spec.cron, &rec.spec.time_zone),
        rec.state.next_fire_at,
    ) {
        let mut at = Some(first);
        while let Some(t) = at.filter(|_| next.len() < 5) {
            next.push(FireTime {
                local: cron.local_rfc3339(t),
                utc: t,
            });
            at = next_occurrence(&rec.spec, &cron, t);
        }
    }
    let mut spec = rec.spec;
    // Parameters are shown masked (the one masking rule).
    let mut params = serde_json::to_value(&spec.parameters).unwrap_or_default();
    synapse_engine::wire::redact_value(&mut params);
    spec.parameters = serde_json::from_value(params).unwrap_or_default();
    ScheduleView {
        paused: !spec.enabled,
        spec,
        source: rec.source,
        file: rec.file,
        owner: rec.owner,
        created_at: rec.created_at,
        updated_at: rec.updated_at,
        paused_reason: rec.state.paused_reason,
        next_fire_times: next,
        last_result: rec.state.last,
        consecutive_failures: rec.state.consecutive_failures,
        running: rec.state.running,
        buffered: rec.state.buffered,
    }
}

fn json(status: StatusCode, v: impl Serialize) -> Response {
    (
        status,
        axum::Json(serde_json::to_value(v).unwrap_or_default()),
    )
        .into_response()
}

/// The fields a definition may have.
const FIELDS: &[&str] = &[
    "Name",
    "Plan",
    "Cron",
    "TimeZone",
    "Parameters",
    "Misfire",
    "CatchUpWindow",
    "Overlap",
    "Enabled",
    "StartAt",
    "EndAt",
    "Description",
    "PauseOnFailure",
];

/// A definition from a request body (JSON or YAML), every field named in its error.
pub fn parse_spec(map: Map<String, Value>) -> Result<ScheduleSpec, ApiError> {
    if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "{k}: unknown field (a schedule has {})",
            FIELDS.join(", ")
        )));
    }
    for required in ["Name", "Plan", "Cron"] {
        if !map.contains_key(required) {
            return Err(ApiError::BadRequest(format!("{required}: missing")));
        }
    }
    serde_path_to_error::deserialize::<_, ScheduleSpec>(Value::Object(map))
        .map_err(|e| ApiError::BadRequest(format!("{}: {}", e.path(), e.inner())))
}

/// Checks a definition like a start (plan, parameters) and its own fields; returns its cron.
pub fn check_spec(state: &AppState, spec: &ScheduleSpec) -> Result<CronSpec, ApiError> {
    check_fields(spec)?;
    let cron = CronSpec::parse(&spec.cron, &spec.time_zone).map_err(|e| match e {
        crate::schedule::cron::CronError::Zone(_) => ApiError::BadRequest(format!("TimeZone: {e}")),
        _ => ApiError::BadRequest(format!("Cron: {e}")),
    })?;
    let (entry, plan) = state.catalog.plan(&spec.plan).map_err(|e| match e {
        CatalogError::NoSuchPlan { name } => {
            ApiError::BadRequest(format!("Plan: no plan named '{name}'"))
        }
        other => ApiError::BadRequest(format!("Plan: {other}")),
    })?;
    let inputs = inputs_of(spec);
    crate::routes::execute::check_known(&entry, &inputs)?;
    state
        .runner
        .executor()
        .check_inputs(&plan, &inputs)
        .map_err(|e| ApiError::Start(e.into()))?;
    Ok(cron)
}

/// The checks of a definition that need no catalog (schedule files use them too).
pub fn check_fields(spec: &ScheduleSpec) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::BadRequest(m));
    if spec.name.is_empty()
        || spec.name.len() > 128
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad(format!(
            "Name: '{}' is not a valid schedule name (1 to 128 letters, digits, '-', '_' or '.')",
            spec.name.escape_debug()
        ));
    }
    if let Err(e) = DurationSpec::parse(&spec.catch_up_window) {
        return bad(format!("CatchUpWindow: {e}"));
    }
    if let (Some(s), Some(e)) = (spec.start_at, spec.end_at) {
        if e <= s {
            return bad("EndAt: must be after StartAt".into());
        }
    }
    if spec.pause_on_failure == Some(0) {
        return bad("PauseOnFailure: must be at least 1 (leave it out to never pause)".into());
    }
    for k in spec.parameters.keys() {
        body::check_name(k)?;
    }
    Ok(())
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no schedule named '{name}'"))
}

fn api_only(rec: &ScheduleRecord) -> Result<(), ApiError> {
    if rec.source == Source::File {
        return Err(ApiError::Conflict(format!(
            "schedule '{}' is defined in the file {}: it is read-only through the API (edit the file)",
            rec.spec.name,
            rec.file.as_deref().unwrap_or("?")
        )));
    }
    Ok(())
}

/// List schedules
///
/// Every schedule, from the API and from schedule files (`Source`), by name.
#[utoipa::path(get, path = "/", operation_id = "listSchedules", tag = "schedules",
    responses(
        (status = 200, description = "Schedules.", body = Vec<ScheduleView>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = InternalError),
    ))]
async fn list_schedules(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let all = state.scheduler.store().list_schedules()?;
    Ok(json(
        StatusCode::OK,
        all.into_iter()
            .filter(|r| r.deferred.is_none())
            .map(view)
            .collect::<Vec<_>>(),
    ))
}

/// Create a schedule
///
/// The plan and parameters are checked like a start (the same 400); the answer is the schedule as `GET`
/// shows it.
#[utoipa::path(post, path = "/", operation_id = "createSchedule", tag = "schedules",
    request_body(content((ScheduleSpec = "application/json"))),
    responses(
        (status = 201, description = "Created.", body = ScheduleView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = InternalError),
    ))]
async fn create_schedule(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    req: Request,
) -> Result<Response, ApiError> {
    let spec = parse_spec(body::map(req, state.body_limit).await?)?;
    let cron = check_spec(&state, &spec)?;
    let sched = &state.scheduler;
    let now = sched.clock().now();
    let rec = ScheduleRecord {
        state: ScheduleState {
            next_fire_at: next_occurrence(&spec, &cron, now),
            paused_at: (!spec.enabled).then_some(now),
            ..Default::default()
        },
        spec,
        source: Source::Api,
        file: None,
        owner: Some(principal.name),
        created_at: now,
        updated_at: now,
        deferred: None,
    };
    sched
        .exclusive(|| sched.store().insert_schedule(&rec))
        .map_err(|e| match e {
            StoreError::AlreadyExists { key, .. } => {
                ApiError::Conflict(format!("a schedule named '{key}' already exists"))
            }
            other => other.into(),
        })?;
    metrics::gauge!("synapse_schedules").increment(1.0);
    Ok(json(StatusCode::CREATED, view(rec)))
}

/// A schedule
#[utoipa::path(get, path = "/{name}", operation_id = "getSchedule", tag = "schedules",
    params(NamePath),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn get_schedule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let rec = state
        .scheduler
        .store()
        .get_schedule(&name)?
        .filter(|r| r.deferred.is_none())
        .ok_or_else(|| not_found(&name))?;
    Ok(json(StatusCode::OK, view(rec)))
}

/// Replace a schedule's definition
///
/// The whole definition (as for create; `Name` may be left out). Its history and running instances stay;
/// the next occurrence is computed anew from now.
#[utoipa::path(put, path = "/{name}", operation_id = "updateSchedule", tag = "schedules",
    params(NamePath),
    request_body(content((ScheduleSpec = "application/json"))),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = InternalError),
    ))]
async fn update_schedule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let mut map = body::map(req, state.body_limit).await?;
    let old = state
        .scheduler
        .store()
        .get_schedule(&name)?
        .filter(|r| r.deferred.is_none())
        .ok_or_else(|| not_found(&name))?;
    api_only(&old)?;
    match map.get("Name") {
        None => {
            map.insert("Name".into(), Value::String(old.spec.name.clone()));
        }
        Some(Value::String(n)) if n.eq_ignore_ascii_case(&old.spec.name) => {}
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "Name: a schedule cannot be renamed (this is '{}')",
                old.spec.name
            )))
        }
    }
    let spec = parse_spec(map)?;
    let cron = check_spec(&state, &spec)?;
    let sched = &state.scheduler;
    let rec = sched.exclusive(|| -> Result<ScheduleRecord, ApiError> {
        let now = sched.clock().now();
        let mut rec = sched
            .store()
            .get_schedule(&name)?
            .filter(|r| r.deferred.is_none())
            .ok_or_else(|| not_found(&name))?;
        if rec.spec.enabled && !spec.enabled {
            rec.state.paused_at = Some(now);
        }
        rec.state.next_fire_at = next_occurrence(&spec, &cron, now);
        rec.spec = spec;
        rec.updated_at = now;
        sched.store().put_schedule(&rec)?;
        Ok(rec)
    })?;
    Ok(json(StatusCode::OK, view(rec)))
}

/// Delete a schedule
///
/// With its occurrences; runs it started keep running.
#[utoipa::path(delete, path = "/{name}", operation_id = "deleteSchedule", tag = "schedules",
    params(NamePath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = InternalError),
    ))]
async fn delete_schedule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let sched = &state.scheduler;
    sched.exclusive(|| -> Result<(), ApiError> {
        let rec = sched
            .store()
            .get_schedule(&name)?
            .filter(|r| r.deferred.is_none())
            .ok_or_else(|| not_found(&name))?;
        api_only(&rec)?;
        sched.store().delete_schedule(&name)?;
        Ok(())
    })?;
    metrics::gauge!("synapse_schedules").decrement(1.0);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pause a schedule
///
/// No occurrence runs while paused; on resume, the ones missed meanwhile are handled by its `Misfire` policy
/// (recorded with reason `Paused` when skipped).
#[utoipa::path(post, path = "/{name}/pause", operation_id = "pauseSchedule", tag = "schedules",
    params(NamePath),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn pause_schedule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    principal: Principal,
) -> Result<Response, ApiError> {
    set_enabled(&state, &name, false, &principal.name)
}

/// Resume a schedule
#[utoipa::path(post, path = "/{name}/resume", operation_id = "resumeSchedule", tag = "schedules",
    params(NamePath),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn resume_schedule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    principal: Principal,
) -> Result<Response, ApiError> {
    set_enabled(&state, &name, true, &principal.name)
}

/// Pauses or resumes (file schedules too: this is their state, not their definition).
pub fn set_enabled(
    state: &AppState,
    name: &str,
    enabled: bool,
    by: &str,
) -> Result<Response, ApiError> {
    let sched = &state.scheduler;
    let rec = sched.exclusive(|| -> Result<ScheduleRecord, ApiError> {
        let now = sched.clock().now();
        let mut rec = sched
            .store()
            .get_schedule(name)?
            .filter(|r| r.deferred.is_none())
            .ok_or_else(|| not_found(name))?;
        if rec.spec.enabled != enabled {
            rec.spec.enabled = enabled;
            if enabled {
                rec.state.paused_reason = None;
                rec.state.resumed_at = Some(now);
                rec.state.consecutive_failures = 0;
            } else {
                rec.state.paused_at = Some(now);
                rec.state.paused_reason = Some(format!("paused by {by}"));
            }
            rec.updated_at = now;
            sched.store().put_schedule(&rec)?;
        }
        Ok(rec)
    })?;
    Ok(json(StatusCode::OK, view(rec)))
}

/// Fire a schedule now
///
/// One occurrence at the current instant, under the schedule's overlap policy (also while paused). The
/// answer is the occurrence: `Fired` with its `Instance`, or `Skipped` with its `Reason`.
#[utoipa::path(post, path = "/{name}/trigger", operation_id = "triggerSchedule", tag = "schedules",
    params(NamePath),
    responses(
        (status = 202, description = "The occurrence.", body = OccurrenceRecord),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = InternalError),
    ))]
async fn trigger_schedule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if state
        .scheduler
        .store()
        .get_schedule(&name)?
        .is_none_or(|r| r.deferred.is_some())
    {
        return Err(not_found(&name));
    }
    match state.scheduler.trigger(&state.catalog, &name)? {
        Some(occ) => Ok(json(StatusCode::ACCEPTED, occ)),
        None => Err(ApiError::Conflict(format!(
            "schedule '{name}' is busy (claimed by another controller, or triggered twice in the same millisecond); try again"
        ))),
    }
}

/// A schedule's occurrences, newest first
#[utoipa::path(get, path = "/{name}/occurrences", operation_id = "listOccurrences", tag = "schedules",
    params(NamePath, OccurrencesQuery),
    responses(
        (status = 200, description = "Occurrences, newest first.", body = Vec<OccurrenceRecord>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
    ))]
async fn list_occurrences(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    UniqueQuery(q): UniqueQuery,
) -> Result<Response, ApiError> {
    if state
        .scheduler
        .store()
        .get_schedule(&name)?
        .is_none_or(|r| r.deferred.is_some())
    {
        return Err(not_found(&name));
    }
    let limit = match flag(&q, "limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("limit: '{l}' is not a number")))?,
        None => 100,
    };
    let before = match flag(&q, "before") {
        Some(b) => Some(
            DateTime::parse_from_rfc3339(b)
                .map_err(|e| ApiError::BadRequest(format!("before: '{b}': {e}")))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let list = state
        .scheduler
        .store()
        .list_occurrences(&name, limit.clamp(1, 1000), before)?;
    Ok(json(StatusCode::OK, list))
}
