//! `synapse serve`: open the store (marking interrupted instances Failed), load the catalog, build the
//! handlers, listen, and shut down gracefully on SIGTERM/Ctrl-C (running plans are cancelled and their results
//! stored before exit).

use crate::catalog::CatalogError;
use crate::config::{ConfigError, ServeConfig};
use crate::store::RedbStore;
use crate::store::{InstanceStore, StoreError, Stores};
use crate::AppState;
use axum::ServiceExt;
use std::sync::Arc;
use std::time::Duration;
use synapse_engine::Clock;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// Why the controller could not start (or stopped with an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The `Handlers` section could not build the handlers.
    #[error(transparent)]
    Handlers(#[from] synapse_handlers::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Server(#[source] std::io::Error),
}

/// The store file under the data directory.
pub fn store_path(cfg: &ServeConfig) -> std::path::PathBuf {
    cfg.data.join("synapse.redb")
}

/// Opens the store and applies start-up housekeeping.
pub fn open_store(cfg: &ServeConfig, clock: &dyn Clock) -> Result<Arc<RedbStore>, StoreError> {
    let store = RedbStore::open(&store_path(cfg))?;
    let n = store.mark_interrupted(clock.now())?;
    if n > 0 {
        tracing::warn!(count = n, "instances that were running when the controller stopped are now marked Failed (interrupted)");
    }
    prune(
        &store,
        cfg.retention_days,
        cfg.instance_limits.retention_max_instances,
        clock,
    );
    Ok(Arc::new(store))
}

/// Retention: finished instances older than `retention_days` (0 = no age limit), then the oldest finished
/// ones beyond `max_instances` (0 = no count limit). Returns how many were deleted.
pub fn prune(
    store: &dyn InstanceStore,
    retention_days: u32,
    max_instances: u64,
    clock: &dyn Clock,
) -> usize {
    let mut total = 0;
    // A cutoff before the calendar's start (absurd RetentionDays) prunes nothing.
    let cutoff = (retention_days > 0)
        .then(|| chrono::Duration::try_days(i64::from(retention_days)))
        .flatten()
        .and_then(|d| clock.now().checked_sub_signed(d));
    if let Some(cutoff) = cutoff {
        match store.prune(cutoff) {
            Ok(n) => {
                total += n;
                if n > 0 {
                    tracing::info!(count = n, retention_days, "pruned old plan instances");
                }
            }
            Err(e) => tracing::error!(error = %e, "pruning old plan instances failed"),
        }
    }
    if max_instances > 0 {
        match store.prune_beyond(max_instances) {
            Ok(n) => {
                total += n;
                if n > 0 {
                    tracing::info!(
                        count = n,
                        max_instances,
                        "pruned the oldest plan instances beyond RetentionMaxInstances"
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "pruning plan instances beyond RetentionMaxInstances failed")
            }
        }
    }
    total
}

/// Runs the controller until a shutdown signal.
pub async fn serve(cfg: ServeConfig) -> Result<(), ServeError> {
    cfg.check_auth()?;
    if cfg.no_auth {
        tracing::warn!(listen = %cfg.listen, "authentication is OFF (--no-auth): every caller is admin; loopback only");
    }
    let clock = synapse_engine::clock::system();
    let store = open_store(&cfg, clock.as_ref())?;
    let registry = synapse_handlers::registry(&cfg.handlers)?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let state = Arc::new(AppState::new(
        &cfg,
        registry,
        Stores::all_in(store.clone()),
        metrics,
    )?);
    let invalid = state.catalog.entries().filter(|e| e.plan.is_none()).count();
    tracing::info!(plans = state.catalog.len(), invalid, dir = %cfg.plans.display(), "plan catalog loaded");
    let app = NormalizePathLayer::trim_trailing_slash().layer(crate::router(state.clone()));
    let listen_error = |source| ServeError::Listen {
        addr: cfg.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    tracing::info!(%addr, "synapse controller listening");
    eprintln!(
        "synapse: listening on http://{addr} (plans: {}, store: {})",
        cfg.plans.display(),
        store_path(&cfg).display()
    );

    let pruner = {
        let store = store.clone();
        let days = cfg.retention_days;
        let max = cfg.instance_limits.retention_max_instances;
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            tick.tick().await;
            loop {
                tick.tick().await;
                // A large prune is one long write transaction: off the async workers.
                let (store, clock) = (store.clone(), clock.clone());
                let _ =
                    tokio::task::spawn_blocking(move || prune(&*store, days, max, clock.as_ref()))
                        .await;
            }
        })
    };
    axum::serve(
        listener,
        ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(ServeError::Server)?;
    pruner.abort();
    tracing::info!(
        running = state.runner.running(),
        "shutting down: cancelling running plans"
    );
    state.runner.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::store::test_support::{finished, running, t0, TempDir};
    use synapse_engine::{ManualClock, StatusType};

    #[test]
    fn the_store_is_pruned_by_count_and_age_at_start() {
        let dir = TempDir::new("serve-prune");
        let data = dir.file().parent().unwrap().to_path_buf();
        let ids: Vec<_> = {
            let store = RedbStore::open(&data.join("synapse.redb")).unwrap();
            (0..6u32)
                .map(|i| {
                    let at = t0() + chrono::Duration::days(i64::from(i));
                    let r = finished(running("p.yaml", at, i), StatusType::Complete);
                    store.insert_instance(&r).unwrap();
                    r.id
                })
                .collect()
        };
        let env = |k: &str| match k {
            "SYNAPSE_DATA" => Some(data.display().to_string()),
            "SYNAPSE_RETENTION_MAX_INSTANCES" => Some("4".to_string()),
            "SYNAPSE_RETENTION_DAYS" => Some("3".to_string()),
            _ => None,
        };
        let cfg = ServeConfig::load(&Overrides::default(), &env).unwrap();
        // Day 6.5: older than 3 days are days 0..=3; the count limit alone would keep days 2..=5.
        let clock = ManualClock::new(t0() + chrono::Duration::hours(6 * 24 + 12));
        let store = open_store(&cfg, &clock).unwrap();
        let kept: Vec<bool> = ids
            .iter()
            .map(|id| store.get_instance(*id).unwrap().is_some())
            .collect();
        assert_eq!(kept, [false, false, false, false, true, true]);
    }
}
