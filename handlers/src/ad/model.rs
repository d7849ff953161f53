//! What an ActiveDirectoryHandler action receives: `Config` (what to do, what to return) and `Parameters`
//! (the objects), with every field of the seeds and upstream. Unknown fields are errors.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `Config.Action`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionName {
    #[default]
    Get,
    Create,
    Modify,
    Delete,
    Move,
    AddToGroup,
    RemoveFromGroup,
    Search,
}

/// `Config.OutputType`: how the envelope is handed on as exit data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputType {
    /// Structured (the envelope itself).
    #[default]
    Json,
    /// The envelope as YAML text (upstream-compatible; ParentExitData parses it back).
    Yaml,
    /// The envelope as XML text.
    Xml,
}

/// The handler's `Config`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AdConfig {
    #[serde(default)]
    pub action: ActionName,
    /// Which configured domain to use (name or alias); default: the only/first one.
    #[serde(default)]
    pub domain: Option<String>,
    /// Process objects one at a time, in order (default: concurrently, results still in request order).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub run_sequential: bool,
    /// Return the groups a user/group/computer is a direct member of.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub return_group_membership: bool,
    /// With ReturnGroupMembership: all groups, transitively (nested), not only direct ones.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub return_transitive_group_membership: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub return_access_rules: bool,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub return_object_properties: bool,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub return_objects: bool,
    /// Upstream: Create on an existing object modifies it; Modify on a missing one creates it (DN only).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub use_upsert: bool,
    #[serde(default)]
    pub output_type: OutputType,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub pretty_print: bool,
    /// Do not put the envelope in progress messages.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub suppress_output: bool,
    /// Accepted for upstream plans; only `false` is supported.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub load_schema: bool,
}

fn yes() -> bool {
    true
}

impl Default for AdConfig {
    fn default() -> Self {
        AdConfig {
            action: ActionName::Get,
            domain: None,
            run_sequential: false,
            return_group_membership: false,
            return_transitive_group_membership: false,
            return_access_rules: false,
            return_object_properties: true,
            return_objects: true,
            use_upsert: false,
            output_type: OutputType::Json,
            pretty_print: true,
            suppress_output: false,
            load_schema: false,
        }
    }
}

/// `true`/`false` as booleans or strings (dynamic parameters arrive as strings).
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Null => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" | "" => Ok(false),
            other => Err(de::Error::custom(format!("'{other}' is not true or false"))),
        },
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        other => Err(de::Error::custom(format!("{other} is not true or false"))),
    }
}

/// An optional boolean that may arrive as a string; `null`/absent = leave unchanged.
pub fn lenient_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        v => lenient_bool(v).map(Some).map_err(de::Error::custom),
    }
}

/// A string field that may arrive as a number or bool (dynamic parameters); `null` = leave unchanged.
pub fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(de::Error::custom(format!(
            "expected a string, found {other}"
        ))),
    }
}

/// A list of strings; a single string is a list of one; null is empty.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.trim().is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Number(n) => Ok(vec![n.to_string()]),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        Value::Array(items) => items
            .into_iter()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(de::Error::custom(format!(
                    "expected a string, found {other}"
                ))),
            })
            .collect(),
        other => Err(de::Error::custom(format!(
            "expected a list of strings, found {other}"
        ))),
    }
}

/// `Properties`: raw attributes by ldapDisplayName. A value may be a string or a list; `null` = leave
/// unchanged; `~null~` clears the attribute.
pub fn properties<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<Vec<String>>>, D::Error> {
    let raw: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, v) in raw.unwrap_or_default() {
        let values = match v {
            Value::Null => None,
            other => Some(
                string_list(other)
                    .map_err(|e| de::Error::custom(format!("Properties.{k}: {e}")))?,
            ),
        };
        out.insert(k, values);
    }
    Ok(out)
}

/// The value that clears a field or attribute.
pub const NULL_MARKER: &str = "~null~";

/// Declares an object type of `Parameters` with the fields every object shares (Identity, Name, Properties,
/// MoveTo, AccessRules, Roles) followed by its own. serde's `flatten` cannot be combined with
/// `deny_unknown_fields` (unknown fields must stay errors), hence a macro rather than a shared struct.
macro_rules! ad_object {
    ($(#[$sm:meta])* $name:ident { $($(#[$fm:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$sm])*
        #[derive(Clone, Debug, Default, Deserialize, Serialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        pub struct $name {
            #[serde(default)]
            pub identity: String,
            #[serde(default, deserialize_with = "lenient_opt_string")]
            pub name: Option<String>,
            #[serde(default, deserialize_with = "properties")]
            pub properties: BTreeMap<String, Option<Vec<String>>>,
            #[serde(default, deserialize_with = "lenient_opt_string")]
            pub move_to: Option<String>,
            #[serde(default)]
            pub access_rules: Vec<Value>,
            #[serde(default)]
            pub roles: Vec<Value>,
            $($(#[$fm])* pub $field: $ty,)*
        }
    };
}

ad_object! {
    /// `Users[i]`.
    AdUser {
        #[serde(default, deserialize_with = "string_list")]
        pub member_of: Vec<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub user_principal_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub sam_account_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub display_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub description: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string", skip_serializing)]
        pub password: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub enabled: Option<bool>,
        /// ISO 8601 date or date-time; `~null~` = never expires.
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub account_expiration_date: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub smartcard_logon_required: Option<bool>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub delegation_permitted: Option<bool>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub password_not_required: Option<bool>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub password_never_expires: Option<bool>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub user_cannot_change_password: Option<bool>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub allow_reversible_password_encryption: Option<bool>,
        /// 21 bytes, base64 (logonHours).
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub permitted_logon_times: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub home_directory: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub home_drive: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub script_path: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub given_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub middle_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub surname: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub email_address: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub voice_telephone_number: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub employee_id: Option<String>,
        /// Identity of the manager (resolved to a DN).
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub manager: Option<String>,
    }
}
/// Group scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupScope {
    #[serde(alias = "DomainLocal", alias = "local", alias = "domainlocal")]
    Local,
    #[serde(alias = "global")]
    Global,
    #[serde(alias = "universal")]
    Universal,
}

ad_object! {
    /// `Groups[i]`.
    AdGroup {
        #[serde(default, deserialize_with = "string_list")]
        pub member_of: Vec<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub sam_account_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub description: Option<String>,
        #[serde(default, deserialize_with = "opt_scope")]
        pub scope: Option<GroupScope>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub is_security_group: Option<bool>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub managed_by: Option<String>,
        /// Declared upstream but never used; accepted and ignored (use AddToGroup).
        #[serde(default)]
        pub members: Vec<Value>,
    }
}
fn opt_scope<'de, D: Deserializer<'de>>(d: D) -> Result<Option<GroupScope>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "local" | "domainlocal" => Ok(Some(GroupScope::Local)),
            "global" => Ok(Some(GroupScope::Global)),
            "universal" => Ok(Some(GroupScope::Universal)),
            other => Err(de::Error::custom(format!(
                "'{other}' is not a group scope (Local, Global, Universal, DomainLocal)"
            ))),
        },
        other => Err(de::Error::custom(format!(
            "{other} is not a group scope (Local, Global, Universal, DomainLocal)"
        ))),
    }
}

ad_object! {
    /// `OrganizationalUnits[i]`.
    AdOrganizationalUnit {
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub description: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub managed_by: Option<String>,
    }
}
ad_object! {
    /// `Computers[i]`.
    AdComputer {
        #[serde(default, deserialize_with = "string_list")]
        pub member_of: Vec<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub description: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub managed_by: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub sam_account_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_string")]
        pub dns_host_name: Option<String>,
        #[serde(default, deserialize_with = "lenient_opt_bool")]
        pub enabled: Option<bool>,
    }
}
/// One `Find`/`ReplaceWith` pair of a search request: `Find` is literal text; `ReplaceWith` is escaped as an
/// LDAP filter value before it goes in.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FindReplace {
    #[serde(default)]
    pub find: String,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub replace_with: Option<String>,
}

/// `SearchRequests[i]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AdSearchRequest {
    /// Default: the domain's base DN.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub search_base: Option<String>,
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub parameters: Vec<FindReplace>,
    #[serde(default, deserialize_with = "string_list")]
    pub return_attributes: Vec<String>,
    /// Upstream wrote results to a file on the node; not supported (reported as NotSupported).
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub results_file: Option<String>,
}

/// The handler's `Parameters`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AdParameters {
    #[serde(default)]
    pub users: Vec<AdUser>,
    #[serde(default)]
    pub groups: Vec<AdGroup>,
    #[serde(default)]
    pub organizational_units: Vec<AdOrganizationalUnit>,
    #[serde(default)]
    pub computers: Vec<AdComputer>,
    #[serde(default)]
    pub search_requests: Vec<AdSearchRequest>,
}
