//! Static checks of an ActiveDirectoryHandler action as a plan writes it (`HandlerDescriptor::check_action`):
//! what the handler would refuse at run time whatever the inputs, found by `plan validate` and at server start.
//!
//! - every field of Config and Parameters Values the handler's model has, with a value it accepts (each field
//!   is tried on its own, so every problem is reported, not the first);
//! - `SearchRequests[*]:Filter` parses as an RFC 4515 filter (`~~tokens~~` stand for an escaped value);
//! - each Dynamic `Target` is a path the handler's Config or Parameters have.
//!
//! Values holding `~~tokens~~` are checked only for their filter syntax: the rest depends on the inputs. Null
//! values are placeholders Dynamic entries fill.

use crate::ad::model::{
    AdComputer, AdConfig, AdGroup, AdOrganizationalUnit, AdParameters, AdSearchRequest, AdUser,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use synapse_engine::model::ParameterInfo;
use synapse_engine::path::{ColonPath, Seg};
use synapse_engine::{token, ActionBlock, ActionProblem};

/// The field names of a model type, as the handler spells them (from its serialized default), plus fields
/// that are never serialized.
fn fields<T: Default + Serialize>(never_serialized: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = match serde_json::to_value(T::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    out.extend(never_serialized.iter().map(|s| s.to_string()));
    out
}

/// The object lists of Parameters and the fields of their items.
fn item_fields(list: &str) -> Option<Vec<String>> {
    Some(match list {
        "Users" => fields::<AdUser>(&["Password"]),
        "Groups" => fields::<AdGroup>(&[]),
        "OrganizationalUnits" => fields::<AdOrganizationalUnit>(&[]),
        "Computers" => fields::<AdComputer>(&[]),
        "SearchRequests" => fields::<AdSearchRequest>(&[]),
        _ => return None,
    })
}

fn has_tokens(v: &Value) -> bool {
    let mut names = Vec::new();
    token::tokens_in_tree(v, &mut names);
    !names.is_empty()
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

fn find<'a>(known: &'a [String], k: &str) -> Option<&'a String> {
    known.iter().find(|f| f.eq_ignore_ascii_case(k))
}

fn unknown(k: &str, known: &[String]) -> String {
    match synapse_engine::load::closest(k, known.iter().map(String::as_str)) {
        Some(s) => {
            format!("the ActiveDirectoryHandler has no field '{k}' here; did you mean '{s}'?")
        }
        None => format!(
            "the ActiveDirectoryHandler has no field '{k}' here (it has: {})",
            known.join(", ")
        ),
    }
}

/// Whether `T` accepts `doc`; the reason when it does not.
fn accepts<T: DeserializeOwned>(doc: Value) -> Result<(), String> {
    serde_json::from_value::<T>(doc)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks an action's Config and Parameters; every problem.
pub fn check_action(
    config: Option<&ParameterInfo>,
    parameters: Option<&ParameterInfo>,
) -> Vec<ActionProblem> {
    let mut out = Vec::new();
    let config_fields = fields::<AdConfig>(&[]);
    if let Some(c) = config {
        if let Some(Value::Object(values)) = &c.values {
            for (k, v) in values {
                let at = vec![key("Values"), key(k)];
                let Some(name) = find(&config_fields, k) else {
                    out.push(ActionProblem::new(
                        ActionBlock::Config,
                        at,
                        unknown(k, &config_fields),
                    ));
                    continue;
                };
                if !v.is_null() && !has_tokens(v) {
                    let mut doc = Map::new();
                    doc.insert(name.clone(), v.clone());
                    if let Err(e) = accepts::<AdConfig>(Value::Object(doc)) {
                        out.push(ActionProblem::new(ActionBlock::Config, at, e));
                    }
                }
            }
        }
        for (i, d) in c.dynamic.iter().enumerate() {
            let at = vec![key("Dynamic"), Seg::Index(i), key("Target")];
            if let Ok(path) = d.target.parse::<ColonPath>() {
                if let Some(Seg::Key(k)) = path.0.first() {
                    if find(&config_fields, k).is_none() {
                        out.push(ActionProblem::new(
                            ActionBlock::Config,
                            at,
                            unknown(k, &config_fields),
                        ));
                    }
                }
            }
        }
    }
    if let Some(p) = parameters {
        check_parameters(p, &mut out);
    }
    out
}

fn check_parameters(p: &ParameterInfo, out: &mut Vec<ActionProblem>) {
    let top = fields::<AdParameters>(&[]);
    let problem =
        |path: Vec<Seg>, msg: String| ActionProblem::new(ActionBlock::Parameters, path, msg);
    if let Some(Value::Object(values)) = &p.values {
        for (list, items) in values {
            let at = vec![key("Values"), key(list)];
            let Some(list_name) = find(&top, list) else {
                out.push(problem(at, unknown(list, &top)));
                continue;
            };
            let (Some(known), Value::Array(items)) = (item_fields(list_name), items) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let Value::Object(item) = item else { continue };
                for (k, v) in item {
                    let mut at = at.clone();
                    at.extend([Seg::Index(i), key(k)]);
                    let Some(field) = find(&known, k) else {
                        out.push(problem(at, unknown(k, &known)));
                        continue;
                    };
                    if field == "Filter" {
                        if let Some(reason) = filter_problem(v, item) {
                            out.push(problem(at, reason));
                            continue;
                        }
                    }
                    // Null: left for Dynamic to fill (the usual shape of the repository's plans).
                    if !v.is_null() && !has_tokens(v) {
                        let doc = json!({ list_name.as_str(): [{ field.as_str(): v }] });
                        if let Err(e) = accepts::<AdParameters>(doc) {
                            out.push(problem(at, e));
                        }
                    }
                }
            }
        }
    }
    for (i, d) in p.dynamic.iter().enumerate() {
        let at = vec![key("Dynamic"), Seg::Index(i), key("Target")];
        let Ok(path) = d.target.parse::<ColonPath>() else {
            continue;
        };
        let Some(Seg::Key(list)) = path.0.first() else {
            continue;
        };
        let Some(list_name) = find(&top, list) else {
            out.push(problem(at, unknown(list, &top)));
            continue;
        };
        if let (Some(known), Some(Seg::Index(_)), Some(Seg::Key(k))) =
            (item_fields(list_name), path.0.get(1), path.0.get(2))
        {
            if find(&known, k).is_none() {
                out.push(problem(at, unknown(k, &known)));
            }
        }
    }
}

/// Why a written filter would not parse (tokens stand for an escaped value). Filters of requests with
/// `Parameters` (Find/ReplaceWith) are complete only after replacement: not checked.
fn filter_problem(filter: &Value, request: &Map<String, Value>) -> Option<String> {
    let Value::String(text) = filter else {
        return None;
    };
    let has_find = request
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Parameters") && !v.is_null() && v != &json!([]));
    if text.trim().is_empty() || has_find {
        return None;
    }
    let filled = token::substitute_str(text, &synapse_engine::Verbatim, &|_| {
        Some(Value::String("x".into()))
    })
    .ok()?;
    ldap3::parse_filter(&filled).is_err().then(|| {
        format!("'{text}' is not an LDAP filter (RFC 4515): check the parentheses and that each item is (attribute=value)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(yaml: &str) -> ParameterInfo {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn messages(config: &str, params: &str) -> Vec<String> {
        let (c, p) = (block(config), block(params));
        check_action(Some(&c), Some(&p))
            .into_iter()
            .map(|p| format!("{:?} {}", p.path, p.message))
            .collect()
    }

    #[test]
    fn every_problem_at_once() {
        let m = messages(
            "Values: {Action: Serch, Nope: 1}\nDynamic: [{Source: d, Target: Domain}, {Source: x, Target: Domian}]",
            "Values:\n  SearchRequests:\n  - {Filter: '(objectClass=user', Base: x}\nDynamic:\n- {Source: a, Target: 'Users[0]:Nmae'}\n- {Source: b, Target: 'Users[0]:Name'}\n- {Source: c, Target: Userz}",
        );
        let all = m.join("\n");
        assert_eq!(m.len(), 7, "{all}");
        assert!(all.contains("unknown variant `Serch`"), "{all}");
        assert!(all.contains("no field 'Nope'"), "{all}");
        assert!(all.contains("no field 'Domian'"), "{all}");
        assert!(all.contains("is not an LDAP filter"), "{all}");
        assert!(all.contains("no field 'Base'"), "{all}");
        assert!(all.contains("no field 'Nmae'"), "{all}");
        assert!(all.contains("no field 'Userz'"), "{all}");
    }

    #[test]
    fn good_actions_and_tokens_pass() {
        let m = messages(
            "Values: {Action: ~~action~~, OutputType: Yaml}",
            "Values:\n  SearchRequests:\n  - {Filter: '(&(objectClass=user)(cn=~~name~~))', SearchBase: ~~base~~}\n  Users: [{Identity: ~~id~~, Enabled: true}]\nDynamic: [{Source: f, Target: 'SearchRequests[0]:Filter'}]",
        );
        assert!(m.is_empty(), "{m:?}");
    }
}
