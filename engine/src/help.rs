//! What a plan asks of its caller: every dynamic parameter (from Dynamic entries anywhere in the plan, Config
//! and ActionGroups included, and from `~~tokens~~`), with description, options, default and whether it is
//! required. Backs `synapse plan help` and the API's help routes.

use crate::model::{ParameterInfo, Plan};
use crate::token;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One option of a parameter.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OptionHelp {
    pub key: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One dynamic parameter of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParamHelp {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionHelp>,
    pub restrict_to_options: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    /// Whether a `~~token~~` refers to it (a token without a default makes the parameter required).
    pub token: bool,
    /// The actions that use it.
    pub used_by: Vec<String>,
}

/// The refusal of inputs a plan does not take (names compared case-insensitively), worded the same for the
/// API (a 400) and `synapse plan run` (exit 2); None when every input is a parameter of the plan. `plan` is
/// the name the caller used (the file name).
pub fn unknown_parameters<'a>(
    plan: &str,
    params: &[ParamHelp],
    given: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let unknown: Vec<String> = given
        .into_iter()
        .filter(|k| !params.iter().any(|p| p.name.eq_ignore_ascii_case(k)))
        .map(|k| format!("'{k}'"))
        .collect();
    if unknown.is_empty() {
        return None;
    }
    let known: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    Some(format!(
        "plan '{plan}' takes no parameter {} (it takes: {})",
        unknown.join(", "),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// Every dynamic parameter of `plan`, sorted by name (case-insensitive merge of repeated names).
pub fn plan_help(plan: &Plan) -> Vec<ParamHelp> {
    let mut by_name: BTreeMap<String, ParamHelp> = BTreeMap::new();
    plan.walk(|_, a| {
        let blocks: Vec<&ParameterInfo> = a
            .handler
            .as_ref()
            .and_then(|h| h.config.as_ref())
            .into_iter()
            .chain(a.parameters.as_ref())
            .collect();
        for b in blocks {
            for d in &b.dynamic {
                let e = entry(&mut by_name, &d.source);
                e.description = e.description.take().or_else(|| d.description.clone());
                e.required |= d.required;
                if e.default.is_none() {
                    e.default = d
                        .default
                        .as_ref()
                        .and_then(|x| x.value.clone())
                        .or_else(|| {
                            d.options
                                .iter()
                                .find(|o| o.is_default)
                                .map(|o| Value::String(o.value.clone()))
                        });
                }
                if e.options.is_empty() {
                    e.options = d
                        .options
                        .iter()
                        .map(|o| OptionHelp {
                            key: o.key.clone(),
                            value: o.value.clone(),
                            description: o.description.clone(),
                        })
                        .collect();
                    e.restrict_to_options = d.restrict_to_options && !d.options.is_empty();
                }
                e.data_type = e
                    .data_type
                    .take()
                    .or_else(|| d.data_type.map(|t| format!("{t:?}")));
                e.validation = e.validation.take().or_else(|| d.validation.clone());
                used_by(e, &a.name);
            }
            if let Some(v) = &b.values {
                let mut names = Vec::new();
                token::tokens_in_tree(v, &mut names);
                for n in names {
                    let e = entry(&mut by_name, &n);
                    e.token = true;
                    used_by(e, &a.name);
                }
            }
        }
    });
    // A token is required unless some Dynamic entry of the same name gives a default.
    let mut out: Vec<ParamHelp> = by_name.into_values().collect();
    for p in &mut out {
        if p.token && p.default.is_none() {
            p.required = true;
        }
    }
    out
}

fn entry<'a>(map: &'a mut BTreeMap<String, ParamHelp>, name: &str) -> &'a mut ParamHelp {
    map.entry(name.to_ascii_lowercase())
        .or_insert_with(|| ParamHelp {
            name: name.to_string(),
            description: None,
            required: false,
            default: None,
            options: Vec::new(),
            restrict_to_options: false,
            data_type: None,
            validation: None,
            token: false,
            used_by: Vec::new(),
        })
}

fn used_by(e: &mut ParamHelp, action: &str) {
    if !e.used_by.iter().any(|a| a == action) {
        e.used_by.push(action.to_string());
    }
}
