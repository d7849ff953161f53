//! The plan catalog the server runs with: a [`Catalog`] snapshot that is reloaded live (`crate::reload`):
//! on a change in the plans directory (debounced watch), `POST /synapse/plans/reload` and SIGHUP.
//!
//! A reload reads every plan file again (unchanged files, by content hash, keep their loaded entry), builds
//! the whole new catalog, and only then swaps it in. A file whose new version does not load or validate keeps
//! its last good version serving and is reported ([`ReloadReport::problems`]: the log, `/healthz`,
//! `synapse_reload_problems`); a new file that does not load is listed as invalid, as at start. Requests
//! take the snapshot once, and a started instance holds the `Arc<Plan>` it started with, so running
//! instances finish with the version they started with.

use crate::catalog::{plan_files, Catalog, CatalogError, Entry};
use crate::reload::{Live, Reload, ReloadProblem, ReloadReport};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use synapse_engine::{HandlerRegistry, Plan};

/// What the reload remembers between runs.
#[derive(Default)]
struct Memory {
    /// Content hash of the file each entry was loaded from, by lower-case key.
    hashes: BTreeMap<String, u64>,
    generation: u64,
    last: ReloadReport,
}

/// The live plan catalog.
pub struct PlanCatalog {
    dir: PathBuf,
    registry: Arc<HandlerRegistry>,
    live: Live<Catalog>,
    /// Also serializes reloads.
    memory: Mutex<Memory>,
}

impl std::fmt::Debug for PlanCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCatalog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Memory>) -> MutexGuard<'_, Memory> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl PlanCatalog {
    /// Loads the plans directory (an unreadable directory is an error at start).
    pub fn load(dir: &Path, registry: Arc<HandlerRegistry>) -> Result<PlanCatalog, CatalogError> {
        let mut memory = Memory::default();
        let catalog = build(dir, &registry, &Catalog::default(), &mut memory)?;
        Ok(PlanCatalog {
            dir: dir.to_path_buf(),
            registry,
            live: Live::new(catalog),
            memory: Mutex::new(memory),
        })
    }

    /// The plans directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current catalog (unchanged while held).
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.live.snapshot()
    }

    /// The entry for a plan name, in the current catalog.
    pub fn entry(&self, name: &str) -> Result<Arc<Entry>, CatalogError> {
        self.snapshot().entry(name)
    }

    /// A runnable plan of the current catalog.
    pub fn plan(&self, name: &str) -> Result<(Arc<Entry>, Arc<Plan>), CatalogError> {
        self.snapshot().plan(name)
    }

    /// Plans in the current catalog.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }
}

/// Builds the next catalog from `dir`, reusing `old`'s entries for unchanged files and keeping the last good
/// entry of a file whose new version fails. Records hashes and the report in `memory`.
fn build(
    dir: &Path,
    registry: &HandlerRegistry,
    old: &Catalog,
    memory: &mut Memory,
) -> Result<Catalog, CatalogError> {
    let files = plan_files(dir)?;
    let mut report = ReloadReport {
        what: "plans".into(),
        generation: memory.generation,
        ..ReloadReport::default()
    };
    let mut entries = BTreeMap::new();
    let mut hashes = BTreeMap::new();
    for (key, path) in files {
        let lower = key.to_ascii_lowercase();
        let previous = old.entry(&key).ok();
        // A file that vanished or cannot be read between listing and reading: as if it failed to load.
        let hash = std::fs::read(&path).ok().map(|b| content_hash(&b));
        if let (Some(e), Some(h)) = (&previous, hash) {
            if memory.hashes.get(&lower) == Some(&h) {
                report.unchanged += 1;
                if e.plan.is_none() {
                    report.problems.push(ReloadProblem {
                        name: e.key.clone(),
                        kept_last_good: false,
                        message: e.diagnostics.to_string(),
                    });
                }
                entries.insert(lower.clone(), e.clone());
                hashes.insert(lower, h);
                continue;
            }
        }
        let entry = Entry::load(key, path, registry);
        entry.log();
        match previous {
            Some(prev) if entry.plan.is_none() && prev.plan.is_some() => {
                report.problems.push(ReloadProblem {
                    name: prev.key.clone(),
                    kept_last_good: true,
                    message: entry.diagnostics.to_string(),
                });
                // The old hash stays: the file is read again on the next reload (and reported until fixed).
                if let Some(h) = memory.hashes.get(&lower) {
                    hashes.insert(lower.clone(), *h);
                }
                entries.insert(lower, prev);
            }
            previous => {
                if entry.plan.is_none() {
                    report.problems.push(ReloadProblem {
                        name: entry.key.clone(),
                        kept_last_good: false,
                        message: entry.diagnostics.to_string(),
                    });
                }
                if previous.is_some() {
                    report.changed.push(entry.key.clone());
                } else {
                    report.added.push(entry.key.clone());
                }
                if let Some(h) = hash {
                    hashes.insert(lower.clone(), h);
                }
                entries.insert(lower, Arc::new(entry));
            }
        }
    }
    report.removed = old
        .entries()
        .filter(|e| !entries.contains_key(&e.key.to_ascii_lowercase()))
        .map(|e| e.key.clone())
        .collect();
    memory.hashes = hashes;
    memory.last = report;
    Ok(Catalog::of(entries))
}

impl Reload for PlanCatalog {
    fn reload(&self) -> ReloadReport {
        let mut memory = lock(&self.memory);
        let old = self.snapshot();
        let next_generation = memory.generation + 1;
        let saved = std::mem::replace(&mut memory.generation, next_generation);
        match build(&self.dir, &self.registry, &old, &mut memory) {
            Ok(catalog) => {
                self.live.swap(catalog);
                memory.last.clone()
            }
            Err(e) => {
                memory.generation = saved;
                ReloadReport {
                    what: "plans".into(),
                    generation: saved,
                    error: Some(e.to_string()),
                    ..ReloadReport::default()
                }
            }
        }
    }

    fn last_report(&self) -> ReloadReport {
        lock(&self.memory).last.clone()
    }
}
