//! Path and query parameters, shared by the operations of routes/*.rs (`params(...)` in `#[utoipa::path]`).
//! The handlers read these from `Path<...>` tuples and `UniqueQuery` maps; the structs name and describe them.
//! Query names are matched case-insensitively by the server.

#![allow(dead_code)] // the structs exist for their parameter lists

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `{plan}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PlanPath {
    /// Plan name: the plan file's name without `.yaml` (case-insensitive), e.g. `GetUser` for
    /// `plans/GetUser.yaml`.
    #[param(example = "hello")]
    pub plan: String,
}

/// `{plan}/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InstancePath {
    /// Plan name: the plan file's name without `.yaml` (case-insensitive).
    #[param(example = "hello")]
    pub plan: String,
    /// Plan instance id (a UUID v7, as returned in `PlanInstanceId`).
    #[param(example = "01a2076d-7c77-76c6-81fd-fcc700a96f7a")]
    pub id: String,
}

/// AD object types of the `{object}` segment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdObject {
    User,
    Users,
    Group,
    Groups,
    Ou,
    OrgUnit,
    OrganizationalUnit,
    Computer,
    Computers,
}

/// `{object}/{identity}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ObjectPath {
    /// AD object type: `user`/`users`, `group`/`groups`, `ou`/`orgunit`/`organizationalunit`,
    /// `computer`/`computers` (case-insensitive). Anything else answers 404 with an envelope (Status 4).
    #[param(example = "user")]
    pub object: AdObject,
    /// The object's identity, percent-encoded: a DN (`cn=mfox,ou=Synapse,dc=sandbox,dc=local`; a `/` inside it
    /// must be sent as `%2F`), a SID, a GUID, a UPN (users), `DOMAIN\name` (send the backslash as `%5C`), or a
    /// name/sAMAccountName. Create needs a DN.
    #[param(example = "mfox")]
    pub identity: String,
}

/// `{object}/{a}/{b}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ObjectTwoPath {
    /// AD object type: `user`/`users`, `group`/`groups`, `ou`/`orgunit`/`organizationalunit`,
    /// `computer`/`computers` (case-insensitive). Anything else answers 404 with an envelope (Status 4).
    #[param(example = "user")]
    pub object: AdObject,
    /// First segment. For GET and PUT, and for POST and DELETE when it names a configured domain (or alias):
    /// the domain, and the request works on `{a}\{b}`. For POST and DELETE otherwise (the seed's form): the
    /// member's identity.
    #[param(example = "mfox")]
    pub a: String,
    /// Second segment: the identity within the domain `{a}`, or (POST and DELETE, `{a}` not a domain) the
    /// group's identity.
    #[param(example = "FamousActors")]
    pub b: String,
}

/// `{object}/{identity}/group/{group}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MembershipPath {
    /// AD object type: `user`/`users`, `group`/`groups`, `ou`/`orgunit`/`organizationalunit`,
    /// `computer`/`computers` (case-insensitive). Anything else answers 404 with an envelope (Status 4).
    #[param(example = "user")]
    pub object: AdObject,
    /// The object's identity, percent-encoded: a DN (`cn=mfox,ou=Synapse,dc=sandbox,dc=local`; a `/` inside it
    /// must be sent as `%2F`), a SID, a GUID, a UPN (users), `DOMAIN\name` (send the backslash as `%5C`), or a
    /// name/sAMAccountName. Create needs a DN.
    #[param(example = "mfox")]
    pub identity: String,
    /// The group's identity (name, DN, SID, GUID, `DOMAIN\name`), percent-encoded.
    #[param(example = "FamousActors")]
    pub group: String,
}

/// `{object}/{domain}/{identity}/group/{group}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MembershipTwinPath {
    /// AD object type: `user`/`users`, `group`/`groups`, `ou`/`orgunit`/`organizationalunit`,
    /// `computer`/`computers` (case-insensitive). Anything else answers 404 with an envelope (Status 4).
    #[param(example = "user")]
    pub object: AdObject,
    /// A domain segment: the identity becomes `{domain}\{identity}`. The domain must be a configured domain
    /// name or alias for the handler to resolve it.
    #[param(example = "SANDBOX")]
    pub domain: String,
    /// The object's identity, percent-encoded: a DN (`cn=mfox,ou=Synapse,dc=sandbox,dc=local`; a `/` inside it
    /// must be sent as `%2F`), a SID, a GUID, a UPN (users), `DOMAIN\name` (send the backslash as `%5C`), or a
    /// name/sAMAccountName. Create needs a DN.
    #[param(example = "mfox")]
    pub identity: String,
    /// The group's identity (name, DN, SID, GUID, `DOMAIN\name`), percent-encoded.
    #[param(example = "FamousActors")]
    pub group: String,
}

/// `{object}/{identity}/ou/{moveto}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MovePath {
    /// AD object type: `user`/`users`, `group`/`groups`, `ou`/`orgunit`/`organizationalunit`,
    /// `computer`/`computers` (case-insensitive). Anything else answers 404 with an envelope (Status 4).
    #[param(example = "user")]
    pub object: AdObject,
    /// The object's identity, percent-encoded: a DN (`cn=mfox,ou=Synapse,dc=sandbox,dc=local`; a `/` inside it
    /// must be sent as `%2F`), a SID, a GUID, a UPN (users), `DOMAIN\name` (send the backslash as `%5C`), or a
    /// name/sAMAccountName. Create needs a DN.
    #[param(example = "mfox")]
    pub identity: String,
    /// The destination OU's identity (usually a DN), percent-encoded.
    #[param(example = "ou=AmericanActors,ou=Synapse,dc=sandbox,dc=local")]
    pub moveto: String,
}

/// `{object}/{domain}/{identity}/ou/{moveto}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MoveTwinPath {
    /// AD object type: `user`/`users`, `group`/`groups`, `ou`/`orgunit`/`organizationalunit`,
    /// `computer`/`computers` (case-insensitive). Anything else answers 404 with an envelope (Status 4).
    #[param(example = "user")]
    pub object: AdObject,
    /// A domain segment: the identity becomes `{domain}\{identity}`. The domain must be a configured domain
    /// name or alias for the handler to resolve it.
    #[param(example = "SANDBOX")]
    pub domain: String,
    /// The object's identity, percent-encoded: a DN (`cn=mfox,ou=Synapse,dc=sandbox,dc=local`; a `/` inside it
    /// must be sent as `%2F`), a SID, a GUID, a UPN (users), `DOMAIN\name` (send the backslash as `%5C`), or a
    /// name/sAMAccountName. Create needs a DN.
    #[param(example = "mfox")]
    pub identity: String,
    /// The destination OU's identity (usually a DN), percent-encoded.
    #[param(example = "ou=AmericanActors,ou=Synapse,dc=sandbox,dc=local")]
    pub moveto: String,
}

/// Response formats of `outputtype`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputType {
    Json,
    Yaml,
    Xml,
}

/// `dryRun`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunFlag {
    /// Dry run: handlers are told not to change anything (writes are reported, not made). `1` and an empty
    /// value also mean true, `0` false; anything else is a 400.
    #[param(rename = "dryRun")]
    pub dry_run: Option<bool>,
}

/// `at`: a deferred run (docs/scheduling.md "Deferred runs").
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtFlag {
    /// Run later: an RFC 3339 instant with its offset (`2026-12-24T08:00:00+01:00`). The answer is 202 with an
    /// instance whose status is `Scheduled` until then (cancel it with DELETE); it fires once, also across
    /// restarts. A time not in the future starts at once.
    pub at: Option<String>,
}

/// The flags of a sync start.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncFlags {
    /// How long to wait for the result, in seconds (fractions allowed, > 0). Bounded by the server's
    /// `SyncTimeoutSeconds` (default 120), which is also the default. A non-number or a value <= 0 is a 400.
    #[param(rename = "timeoutSeconds", exclusive_minimum = 0, example = 30)]
    pub timeout_seconds: Option<f64>,
    /// A colon path selecting part of the result tree instead of the whole tree, e.g. `Actions[0]:ExitData`
    /// (upstream's `Actions[0]:Result:ExitData` also works). A path that selects nothing gives `null`.
    #[param(example = "Actions[0]:ExitData")]
    pub path: Option<String>,
    /// Response format: `json` (default), `yaml` or `xml`, in any letter case (`Json` is `json`). Without it
    /// the `Accept` header decides (yaml if it mentions yaml, xml if it mentions xml and not json), else JSON.
    /// Any other value is a 400.
    pub outputtype: Option<OutputType>,
    /// Indent the JSON (and XML) output. `1` and an empty value also mean true.
    pub prettyprint: Option<bool>,
}

/// Dynamic parameters in the query string (GET starts).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryParameters {
    /// GET only: dynamic parameters as query keys (`?name=Bob&loud=true`). Every key that is not one of the
    /// API's own (dryRun, timeoutSeconds, path, outputtype, prettyprint, elementPath, requestNumber,
    /// serializationType, setContentType, pollingIntervalSeconds, nodeRootUrl; case-insensitive) is a
    /// dynamic parameter. A name the plan does not take is a 400.
    #[param(style = Form, explode)]
    pub parameters: Option<BTreeMap<String, String>>,
}

/// `GET /synapse/execute`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPlansQuery {
    /// A regular expression (case-insensitive) the plan names must match.
    #[param(example = "^get")]
    pub filter: Option<String>,
}

/// `GET /synapse/execute/{plan}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListInstancesQuery {
    /// How many instances to return (default 100; clamped to 1..1000).
    #[param(example = 20)]
    pub limit: Option<u32>,
    /// Paging cursor: only instances older than this instance id (the last id of the previous page).
    pub before: Option<uuid::Uuid>,
}

/// `/synapse/execute/{plan}/{id}/part`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartQuery {
    /// A colon path into the instance's result (as `path` on start/sync). Without it (and without a POST body)
    /// the whole result is returned.
    #[param(rename = "elementPath", example = "Actions[0]:ExitData")]
    pub element_path: Option<String>,
}

/// The flags every AD route takes (not passed to the plan).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdFlags {
    /// Which configured domain (name or alias) the handler uses; default: the first configured domain. A plan
    /// parameter.
    #[param(example = "sandbox.local")]
    pub domain: Option<String>,
    /// Response format: `json` (default), `yaml` or `xml`, in any letter case (`Json` is `json`). Without it
    /// the `Accept` header decides (yaml if it mentions yaml, xml if it mentions xml and not json), else JSON.
    /// Any other value is a 400.
    pub outputtype: Option<OutputType>,
    /// Indent the JSON (and XML) output. `1` and an empty value also mean true.
    pub prettyprint: Option<bool>,
    /// How long the route waits for its plan (seconds, > 0; default and upper bound: the server's
    /// `SyncTimeoutSeconds`, 120 by default). If the plan has not finished by then the answer is a 504
    /// envelope (Status 0) naming the instance id, and the plan keeps running.
    #[param(rename = "timeoutSeconds", exclusive_minimum = 0, example = 60)]
    pub timeout_seconds: Option<f64>,
    /// Dry run: handlers are told not to change anything (writes are reported, not made). `1` and an empty
    /// value also mean true, `0` false; anything else is a 400.
    #[param(rename = "dryRun")]
    pub dry_run: Option<bool>,
}

/// The object flags of the AD object routes (plan parameters; a flag the route's plan does not take is a 400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdObjectFlags {
    /// Return the object with the status (Config `ReturnObjects`, default true).
    pub returnobjects: Option<bool>,
    /// Include `Properties`, the raw attributes (Config `ReturnObjectProperties`, default true).
    pub returnobjectproperties: Option<bool>,
    /// Include `Groups`: direct group memberships (default false). Not taken by the OU plans.
    pub returngroupmembership: Option<bool>,
    /// With returngroupmembership: all groups through nesting (default false). Not taken by the OU plans.
    pub returntransitivegroupmembership: Option<bool>,
    /// Access rules are not supported yet: `true` is reported as InvalidInput (14).
    pub returnaccessrules: Option<bool>,
}

/// `upsert` (Create and Modify only; on any other route it is a 400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpsertFlag {
    /// Create on an existing object modifies it; Modify on a missing object creates it (DN identities only).
    /// Default false.
    pub upsert: Option<bool>,
}
