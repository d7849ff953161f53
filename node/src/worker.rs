//! `synapse node`: pulls action requests for the handlers it runs and the label pools it matches, runs them
//! with its own registry (its own `Handlers:` configuration and secrets), answers on each request's reply
//! subject, heartbeats into the KV bucket and drains on shutdown.
//!
//! Per message: the request is parsed (a wire version it does not know is refused), registered for
//! cancellation under its idempotency key, run with in-progress acks every third of `AckWaitSeconds`, bounded
//! by its deadline, answered, then acked. A node killed before the ack leaves the message to JetStream, which
//! redelivers it to another node after the ack wait; the handler sees the attempt and idempotency key, and
//! the answer names the delivery count.

use crate::dispatcher::{ensure_late_stream, ensure_stream};
use crate::messages::{LateResult, NodeInfo, NodeReply};
use crate::settings::{NatsError, NatsSettings};
use crate::subjects::{self, CANCEL_SUBJECT, REPLY_HEADER};
use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use synapse_engine::wire::WIRE_VERSION;
use synapse_engine::{
    ActionJob, ActionRequest, ActionRuntime, DispatchOutcome, Dispatcher, ExecuteResult,
    HandlerRegistry, InProcess, ProgressSink, SharedClock, StatusType, SystemClock,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Actions run at once at most.
    pub concurrency: usize,
    /// On shutdown, how long in-flight actions may finish before they are handed back (NAK) to other nodes.
    pub drain_timeout: Duration,
    pub settings: NatsSettings,
}

struct Shared {
    client: async_nats::Client,
    js: jetstream::Context,
    registry: Arc<HandlerRegistry>,
    name: String,
    ack_wait: Duration,
    in_flight: AtomicUsize,
    /// Actions answered (any outcome), for the exit line and tests counting work per node.
    answered: std::sync::atomic::AtomicU64,
    cancels: Mutex<HashMap<String, CancellationToken>>,
    /// Cancelled when the drain time is over: running handlers stop and their messages are handed back.
    hand_back: CancellationToken,
    clock: SharedClock,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The handlers this registry runs (descriptor names, each once).
pub fn served_handlers(registry: &HandlerRegistry) -> Vec<String> {
    let mut out: Vec<String> = registry
        .names()
        .iter()
        .filter(|n| registry.get(n).is_some())
        .map(|n| n.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Runs the node until `shutdown`, then drains: no new work, in-flight work finishes within
/// `drain_timeout` or is handed back. Returns how many actions it answered.
pub async fn run_node(
    client: async_nats::Client,
    registry: Arc<HandlerRegistry>,
    opts: NodeOptions,
    shutdown: CancellationToken,
) -> Result<u64, NatsError> {
    let s = &opts.settings;
    let url = s.url.clone();
    let js_err = |message: String| NatsError::JetStream {
        url: url.clone(),
        message,
    };
    let mut js = jetstream::new(client.clone());
    js.set_timeout(s.connect_timeout()?);
    let stream = ensure_stream(&js).await.map_err(js_err)?;
    ensure_late_stream(&js).await.map_err(js_err)?;
    let kv = crate::directory::bucket(&js).await.map_err(js_err)?;
    let handlers = served_handlers(&registry);
    let ack_wait = s.ack_wait()?;
    let max_deliver = s.max_deliver;
    let backoff: Vec<Duration> = (0..(max_deliver - 1).clamp(0, 3))
        .map(|i| ack_wait * (1u32 << i))
        .collect();
    let mut consumers = Vec::new();
    for h in &handlers {
        for pool in subjects::subsets(&opts.labels) {
            let name = subjects::consumer_name(h, &pool);
            let config = pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: subjects::action_subject(h, &pool),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait,
                max_deliver,
                backoff: backoff.clone(),
                max_ack_pending: 100_000,
                ..Default::default()
            };
            let mut c: jetstream::consumer::Consumer<pull::Config> = stream
                .get_or_create_consumer(&name, config.clone())
                .await
                .map_err(|e| js_err(format!("cannot open the consumer {name}: {e}")))?;
            if let Some(old) = differs(&c.cached_info().config, &config) {
                c = align_consumer(&stream, c, config, &name, &old).await;
            }
            consumers.push(c);
        }
    }
    let shared = Arc::new(Shared {
        client: client.clone(),
        js: js.clone(),
        registry,
        name: opts.name.clone(),
        ack_wait,
        in_flight: AtomicUsize::new(0),
        answered: std::sync::atomic::AtomicU64::new(0),
        cancels: Mutex::new(HashMap::new()),
        hand_back: CancellationToken::new(),
        clock: Arc::new(SystemClock),
    });

    // Cancellation requests from controllers.
    let mut cancel_sub = client
        .subscribe(CANCEL_SUBJECT)
        .await
        .map_err(|e| js_err(e.to_string()))?;
    let cancel_task = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(m) = cancel_sub.next().await {
                let key = String::from_utf8_lossy(&m.payload).to_string();
                if let Some(t) = lock(&shared.cancels).get(&key) {
                    t.cancel();
                }
            }
        })
    };

    // Heartbeats.
    let info = |draining: bool, shared: &Shared| NodeInfo {
        name: opts.name.clone(),
        labels: opts.labels.clone(),
        handlers: handlers.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        in_flight: shared.in_flight.load(Ordering::Relaxed),
        concurrency: opts.concurrency,
        draining,
        last_seen: shared.clock.now(),
        lease_seconds: s.lease_seconds,
    };
    let beat = s.heartbeat()?;
    let put = |i: NodeInfo| {
        let kv = kv.clone();
        async move {
            if let Ok(bytes) = serde_json::to_vec(&i) {
                if let Err(e) = kv.put(&i.name, bytes.into()).await {
                    tracing::warn!("heartbeat not stored: {e}");
                }
            }
        }
    };
    put(info(false, &shared)).await;
    tracing::info!(
        "node {} serves {:?} with labels {:?} at {}",
        opts.name,
        handlers,
        opts.labels,
        s.url
    );

    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let stop_pulling = shutdown.clone();
    let mut pullers = Vec::new();
    for c in consumers {
        pullers.push(tokio::spawn(pull_loop(
            c,
            shared.clone(),
            permits.clone(),
            stop_pulling.clone(),
        )));
    }

    let mut tick = tokio::time::interval(beat);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => put(info(false, &shared)).await,
        }
    }
    // Drain: stop pulling, let in-flight work finish, hand back what is left.
    tracing::info!(
        "node {} draining ({} in flight)",
        opts.name,
        shared.in_flight.load(Ordering::Relaxed)
    );
    put(info(true, &shared)).await;
    for p in pullers {
        let _ = p.await;
    }
    let end = Instant::now() + opts.drain_timeout;
    while shared.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.hand_back.cancel();
    let end = Instant::now() + Duration::from_secs(5);
    while shared.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel_task.abort();
    let _ = kv.delete(&opts.name).await;
    let _ = client.flush().await;
    Ok(shared.answered.load(Ordering::Relaxed))
}

/// How an existing durable consumer's redelivery settings differ from this node's (`None`: they match).
fn differs(have: &jetstream::consumer::Config, want: &pull::Config) -> Option<String> {
    let mut d = Vec::new();
    if have.ack_wait != want.ack_wait {
        d.push(format!(
            "AckWaitSeconds {} (this node: {})",
            have.ack_wait.as_secs_f64(),
            want.ack_wait.as_secs_f64()
        ));
    }
    if have.max_deliver != want.max_deliver {
        d.push(format!(
            "MaxDeliver {} (this node: {})",
            have.max_deliver, want.max_deliver
        ));
    }
    if have.backoff != want.backoff {
        d.push(format!(
            "backoff {:?} (this node: {:?})",
            have.backoff, want.backoff
        ));
    }
    (!d.is_empty()).then(|| d.join(", "))
}

/// The durable consumer exists with other redelivery settings (created by a node configured differently):
/// JetStream updates a durable consumer created again under its name with an editable change (ack wait,
/// MaxDeliver, backoff), so the last node to start sets them, and says so. When the server refuses, the node
/// keeps the consumer as it is and warns.
async fn align_consumer(
    stream: &jetstream::stream::Stream,
    current: jetstream::consumer::Consumer<pull::Config>,
    config: pull::Config,
    name: &str,
    old: &str,
) -> jetstream::consumer::Consumer<pull::Config> {
    match stream.create_consumer(config.clone()).await {
        Ok(c) if differs(&c.cached_info().config, &config).is_none() => {
            tracing::warn!(
                "consumer {name} had {old}; updated to this node's settings (nodes sharing a consumer should be configured alike)"
            );
            c
        }
        Ok(c) => {
            tracing::warn!(
                "consumer {name} has {old} and the server kept them; this node's AckWaitSeconds/MaxDeliver are not in effect"
            );
            c
        }
        Err(e) => {
            tracing::warn!(
                "consumer {name} has {old}; updating it failed ({e}); this node's AckWaitSeconds/MaxDeliver are not in effect"
            );
            current
        }
    }
}

/// Pulls from one consumer while permits are free: never holds more messages than it can run (a message
/// waiting in a buffer would run out its ack wait).
async fn pull_loop(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => return,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let mut held = vec![first];
        while held.len() < 64 {
            match permits.clone().try_acquire_owned() {
                Ok(p) => held.push(p),
                Err(_) => break,
            }
        }
        let batch = consumer
            .fetch()
            .max_messages(held.len())
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => {
                failures = 0;
                b
            }
            Err(e) => {
                failures += 1;
                tracing::debug!("fetch: {e}");
                drop(held);
                let wait = Duration::from_millis(100 * u64::from(failures.min(20)));
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                // Stopping: messages not yet received stay with JetStream for other nodes.
                _ = stop.cancelled() => return,
                m = batch.next() => m,
                // The server ends a fetch after its expiry; one that restarted meanwhile never does.
                _ = tokio::time::sleep(Duration::from_secs(2)) => None,
            };
            match next {
                Some(Ok(msg)) => {
                    let Some(permit) = held.pop() else {
                        // More than asked for: hand it back at once.
                        let _ = msg.ack_with(AckKind::Nak(None)).await;
                        continue;
                    };
                    shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        run_message(msg, &sh).await;
                        sh.in_flight.fetch_sub(1, Ordering::Relaxed);
                        drop(permit);
                    });
                }
                Some(Err(e)) => {
                    tracing::debug!("fetch batch: {e}");
                    break;
                }
                None => break,
            }
        }
    }
}

async fn reply(shared: &Shared, subject: &str, r: &NodeReply) {
    if let Ok(bytes) = serde_json::to_vec(r) {
        if let Err(e) = shared
            .client
            .publish(subject.to_string(), bytes.into())
            .await
        {
            tracing::warn!("reply on {subject} not sent: {e}");
        }
    }
}

/// How long a node tries to hand a result to the controller on the reply subject before it stores it in the
/// late stream instead.
const LATE_AFTER: Duration = Duration::from_secs(3);

/// Sends the attempt's result and waits for the controller to confirm it (request/reply). NATS keeps no copy
/// of a core message, so when nobody confirms within [`LATE_AFTER`] (the controller restarted, or is
/// reconnecting), the result is stored in the `SYNAPSE_LATE` stream, where the controller finds it. Retries for
/// up to about 30 s; false when neither worked (the request is then handed back).
async fn deliver_result(shared: &Shared, subject: &str, r: &NodeReply, late: &LateResult) -> bool {
    let (Ok(bytes), Ok(late_bytes)) = (serde_json::to_vec(r), serde_json::to_vec(late)) else {
        return false;
    };
    let bytes = bytes::Bytes::from(bytes);
    let late_bytes = bytes::Bytes::from(late_bytes);
    let mut wait = Duration::from_millis(50);
    let started = Instant::now();
    let end = started + Duration::from_secs(30);
    loop {
        let sent = tokio::time::timeout(
            Duration::from_secs(2),
            shared.client.request(subject.to_string(), bytes.clone()),
        )
        .await;
        match sent {
            Ok(Ok(_)) => return true,
            Ok(Err(e)) => tracing::debug!("result on {subject} not confirmed: {e}"),
            Err(_) => tracing::debug!("result on {subject} not confirmed in 2 s"),
        }
        if started.elapsed() >= LATE_AFTER && store_late(shared, late, late_bytes.clone()).await {
            return true;
        }
        if Instant::now() + wait > end {
            return false;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Stores a result in the late stream (de-duplicated on its idempotency key); true once JetStream confirmed.
async fn store_late(shared: &Shared, late: &LateResult, payload: bytes::Bytes) -> bool {
    let mut headers = async_nats::HeaderMap::new();
    let id = format!("{}/{}", late.key, late.delivery);
    headers.insert("Nats-Msg-Id", id.as_str());
    let subject = subjects::late_subject(&late.key);
    let stored = async {
        shared
            .js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(2), stored).await {
        Ok(Ok(_)) => {
            tracing::info!(
                "no controller confirmed the result of {}; kept in the late stream",
                late.key
            );
            true
        }
        Ok(Err(e)) => {
            tracing::debug!("late result of {} not stored: {e}", late.key);
            false
        }
        Err(_) => false,
    }
}

enum End {
    Finished(DispatchOutcome),
    Cancelled,
    HandedBack,
}

async fn run_message(msg: jetstream::Message, shared: &Arc<Shared>) {
    let delivery = msg
        .info()
        .map(|i| u32::try_from(i.delivered).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let reply_to = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(REPLY_HEADER))
        .map(|v| v.as_str().to_string());
    let request: ActionRequest = match serde_json::from_slice(&msg.payload) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("unreadable action request dropped: {e}");
            if let Some(to) = &reply_to {
                let outcome = DispatchOutcome::NotDelivered {
                    reason: format!("node {} cannot read the request: {e}", shared.name),
                };
                reply(shared, to, &result(shared, delivery, outcome)).await;
            }
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        }
    };
    let Some(reply_to) = reply_to else {
        let _ = msg.ack_with(AckKind::Term).await;
        return;
    };
    if request.version != WIRE_VERSION {
        let outcome = DispatchOutcome::NotDelivered {
            reason: format!(
                "node {} speaks wire version {WIRE_VERSION}, not {}",
                shared.name, request.version
            ),
        };
        reply(shared, &reply_to, &result(shared, delivery, outcome)).await;
        let _ = msg.ack_with(AckKind::Term).await;
        return;
    }
    let key = request.idempotency_key.to_string();
    let (wire_key, plan_name, action_name, handler) = (
        request.idempotency_key,
        request.plan_name.clone(),
        request.action_name.clone(),
        request.handler_type.clone(),
    );
    let started_at = shared.clock.now();
    let late_of = |outcome: &DispatchOutcome| LateResult {
        key: wire_key,
        plan_name: plan_name.clone(),
        action_name: action_name.clone(),
        handler: handler.clone(),
        node: shared.name.clone(),
        delivery,
        started_at,
        finished_at: shared.clock.now(),
        outcome: outcome.clone(),
    };
    let cancel = CancellationToken::new();
    lock(&shared.cancels).insert(key.clone(), cancel.clone());

    // Progress events go back to the controller in order.
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
    let progress = ProgressSink::new(move |e| {
        let _ = ptx.send(e.clone());
    });
    let forward = {
        let sh = shared.clone();
        let to = reply_to.clone();
        tokio::spawn(async move {
            while let Some(event) = prx.recv().await {
                reply(&sh, &to, &NodeReply::Progress { event }).await;
            }
        })
    };
    let now = shared.clock.now();
    let remaining = request
        .deadline
        .map(|d| (d - now).to_std().unwrap_or(Duration::ZERO));
    let job = ActionJob {
        request,
        runtime: ActionRuntime {
            cancel: cancel.clone(),
            progress,
            clock: shared.clock.clone(),
            deadline: remaining.and_then(|r| Instant::now().checked_add(r)),
            delivery,
        },
    };
    let in_process = InProcess::new(shared.registry.clone());
    let run = in_process.dispatch(job);
    // In-progress acks while the handler runs and while its result is being confirmed.
    let keep_alive = || async {
        let mut t = tokio::time::interval(shared.ack_wait / 3);
        t.tick().await;
        loop {
            t.tick().await;
            let _ = msg.ack_with(AckKind::Progress).await;
        }
    };
    let deadline = async {
        match remaining {
            Some(r) => tokio::time::sleep(r).await,
            None => std::future::pending().await,
        }
    };
    let end = tokio::select! {
        o = run => End::Finished(o),
        _ = keep_alive() => End::HandedBack,
        _ = deadline => End::Finished(DispatchOutcome::Done(ExecuteResult::failed(format!(
            "timed out on node {} (the action's deadline passed)", shared.name)))),
        _ = cancel.cancelled() => End::Cancelled,
        _ = shared.hand_back.cancelled() => End::HandedBack,
    };
    lock(&shared.cancels).remove(&key);
    // The sink was moved into the job, which is dropped by now: the forwarder ends after the last event.
    let _ = tokio::time::timeout(Duration::from_secs(1), forward).await;
    match end {
        End::Finished(outcome) => {
            let late = late_of(&outcome);
            let answer = result(shared, delivery, outcome);
            let confirmed = tokio::select! {
                ok = deliver_result(shared, &reply_to, &answer, &late) => ok,
                _ = keep_alive() => false,
            };
            if !confirmed {
                tracing::warn!(
                    "no controller confirmed the result of {key} and it could not be kept; handing it back"
                );
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                return;
            }
            shared.answered.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = msg.ack().await {
                tracing::warn!("ack of {key} failed (it may be redelivered): {e}");
            }
        }
        End::Cancelled => {
            let outcome = DispatchOutcome::Done(
                ExecuteResult::new(StatusType::Cancelled)
                    .with_message(format!("cancelled on node {}", shared.name)),
            );
            // Nobody may wait any more (the controller dropped the action): one try, then done.
            reply(shared, &reply_to, &result(shared, delivery, outcome)).await;
            shared.answered.fetch_add(1, Ordering::Relaxed);
            let _ = msg.ack_with(AckKind::Term).await;
        }
        End::HandedBack => {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
        }
    }
}

fn result(shared: &Shared, delivery: u32, outcome: DispatchOutcome) -> NodeReply {
    NodeReply::Result {
        node: shared.name.clone(),
        delivery,
        outcome,
    }
}
