//! The plan catalog: every `*.yaml` file of the plans directory, addressed by file name (case-insensitive:
//! `GetUser` is `plans/GetUser.yaml`), loaded and validated at start. A plan with errors stays listed but
//! refuses to run, with its diagnostics.
//!
//! What the routes need to know about a plan's first action (its handler's descriptor and whether it reads,
//! searches or writes) is looked up once here, from the registry, instead of per request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use synapse_engine::help::{plan_help, ParamHelp};
use synapse_engine::{
    load, validate, ActionKind, Diagnostics, HandlerDescriptor, HandlerRegistry, Plan, Severity,
};

/// Why the catalog could not load or answer for a plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The plans directory cannot be read (at start).
    #[error("plans directory {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No plan file has this name.
    #[error("no plan named '{name}'")]
    NoSuchPlan { name: String },
    /// The plan file exists but does not load or validate; it refuses to run.
    #[error("plan '{plan}' has errors and cannot run: {diagnostics}")]
    PlanInvalid { plan: String, diagnostics: String },
}

/// A plan's first action as the controller sees it: its handler's descriptor (found by the action's
/// `Handler.Type`, or the plan's `DefaultHandlerType`) and what the action does according to it.
#[derive(Clone)]
pub struct FirstAction {
    pub descriptor: Arc<dyn HandlerDescriptor>,
    /// `descriptor.action_kind` of the action's `Handler.Config.Values`.
    pub kind: ActionKind,
}

impl std::fmt::Debug for FirstAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstAction")
            .field("handler", &self.descriptor.name())
            .field("kind", &self.kind)
            .finish()
    }
}

impl FirstAction {
    /// Of `plan`, when it has a first action whose handler the registry knows.
    pub fn of(plan: &Plan, registry: &HandlerRegistry) -> Option<FirstAction> {
        let action = plan.actions.first()?;
        let handler = action.handler.as_ref();
        let ty = handler
            .and_then(|h| h.r#type.as_deref())
            .or(plan.default_handler_type.as_deref())?;
        let descriptor = registry.descriptor(ty)?;
        let empty = serde_json::Value::Object(Default::default());
        let config = handler
            .and_then(|h| h.config.as_ref())
            .and_then(|c| c.values.as_ref())
            .unwrap_or(&empty);
        let kind = descriptor.action_kind(config);
        Some(FirstAction { descriptor, kind })
    }
}

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
    /// Its first action, when the plan loads and the registry knows that action's handler.
    pub first: Option<FirstAction>,
}

impl Entry {
    /// Loads and validates one plan file.
    pub fn load(key: String, path: PathBuf, registry: &HandlerRegistry) -> Entry {
        match load::load_file(&path) {
            Err(d) => Entry {
                key,
                path,
                plan: None,
                diagnostics: d,
                params: Vec::new(),
                first: None,
            },
            Ok(l) => {
                let d = Diagnostics(validate::validate(&l, registry));
                let params = plan_help(&l.plan);
                let first = FirstAction::of(&l.plan, registry);
                let plan = (!d.has_errors()).then(|| Arc::new(l.plan));
                Entry {
                    key,
                    path,
                    plan,
                    diagnostics: d,
                    params,
                    first,
                }
            }
        }
    }

    /// Logs its diagnostics.
    pub fn log(&self) {
        for d in &self.diagnostics.0 {
            match d.severity {
                Severity::Error => tracing::error!("{d}"),
                Severity::Warning => tracing::warn!("{d}"),
            }
        }
    }

    /// What the first action does (a write when unknown: the safe answer).
    pub fn kind(&self) -> ActionKind {
        self.first.as_ref().map_or(ActionKind::Write, |f| f.kind)
    }
}

/// Subfolders of the plans directory whose plans are served too (by file name, like the top level).
pub const PLAN_SUBFOLDERS: [&str; 1] = ["dns"];

/// The plan files the catalog serves (`*.yaml`, `*.yml`) with their keys (file names without extension):
/// those directly in `dir`, then those of the handler folders in [`PLAN_SUBFOLDERS`] (`dns/`) when present.
/// Other subfolders (such as `examples/`) are not served. Keys stay unique across folders (case-insensitive):
/// a file whose key is already taken is left out with an error logged (the top level, then the first file
/// in name order, wins).
pub fn plan_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, CatalogError> {
    let mut out = files_in(dir)?;
    for sub in PLAN_SUBFOLDERS {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        for (key, path) in files_in(&d)? {
            if let Some((_, taken)) = out.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key)) {
                tracing::error!(
                    "plan {} is not served: the name '{key}' is taken by {}",
                    path.display(),
                    taken.display()
                );
                continue;
            }
            out.push((key, path));
        }
    }
    Ok(out)
}

/// The plan files directly in `dir`, sorted by key.
fn files_in(dir: &Path) -> Result<Vec<(String, PathBuf)>, CatalogError> {
    let rd = std::fs::read_dir(dir).map_err(|source| CatalogError::Unreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for item in rd.flatten() {
        let path = item.path();
        if !path.is_file() || path.extension().is_none_or(|e| e != "yaml" && e != "yml") {
            continue;
        }
        let Some(key) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        out.push((key, path));
    }
    out.sort();
    Ok(out)
}

/// All plans by lower-case key.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: BTreeMap<String, Arc<Entry>>,
}

impl Catalog {
    /// Loads every `*.yaml` directly in `dir`, then those of the handler folders in [`PLAN_SUBFOLDERS`]
    /// (`dns/`) when present. Other subfolders (such as `examples/`) are not served. Names stay unique across
    /// folders: a file whose name is already taken is not served (an error is logged; the first one wins).
    pub fn load(dir: &Path, registry: &HandlerRegistry) -> Result<Catalog, CatalogError> {
        let mut entries = BTreeMap::new();
        for (key, path) in plan_files(dir)? {
            let entry = Entry::load(key, path, registry);
            entry.log();
            entries.insert(entry.key.to_ascii_lowercase(), Arc::new(entry));
        }
        Ok(Catalog { entries })
    }

    /// A catalog of these entries (`reload`).
    pub(crate) fn of(entries: BTreeMap<String, Arc<Entry>>) -> Catalog {
        Catalog { entries }
    }

    /// The entry for a plan name.
    pub fn entry(&self, name: &str) -> Result<Arc<Entry>, CatalogError> {
        self.entries
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| CatalogError::NoSuchPlan {
                name: name.to_string(),
            })
    }

    /// A runnable plan: unknown names and plans with errors are refused.
    pub fn plan(&self, name: &str) -> Result<(Arc<Entry>, Arc<Plan>), CatalogError> {
        let e = self.entry(name)?;
        match &e.plan {
            Some(p) => Ok((e.clone(), p.clone())),
            None => Err(CatalogError::PlanInvalid {
                plan: e.key.clone(),
                diagnostics: e.diagnostics.to_string(),
            }),
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
