//! The plan catalog: every `*.yaml` file of the plans directory, addressed by file name (case-insensitive:
//! `GetUser` is `plans/GetUser.yaml`), loaded and validated at start. A plan with errors stays listed but
//! refuses to run, with its diagnostics.

use crate::error::ApiError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use synapse_engine::help::{plan_help, ParamHelp};
use synapse_engine::{load, validate, Diagnostics, HandlerRegistry, Plan, Severity};

/// One plan file.
#[derive(Debug)]
pub struct Entry {
    /// The file name without `.yaml`: the name the API uses.
    pub key: String,
    pub path: PathBuf,
    /// The plan, when it loads and validates.
    pub plan: Option<Arc<Plan>>,
    /// Errors and warnings from loading and validation.
    pub diagnostics: Diagnostics,
    /// The dynamic parameters it takes (empty when it does not load).
    pub params: Vec<ParamHelp>,
}

/// All plans by lower-case key.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: BTreeMap<String, Arc<Entry>>,
}

impl Catalog {
    /// Loads every `*.yaml` directly in `dir` (not recursively: subfolders such as `examples/` are not
    /// served).
    pub fn load(dir: &Path, registry: &HandlerRegistry) -> Result<Catalog, String> {
        let rd = std::fs::read_dir(dir)
            .map_err(|e| format!("plans directory {}: {e}", dir.display()))?;
        let mut entries = BTreeMap::new();
        for item in rd.flatten() {
            let path = item.path();
            if !path.is_file() || path.extension().is_none_or(|e| e != "yaml" && e != "yml") {
                continue;
            }
            let Some(key) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let entry = match load::load_file(&path) {
                Err(d) => Entry {
                    key: key.clone(),
                    path,
                    plan: None,
                    diagnostics: d,
                    params: Vec::new(),
                },
                Ok(l) => {
                    let d = Diagnostics(validate::validate(&l, registry));
                    let params = plan_help(&l.plan);
                    let plan = (!d.has_errors()).then(|| Arc::new(l.plan));
                    Entry {
                        key: key.clone(),
                        path,
                        plan,
                        diagnostics: d,
                        params,
                    }
                }
            };
            for d in &entry.diagnostics.0 {
                match d.severity {
                    Severity::Error => tracing::error!("{d}"),
                    Severity::Warning => tracing::warn!("{d}"),
                }
            }
            entries.insert(key.to_ascii_lowercase(), Arc::new(entry));
        }
        Ok(Catalog { entries })
    }

    /// The entry for a plan name (404 if there is none).
    pub fn entry(&self, name: &str) -> Result<Arc<Entry>, ApiError> {
        self.entries
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no plan named '{name}'")))
    }

    /// A runnable plan (404 unknown, 500 invalid).
    pub fn plan(&self, name: &str) -> Result<(Arc<Entry>, Arc<Plan>), ApiError> {
        let e = self.entry(name)?;
        match &e.plan {
            Some(p) => Ok((e.clone(), p.clone())),
            None => Err(ApiError::PlanInvalid(format!(
                "plan '{}' has errors and cannot run: {}",
                e.key, e.diagnostics
            ))),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
