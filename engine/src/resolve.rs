//! Parameter resolution: turning a `ParameterInfo` into the concrete value(s) a handler receives.
//!
//! Pipeline (each step patches over the previous): InheritFrom < Values (with `~~tokens~~`) < Dynamic <
//! ParentExitData < ForEach (cartesian product, one value per combination).

use crate::model::{
    DataType, DynamicValue, EncodingType, ForEachItem, ParameterInfo, Plan, SerializationType,
    SourceTarget,
};
use crate::nesting;
use crate::params::DynamicParams;
use crate::path::{self, first_list, patch, scalar_text, select, ColonPath, PatchOptions};
use crate::token::{self, EscapeRule, TokenError};
use regex::{Regex, RegexBuilder};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// Upper bound on the number of combinations one `ForEach` may produce.
pub const MAX_FOR_EACH_COMBINATIONS: usize = 100_000;

/// One problem with the inputs or the resolution of a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "Kind", rename_all_fields = "PascalCase")]
#[non_exhaustive]
pub enum Problem {
    /// A required parameter (or one a token refers to) was not given.
    Missing { parameter: String },
    /// A parameter was given but is not acceptable.
    Invalid { parameter: String, reason: String },
    /// Anything else that stopped resolution (paths, ParentExitData, ForEach, named sets).
    Resolve { reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { parameter } => write!(f, "missing required parameter '{parameter}'"),
            Problem::Invalid { parameter, reason } => {
                write!(f, "invalid value for parameter '{parameter}': {reason}")
            }
            Problem::Resolve { reason } => f.write_str(reason),
        }
    }
}

/// All problems found while resolving (or pre-checking) inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ResolveError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ResolveError {
    fn one(reason: impl Into<String>) -> Self {
        ResolveError {
            problems: vec![Problem::Resolve {
                reason: reason.into(),
            }],
        }
    }

    fn push(&mut self, p: Problem) {
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }
}

/// Config sets and parameter sets of one run (separate namespaces, as upstream). Thread-safe.
#[derive(Default, Debug)]
pub struct NamedSets {
    configs: Mutex<HashMap<String, Value>>,
    params: Mutex<HashMap<String, Value>>,
}

/// Which namespace of [`NamedSets`] a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    Config,
    Parameters,
}

impl NamedSets {
    fn map(&self, kind: SetKind) -> &Mutex<HashMap<String, Value>> {
        match kind {
            SetKind::Config => &self.configs,
            SetKind::Parameters => &self.params,
        }
    }

    /// Stores (replacing) a named set.
    pub fn insert(&self, kind: SetKind, name: &str, value: Value) {
        if let Ok(mut m) = self.map(kind).lock() {
            m.insert(name.to_string(), value);
        }
    }

    /// A copy of a named set.
    pub fn get(&self, kind: SetKind, name: &str) -> Option<Value> {
        self.map(kind)
            .lock()
            .ok()
            .and_then(|m| m.get(name).cloned())
    }
}

/// What resolution of one block needs from its surroundings.
pub struct ResolveEnv<'a> {
    pub inputs: &'a DynamicParams,
    /// Defaults of Dynamic entries anywhere in the plan, by lower-case name: tokens fall back to them.
    pub token_defaults: &'a HashMap<String, Value>,
    /// The parent's exit data (Null when there is none).
    pub parent_exit_data: &'a Value,
    pub sets: &'a NamedSets,
    pub kind: SetKind,
    pub escaping: &'a [EscapeRule],
}

impl ResolveEnv<'_> {
    fn token_value(&self, name: &str) -> Option<Value> {
        self.inputs
            .get(name)
            .cloned()
            .or_else(|| self.token_defaults.get(&name.to_ascii_lowercase()).cloned())
    }
}

/// Resolves a block into one value per ForEach combination (exactly one without ForEach).
/// A missing block resolves to a single `Null`.
pub fn resolve(
    pi: Option<&ParameterInfo>,
    env: &ResolveEnv<'_>,
) -> Result<Vec<Value>, ResolveError> {
    let Some(pi) = pi else {
        return Ok(vec![Value::Null]);
    };
    let mut errors = ResolveError { problems: vec![] };

    // 1. InheritFrom
    let mut values = match &pi.inherit_from {
        Some(name) => env.sets.get(env.kind, name).ok_or_else(|| {
            ResolveError::one(format!(
                "InheritFrom '{name}': no block named '{name}' has been resolved before this action \
                 (named sets come from ancestors and earlier ActionGroups, not from siblings)"
            ))
        })?,
        None => Value::Null,
    };

    // 2. Values, with tokens substituted (only plan-authored text is scanned).
    if let Some(own) = &pi.values {
        let mut own = own.clone();
        let lookup = |name: &str| env.token_value(name);
        if let Err(errs) = token::substitute_tree(&mut own, env.escaping, &lookup) {
            for e in errs {
                errors.push(token_problem(e));
            }
        }
        if pi.r#type == SerializationType::Unspecified {
            values = own;
        } else {
            path::merge(&mut values, own);
        }
    }
    if values.is_null() && pi.r#type != SerializationType::Unspecified {
        values = Value::Object(serde_json::Map::new());
    }

    // 3. Dynamic
    for d in &pi.dynamic {
        match dynamic_value(d, env.inputs) {
            Ok(Some(v)) => {
                if let Err(reason) =
                    patch_with(&mut values, &d.target, v, d.replace.as_deref(), d.encode)
                {
                    errors.push(Problem::Resolve {
                        reason: format!("Dynamic '{}': {reason}", d.source),
                    });
                }
            }
            Ok(None) => {}
            Err(p) => errors.push(p),
        }
    }

    // 4. ParentExitData
    if !env.parent_exit_data.is_null() && !pi.parent_exit_data.is_empty() {
        if let Err(reason) = apply_parent_exit_data(pi, env.parent_exit_data, &mut values) {
            errors.push(Problem::Resolve { reason });
        }
    }

    if !errors.problems.is_empty() {
        return Err(errors);
    }
    if let Some(name) = &pi.name {
        env.sets.insert(env.kind, name, values.clone());
    }

    // 5. ForEach
    if pi.for_each.is_empty() {
        return Ok(vec![values]);
    }
    expand_for_each(&pi.for_each, values, env)
}

fn token_problem(e: TokenError) -> Problem {
    match e {
        TokenError::Missing { name } => Problem::Missing { parameter: name },
        other => Problem::Invalid {
            parameter: other.name().to_string(),
            reason: other.to_string(),
        },
    }
}

/// Compiles a plan-author regex used for `Replace` (case-insensitive, as upstream).
pub fn replace_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid Replace regex '{pattern}': {}", regex_error(&e)))
}

/// The regex crate's syntax errors span several lines (with a caret diagram); keep the reason.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("error: ").to_string())
        .unwrap_or(text)
}

/// Compiles a `Validation` regex (unanchored unless the pattern anchors itself).
pub fn validation_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid Validation regex '{pattern}': {}", regex_error(&e)))
}

fn patch_with(
    values: &mut Value,
    target: &str,
    v: Value,
    replace: Option<&str>,
    encode: EncodingType,
) -> Result<(), String> {
    let path: ColonPath = target.parse().map_err(|e: path::PathError| e.to_string())?;
    let re = replace.map(replace_regex).transpose()?;
    patch(
        values,
        &path,
        v,
        PatchOptions {
            replace: re.as_ref(),
            encode,
        },
    )
    .map_err(|e| e.to_string())
}

/// The value a Dynamic entry contributes: the input (validated and converted), its default, or nothing.
pub fn dynamic_value(d: &DynamicValue, inputs: &DynamicParams) -> Result<Option<Value>, Problem> {
    let given = inputs.get(&d.source).cloned();
    let value = match given {
        Some(v) => v,
        None => match default_of(d) {
            Some(v) => return Ok(Some(v)),
            None if d.required => {
                return Err(Problem::Missing {
                    parameter: d.source.clone(),
                })
            }
            None => return Ok(None),
        },
    };
    let invalid = |reason: String| Problem::Invalid {
        parameter: d.source.clone(),
        reason,
    };
    let value = apply_options(d, value).map_err(invalid)?;
    if let Some(pattern) = &d.validation {
        let re = validation_regex(pattern).map_err(invalid)?;
        let text = scalar_text(&value);
        if !re.is_match(&text) {
            return Err(invalid(format!(
                "'{}' does not match /{pattern}/",
                display_value(&d.source, &text)
            )));
        }
    }
    let value = if d.parse {
        parse_value(value)
    } else {
        match d.data_type {
            Some(t) => {
                let text = scalar_text(&value);
                convert(value, t)
                    .map_err(|r| invalid(format!("'{}' {r}", display_value(&d.source, &text))))?
            }
            None => value,
        }
    };
    Ok(Some(value))
}

/// Secrets never appear in error messages.
fn display_value(name: &str, text: &str) -> String {
    if crate::is_secret_name(name) {
        crate::MASK.to_string()
    } else if text.chars().count() > 80 {
        let cut: String = text.chars().take(80).collect();
        format!("{cut}...")
    } else {
        text.to_string()
    }
}

fn default_of(d: &DynamicValue) -> Option<Value> {
    if let Some(def) = &d.default {
        match &def.value {
            Some(v) if !v.is_null() => return Some(v.clone()),
            _ if def.allow_null => return Some(Value::Null),
            _ => {}
        }
    }
    d.options
        .iter()
        .find(|o| o.is_default)
        .map(|o| Value::String(o.value.clone()))
}

fn apply_options(d: &DynamicValue, value: Value) -> Result<Value, String> {
    if d.options.is_empty() {
        return Ok(value);
    }
    let text = scalar_text(&value);
    let hit = d.options.iter().find(|o| {
        o.value.eq_ignore_ascii_case(&text)
            || (!o.key.is_empty() && o.key.eq_ignore_ascii_case(&text))
    });
    match hit {
        Some(o) => Ok(Value::String(o.value.clone())),
        None if d.restrict_to_options => {
            // Every accepted spelling once: the values, then the keys that differ from every value
            // (`{Key: DomainLocal, Value: Local}` accepts both).
            let mut allowed: Vec<&str> = Vec::new();
            let values = d.options.iter().map(|o| o.value.as_str());
            for name in values.chain(d.options.iter().map(|o| o.key.as_str())) {
                if !name.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                    allowed.push(name);
                }
            }
            Err(format!(
                "'{}' is not one of the allowed options: {}",
                display_value(&d.source, &text),
                allowed.join(", ")
            ))
        }
        None => Ok(value),
    }
}

/// `Parse: true`: a string holding YAML or JSON becomes structure; anything that does not parse stays a string.
/// The strings are often caller-provided, so text nested deeper than [`nesting::MAX_DEPTH`] (or with more
/// YAML flow collections than [`nesting::MAX_YAML_FLOW`]) is not handed to the parser: it stays a string.
pub fn parse_value(value: Value) -> Value {
    let Value::String(s) = &value else {
        return value;
    };
    match nesting::parse_text(s) {
        Ok(Some(nesting::Parsed::Json(parsed))) => parsed,
        Ok(Some(nesting::Parsed::Yaml(parsed)))
            if !parsed.is_null() || s.trim() == "null" || s.trim() == "~" =>
        {
            parsed
        }
        _ => value,
    }
}

fn convert(value: Value, t: DataType) -> Result<Value, String> {
    let text = scalar_text(&value);
    let t_name = format!("{t:?}");
    let bad = || format!("is not a valid {t_name}");
    let int = |min: i128, max: i128| -> Result<Value, String> {
        let n: i128 = text.trim().parse().map_err(|_| bad())?;
        if n < min || n > max {
            return Err(format!("is out of range for {t_name}"));
        }
        if n < 0 {
            i64::try_from(n).map(Value::from).map_err(|_| bad())
        } else {
            u64::try_from(n).map(Value::from).map_err(|_| bad())
        }
    };
    match t {
        DataType::String | DataType::Object => Ok(value),
        DataType::Char => {
            if text.chars().count() == 1 {
                Ok(Value::String(text))
            } else {
                Err(bad())
            }
        }
        DataType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{} (expected true or false)", bad())),
        },
        DataType::SByte => int(i8::MIN.into(), i8::MAX.into()),
        DataType::Byte => int(0, u8::MAX.into()),
        DataType::Int16 => int(i16::MIN.into(), i16::MAX.into()),
        DataType::UInt16 => int(0, u16::MAX.into()),
        DataType::Int32 => int(i32::MIN.into(), i32::MAX.into()),
        DataType::UInt32 => int(0, u32::MAX.into()),
        DataType::Int64 => int(i64::MIN.into(), i64::MAX.into()),
        DataType::UInt64 => int(0, u64::MAX.into()),
        DataType::Single | DataType::Double | DataType::Decimal => {
            let f: f64 = text.trim().parse().map_err(|_| bad())?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(bad)
        }
        DataType::DateTime => {
            let t = text.trim();
            let ok = chrono::DateTime::parse_from_rfc3339(t).is_ok()
                || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").is_ok()
                || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").is_ok()
                || chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok();
            if ok {
                Ok(Value::String(t.to_string()))
            } else {
                Err(format!(
                    "{} (expected ISO 8601, e.g. 2026-12-31 or 2026-12-31T23:59:00Z)",
                    bad()
                ))
            }
        }
    }
}

/// A string exit data is parsed as YAML/JSON (handlers may return YAML text), as upstream.
pub fn normalize_exit_data(data: &Value) -> Value {
    match data {
        Value::String(_) => parse_value(data.clone()),
        other => other.clone(),
    }
}

fn maybe_parse(v: Value, parse: bool) -> Value {
    if parse {
        parse_value(v)
    } else {
        v
    }
}

fn apply_parent_exit_data(
    pi: &ParameterInfo,
    parent: &Value,
    values: &mut Value,
) -> Result<(), String> {
    let mut data = normalize_exit_data(parent);
    for e in &pi.parent_exit_data {
        if let Some(t) = &e.transform_in_place {
            let src: ColonPath = t
                .source
                .parse()
                .map_err(|e: path::PathError| e.to_string())?;
            if let Some(v) = select(&data, &src).cloned() {
                patch_source_target(&mut data, t, v)
                    .map_err(|r| format!("ParentExitData TransformInPlace '{}': {r}", t.source))?;
            }
        }
    }
    for e in &pi.parent_exit_data {
        let Some(c) = &e.copy_to_values else { continue };
        let source = if c.source.is_empty() {
            e.transform_in_place
                .as_ref()
                .map(|t| t.target.as_str())
                .unwrap_or("")
        } else {
            c.source.as_str()
        };
        let v = if source.is_empty() {
            Some(data.clone())
        } else {
            let src: ColonPath = source.parse().map_err(|e: path::PathError| e.to_string())?;
            select(&data, &src).cloned()
        };
        if let Some(v) = v {
            patch_source_target(values, c, v)
                .map_err(|r| format!("ParentExitData CopyToValues '{source}': {r}"))?;
        }
    }
    Ok(())
}

fn patch_source_target(into: &mut Value, st: &SourceTarget, v: Value) -> Result<(), String> {
    patch_with(
        into,
        &st.target,
        maybe_parse(v, st.parse),
        st.replace.as_deref(),
        st.encode,
    )
}

fn for_each_list(item: &ForEachItem, env: &ResolveEnv<'_>) -> Result<Vec<Value>, String> {
    let Some(ps) = &item.parameter_source else {
        return Ok(item.values.clone());
    };
    let base = if ps.name.eq_ignore_ascii_case("ParentExitData") {
        normalize_exit_data(env.parent_exit_data)
    } else {
        env.sets.get(env.kind, &ps.name).ok_or_else(|| {
            format!("ForEach ParameterSource '{}': no block with that name has been resolved before this action", ps.name)
        })?
    };
    let selected = match ps.source.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(src) => {
            let p: ColonPath = src.parse().map_err(|e: path::PathError| e.to_string())?;
            select(&base, &p).cloned().unwrap_or(Value::Null)
        }
        None => base,
    };
    let selected = maybe_parse(selected, ps.parse);
    let list = first_list(&selected).cloned().ok_or_else(|| {
        format!(
            "ForEach ParameterSource '{}{}' holds no list",
            ps.name,
            ps.source
                .as_deref()
                .map(|s| format!(":{s}"))
                .unwrap_or_default()
        )
    })?;
    Ok(list.into_iter().map(|v| maybe_parse(v, ps.parse)).collect())
}

fn expand_for_each(
    items: &[ForEachItem],
    values: Value,
    env: &ResolveEnv<'_>,
) -> Result<Vec<Value>, ResolveError> {
    let mut lists = Vec::with_capacity(items.len());
    let mut total: usize = 1;
    for item in items {
        let list = for_each_list(item, env).map_err(ResolveError::one)?;
        total = total.saturating_mul(list.len());
        if total > MAX_FOR_EACH_COMBINATIONS {
            return Err(ResolveError::one(format!(
                "ForEach would produce more than {MAX_FOR_EACH_COMBINATIONS} combinations"
            )));
        }
        let target: ColonPath = item
            .target
            .parse()
            .map_err(|e: path::PathError| ResolveError::one(format!("ForEach Target: {e}")))?;
        let re = item
            .replace
            .as_deref()
            .map(replace_regex)
            .transpose()
            .map_err(ResolveError::one)?;
        lists.push((target, re, item.encode, list));
    }
    let mut out = vec![values];
    for (target, re, encode, list) in &lists {
        let mut next = Vec::with_capacity(out.len() * list.len());
        for base in &out {
            for v in list {
                let mut copy = base.clone();
                patch(
                    &mut copy,
                    target,
                    v.clone(),
                    PatchOptions {
                        replace: re.as_ref(),
                        encode: *encode,
                    },
                )
                .map_err(|e| ResolveError::one(format!("ForEach: {e}")))?;
                next.push(copy);
            }
        }
        out = next;
    }
    Ok(out)
}

/// Every block of a plan (Config and Parameters of every action, ActionGroups included).
fn blocks(plan: &Plan) -> Vec<&ParameterInfo> {
    let mut out = Vec::new();
    plan.walk(|_, a| {
        if let Some(c) = a.handler.as_ref().and_then(|h| h.config.as_ref()) {
            out.push(c);
        }
        if let Some(p) = &a.parameters {
            out.push(p);
        }
    });
    out
}

/// Defaults of every Dynamic entry in the plan, by lower-case name (tokens fall back to them).
pub fn token_defaults(plan: &Plan) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for b in blocks(plan) {
        for d in &b.dynamic {
            if let Some(v) = default_of(d) {
                out.entry(d.source.to_ascii_lowercase()).or_insert(v);
            }
        }
    }
    out
}

/// Checks every input of the plan before anything runs: each Required parameter and each `~~token~~` must
/// be given (or have a default), and each given value must pass its Options/Validation/DataType.
/// Every problem is reported, each parameter once.
pub fn check_inputs(plan: &Plan, inputs: &DynamicParams) -> Result<(), ResolveError> {
    let defaults = token_defaults(plan);
    let mut errors = ResolveError { problems: vec![] };
    for b in blocks(plan) {
        for d in &b.dynamic {
            if let Err(p) = dynamic_value(d, inputs) {
                errors.push(p);
            }
        }
        if let Some(v) = &b.values {
            let mut names = Vec::new();
            token::tokens_in_tree(v, &mut names);
            for n in names {
                if inputs.get(&n).is_none() && !defaults.contains_key(&n.to_ascii_lowercase()) {
                    errors.push(Problem::Missing { parameter: n });
                }
            }
        }
    }
    if errors.problems.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks, before anything runs, that every given input a `~~token~~` of the plan's Values puts into an
/// escaped place passes that place's escaper (the Config and Parameters rules of the action's handler's
/// `descriptor`): a value no escaper accepts (a NUL in an LDAP filter or DN) is an Invalid
/// problem naming the parameter, a 400, as the identity routes answer, instead of a failed action.
pub fn check_escaped_inputs(
    plan: &Plan,
    inputs: &DynamicParams,
    descriptor: &dyn Fn(
        &crate::model::ActionItem,
    ) -> Option<std::sync::Arc<dyn crate::HandlerDescriptor>>,
) -> Result<(), ResolveError> {
    // Only given inputs are checked (missing ones are check_inputs' business).
    let lookup = |name: &str| inputs.get(name).cloned();
    let mut errors = ResolveError { problems: vec![] };
    plan.walk(|_, item| {
        let Some(d) = descriptor(item) else {
            return;
        };
        let config = item.handler.as_ref().and_then(|h| h.config.as_ref());
        let blocks = [
            (config, d.config_escaping()),
            (item.parameters.as_ref(), d.parameter_escaping()),
        ];
        for (block, rules) in blocks {
            // A Dynamic value fills its whole target: it must be acceptable there as a whole (a DN where a
            // DN goes). It is not escaped (the caller gives the whole value), only checked. Empty text is
            // left to the handler (its default), `Replace` and `Parse` entries are not whole values.
            let dynamic = block.map(|b| b.dynamic.as_slice()).unwrap_or_default();
            for d in dynamic.iter().filter(|d| d.replace.is_none() && !d.parse) {
                let Some(Value::String(text)) = inputs.get(&d.source) else {
                    continue;
                };
                let Ok(target) = d.target.parse::<ColonPath>() else {
                    continue;
                };
                if text.trim().is_empty() {
                    continue;
                }
                if let Err(reason) = token::escaper_for(rules, &target.0).escape(text, true) {
                    errors.push(Problem::Invalid {
                        parameter: d.source.clone(),
                        reason: format!("'{}' {reason}", d.source),
                    });
                }
            }
            if let Some(values) = block.and_then(|b| b.values.as_ref()) {
                // The substitution the run will make, on a copy: only the escapers' refusals count here.
                let mut copy = values.clone();
                if let Err(errs) = token::substitute_tree(&mut copy, rules, &lookup) {
                    for e in errs {
                        if matches!(e, TokenError::Rejected { .. }) {
                            errors.push(token_problem(e));
                        }
                    }
                }
            }
        }
    });
    if errors.problems.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Verbatim escaping, for callers that have no rules.
pub const NO_ESCAPING: &[EscapeRule] = &[];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pi(yaml: &str) -> ParameterInfo {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn parse_true_leaves_text_nested_too_deep_as_a_string() {
        assert_eq!(parse_value(json!("{a: [1, 2]}")), json!({"a": [1, 2]}));
        assert_eq!(
            parse_value(json!(r#"{"a": {"b": 1}}"#)),
            json!({"a": {"b": 1}})
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(parse_value(json!(deep)), json!(deep));
        let dashes = format!("{}x", "- ".repeat(100_000));
        assert_eq!(parse_value(json!(dashes)), json!(dashes));
        // The mechanism, not a timing: refused by the scans, so far below the parser's 40+ s.
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    fn env<'a>(
        inputs: &'a DynamicParams,
        defaults: &'a HashMap<String, Value>,
        parent: &'a Value,
        sets: &'a NamedSets,
    ) -> ResolveEnv<'a> {
        ResolveEnv {
            inputs,
            token_defaults: defaults,
            parent_exit_data: parent,
            sets,
            kind: SetKind::Parameters,
            escaping: NO_ESCAPING,
        }
    }

    #[test]
    fn refused_option_lists_every_accepted_spelling_once() {
        let d: DynamicValue = serde_yaml::from_str(
            "Source: scope\nTarget: Scope\nOptions:\n- {Key: Local, Value: Local}\n- {Key: Global, Value: Global}\n- {Key: Universal, Value: Universal}\n- {Key: DomainLocal, Value: Local}\nRestrictToOptions: true",
        )
        .unwrap();
        let e = apply_options(&d, json!("Weird")).unwrap_err();
        assert!(
            e.ends_with("allowed options: Local, Global, Universal, DomainLocal"),
            "{e}"
        );
        assert_eq!(
            apply_options(&d, json!("domainlocal")).unwrap(),
            json!("Local")
        );
    }

    #[test]
    fn pipeline_order() {
        let sets = NamedSets::default();
        sets.insert(
            SetKind::Parameters,
            "base",
            json!({"a": 1, "b": 1, "c": 1, "d": 1}),
        );
        let p = pi(r#"
InheritFrom: base
Values: {b: 2, c: 2, d: 2}
Dynamic: [{Source: c, Target: c}, {Name: dd, Path: d}]
ParentExitData: [{CopyToValues: {Source: x, Target: d}}]
"#);
        let inputs: DynamicParams = [("c", "3"), ("dd", "3")].into_iter().collect();
        let parent = json!({"x": 4});
        let defaults = HashMap::new();
        let out = resolve(Some(&p), &env(&inputs, &defaults, &parent, &sets)).unwrap();
        assert_eq!(out, vec![json!({"a": 1, "b": 2, "c": "3", "d": 4})]);
    }

    #[test]
    fn for_each_is_a_cartesian_product_in_nested_order() {
        let p = pi("Values: {x: 0, y: 0}\nForEach: [{Target: x, Values: [1, 2]}, {Target: y, Values: [a, b, c]}]");
        let sets = NamedSets::default();
        let (inputs, defaults) = (DynamicParams::new(), HashMap::new());
        let out = resolve(Some(&p), &env(&inputs, &defaults, &Value::Null, &sets)).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(out[0], json!({"x": 1, "y": "a"}));
        assert_eq!(out[5], json!({"x": 2, "y": "c"}));
    }

    #[test]
    fn for_each_from_parent_exit_data_string() {
        let p = pi(
            "ForEach: [{Target: Server, ParameterSource: {Name: ParentExitData, Source: Servers}}]",
        );
        let parent = json!("Servers: [a, b]\n");
        let sets = NamedSets::default();
        let (inputs, defaults) = (DynamicParams::new(), HashMap::new());
        let out = resolve(Some(&p), &env(&inputs, &defaults, &parent, &sets)).unwrap();
        assert_eq!(out, vec![json!({"Server": "a"}), json!({"Server": "b"})]);
    }

    #[test]
    fn all_problems_reported_together() {
        let p = pi(r#"
Values: {Filter: "(cn=~~who~~)"}
Dynamic:
- {Source: a, Target: a, Required: true}
- {Source: b, Target: b, Validation: '^\d+$'}
- {Source: c, Target: c, Options: [{Key: x, Value: X}]}
- {Source: n, Target: n, DataType: Int32}
"#);
        let inputs: DynamicParams = [("b", "12x"), ("c", "nope"), ("n", "99999999999")]
            .into_iter()
            .collect();
        let plan = Plan {
            actions: vec![crate::model::ActionItem {
                parameters: Some(p),
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = check_inputs(&plan, &inputs).unwrap_err();
        let text = err.to_string();
        for needle in ["'a'", "'b'", "'c'", "'n'", "'who'"] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        assert_eq!(err.problems.len(), 5);
    }

    #[test]
    fn defaults_options_and_types() {
        let p = pi(r#"
Values: {}
Dynamic:
- {Source: d, Target: d, Default: {Value: dflt}}
- {Source: o, Target: o, Options: [{Key: ok, Value: Complete}, {Key: bad, Value: Failed, IsDefault: true}]}
- {Source: b, Target: b, DataType: Boolean}
- {Source: j, Target: j, Parse: true}
- {Source: z, Target: z, Default: {AllowNull: true}}
"#);
        let inputs: DynamicParams = [("b", "TRUE"), ("j", "[1, 2]")].into_iter().collect();
        let sets = NamedSets::default();
        let defaults = HashMap::new();
        let out = resolve(Some(&p), &env(&inputs, &defaults, &Value::Null, &sets)).unwrap();
        assert_eq!(
            out[0],
            json!({"d": "dflt", "o": "Failed", "b": true, "j": [1, 2], "z": null})
        );
        let inputs: DynamicParams = [("o", "ok")].into_iter().collect();
        let out = resolve(Some(&p), &env(&inputs, &defaults, &Value::Null, &sets)).unwrap();
        assert_eq!(out[0]["o"], json!("Complete"));
    }

    #[test]
    fn secrets_do_not_leak_into_errors() {
        let p = pi("Dynamic: [{Source: Password, Target: p, Validation: '^.{20,}$'}]");
        let inputs: DynamicParams = [("Password", "hunter2")].into_iter().collect();
        let plan = Plan {
            actions: vec![crate::model::ActionItem {
                parameters: Some(p),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = check_inputs(&plan, &inputs).unwrap_err().to_string();
        assert!(!text.contains("hunter2"), "{text}");
    }
}
