//! Loading plans from YAML with diagnostics that name file, line, column and field.
//!
//! Two passes over the text: serde (yaml_serde) builds the model and reports the first shape error plus every
//! unknown field (via `serde_ignored`); a pure-Rust event parser indexes every node's position (and finds
//! duplicate keys). Unknown fields and semantic problems are all reported together; a shape error (a list where
//! a mapping belongs, a bad status name) stops the serde pass at the first one.

mod spans;

pub use spans::{Pos, SpanIndex};

use crate::model::Plan;
use crate::path::Seg;
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// Plans larger than this are refused before parsing.
pub const MAX_PLAN_BYTES: usize = 4 * 1024 * 1024;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a plan file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The offending field, e.g. `Actions[0].Handler.Type` (empty for the whole document).
    pub field: String,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {sev}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        // One diagnostic, one line.
        f.write_str(&self.message.replace(['\n', '\r'], " "))
    }
}

/// A list of diagnostics (the error type of loading and validation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Renders a field path as `Actions[0].Handler.Type`.
pub fn field_name(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A plan with what is needed to point at its source.
#[derive(Clone, Debug)]
pub struct LoadedPlan {
    pub plan: Plan,
    pub file: String,
    pub spans: SpanIndex,
    /// Warnings found while loading (errors make loading fail).
    pub warnings: Vec<Diagnostic>,
}

impl LoadedPlan {
    /// A diagnostic located at `path` in this plan's file.
    pub fn diagnostic(
        &self,
        path: &[Seg],
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        locate(&self.file, &self.spans, path, severity, message.into())
    }
}

fn locate(
    file: &str,
    spans: &SpanIndex,
    path: &[Seg],
    severity: Severity,
    message: String,
) -> Diagnostic {
    let pos = spans.find(path);
    Diagnostic {
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        field: field_name(path),
        message,
        severity,
    }
}

/// Reads and loads a plan file.
pub fn load_file(path: &Path) -> Result<LoadedPlan, Diagnostics> {
    strict(load_file_lenient(path))
}

/// [`load_file`], also returning the plan when it parsed despite errors that do not stop parsing (unknown
/// fields, duplicate keys), so validation can report its problems in the same run.
pub fn load_file_lenient(path: &Path) -> (Option<LoadedPlan>, Diagnostics) {
    let file = path.display().to_string();
    let one = |message: String| {
        Diagnostics(vec![Diagnostic {
            file: file.clone(),
            line: 1,
            column: 1,
            field: String::new(),
            message,
            severity: Severity::Error,
        }])
    };
    let text = (|| {
        let meta =
            std::fs::metadata(path).map_err(|e| one(format!("cannot read the file: {e}")))?;
        if meta.len() > MAX_PLAN_BYTES as u64 {
            return Err(one(format!(
                "the file is {} bytes; plans are limited to {MAX_PLAN_BYTES} bytes",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| one(format!("cannot read the file: {e}")))?;
        String::from_utf8(bytes).map_err(|e| one(format!("the file is not UTF-8: {e}")))
    })();
    match text {
        Ok(text) => load_str_lenient(&text, &file),
        Err(d) => (None, d),
    }
}

/// Loads a plan from YAML text; `file` names it in diagnostics.
/// A leading UTF-8 byte order mark (Windows editors write one) is not part of the YAML.
pub fn load_str(src: &str, file: &str) -> Result<LoadedPlan, Diagnostics> {
    strict(load_str_lenient(src, file))
}

/// A plan only when it has no diagnostics at all.
fn strict((plan, diags): (Option<LoadedPlan>, Diagnostics)) -> Result<LoadedPlan, Diagnostics> {
    match plan {
        Some(p) if diags.0.is_empty() => Ok(p),
        _ => Err(diags),
    }
}

/// [`load_str`], also returning the plan when it parsed despite unknown fields or duplicate keys (the
/// diagnostics hold those errors all the same).
pub fn load_str_lenient(src: &str, file: &str) -> (Option<LoadedPlan>, Diagnostics) {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let spans = SpanIndex::build(src);
    let mut diags = Vec::new();
    let err = |line: usize, column: usize, field: String, message: String| Diagnostic {
        file: file.to_string(),
        line,
        column,
        field,
        message,
        severity: Severity::Error,
    };
    if src.len() > MAX_PLAN_BYTES {
        return (
            None,
            Diagnostics(vec![err(
                1,
                1,
                String::new(),
                format!("plans are limited to {MAX_PLAN_BYTES} bytes"),
            )]),
        );
    }
    if let Some((pos, msg)) = &spans.syntax_error {
        return (
            None,
            Diagnostics(vec![err(
                pos.line,
                pos.column,
                String::new(),
                format!("YAML syntax error: {msg}"),
            )]),
        );
    }
    if spans.documents > 1 {
        return (
            None,
            Diagnostics(vec![err(
                1,
                1,
                String::new(),
                "a plan file holds exactly one YAML document".into(),
            )]),
        );
    }
    if src.trim().is_empty() || spans.documents == 0 {
        return (
            None,
            Diagnostics(vec![err(1, 1, String::new(), "the plan is empty".into())]),
        );
    }
    for (path, pos) in &spans.duplicates {
        let key = match path.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => String::new(),
        };
        diags.push(err(
            pos.line,
            pos.column,
            field_name(path),
            format!("duplicate key '{key}'"),
        ));
    }

    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let parsed: Result<Plan, _> = {
        let de = serde_yaml::Deserializer::from_str(src);
        let mut cb = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
        let ignoring = serde_ignored::Deserializer::new(de, &mut cb);
        serde_path_to_error::deserialize(ignoring)
    };
    for path in &unknown {
        let key = match path.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => continue,
        };
        let mut message = format!("unknown field '{key}'");
        if let Some(s) = suggest(&key) {
            message.push_str(&format!("; did you mean '{s}'?"));
        }
        diags.push(locate(file, &spans, path, Severity::Error, message));
    }
    let plan = match parsed {
        Ok(plan) => Some(plan),
        Err(e) => {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            let inner = e.inner();
            let (line, column) = inner
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            let message = clean_message(&inner.to_string(), &field);
            // The span pass already reported duplicate keys, at the second occurrence.
            let already_reported =
                message.starts_with("duplicate field") && !spans.duplicates.is_empty();
            if !already_reported {
                diags.push(err(line, column, field.clone(), message));
            }
            None
        }
    };
    diags.sort_by_key(|d| (d.line, d.column));
    let loaded = plan.map(|plan| LoadedPlan {
        plan,
        file: file.to_string(),
        spans,
        warnings: Vec::new(),
    });
    (loaded, Diagnostics(diags))
}

/// yaml_serde messages end with " at line N column M" and may start with the path; we print both ourselves.
fn clean_message(msg: &str, field: &str) -> String {
    let mut m = msg.to_string();
    if let Some(i) = m.rfind(" at line ") {
        m.truncate(i);
    }
    if !field.is_empty() {
        if let Some(rest) = m.strip_prefix(&format!("{field}: ")) {
            m = rest.to_string();
        }
    }
    let m = m.replace('`', "'");
    match m.find("expected struct ") {
        Some(i) => {
            let name = &m[i + "expected struct ".len()..];
            format!("{}expected a mapping ({name})", &m[..i])
        }
        None => m,
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> Vec<Seg> {
    let mut out = Vec::new();
    fn rec(p: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
        match p {
            serde_ignored::Path::Root => {}
            serde_ignored::Path::Seq { parent, index } => {
                rec(parent, out);
                out.push(Seg::Index(*index));
            }
            serde_ignored::Path::Map { parent, key } => {
                rec(parent, out);
                out.push(Seg::Key(key.clone()));
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => rec(parent, out),
        }
    }
    rec(p, &mut out);
    out
}

/// Every field name of the plan language, for "did you mean" suggestions.
const KNOWN_FIELDS: &[&str] = &[
    "Name",
    "UniqueName",
    "Description",
    "IsActive",
    "DefaultHandlerType",
    "RunAs",
    "Actions",
    "ExecuteCase",
    "Handler",
    "Parameters",
    "ActionGroup",
    "SaveExitDataAs",
    "Proxy",
    "Timeout",
    "Retry",
    "Type",
    "Config",
    "InheritFrom",
    "Uri",
    "Values",
    "Dynamic",
    "ParentExitData",
    "ForEach",
    "Source",
    "Target",
    "Path",
    "Required",
    "Default",
    "Options",
    "RestrictToOptions",
    "Validation",
    "DataType",
    "Parse",
    "Replace",
    "Encode",
    "Value",
    "AllowNull",
    "Key",
    "IsDefault",
    "TransformInPlace",
    "CopyToValues",
    "ParameterSource",
    "Domain",
    "UserName",
    "Password",
    "Provider",
    "IsInheritable",
    "BlockInheritance",
    "Count",
    "Delay",
    "Backoff",
    "On",
];

fn suggest(unknown: &str) -> Option<&'static str> {
    closest(unknown, KNOWN_FIELDS.iter().copied())
}

/// The candidate `unknown` is most likely a typo of (case-insensitive, at most two edits), for "did you
/// mean" suggestions.
pub fn closest<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let u = unknown.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|k| (edit_distance(&u, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= 2.min(k.len() / 3 + 1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_plan() {
        let p = load_str(
            "Name: p\nActions:\n- Name: a\n  Handler: {Type: Empty}\n",
            "p.yaml",
        )
        .unwrap();
        assert_eq!(p.plan.actions[0].name, "a");
    }

    #[test]
    fn a_utf8_bom_is_not_part_of_the_plan() {
        let p = load_str(
            "\u{feff}Name: p\nActions:\n- Name: a\n  Handler: {Type: Empty}\n",
            "p.yaml",
        )
        .unwrap();
        assert_eq!(p.plan.name, "p");
        // Positions still count from the first visible character.
        let e = load_str("\u{feff}Name: p\nActons: []\n", "p.yaml").unwrap_err();
        assert!(e.to_string().starts_with("p.yaml:2:1: "), "{e}");
    }

    #[test]
    fn every_unknown_field_is_reported_with_position() {
        let src = "Name: p\nActons: []\nActions:\n- Name: a\n  Hndler: {Type: Empty}\n  Parameters: {Valuez: {}}\n";
        let e = load_str(src, "p.yaml").unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(lines, vec![
            "p.yaml:2:1: error: Actons: unknown field 'Actons'; did you mean 'Actions'?",
            "p.yaml:5:3: error: Actions[0].Hndler: unknown field 'Hndler'; did you mean 'Handler'?",
            "p.yaml:6:16: error: Actions[0].Parameters.Valuez: unknown field 'Valuez'; did you mean 'Values'?",
        ]);
    }

    #[test]
    fn shape_errors_have_position_and_field() {
        let e = load_str(
            "Name: p\nActions:\n- Name: a\n  ExecuteCase: Done\n",
            "p.yaml",
        )
        .unwrap_err();
        let d = &e.0[0];
        assert_eq!((d.line, d.field.as_str()), (4, "Actions[0].ExecuteCase"));
        assert!(d.message.contains("unknown status 'Done'"), "{}", d.message);
    }
}
