//! Live reload: a set of files (the plans directory today, a schedules directory next) loaded into an
//! immutable snapshot that is swapped whole, never edited in place.
//!
//! - [`Live<T>`]: the current snapshot (`Arc<T>`); readers take it without locking and keep it as long as they
//!   need (a running plan instance holds the `Arc<Plan>` it started with, whatever is swapped in later).
//! - [`Reload`]: something that re-reads its source, validates the whole new set, swaps it in and says what
//!   changed ([`ReloadReport`]). It never installs a half-loaded set: what fails keeps its last good version.
//! - [`watch_dir`]: a debounced directory watch (the `notify` crate) that calls [`Reload::reload`];
//!   [`on_sighup`]: the same on SIGHUP. `POST /synapse/plans/reload` is the explicit trigger.
//!
//! A new reloadable set (schedules) implements [`Reload`] over its own `Live<...>` and hands itself to
//! [`watch_dir`] and [`on_sighup`] in `serve.rs`.

use arc_swap::ArcSwap;
use notify_debouncer_mini::notify::RecursiveMode;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// The current snapshot of something reloadable.
pub struct Live<T>(ArcSwap<T>);

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(ArcSwap::from_pointee(value))
    }

    /// The current snapshot (stays valid, unchanged, while held).
    pub fn snapshot(&self) -> Arc<T> {
        self.0.load_full()
    }

    /// Replaces the snapshot whole.
    pub fn swap(&self, value: T) {
        self.0.store(Arc::new(value));
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Live").field(&self.0.load()).finish()
    }
}

/// One file of the set whose current version does not load or validate.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ReloadProblem {
    /// The item's name (a plan's file name without `.yaml`).
    pub name: String,
    /// Whether the last good version keeps serving (false: there is none, the item refuses to run).
    pub kept_last_good: bool,
    /// Why the current file is refused (diagnostics with file:line:col).
    pub message: String,
}

/// What a reload did.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ReloadReport {
    /// What was reloaded (`plans`).
    pub what: String,
    /// Counts the swaps since start (0: the set loaded at start).
    pub generation: u64,
    /// Items new in this version of the set.
    pub added: Vec<String>,
    /// Items whose file changed and whose new version now serves.
    pub changed: Vec<String>,
    /// Items whose file is gone.
    pub removed: Vec<String>,
    /// Items whose file was unchanged.
    pub unchanged: usize,
    /// Items whose current file does not load or validate.
    pub problems: Vec<ReloadProblem>,
    /// Set when the source could not be read at all (nothing was swapped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReloadReport {
    /// Whether every item loaded.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.error.is_none()
    }

    /// Logs the report once and updates the reload metrics (`synapse_reloads_total{what,result}`,
    /// `synapse_reload_problems{what}`).
    pub fn publish(&self) {
        let what = self.what.clone();
        let result = if self.error.is_some() {
            "failed"
        } else if self.problems.is_empty() {
            "ok"
        } else {
            "problems"
        };
        metrics::counter!("synapse_reloads_total", "what" => what.clone(), "result" => result)
            .increment(1);
        // Counts of a few dozen items are exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("synapse_reload_problems", "what" => what.clone())
            .set(self.problems.len() as f64);
        if let Some(e) = &self.error {
            tracing::error!(what = %what, error = %e, "reload failed: the previous version keeps serving");
            return;
        }
        tracing::info!(
            what = %what,
            generation = self.generation,
            added = ?self.added,
            changed = ?self.changed,
            removed = ?self.removed,
            unchanged = self.unchanged,
            problems = self.problems.len(),
            "reloaded"
        );
        for p in &self.problems {
            if p.kept_last_good {
                tracing::error!(what = %what, item = %p.name, error = %p.message,
                    "refused the new version; the last good version keeps serving");
            } else {
                tracing::error!(what = %what, item = %p.name, error = %p.message,
                    "does not load; it refuses to run");
            }
        }
    }
}

/// Something that can re-read its source and swap in the new version.
pub trait Reload: Send + Sync + 'static {
    /// Re-reads, validates the whole set, swaps it in (keeping the last good version of what fails) and
    /// returns what changed. Blocking (file reads): call it off the async workers.
    fn reload(&self) -> ReloadReport;

    /// The last report (the start-up load's until the first reload).
    fn last_report(&self) -> ReloadReport;
}

/// Runs `r.reload()` on the blocking pool and publishes the report.
pub async fn reload_now(r: Arc<dyn Reload>) -> ReloadReport {
    let report = match tokio::task::spawn_blocking(move || r.reload()).await {
        Ok(report) => report,
        Err(e) => ReloadReport {
            error: Some(format!("the reload task failed: {e}")),
            ..ReloadReport::default()
        },
    };
    report.publish();
    report
}

/// A running directory watch; dropping it stops watching.
pub struct Watch {
    _debouncer: notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches `dir` and its subfolders (plans/dns) and reloads `r` once changes have settled for `debounce`. Must be called
/// inside a Tokio runtime.
pub fn watch_dir(
    dir: &Path,
    debounce: Duration,
    r: Arc<dyn Reload>,
) -> Result<Watch, notify_debouncer_mini::notify::Error> {
    let changed = Arc::new(tokio::sync::Notify::new());
    let signal = changed.clone();
    let mut debouncer = notify_debouncer_mini::new_debouncer(
        debounce,
        move |res: notify_debouncer_mini::DebounceEventResult| match res {
            Ok(_) => signal.notify_one(),
            Err(e) => tracing::warn!(error = %e, "watching for file changes failed"),
        },
    )?;
    debouncer.watcher().watch(dir, RecursiveMode::Recursive)?;
    let task = tokio::spawn(async move {
        loop {
            changed.notified().await;
            reload_now(r.clone()).await;
        }
    });
    Ok(Watch {
        _debouncer: debouncer,
        task,
    })
}

/// Reloads every one of `rs` on each SIGHUP (Unix; elsewhere nothing). Must be called inside a Tokio runtime.
pub fn on_sighup(rs: Vec<Arc<dyn Reload>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP: reload with POST /synapse/plans/reload");
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                for r in &rs {
                    reload_now(r.clone()).await;
                }
            }
        }
        #[cfg(not(unix))]
        drop(rs);
    })
}
