//! Schemas of the AD API: the result envelope of seed 002, the objects in it and the request bodies.
//!
//! The envelope is the exit data of the ActiveDirectoryHandler, which the controller does not import (the
//! AD handler is a plugin of the engine, not of the HTTP layer). These structs describe its wire shape only;
//! tests/api.rs checks real envelopes from a Samba DC against them.

#![allow(dead_code)] // the structs exist for their schemas

use super::schemas::Problem;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// An integer schema with a fixed list of values.
fn int_enum(description: &str, values: &[u16]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// Declares a named integer-enum schema.
macro_rules! int_enum_schema {
    ($(#[$doc:meta])* $name:ident, $description:expr, $values:expr) => {
        $(#[$doc])*
        #[derive(Serialize)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                int_enum($description, $values)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

int_enum_schema!(
    /// Seed 002 `Status` codes.
    AdStatusCode,
    "0 Unknown (HTTP 500), 1 Success (200), 2 MissingInput (400), 3 AlreadyExists (409), 4 DoesNotExist (404), \
     5 PasswordPolicyNotMet (400), 6 InvalidPath (400), 7 NotSupported (501), 8 NotAllowed (403), \
     9 InvalidAttribute (400), 10 ConnectionError (503), 11 InvalidName (400), 12 InvalidContainer (400), \
     13 MultipleMatches (400), 14 InvalidInput (400).",
    &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
);

int_enum_schema!(
    /// Seed 002 `Action` codes (bit flags).
    AdActionCode,
    "0 None (request errors), 1 Get, 2 Create, 4 Modify, 8 Delete, 32 Move, 64 AddToGroup, 128 RemoveFromGroup, \
     256 Search; 512 AddAccessRule, 1024 RemoveAccessRule, 2048 SetAccessRule, 4096 PurgeAccessRules, \
     8192 AddRole, 16384 RemoveRole (not implemented).",
    &[0, 1, 2, 4, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
);

int_enum_schema!(
    /// Seed 002 `Type` codes.
    AdTypeCode,
    "0 None (request errors), 1 User, 2 Group, 3 Computer, 4 OrganizationalUnit, 5 GroupPolicy (unused), \
     6 SearchResults.",
    &[0, 1, 2, 3, 4, 5, 6]
);

/// One step's outcome.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdStatus {
    pub status: AdStatusCode,
    pub message: String,
    pub action: AdActionCode,
}

/// The result for one requested object (or search). Only the slot of `Type` is filled; the others are null.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdResult {
    /// One entry per step (e.g. Create, then one AddToGroup per MemberOf).
    pub statuses: Vec<AdStatus>,
    pub r#type: AdTypeCode,
    /// The identity as requested (the filter for searches).
    pub identity: String,
    #[schema(required = true)]
    pub user: Option<AdUser>,
    #[schema(required = true)]
    pub group: Option<AdGroup>,
    #[schema(required = true)]
    pub computer: Option<AdComputer>,
    #[schema(required = true)]
    pub organizational_unit: Option<AdOrganizationalUnit>,
    #[schema(required = true)]
    pub search_results: Option<AdSearchResults>,
}

/// The AD API's answer (seed 002), the exit data of the route's plan. The HTTP status is derived from the
/// worst `Status` of all `Statuses` (severity: Success < AlreadyExists/DoesNotExist < input errors and
/// NotSupported < NotAllowed < ConnectionError < Unknown): 1 -> 200, 4 -> 404, 3 -> 409,
/// 2/5/6/9/11/12/13/14 -> 400, 8 -> 403, 7 -> 501, 10 -> 503, 0 -> 500. Request errors (bad body, unknown
/// parameter, missing parameter, unknown plan, body too large, timeout, refused key) are wrapped in the same
/// envelope with `Action` 0 and `Type` 0 and the HTTP status of the error; missing or invalid parameters
/// also add a top-level `Problems` list.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"Results": [{"Statuses": [{"Status": 4, "Message": "User [HonestPolitician] Not Found.",
    "Action": 1}], "Type": 1, "Identity": "HonestPolitician", "User": null, "Group": null, "Computer": null,
    "OrganizationalUnit": null, "SearchResults": null}]}))]
#[serde(rename_all = "PascalCase")]
pub struct AdEnvelope {
    pub results: Vec<AdResult>,
    /// Request errors only: every missing or invalid parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<Problem>>,
}

/// Raw attributes by ldapDisplayName, each a list of canonical values; null with
/// `returnobjectproperties=false`.
type Properties = Option<BTreeMap<String, Vec<Value>>>;

/// The fields every principal has (also the short form in `Groups` and `Members`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdPrincipal {
    pub context_type: i64,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub display_name: Option<String>,
    pub distinguished_name: String,
    #[schema(required = true)]
    pub guid: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub sam_account_name: Option<String>,
    #[schema(required = true)]
    pub sid: Option<String>,
    #[schema(required = true)]
    pub structural_object_class: Option<String>,
    #[schema(required = true)]
    pub user_principal_name: Option<String>,
}

/// A user (seed 002 shape).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdUser {
    #[serde(flatten)]
    pub principal: AdPrincipal,
    #[schema(required = true)]
    pub email_address: Option<String>,
    #[schema(required = true)]
    pub employee_id: Option<String>,
    #[schema(required = true)]
    pub given_name: Option<String>,
    #[schema(required = true)]
    pub middle_name: Option<String>,
    #[schema(required = true)]
    pub surname: Option<String>,
    #[schema(required = true)]
    pub voice_telephone_number: Option<String>,
    #[schema(required = true)]
    pub manager: Option<String>,
    #[schema(required = true)]
    pub account_expiration_date: Option<chrono::DateTime<chrono::Utc>>,
    #[schema(required = true)]
    pub account_lockout_time: Option<chrono::DateTime<chrono::Utc>>,
    pub allow_reversible_password_encryption: bool,
    pub bad_logon_count: i64,
    pub delegation_permitted: bool,
    pub enabled: bool,
    #[schema(required = true)]
    pub home_directory: Option<String>,
    #[schema(required = true)]
    pub home_drive: Option<String>,
    #[schema(required = true)]
    pub last_bad_password_attempt: Option<chrono::DateTime<chrono::Utc>>,
    #[schema(required = true)]
    pub last_logon: Option<chrono::DateTime<chrono::Utc>>,
    #[schema(required = true)]
    pub last_password_set: Option<chrono::DateTime<chrono::Utc>>,
    pub password_never_expires: bool,
    pub password_not_required: bool,
    /// 21 bytes of logonHours, base64.
    #[schema(required = true)]
    pub permitted_logon_times: Option<String>,
    #[schema(required = true)]
    pub script_path: Option<String>,
    pub smartcard_logon_required: bool,
    pub user_cannot_change_password: bool,
    /// With returngroupmembership=true.
    #[schema(required = true)]
    pub groups: Option<Vec<AdPrincipal>>,
    #[schema(required = true, value_type = Option<BTreeMap<String, Vec<Value>>>)]
    pub properties: Properties,
}

/// Scope of a group.
#[derive(Serialize, ToSchema)]
pub enum GroupScope {
    Local,
    Global,
    Universal,
}

/// A group (seed 002 shape).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdGroup {
    #[serde(flatten)]
    pub principal: AdPrincipal,
    pub group_scope: GroupScope,
    pub is_security_group: bool,
    #[schema(required = true)]
    pub managed_by: Option<String>,
    /// Direct members.
    pub members: Vec<AdPrincipal>,
    /// With returngroupmembership=true.
    #[schema(required = true)]
    pub groups: Option<Vec<AdPrincipal>>,
    #[schema(required = true, value_type = Option<BTreeMap<String, Vec<Value>>>)]
    pub properties: Properties,
}

/// The parent container of an OU or computer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdParent {
    pub distinguished_name: String,
    #[schema(required = true)]
    pub name: Option<String>,
    pub path: String,
}

/// An organizational unit (upstream's DirectoryEntryObject).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdOrganizationalUnit {
    pub distinguished_name: String,
    #[schema(required = true)]
    pub guid: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub managed_by: Option<String>,
    #[schema(example = "LDAP://OU=Synapse,DC=sandbox,DC=local")]
    pub path: String,
    #[schema(required = true)]
    pub schema_class_name: Option<String>,
    #[schema(required = true)]
    pub parent: Option<AdParent>,
    #[schema(required = true, value_type = Option<BTreeMap<String, Vec<Value>>>)]
    pub properties: Properties,
}

/// A computer (upstream's DirectoryEntryObject with the computer fields).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdComputer {
    pub distinguished_name: String,
    #[schema(required = true)]
    pub guid: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub managed_by: Option<String>,
    pub path: String,
    #[schema(required = true)]
    pub schema_class_name: Option<String>,
    #[schema(required = true)]
    pub parent: Option<AdParent>,
    #[schema(required = true)]
    pub sam_account_name: Option<String>,
    #[schema(required = true)]
    pub dns_host_name: Option<String>,
    #[schema(required = true)]
    pub sid: Option<String>,
    pub enabled: bool,
    /// With returngroupmembership=true.
    #[schema(required = true)]
    pub groups: Option<Vec<AdPrincipal>>,
    #[schema(required = true, value_type = Option<BTreeMap<String, Vec<Value>>>)]
    pub properties: Properties,
}

/// The entries a search found.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdSearchResults {
    pub results: Vec<AdSearchResult>,
}

/// One entry a search found.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdSearchResult {
    #[schema(example = "LDAP://CN=mfox,OU=Synapse,DC=sandbox,DC=local")]
    pub path: String,
    pub distinguished_name: String,
    /// Each requested attribute (`ReturnAttributes`): its values, or null when the entry has none. Absent
    /// when no attributes were requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, Option<Vec<Value>>>>)]
    pub properties: Option<BTreeMap<String, Option<Vec<Value>>>>,
}

/// Create/Modify user fields (docs/ad-plans.md#user-fields). Keys are case-insensitive; absent fields are
/// left alone; `~null~` clears one. `MemberOf` and `Properties` are passed to the plan as JSON text. A key
/// the plan does not take is a 400. The identity always comes from the URL. Boolean fields also accept the
/// strings `"true"` and `"false"`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdUserBody {
    /// Rename (the new RDN value).
    pub name: Option<String>,
    pub description: Option<String>,
    pub user_principal_name: Option<String>,
    #[schema(max_length = 20)]
    pub sam_account_name: Option<String>,
    pub display_name: Option<String>,
    /// Admin reset over TLS; masked in messages.
    pub password: Option<String>,
    pub enabled: Option<bool>,
    /// ISO 8601, or `~null~` for never.
    pub account_expiration_date: Option<String>,
    pub smartcard_logon_required: Option<bool>,
    pub delegation_permitted: Option<bool>,
    pub password_not_required: Option<bool>,
    pub password_never_expires: Option<bool>,
    /// `true` needs access rules: NotSupported.
    pub user_cannot_change_password: Option<bool>,
    pub allow_reversible_password_encryption: Option<bool>,
    /// 21 bytes, base64 (28 characters), or `~null~`.
    pub permitted_logon_times: Option<String>,
    pub home_directory: Option<String>,
    pub home_drive: Option<String>,
    pub script_path: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub surname: Option<String>,
    pub email_address: Option<String>,
    pub voice_telephone_number: Option<String>,
    pub employee_id: Option<String>,
    /// An identity, resolved to a DN.
    pub manager: Option<String>,
    /// Groups to add the user to (identities).
    pub member_of: Option<Vec<String>>,
    /// Raw attributes to set, by ldapDisplayName.
    pub properties: Option<BTreeMap<String, Value>>,
}

/// Group scope in a request body.
#[derive(Serialize, ToSchema)]
pub enum GroupScopeInput {
    Local,
    DomainLocal,
    Global,
    Universal,
}

/// Create/Modify group fields (docs/ad-plans.md#group-fields).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdGroupBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub sam_account_name: Option<String>,
    pub scope: Option<GroupScopeInput>,
    pub is_security_group: Option<bool>,
    pub managed_by: Option<String>,
    pub member_of: Option<Vec<String>>,
    pub properties: Option<BTreeMap<String, Value>>,
}

/// Create/Modify OU fields.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdOrgUnitBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub managed_by: Option<String>,
    pub properties: Option<BTreeMap<String, Value>>,
}

/// Create/Modify computer fields.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AdComputerBody {
    pub name: Option<String>,
    pub description: Option<String>,
    /// A trailing `$` is added.
    pub sam_account_name: Option<String>,
    pub dns_host_name: Option<String>,
    pub enabled: Option<bool>,
    pub managed_by: Option<String>,
    pub member_of: Option<Vec<String>>,
    pub properties: Option<BTreeMap<String, Value>>,
}

/// The body of POST (Create) and PUT (Modify) on `/ad/{object}/{identity}`: the fields of the object type.
/// JSON or YAML; the seed documents' unquoted-key form (`{GivenName: "Michael", Enabled: true}`) is a YAML
/// flow map and is accepted. May be empty.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // never built: it exists for its schema
pub enum AdObjectBody {
    User(AdUserBody),
    Group(AdGroupBody),
    OrgUnit(AdOrgUnitBody),
    Computer(AdComputerBody),
}

/// `POST /ad/search`. Only these keys (case-insensitive) are accepted; any other key (e.g. `ResultsFile`) is
/// a 400.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"Filter": "(objectClass=User)", "SearchBase": "ou=Synapse,dc=sandbox,dc=local",
    "ReturnAttributes": ["name", "objectGUID", "objectSid", "distinguishedName"]}))]
pub struct AdSearchBody {
    /// An LDAP filter (RFC 4515).
    pub filter: String,
    /// Default: the domain's base DN.
    pub search_base: Option<String>,
    /// Also accepted as `Attributes`. Without it only `Path` and `DistinguishedName` are returned.
    pub return_attributes: Option<Vec<String>>,
}

/// The plan's dynamic parameters by name (see `GET /ad/search/{plan}/help`); lists and maps are passed as
/// JSON text. Missing required parameters are a 400 naming them.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"distinguishedname": "cn=TestUser001,ou=Synapse,dc=sandbox,dc=local"}))]
pub struct AdCustomSearchBody {
    #[serde(flatten)]
    pub parameters: BTreeMap<String, Value>,
}
