//! The plan model: what a plan author writes in YAML, field for field (PascalCase, as upstream).
//!
//! Unknown fields are not rejected by serde here; the loader collects every one of them (with its position)
//! so that all problems are reported together. See [`crate::load`].

mod duration;

pub use duration::{parse_bool, DurationSpec};

use crate::status::{ExecuteCase, StatusType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A plan: a named tree of actions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Plan {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Inactive plans are refused by the executor (upstream parsed but never enforced this).
    #[serde(default = "default_true")]
    pub is_active: bool,
    /// Handler used by actions whose `Handler.Type` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_handler_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<SecurityContext>,
    /// Node labels every action of the plan requires (NATS dispatch; docs/plan-language.md "RunOn").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_on: Option<RunOn>,
    #[serde(default)]
    pub actions: Vec<ActionItem>,
}

/// One node of the action tree.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ActionItem {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which statuses of the parent let this action run. Absent = `None` = always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_case: Option<ExecuteCase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ParameterInfo>,
    /// Runs (with its own subtree) before this action's `Actions`; its status also filters them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_group: Option<Box<ActionItem>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_exit_data_as: Option<SaveExitDataAs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<SecurityContext>,
    /// Upstream "future use"; parsed and carried, not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Per-attempt limit on the handler's run time; on expiry the handler is cancelled and the action fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Node labels this action requires instead of the plan's `RunOn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_on: Option<RunOn>,
}

/// `RunOn: {site: dc1}`: labels a node must have to run an action (keys and values: letters, digits, `-`, `_`).
pub type RunOn = std::collections::BTreeMap<String, String>;

/// Which handler runs an action, and its configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HandlerInfo {
    /// Short name (`EmptyHandler`, `Empty`) or upstream type string (`Synapse.Core:EmptyHandler`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ParameterInfo>,
}

/// How `Values` are handed to the handler. Only the structured forms are supported.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum SerializationType {
    #[default]
    Yaml,
    Json,
    Xml,
    /// The values are passed through as they are (typically a string).
    Unspecified,
}

/// A block of values with the pipeline that fills it (upstream `ParameterInfo`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterInfo {
    /// When set, the resolved block is stored under this name for `InheritFrom` and `ForEach.ParameterSource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub r#type: SerializationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit_from: Option<String>,
    /// Upstream fetched values from a URI; not supported (reported by validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamic: Vec<DynamicValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_exit_data: Vec<ParentExitDataValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub for_each: Vec<ForEachItem>,
}

/// Base64 or nothing, applied to a value as it is patched in.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum EncodingType {
    #[default]
    None,
    Base64,
}

/// `DataType` of a dynamic value (a subset of .NET's `TypeCode` names, as upstream plans use them).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum DataType {
    String,
    Boolean,
    Char,
    SByte,
    Byte,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Single,
    Double,
    Decimal,
    DateTime,
    Object,
}

/// A parameter supplied at run time (HTTP body, query, CLI `--param`), patched into `Values`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DynamicValue {
    /// The parameter's name. Upstream spells it `Source`; the seed documents spell it `Name`.
    #[serde(default, alias = "Name")]
    pub source: String,
    /// Colon path inside `Values`. Upstream `Target`; seed `Path`.
    #[serde(default, alias = "Path")]
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A missing value is an error (HTTP 400) instead of a silent no-op.
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionValue>,
    #[serde(default = "default_true")]
    pub restrict_to_options: bool,
    /// A regex the value must match (unanchored unless the pattern anchors itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
    /// Parse the string as YAML/JSON before patching it in.
    #[serde(default)]
    pub parse: bool,
    /// A regex: replace its matches inside the existing target string instead of replacing the whole value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    #[serde(default)]
    pub encode: EncodingType,
}

/// The value a dynamic parameter takes when the caller does not send it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DefaultValue {
    #[serde(default)]
    pub value: Option<Value>,
    /// Allows a null default (which sets the target to null).
    #[serde(default)]
    pub allow_null: bool,
}

/// One allowed value of a dynamic parameter: `Key` is what the caller sends, `Value` what is patched in.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct OptionValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub is_default: bool,
}

/// Copies data from the parent's exit data.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ParentExitDataValue {
    /// Moves a value inside (a copy of) the parent's data first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_in_place: Option<SourceTarget>,
    /// Copies a value from the parent's data into `Values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_to_values: Option<SourceTarget>,
}

/// A source path, a target path and how to patch.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SourceTarget {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub parse: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    #[serde(default)]
    pub encode: EncodingType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One loop of a `ForEach` (items nest: the first is the outer loop).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ForEachItem {
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    #[serde(default)]
    pub encode: EncodingType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_source: Option<ParameterSource>,
}

/// Where a `ForEach` list comes from when it is not written inline.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterSource {
    /// `ParentExitData`, or the name of a named set.
    #[serde(default)]
    pub name: String,
    /// Colon path to the list; when it selects a non-list, the first list found under it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub parse: bool,
}

/// Store an action's exit data as a named config and/or parameter set.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SaveExitDataAs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
}

/// Upstream `RunAs`: parsed, carried to handlers, and masked in output. No impersonation happens.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "mask_secret"
    )]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default = "default_true")]
    pub is_inheritable: bool,
    /// Upstream default: true when `UserName` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_inheritance: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ParameterInfo>,
}

impl SecurityContext {
    /// Whether this context refuses its ancestor's context.
    pub fn blocks_inheritance(&self) -> bool {
        self.block_inheritance.unwrap_or(self.user_name.is_some())
    }
}

impl std::fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityContext")
            .field("domain", &self.domain)
            .field("user_name", &self.user_name)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

fn mask_secret<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str(crate::MASK),
        None => s.serialize_none(),
    }
}

/// Retry a failed (or timed-out) action.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RetryPolicy {
    /// Extra attempts after the first.
    pub count: u32,
    /// Wait before the first retry.
    #[serde(default)]
    pub delay: DurationSpec,
    /// Each later wait is the previous one times this factor (1 = fixed delay).
    #[serde(default = "default_backoff")]
    pub backoff: f64,
    /// Statuses that trigger a retry (default: Failed).
    #[serde(default = "default_retry_on")]
    pub on: Vec<StatusType>,
}

fn default_true() -> bool {
    true
}

fn default_backoff() -> f64 {
    1.0
}

fn default_retry_on() -> Vec<StatusType> {
    vec![StatusType::Failed]
}

impl Plan {
    /// Visits every action (depth first; ActionGroup before Actions), with a display path such as
    /// `Actions[0].ActionGroup.Actions[1]`.
    pub fn walk<'a>(&'a self, mut f: impl FnMut(&str, &'a ActionItem)) {
        fn rec<'a>(path: &str, a: &'a ActionItem, f: &mut dyn FnMut(&str, &'a ActionItem)) {
            f(path, a);
            if let Some(g) = &a.action_group {
                rec(&format!("{path}.ActionGroup"), g, f);
            }
            for (i, c) in a.actions.iter().enumerate() {
                rec(&format!("{path}.Actions[{i}]"), c, f);
            }
        }
        for (i, a) in self.actions.iter().enumerate() {
            rec(&format!("Actions[{i}]"), a, &mut f);
        }
    }
}
