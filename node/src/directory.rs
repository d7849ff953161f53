//! The controller's live view of the nodes: a watch on the heartbeat KV bucket kept in memory. Liveness is
//! judged on this machine's monotonic clock (time since the last heartbeat arrived), so node clocks may
//! differ; `LastSeen` is shown as the node wrote it.

use crate::messages::NodeInfo;
use crate::subjects::NODES_BUCKET;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One node as `GET /synapse/nodes` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub handlers: Vec<String>,
    pub version: String,
    pub in_flight: usize,
    pub concurrency: usize,
    pub draining: bool,
    pub last_seen: DateTime<Utc>,
    /// Silent for longer than its lease: gets no work, shown until it returns or its record expires.
    pub lost: bool,
}

#[derive(Default)]
struct State {
    nodes: HashMap<String, (NodeInfo, Instant)>,
}

/// Live nodes, from the KV bucket's watch (started by [`NodeDirectory::start`]).
#[derive(Clone, Default)]
pub struct NodeDirectory {
    state: Arc<Mutex<State>>,
}

/// Opens (or creates) the heartbeat bucket. Records expire after an hour without heartbeats. The bucket's
/// stream is created here with the KV conventions (async-nats' `create_key_value` first asks for account info,
/// whose answer from nats-server 2.9 it cannot read).
pub async fn bucket(
    js: &async_nats::jetstream::Context,
) -> Result<async_nats::jetstream::kv::Store, String> {
    use async_nats::jetstream::stream;
    if let Ok(kv) = js.get_key_value(NODES_BUCKET).await {
        return Ok(kv);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{NODES_BUCKET}"),
        subjects: vec![format!("$KV.{NODES_BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: Duration::from_secs(3600),
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot create the KV bucket {NODES_BUCKET}: {e}"))?;
    js.get_key_value(NODES_BUCKET)
        .await
        .map_err(|e| format!("cannot open the KV bucket {NODES_BUCKET}: {e}"))
}

impl NodeDirectory {
    /// Watches the bucket until `stop`; re-opens the watch (after 0.5 s, then at most every 2 s) when
    /// NATS goes away and comes back.
    pub fn start(js: async_nats::jetstream::Context, stop: CancellationToken) -> Self {
        let dir = NodeDirectory::default();
        let state = dir.state.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(500);
            loop {
                let watched = async {
                    let kv = bucket(&js).await?;
                    let mut w = kv
                        .watch_with_history(">")
                        .await
                        .map_err(|e| e.to_string())?;
                    while let Some(entry) = w.next().await {
                        let entry = entry.map_err(|e| e.to_string())?;
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        match entry.operation {
                            async_nats::jetstream::kv::Operation::Put => {
                                if let Ok(info) = serde_json::from_slice::<NodeInfo>(&entry.value) {
                                    st.nodes.insert(entry.key, (info, Instant::now()));
                                }
                            }
                            _ => {
                                st.nodes.remove(&entry.key);
                            }
                        }
                    }
                    Ok::<(), String>(())
                };
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = watched => if let Err(e) = r {
                        tracing::debug!("node directory watch: {e}");
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        });
        dir
    }

    /// Connects to NATS as `client_name` and reads the heartbeat bucket once it has settled (at most about
    /// 2 s), for one-shot checks (`synapse plan validate`). The watch runs until `stop`.
    pub async fn open(
        settings: &crate::settings::NatsSettings,
        client_name: &str,
        stop: CancellationToken,
    ) -> Result<NodeDirectory, crate::settings::NatsError> {
        let client = crate::settings::connect(settings, client_name).await?;
        let mut js = async_nats::jetstream::new(client);
        js.set_timeout(settings.connect_timeout()?);
        bucket(&js)
            .await
            .map_err(|message| crate::settings::NatsError::JetStream {
                url: settings.url.clone(),
                message,
            })?;
        let dir = NodeDirectory::start(js, stop);
        // The watch replays the bucket at once; wait until the count stops changing.
        let end = Instant::now() + Duration::from_secs(2);
        let mut last = usize::MAX;
        tokio::time::sleep(Duration::from_millis(300)).await;
        while Instant::now() < end {
            let n = dir.list().len();
            if n == last {
                break;
            }
            last = n;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(dir)
    }

    fn alive(info: &NodeInfo, seen: Instant) -> bool {
        let lease =
            Duration::try_from_secs_f64(info.lease_seconds).unwrap_or(Duration::from_secs(10));
        seen.elapsed() <= lease
    }

    /// Every known node, by name.
    pub fn list(&self) -> Vec<NodeView> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<NodeView> = st
            .nodes
            .values()
            .map(|(i, seen)| NodeView {
                name: i.name.clone(),
                labels: i.labels.clone(),
                handlers: i.handlers.clone(),
                version: i.version.clone(),
                in_flight: i.in_flight,
                concurrency: i.concurrency,
                draining: i.draining,
                last_seen: i.last_seen,
                lost: !Self::alive(i, *seen),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Whether a live, not draining node serves `handler` with every label of `run_on`.
    pub fn can_serve(&self, handler: &str, run_on: &BTreeMap<String, String>) -> bool {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.nodes.values().any(|(i, seen)| {
            !i.draining
                && Self::alive(i, *seen)
                && i.handlers.iter().any(|h| h.eq_ignore_ascii_case(handler))
                && run_on.iter().all(|(k, v)| i.labels.get(k) == Some(v))
        })
    }

    /// Waits (at most `limit`) until some node could serve `handler` (tests and start-up).
    pub async fn wait_for(&self, handler: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.can_serve(handler, &BTreeMap::new()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}
