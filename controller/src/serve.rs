//! `synapse serve`: open the store (marking interrupted instances Failed), load the catalog, build the
//! handlers, listen, and shut down gracefully on SIGTERM/Ctrl-C (running plans are cancelled and their results
//! stored before exit).
//!
//! The accept loop serves HTTP/1.1 with hyper: a client has `HeaderReadTimeout` to send a request's headers
//! (also the idle time of a kept-alive connection), and at most `MaxConnections` connections are open at
//! once. At the limit, the connection that has waited longest for a request (idle, or still sending
//! its headers) is closed to make room, so connections that send nothing cannot lock others (or `/healthz`)
//! out; only when every connection is inside a request does a new one wait in the listen backlog.

use crate::catalog::CatalogError;
use crate::config::{ConfigError, ServeConfig};
use crate::store::RedbStore;
use crate::store::{InstanceStore, StoreError, Stores};
use crate::AppState;
use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use synapse_engine::Clock;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::{Layer, ServiceExt};
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
    /// `Nats` is configured but the server cannot be used (unreachable, credentials refused, no JetStream).
    #[error("{0}")]
    Nats(String),
}

/// How long the plans directory must be quiet before a change is reloaded (editors write in steps).
const PLANS_DEBOUNCE: Duration = Duration::from_millis(300);

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
    let registry = Arc::new(synapse_handlers::registry(&cfg.handlers)?);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    crate::readiness::describe_metrics();
    // Bound first: the same-origin check knows the port (also when `Listen` asks for port 0).
    let listen_error = |source| ServeError::Listen {
        addr: cfg.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let cfg = ServeConfig {
        listen: addr,
        ..cfg
    };
    let nats = match &cfg.nats {
        None => None,
        Some(n) => {
            let client = synapse_node::connect(n, "synapse-controller")
                .await
                .map_err(|e| ServeError::Nats(e.to_string()))?;
            let d = synapse_node::NatsDispatcher::start(client, registry.clone(), n)
                .await
                .map_err(|e| ServeError::Nats(e.to_string()))?;
            tracing::info!(url = %n.url, "actions are dispatched to node workers over NATS");
            Some(d)
        }
    };
    let late_to = nats.clone();
    let state = Arc::new(AppState::with_dispatch(
        &cfg,
        registry,
        nats,
        Stores::all_in(store.clone()),
        metrics,
    )?);
    // Results of actions that outlived their instance here (a restart) are recorded into the stored instance.
    if let Some(d) = late_to {
        d.set_late_sink(crate::late::sink(state.runner.clone()));
    }
    let catalog = state.catalog.snapshot();
    let invalid = catalog.entries().filter(|e| e.plan.is_none()).count();
    tracing::info!(plans = catalog.len(), invalid, dir = %cfg.plans.display(), "plan catalog loaded");
    drop(catalog);
    // Live plans: a debounced watch of the plans directory, and SIGHUP (`reload`).
    let plans: Arc<dyn crate::reload::Reload> = state.catalog.clone();
    let _watch = match crate::reload::watch_dir(&cfg.plans, PLANS_DEBOUNCE, plans.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, dir = %cfg.plans.display(),
                "cannot watch the plans directory: reload with POST /synapse/plans/reload or SIGHUP");
            None
        }
    };
    let sighup = crate::reload::on_sighup(vec![plans]);
    // Each domain's bind, checked now (one log line each; the server starts either way) and periodically.
    let readiness = state.readiness.clone().spawn();
    let app = NormalizePathLayer::trim_trailing_slash().layer(crate::router(state.clone()));
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
    load_schedule_files(&state, &cfg);
    let scheduler_stop = tokio_util::sync::CancellationToken::new();
    let schedule_files = tokio::spawn(watch_schedule_files(
        state.clone(),
        cfg.clone(),
        scheduler_stop.clone(),
    ));
    let scheduler = tokio::spawn(
        state
            .scheduler
            .clone()
            .run(state.clone(), scheduler_stop.clone()),
    );
    let plan_routes = tokio::spawn(
        state
            .plan_routes
            .clone()
            .watch(state.catalog.clone(), scheduler_stop.clone()),
    );
    accept_loop(listener, app, &cfg, shutdown_signal()).await;
    scheduler_stop.cancel();
    let _ = plan_routes.await;
    let _ = scheduler.await;
    let _ = schedule_files.await;
    pruner.abort();
    sighup.abort();
    readiness.abort();
    tracing::info!(
        running = state.runner.running(),
        "shutting down: cancelling running plans"
    );
    state.runner.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

/// Loads the schedule files (`schedules/` beside the plans directory) into the store; errors are logged with
/// their file:line:col and the file's schedule is not run.
fn load_schedule_files(state: &AppState, cfg: &ServeConfig) {
    use crate::schedule::files;
    let dir = files::dir_beside(&cfg.plans);
    let mut specs = Vec::new();
    for file in files::files_in(&dir) {
        match files::load_file(&file, Some((&state.catalog, state.runner.executor()))) {
            Ok(spec) => specs.push((file, spec)),
            Err(d) => {
                for d in &d.0 {
                    tracing::error!("{d}");
                }
            }
        }
    }
    match state.scheduler.sync_files(specs) {
        Ok(n) => tracing::info!(schedules = n, dir = %dir.display(), "schedule files loaded"),
        Err(e) => tracing::error!(error = %e, "schedule files not loaded"),
    }
}

/// What the schedule files look like on disk (names, sizes, modification times).
fn schedule_files_fingerprint(
    dir: &std::path::Path,
) -> Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)> {
    crate::schedule::files::files_in(dir)
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (f, len, modified)
        })
        .collect()
}

/// Live reload of the schedules directory: looks every 5 s (a few `stat`s) and reloads all files when any was
/// added, changed or removed.
async fn watch_schedule_files(
    state: Arc<AppState>,
    cfg: ServeConfig,
    stop: tokio_util::sync::CancellationToken,
) {
    let dir = crate::schedule::files::dir_beside(&cfg.plans);
    let mut last = schedule_files_fingerprint(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.cancelled() => return,
        }
        let now = schedule_files_fingerprint(&dir);
        if now != last {
            last = now;
            tracing::info!(dir = %dir.display(), "schedule files changed: reloading");
            let (state, cfg) = (state.clone(), cfg.clone());
            let _ = tokio::task::spawn_blocking(move || load_schedule_files(&state, &cfg)).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One open connection: how many requests it is inside, since when it has waited for one, how to close it.
struct Conn {
    in_flight: AtomicUsize,
    /// Milliseconds since the loop started.
    waiting_since: AtomicU64,
    close: CancellationToken,
}

/// The open connections.
struct Conns {
    started: Instant,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Conns {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn add(&self, id: u64) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            waiting_since: AtomicU64::new(self.now()),
            close: CancellationToken::new(),
        });
        lock(&self.open).insert(id, conn.clone());
        conn
    }

    fn remove(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    /// Closes the connection that has waited longest for a request; false when every one is in a request.
    fn close_longest_waiting(&self) -> bool {
        let open = lock(&self.open);
        let victim = open
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0 && !c.close.is_cancelled())
            .min_by_key(|c| c.waiting_since.load(Ordering::Acquire));
        match victim {
            Some(c) => {
                c.close.cancel();
                true
            }
            None => false,
        }
    }
}

/// A request in progress on a connection (until its response body is done or dropped).
struct InRequest {
    conn: Arc<Conn>,
    conns: Arc<Conns>,
}

impl InRequest {
    fn enter(conn: Arc<Conn>, conns: Arc<Conns>) -> InRequest {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        InRequest { conn, conns }
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        self.conn
            .waiting_since
            .store(self.conns.now(), Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress while it streams (event streams).
struct CountedBody {
    inner: Body,
    _request: InRequest,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Accepts and serves connections until `signal`, then lets every connection finish its request (idle ones
/// close at once) and returns when all are closed.
async fn accept_loop<S>(
    listener: tokio::net::TcpListener,
    app: S,
    cfg: &ServeConfig,
    signal: impl std::future::Future<Output = ()>,
) where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let max = cfg.edge.max_connections;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.edge.header_read_timeout);
    let conns = Arc::new(Conns {
        started: Instant::now(),
        open: Mutex::new(HashMap::new()),
    });
    let permits = Arc::new(Semaphore::new(max));
    let shutdown = CancellationToken::new();
    tokio::pin!(signal);
    let mut next_id: u64 = 0;
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    // Responses go out in more than one write (headers, then a body that is not one
                    // buffer): without TCP_NODELAY, Nagle's algorithm holds the second write back until
                    // the client's delayed ACK (40 ms or more), the tail latency of larger answers.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY could not be set");
                    }
                    stream
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if conns.close_longest_waiting() {
                    tracing::debug!(
                        max,
                        "connection limit: closed the connection waiting longest for a request"
                    );
                } else {
                    tracing::warn!(max, "connection limit: every connection is in a request; waiting for one to finish");
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = &mut signal => break,
                }
            }
        };
        next_id += 1;
        let id = next_id;
        let conn = conns.add(id);
        let svc = {
            let conn = conn.clone();
            let conns = conns.clone();
            let app = app.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let request = InRequest::enter(conn.clone(), conns.clone());
                let app = app.clone();
                async move {
                    let resp = app.oneshot(req.map(Body::new)).await?;
                    Ok::<_, S::Error>(resp.map(|inner| {
                        Body::new(CountedBody {
                            inner,
                            _request: request,
                        })
                    }))
                }
            })
        };
        let served = http.serve_connection(TokioIo::new(stream), svc);
        let conns = conns.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::pin!(served);
            tokio::select! {
                r = served.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = conn.close.cancelled() => {}
                _ = shutdown.cancelled() => {
                    served.as_mut().graceful_shutdown();
                    let _ = served.await;
                }
            }
            conns.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    shutdown.cancel();
    // Every connection holds a permit until it is closed.
    let _ = permits
        .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
        .await;
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
