//! Schemas of the generic API and the error body.
//!
//! Types the controller owns and builds itself derive `ToSchema` where they are defined (`routes::ops::Health`).
//! The rest are sent by code this crate may not annotate: engine types (the engine has no HTTP or OpenAPI
//! dependency), store records (`store/`), and bodies built with `json!` in the handlers and in `error.rs`. For
//! those, the structs here describe the wire shape only; they are never built. `check` and the tests compare
//! them with real values (`openapi::tests`, tests/api.rs), so a change on either side fails a test.

#![allow(dead_code)] // the structs exist for their schemas

use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Engine status of a plan or action. The list is generated from `synapse_engine::StatusType::ALL`.
#[derive(Serialize)]
pub struct StatusType;

impl PartialSchema for StatusType {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some("Engine status of a plan or action."))
            .enum_values(Some(
                synapse_engine::StatusType::ALL
                    .iter()
                    .map(|s| s.name().to_string()),
            ))
            .into()
    }
}

impl ToSchema for StatusType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("StatusType")
    }
}

/// What `Kind` a problem is.
#[derive(Serialize, ToSchema)]
pub enum ProblemKind {
    Missing,
    Invalid,
    Resolve,
}

/// One input problem (`synapse_engine::resolve::Problem`): `Missing` (with `Parameter`), `Invalid` (with
/// `Parameter` and `Reason`) or `Resolve` (with `Reason`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"Kind": "Missing", "Parameter": "name"}))]
pub struct Problem {
    pub kind: ProblemKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The error body of every route except the AD routes' request errors (those are wrapped in an
/// `AdEnvelope`). The request id is in the `x-request-id` response header.
#[derive(Serialize, ToSchema)]
#[schema(as = Error, example = json!({"Error": {"Status": 400, "Message": "missing required parameter 'name'",
    "Problems": [{"Kind": "Missing", "Parameter": "name"}]}}))]
pub struct ErrorBody {
    #[serde(rename = "Error")]
    pub error: ErrorDetail,
}

/// The content of an error body.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorDetail {
    /// The HTTP status code, repeated.
    #[schema(example = 400)]
    pub status: u16,
    pub message: String,
    /// Present only for missing or invalid dynamic parameters: every problem, not just the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<Problem>>,
}

/// One executed (or deliberately skipped) action of the result tree. Empty `Handler` and `Message`, null
/// `ExitData`, absent `ForEachIndex` and empty `ActionGroup`/`Actions` are left out.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ActionResult {
    pub name: String,
    /// Per run, from 1.
    pub instance_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub status: StatusType,
    /// The worst status in the action's subtree (itself included).
    pub branch_status: StatusType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The handler's exit data (any JSON). For the ActiveDirectoryHandler: an `AdEnvelope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_data: Option<Value>,
    pub exit_code: i32,
    /// Handler attempts (0: never ran; more than 1 after retries).
    pub attempts: u32,
    /// The node worker that ran the handler (absent when it ran in the controller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How many times the request was delivered to a node; only when more than 1 (redelivered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<u32>,
    /// True when the node's answer was recorded after the instance had ended (the controller restarted while
    /// the action ran); the instance's status is left as it was. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<bool>,
    /// ForEach clones only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_each_index: Option<u64>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub action_group: Option<Vec<ActionResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub actions: Option<Vec<ActionResult>>,
}

/// The result tree of a plan run (docs/plan-language.md#result-tree).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PlanResult {
    pub plan_name: String,
    pub instance_id: uuid::Uuid,
    /// The worst status of every executed action (Complete when nothing needed to run).
    pub status: StatusType,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub duration_ms: f64,
    pub actions: Vec<ActionResult>,
}

/// The answer to an asynchronous start.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"PlanInstanceId": "01a2076d-7e0b-7332-8fe9-3abc3d9cd6d2"}))]
pub struct PlanInstanceId {
    #[serde(rename = "PlanInstanceId")]
    pub plan_instance_id: uuid::Uuid,
}

/// Always `Running`.
#[derive(Serialize, ToSchema)]
pub enum RunningStatus {
    Running,
}

/// A sync start that did not finish within the timeout; the plan keeps running.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct StillRunning {
    pub plan_instance_id: uuid::Uuid,
    pub status: RunningStatus,
    #[schema(
        example = "still running after 0.5s; GET /synapse/execute/slow/01a2076d-7e20-763a-92f3-3f9d9a1f2245 for the result"
    )]
    pub message: String,
}

/// The answer to a cancellation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CancelAccepted {
    pub plan_instance_id: uuid::Uuid,
    #[schema(example = "cancellation requested")]
    pub message: String,
}

/// An instance without parameters and result (listings; `store::InstanceSummary`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceSummary {
    pub id: uuid::Uuid,
    /// The plan's catalog key (file name).
    pub plan: String,
    /// The API key's name (`anonymous` with --no-auth).
    pub requester: Option<String>,
    /// How the requester was authenticated (absent in records written before this field existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester_kind: Option<RequesterKind>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status: StatusType,
    pub dry_run: bool,
    pub message: Option<String>,
}

/// How an instance's requester was authenticated (`store::RequesterKind`): `ApiKey`, or `Anonymous` with
/// `--no-auth`.
#[derive(Serialize, ToSchema)]
pub enum RequesterKind {
    ApiKey,
    Anonymous,
}

/// A stored plan instance (`store::InstanceRecord`): `Status` is `Running` (and `Result` null) until it ends.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceRecord {
    pub id: uuid::Uuid,
    pub plan: String,
    /// The API key's name (`anonymous` with --no-auth).
    pub requester: Option<String>,
    /// How the requester was authenticated (absent in records written before this field existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester_kind: Option<RequesterKind>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status: StatusType,
    pub dry_run: bool,
    /// The dynamic parameters, secrets masked.
    pub parameters: BTreeMap<String, Value>,
    pub message: Option<String>,
    pub result: Option<PlanResult>,
}

/// One option of a parameter.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct OptionHelp {
    pub key: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One dynamic parameter of a plan (`synapse_engine::help::ParamHelp`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ParamHelp {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub required: bool,
    /// Any JSON value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<OptionHelp>>,
    pub restrict_to_options: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Boolean")]
    pub data_type: Option<String>,
    /// A regular expression the value must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    /// Whether a `~~token~~` refers to it.
    pub token: bool,
    /// The actions that use it.
    pub used_by: Vec<String>,
}

/// A plan definition as loaded (PascalCase, docs/plan-language.md): `Name`, `Description`, `IsActive`,
/// `Actions`, ...
#[derive(Serialize, ToSchema)]
pub struct Plan {
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

/// Dynamic parameters: upstream's `{"DynamicParameters": {...}}` or a plain map of names to values. JSON or
/// YAML (unquoted keys, as in the seed documents, are YAML flow maps). An empty body means no parameters.
/// Names are case-insensitive; a name the plan does not take is a 400.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"DynamicParameters": {"name": "Bob", "loud": "true"}}))]
pub struct DynamicParameters {
    #[serde(flatten)]
    pub parameters: BTreeMap<String, Value>,
}

/// Colon paths into an instance's result.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"ElementPaths": ["Actions[0]:Status", "Status"]}))]
pub struct ElementPaths {
    #[serde(rename = "ElementPaths", skip_serializing_if = "Option::is_none")]
    pub element_paths: Option<Vec<String>>,
}

/// The data of an SSE `progress` event (`synapse_engine::ProgressEvent`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ProgressEvent {
    pub plan_instance_id: uuid::Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_instance_id: Option<u64>,
    pub action_name: String,
    pub status: StatusType,
    pub message: String,
    pub time: chrono::DateTime<chrono::Utc>,
}

/// A custom search's description and dynamic parameters.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdSearchHelp {
    pub plan: String,
    pub description: Option<String>,
    pub parameters: Vec<ParamHelp>,
}
