//! The controller's side: [`NatsDispatcher`] publishes each [`ActionRequest`] to the work-queue stream and
//! waits for the node's answer on its own reply subject.
//!
//! * `Nats-Msg-Id` is the idempotency key: a request published twice within the stream's duplicate window is
//!   stored once.
//! * No live node serving the handler with the required labels: `NotDelivered` at once (no hang).
//! * NATS unreachable: `NotDelivered` (the runner refuses starts earlier through [`Dispatcher::unavailable`]).
//! * Publish accepted but not confirmed: `Unknown` (the request may be stored).
//! * JetStream gave up after `MaxDeliver` deliveries (its advisory): `Unknown`.
//! * The waiting future dropped (plan cancelled, action timed out): the nodes are told to cancel it.
//! * A result the node could not hand over on the reply subject (this controller restarted or was cut off)
//!   arrives through the `SYNAPSE_LATE` stream: to the dispatch still waiting for it, else to the
//!   [`LateSink`] the controller installed (it records the result into the stored instance); acked only
//!   once one of them took it.

use crate::directory::NodeDirectory;
use crate::messages::{LateResult, NodeReply};
use crate::settings::{NatsError, NatsSettings};
use crate::subjects::{
    self, key_token, CANCEL_SUBJECT, LATE_CONSUMER, LATE_STREAM, LATE_SUBJECTS, REPLY_HEADER,
    STREAM, STREAM_SUBJECTS,
};
use async_nats::jetstream;
use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synapse_engine::{ActionJob, DispatchOutcome, Dispatcher, HandlerRegistry, RanOn};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Records a late result no dispatch waits for (the controller: into the stored instance). `Ok` acks it;
/// `Err` leaves it in the stream to be offered again a few seconds later (for example while its instance
/// still runs here).
pub type LateSink = Arc<dyn Fn(LateResult) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How long a late result waits in its stream for a controller to record it.
pub const LATE_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a late result refused by the sink (or offered before a sink is installed) waits to come back.
const LATE_RETRY: Duration = Duration::from_secs(2);

enum Event {
    Reply(NodeReply),
    GaveUp(u64),
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    registry: Arc<HandlerRegistry>,
    url: String,
    reply_prefix: String,
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>,
    by_seq: Mutex<HashMap<u64, String>>,
    stream_ready: AtomicBool,
    directory: NodeDirectory,
    stop: CancellationToken,
    late_sink: Mutex<Option<LateSink>>,
}

/// Dispatches actions to `synapse node` workers over NATS JetStream.
#[derive(Clone)]
pub struct NatsDispatcher {
    inner: Arc<Inner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Creates the work-queue stream when it does not exist (both sides call it; same configuration).
pub async fn ensure_stream(js: &jetstream::Context) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec![STREAM_SUBJECTS.into()],
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        storage: jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot open the stream {STREAM}: {e}"))
}

/// Creates the stream of late results when it does not exist (nodes publish there, the controller consumes).
pub async fn ensure_late_stream(
    js: &jetstream::Context,
) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: LATE_STREAM.into(),
        subjects: vec![LATE_SUBJECTS.into()],
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        storage: jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        // Kept for a controller that comes back within a week; bounded if none ever does.
        max_age: LATE_MAX_AGE,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot open the stream {LATE_STREAM}: {e}"))
}

impl NatsDispatcher {
    /// Subscribes to its reply subjects and JetStream's max-deliveries advisories, watches the node
    /// directory and opens the stream.
    pub async fn start(
        client: async_nats::Client,
        registry: Arc<HandlerRegistry>,
        settings: &NatsSettings,
    ) -> Result<Self, NatsError> {
        let url = settings.url.clone();
        let js_err = |message: String| NatsError::JetStream {
            url: url.clone(),
            message,
        };
        let mut js = jetstream::new(client.clone());
        js.set_timeout(settings.connect_timeout()?);
        ensure_stream(&js).await.map_err(js_err)?;
        let late: jetstream::consumer::Consumer<jetstream::consumer::pull::Config> =
            ensure_late_stream(&js)
                .await
                .map_err(js_err)?
                .get_or_create_consumer(
                    LATE_CONSUMER,
                    jetstream::consumer::pull::Config {
                        durable_name: Some(LATE_CONSUMER.into()),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(30),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| js_err(format!("cannot open the consumer {LATE_CONSUMER}: {e}")))?;
        let stop = CancellationToken::new();
        let reply_prefix = format!("synapse.reply.{}", uuid::Uuid::now_v7().simple());
        let replies = client
            .subscribe(format!("{reply_prefix}.*"))
            .await
            .map_err(|e| js_err(e.to_string()))?;
        let advisories = client
            .subscribe(format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.*"
            ))
            .await
            .map_err(|e| js_err(e.to_string()))?;
        let directory = NodeDirectory::start(js.clone(), stop.clone());
        let inner = Arc::new(Inner {
            client,
            js,
            registry,
            url: settings.url.clone(),
            reply_prefix,
            pending: Mutex::new(HashMap::new()),
            by_seq: Mutex::new(HashMap::new()),
            stream_ready: AtomicBool::new(true),
            directory,
            stop: stop.clone(),
            late_sink: Mutex::new(None),
        });
        tokio::spawn(demux_replies(Arc::downgrade(&inner), replies, stop.clone()));
        tokio::spawn(consume_late(Arc::downgrade(&inner), late, stop.clone()));
        tokio::spawn(demux_advisories(Arc::downgrade(&inner), advisories, stop));
        Ok(NatsDispatcher { inner })
    }

    /// The nodes this controller knows of.
    pub fn directory(&self) -> &NodeDirectory {
        &self.inner.directory
    }

    /// Installs where late results nobody waits for go (the controller records them into stored instances).
    /// Until then they stay in the stream.
    pub fn set_late_sink(&self, sink: LateSink) {
        *lock(&self.inner.late_sink) = Some(sink);
    }

    async fn stream_ok(&self) -> Result<(), String> {
        if self.inner.stream_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        ensure_stream(&self.inner.js).await?;
        self.inner.stream_ready.store(true, Ordering::Relaxed);
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn demux_replies(
    inner: std::sync::Weak<Inner>,
    mut sub: async_nats::Subscriber,
    stop: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            m = sub.next() => match m { Some(m) => m, None => return },
        };
        let Some(inner) = inner.upgrade() else { return };
        let Some(key) = msg.subject.as_str().rsplit('.').next() else {
            continue;
        };
        let reply: NodeReply = match serde_json::from_slice(&msg.payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("unreadable node reply on {}: {e}", msg.subject);
                continue;
            }
        };
        let tx = lock(&inner.pending).get(key).cloned();
        match tx {
            Some(tx) => {
                // Results are requests: confirm receipt, so the node acks the action only once it is
                // recorded here.
                if let Some(to) = msg.reply.clone() {
                    let _ = inner.client.publish(to, bytes::Bytes::new()).await;
                }
                let _ = tx.send(Event::Reply(reply));
            }
            None => {
                // Nobody waits any more (the action timed out or was answered already): not confirmed, so
                // the node keeps the result in the late stream, where the controller records it.
                if let NodeReply::Result { node, .. } = reply {
                    tracing::info!("late result for {key} from node {node}: goes to {LATE_STREAM}");
                }
            }
        }
    }
}

async fn consume_late(
    inner: std::sync::Weak<Inner>,
    consumer: jetstream::consumer::Consumer<jetstream::consumer::pull::Config>,
    stop: CancellationToken,
) {
    loop {
        let messages = tokio::select! {
            _ = stop.cancelled() => return,
            m = consumer.messages() => m,
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("late results: {e}");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => return,
                m = messages.next() => m,
            };
            let msg = match msg {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!("late results: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                None => break,
            };
            let Some(inner) = inner.upgrade() else { return };
            let late: LateResult = match serde_json::from_slice(&msg.payload) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("unreadable late result on {} dropped: {e}", msg.subject);
                    let _ = msg.ack_with(jetstream::AckKind::Term).await;
                    continue;
                }
            };
            let key = key_token(&late.key);
            let waiter = lock(&inner.pending).get(&key).cloned();
            if let Some(tx) = waiter {
                let _ = tx.send(Event::Reply(NodeReply::Result {
                    node: late.node,
                    delivery: late.delivery,
                    outcome: late.outcome,
                }));
                let _ = msg.ack().await;
                continue;
            }
            let sink = lock(&inner.late_sink).clone();
            drop(inner);
            let taken = match sink {
                Some(sink) => sink(late).await,
                None => Err("no recorder installed yet".into()),
            };
            match taken {
                Ok(()) => {
                    let _ = msg.ack().await;
                }
                Err(e) => {
                    tracing::debug!("late result for {key} not recorded yet: {e}");
                    let _ = msg
                        .ack_with(jetstream::AckKind::Nak(Some(LATE_RETRY)))
                        .await;
                }
            }
        }
    }
}

async fn demux_advisories(
    inner: std::sync::Weak<Inner>,
    mut sub: async_nats::Subscriber,
    stop: CancellationToken,
) {
    #[derive(serde::Deserialize)]
    struct Advisory {
        stream_seq: u64,
        #[serde(default)]
        deliveries: u64,
    }
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            m = sub.next() => match m { Some(m) => m, None => return },
        };
        let Some(inner) = inner.upgrade() else { return };
        let Ok(a) = serde_json::from_slice::<Advisory>(&msg.payload) else {
            continue;
        };
        let key = lock(&inner.by_seq).get(&a.stream_seq).cloned();
        if let Some(key) = key {
            if let Some(tx) = lock(&inner.pending).get(&key) {
                let _ = tx.send(Event::GaveUp(a.deliveries));
            }
        }
    }
}

/// Unregisters a waiting dispatch; when dropped before the answer came, tells the nodes to cancel.
struct Waiting {
    inner: Arc<Inner>,
    key: String,
    wire_key: String,
    seq: Option<u64>,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock(&self.inner.pending).remove(&self.key);
        if let Some(s) = self.seq {
            lock(&self.inner.by_seq).remove(&s);
        }
        if !self.done && self.seq.is_some() {
            let client = self.inner.client.clone();
            let key = self.wire_key.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = client.publish(CANCEL_SUBJECT, key.into()).await;
                });
            }
        }
    }
}

#[async_trait]
impl Dispatcher for NatsDispatcher {
    fn unavailable(&self) -> Option<String> {
        match self.inner.client.connection_state() {
            async_nats::connection::State::Connected => None,
            _ => Some(format!(
                "NATS at {} is not reachable (reconnecting); actions cannot be dispatched to nodes",
                self.inner.url
            )),
        }
    }

    async fn dispatch(&self, job: ActionJob) -> DispatchOutcome {
        if let Some(reason) = self.unavailable() {
            return DispatchOutcome::NotDelivered { reason };
        }
        let r = &job.request;
        let Some(handler) = self.inner.registry.descriptor(&r.handler_type) else {
            return DispatchOutcome::NotDelivered {
                reason: format!("unknown handler '{}'", r.handler_type),
            };
        };
        let handler = handler.name();
        if !self.inner.directory.can_serve(handler, &r.run_on) {
            let labels = if r.run_on.is_empty() {
                String::new()
            } else {
                format!(" with labels {}", subjects::canonical(&r.run_on))
            };
            return DispatchOutcome::NotDelivered {
                reason: format!("no live node serves {handler}{labels}"),
            };
        }
        if let Err(reason) = self.stream_ok().await {
            return DispatchOutcome::NotDelivered { reason };
        }
        let payload = match serde_json::to_vec(r) {
            Ok(p) => p,
            Err(e) => {
                return DispatchOutcome::NotDelivered {
                    reason: format!("the request cannot be serialized: {e}"),
                }
            }
        };
        let key = key_token(&r.idempotency_key);
        let wire_key = r.idempotency_key.to_string();
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.inner.pending).insert(key.clone(), tx);
        let mut waiting = Waiting {
            inner: self.inner.clone(),
            key: key.clone(),
            wire_key: wire_key.clone(),
            seq: None,
            done: false,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", wire_key.as_str());
        headers.insert(
            REPLY_HEADER,
            format!("{}.{key}", self.inner.reply_prefix).as_str(),
        );
        let subject = subjects::action_subject(handler, &r.run_on);
        let sent = match self
            .inner
            .js
            .publish_with_headers(subject, headers, payload.into())
            .await
        {
            Ok(ack) => ack,
            Err(e) => {
                return DispatchOutcome::NotDelivered {
                    reason: format!("NATS refused the request: {e}"),
                }
            }
        };
        match sent.await {
            Ok(ack) => {
                lock(&self.inner.by_seq).insert(ack.sequence, key.clone());
                waiting.seq = Some(ack.sequence);
            }
            Err(e) => {
                self.inner.stream_ready.store(false, Ordering::Relaxed);
                return DispatchOutcome::Unknown {
                    reason: format!("NATS did not confirm storing the request: {e}"),
                };
            }
        }
        let progress = job.runtime.progress;
        loop {
            match rx.recv().await {
                Some(Event::Reply(NodeReply::Progress { event })) => progress.emit(event),
                Some(Event::Reply(NodeReply::Result {
                    node,
                    delivery,
                    outcome,
                })) => {
                    waiting.done = true;
                    return match outcome {
                        DispatchOutcome::Done(mut res) => {
                            res.ran_on = Some(RanOn { node, delivery });
                            DispatchOutcome::Done(res)
                        }
                        other => other,
                    };
                }
                Some(Event::GaveUp(n)) => {
                    waiting.done = true;
                    return DispatchOutcome::Unknown {
                        reason: format!(
                            "delivered {n} times to nodes without an answer (nodes lost or timed out); JetStream gave up"
                        ),
                    };
                }
                None => {
                    return DispatchOutcome::Unknown {
                        reason: "the reply channel closed".into(),
                    }
                }
            }
        }
    }
}
