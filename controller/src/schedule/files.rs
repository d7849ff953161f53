//! Schedule files: one schedule per YAML file in the schedules directory (next to the plans directory),
//! checked like plans with `file:line:col` diagnostics, and kept in the store as `Source: File` (read-only
//! through the API). docs/scheduling.md "Schedule files".
//!
//! ```yaml
//! # schedules/nightly-report.yaml (Name defaults to the file name)
//! Plan: Report
//! Cron: "0 2 * * *"
//! TimeZone: Europe/Berlin
//! Parameters: {format: pdf}
//! Overlap: Skip
//! ```

use super::cron::{CronError, CronSpec};
use super::model::{ScheduleSpec, Source};
use super::scheduler::{inputs_of, next_occurrence, PlanSource};
use super::Scheduler;
use crate::catalog::CatalogError;
use crate::store::schedules::{ScheduleRecord, ScheduleState};
use crate::store::StoreError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use synapse_engine::{Diagnostic, Diagnostics, Executor, Severity};

/// The schedules directory that belongs to a plans directory: `schedules` beside it.
pub fn dir_beside(plans: &Path) -> PathBuf {
    plans
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("schedules")
}

/// The `*.yaml`/`*.yml` files directly in `dir` (none when it does not exist), sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Line and column (1-based) of the value of top-level key `field` in `text` (1:1 when not found).
fn position(text: &str, field: &str) -> (usize, usize) {
    let prefix = format!("{field}:");
    for (i, line) in text.lines().enumerate() {
        if line.starts_with(&prefix) {
            let rest = &line[prefix.len()..];
            let value_col = prefix.len() + 1 + (rest.len() - rest.trim_start().len());
            return (i + 1, value_col);
        }
    }
    (1, 1)
}

fn diag(file: &Path, text: &str, field: &str, message: impl Into<String>) -> Diagnostics {
    let (line, column) = if field.is_empty() {
        (1, 1)
    } else {
        position(text, field)
    };
    let message: String = message.into();
    let message = message
        .strip_prefix(&format!("{field}: "))
        .map(str::to_string)
        .unwrap_or(message);
    Diagnostics(vec![Diagnostic {
        file: file.display().to_string(),
        line,
        column,
        field: field.to_string(),
        message,
        severity: Severity::Error,
    }])
}

/// Reads and checks one schedule file. With `plans` (and the executor that checks inputs), the plan and
/// parameters are checked like a start; without, only the file itself.
pub fn load_file(
    path: &Path,
    plans: Option<(&dyn PlanSource, &Executor)>,
) -> Result<ScheduleSpec, Diagnostics> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| diag(path, "", "", format!("cannot read the file: {e}")))?;
    let value: Value = serde_yaml::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        Diagnostics(vec![Diagnostic {
            file: path.display().to_string(),
            line,
            column,
            field: String::new(),
            message: e.to_string(),
            severity: Severity::Error,
        }])
    })?;
    let Value::Object(mut map) = value else {
        return Err(diag(
            path,
            &text,
            "",
            "a schedule file is a mapping (Plan:, Cron:, ...)",
        ));
    };
    if !map.contains_key("Name") {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        map.insert("Name".into(), Value::String(stem));
    }
    let field_of = |msg: &str| msg.split(':').next().unwrap_or("").trim().to_string();
    let spec = crate::routes::schedules::parse_spec(map).map_err(|e| {
        let m = e.to_string();
        diag(path, &text, &field_of(&m), m)
    })?;
    crate::routes::schedules::check_fields(&spec).map_err(|e| {
        let m = e.to_string();
        diag(path, &text, &field_of(&m), m)
    })?;
    CronSpec::parse(&spec.cron, &spec.time_zone).map_err(|e| match e {
        CronError::Zone(_) => diag(path, &text, "TimeZone", e.to_string()),
        _ => diag(path, &text, "Cron", e.to_string()),
    })?;
    if let Some((plans, executor)) = plans {
        let (entry, plan) = plans.runnable(&spec.plan).map_err(|e| match e {
            CatalogError::NoSuchPlan { name } => {
                diag(path, &text, "Plan", format!("no plan named '{name}'"))
            }
            other => diag(path, &text, "Plan", other.to_string()),
        })?;
        let inputs = inputs_of(&spec);
        crate::routes::execute::check_known(&entry, &inputs)
            .map_err(|e| diag(path, &text, "Parameters", e.to_string()))?;
        executor
            .check_inputs(&plan, &inputs)
            .map_err(|e| diag(path, &text, "Parameters", e.to_string()))?;
    }
    Ok(spec)
}

impl Scheduler {
    /// Makes the store's file schedules match `specs` (file, definition): new ones are added, changed ones
    /// replaced (their history, runs and pause state kept; the next occurrence computed anew), and file
    /// schedules whose file is gone or no longer valid are removed. A file may not take the name of an API
    /// schedule (logged, skipped). Returns how many file schedules there are.
    pub fn sync_files(&self, specs: Vec<(PathBuf, ScheduleSpec)>) -> Result<usize, StoreError> {
        let now = self.clock().now();
        self.exclusive(|| {
            let existing = self.store().list_schedules()?;
            let by_key: std::collections::HashMap<String, &ScheduleRecord> =
                existing.iter().map(|r| (r.key(), r)).collect();
            let mut kept = std::collections::BTreeSet::new();
            let mut changed = Vec::new();
            for (file, spec) in specs {
                let Ok(cron) = CronSpec::parse(&spec.cron, &spec.time_zone) else {
                    continue;
                };
                let key = spec.name.to_ascii_lowercase();
                let old = by_key.get(&key).copied();
                if let Some(old) = old.filter(|o| o.source != Source::File) {
                    tracing::error!(file = %file.display(), schedule = %old.spec.name,
                        "a schedule created through the API has this name: the file is ignored");
                    continue;
                }
                kept.insert(key);
                // Unchanged (a pause through the API is state, kept until the file changes).
                let same = old.is_some_and(|o| {
                    let mut cmp = o.spec.clone();
                    cmp.enabled = spec.enabled;
                    cmp == spec
                });
                let rec = match old {
                    Some(_) if same => continue,
                    Some(old) => ScheduleRecord {
                        state: ScheduleState {
                            next_fire_at: next_occurrence(&spec, &cron, now),
                            ..old.state.clone()
                        },
                        spec,
                        file: Some(file.display().to_string()),
                        updated_at: now,
                        ..old.clone()
                    },
                    None => ScheduleRecord {
                        state: ScheduleState {
                            next_fire_at: next_occurrence(&spec, &cron, now),
                            ..Default::default()
                        },
                        spec,
                        source: Source::File,
                        file: Some(file.display().to_string()),
                        owner: Some("file".into()),
                        created_at: now,
                        updated_at: now,
                        deferred: None,
                    },
                };
                changed.push(rec);
            }
            self.store().put_schedules(&changed)?;
            for old in existing
                .iter()
                .filter(|r| r.source == Source::File && !kept.contains(&r.key()))
            {
                self.store().delete_schedule(&old.key())?;
            }
            let total = self
                .store()
                .list_schedules()
                .map_or(0, |all| all.iter().filter(|r| r.deferred.is_none()).count());
            metrics::gauge!("synapse_schedules").set(total as f64);
            Ok(kept.len())
        })
    }
}
