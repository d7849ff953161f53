//! Node workers over NATS JetStream (issue 11): a real nats-server per test (tests/fixtures/nats.sh), real
//! `synapse node` processes, the controller's `NatsDispatcher` in this process (the executor directly, or the
//! HTTP router for the API contract).

use crate::support::nats::{Nats, NodeProc};
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synapse_engine::{Executor, Plan, PlanResult, RunOptions, StatusType};
use synapse_node::{NatsDispatcher, NatsSettings};
use tower::ServiceExt;

async fn dispatcher(url: &str) -> (Executor, NatsDispatcher) {
    let settings = NatsSettings::new(url);
    let client = synapse_node::connect(&settings, "test-controller")
        .await
        .unwrap();
    let reg = Arc::new(synapse_handlers::builtin_registry());
    let d = NatsDispatcher::start(client, reg.clone(), &settings)
        .await
        .unwrap();
    (Executor::new(reg, Arc::new(d.clone())), d)
}

/// Waits (at most 15 s) until `n` live nodes heartbeat.
async fn wait_nodes(d: &NatsDispatcher, n: usize) {
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if d.directory().list().iter().filter(|v| !v.lost).count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} nodes did not show up: {:?}", d.directory().list());
}

/// A plan of `n` root actions of EmptyHandler (all run at once).
fn many(n: usize, head: &str, sleep_ms: u64) -> Plan {
    let mut y = format!("Name: many\n{head}Actions:\n");
    for i in 0..n {
        y.push_str(&format!(
            "- Name: a{i}\n  Handler: {{Type: EmptyHandler}}\n  Parameters: {{Values: {{SleepMilliseconds: {sleep_ms}}}}}\n"
        ));
    }
    synapse_engine::load::load_str(&y, "many.yaml")
        .unwrap()
        .plan
}

fn per_node(r: &PlanResult) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for a in &r.actions {
        *m.entry(a.node.clone().unwrap_or_default()).or_insert(0) += 1;
    }
    m
}

fn nodes(
    nats: &Nats,
    dir: &std::path::Path,
    specs: &[(&str, &str)],
    args: &[&str],
) -> Vec<NodeProc> {
    specs
        .iter()
        .map(|(name, labels)| NodeProc::spawn(&nats.url, name, labels, args, &[], dir))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_three_nodes_run_1000_actions_exactly_once() {
    let nats = Nats::start();
    let dir = tempfile_dir();
    let mut ns = nodes(
        &nats,
        dir.path(),
        &[("n1", ""), ("n2", ""), ("n3", "")],
        &["--concurrency", "32"],
    );
    let (exec, d) = dispatcher(&nats.url).await;
    wait_nodes(&d, 3).await;
    let plan = many(1000, "", 5);
    let r = tokio::time::timeout(
        Duration::from_secs(120),
        exec.run(&plan, RunOptions::default()),
    )
    .await
    .expect("the run ends")
    .unwrap();
    assert_eq!(r.actions.len(), 1000);
    let mut names = std::collections::HashSet::new();
    for a in &r.actions {
        assert_eq!(a.status, StatusType::Complete, "{}: {}", a.name, a.message);
        assert!(names.insert(a.name.clone()), "{} twice", a.name);
        assert!(a.node.is_some(), "{} names no node", a.name);
    }
    let counts = per_node(&r);
    assert_eq!(counts.values().sum::<usize>(), 1000);
    // Every node answered exactly the actions the result tree credits it with: nothing ran twice.
    for n in ns.iter_mut() {
        let answered = n.stop();
        assert_eq!(
            answered as usize,
            counts.get(&n.name).copied().unwrap_or(0),
            "{counts:?}"
        );
    }
    eprintln!("per node: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_kill_9_mid_run_redelivers_and_loses_nothing() {
    let nats = Nats::start();
    let dir = tempfile_dir();
    let mut ns = nodes(
        &nats,
        dir.path(),
        &[("k1", ""), ("k2", ""), ("k3", "")],
        &["--concurrency", "16", "--ack-wait-seconds", "2"],
    );
    let (exec, d) = dispatcher(&nats.url).await;
    wait_nodes(&d, 3).await;
    let plan = many(300, "", 150);
    let run = tokio::spawn(async move { exec.run(&plan, RunOptions::default()).await });
    // Kill one node while it holds work.
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end
        && !d
            .directory()
            .list()
            .iter()
            .any(|n| n.name == "k1" && n.in_flight > 0)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ns[0].kill9();
    let r = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap();
    assert_eq!(r.actions.len(), 300);
    for a in &r.actions {
        assert_eq!(a.status, StatusType::Complete, "{}: {}", a.name, a.message);
    }
    let redelivered: Vec<_> = r.actions.iter().filter(|a| a.delivery.is_some()).collect();
    assert!(
        !redelivered.is_empty(),
        "the killed node's actions were redelivered and marked"
    );
    for a in &redelivered {
        assert_ne!(
            a.node.as_deref(),
            Some("k1"),
            "{} ran on the dead node",
            a.name
        );
    }
    let counts = per_node(&r);
    let survivors: u64 = ns[1..].iter_mut().map(|n| n.stop()).sum();
    let on_survivors = counts.get("k2").unwrap_or(&0) + counts.get("k3").unwrap_or(&0);
    // A survivor may also have run a request the dead node had answered but not yet acked (at least once: the
    // controller keeps the first answer); nothing else runs twice.
    let on_dead = counts.get("k1").copied().unwrap_or(0);
    assert!(
        (on_survivors..=on_survivors + on_dead).contains(&(survivors as usize)),
        "survivors answered {survivors}; {counts:?}"
    );
    eprintln!("per node: {counts:?}; redelivered: {}", redelivered.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_labels_route_actions_and_no_match_fails_fast() {
    let nats = Nats::start();
    let dir = tempfile_dir();
    let mut ns = nodes(
        &nats,
        dir.path(),
        &[("dc1a", "site=dc1,zone=a"), ("dc2a", "site=dc2")],
        &[],
    );
    let (exec, d) = dispatcher(&nats.url).await;
    wait_nodes(&d, 2).await;
    let r = exec
        .run(&many(100, "RunOn: {site: dc1}\n", 0), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(r.status, StatusType::Complete, "{r:?}");
    assert_eq!(
        per_node(&r),
        [("dc1a".to_string(), 100)].into_iter().collect()
    );
    let started = Instant::now();
    let r = exec
        .run(&many(1, "RunOn: {site: dc9}\n", 0), RunOptions::default())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "fails fast");
    assert_eq!(r.actions[0].status, StatusType::Failed);
    assert!(
        r.actions[0]
            .message
            .contains("no live node serves EmptyHandler with labels site=dc9"),
        "{}",
        r.actions[0].message
    );
    // The node without the label never received a job.
    assert_eq!(ns[1].stop(), 0);
    assert_eq!(ns[0].stop(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_cancellation_reaches_the_node() {
    let nats = Nats::start();
    let dir = tempfile_dir();
    let mut ns = nodes(&nats, dir.path(), &[("c1", "")], &[]);
    let (exec, d) = dispatcher(&nats.url).await;
    wait_nodes(&d, 1).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = RunOptions {
        cancel: cancel.clone(),
        ..RunOptions::default()
    };
    let plan = many(1, "", 60_000);
    let run = tokio::spawn(async move { exec.run(&plan, opts).await });
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && !d.directory().list().iter().any(|n| n.in_flight > 0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("cancelled promptly")
        .unwrap()
        .unwrap();
    assert_eq!(r.actions[0].status, StatusType::Cancelled);
    // The node dropped the handler's future: it answers the cancel (counted) and holds nothing.
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && d.directory().list().iter().any(|n| n.in_flight > 0) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(d.directory().list().iter().all(|n| n.in_flight == 0));
    let started = Instant::now();
    assert_eq!(ns[0].stop(), 1, "the cancelled action was answered");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "nothing left to drain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_wrong_credentials_give_a_clear_error_at_start() {
    let nats = Nats::start_with(&["--user", "synapse", "--password", "right-pass"]);
    let dir = tempfile_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_synapse"))
        .args(["node", "--nats", &nats.url, "--user", "synapse"])
        .env("SYNAPSE_NATS_PASSWORD", "wrong-pass")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refused the credentials") && err.contains(&nats.url),
        "{err}"
    );
    assert!(
        !err.contains("wrong-pass"),
        "the password is not echoed: {err}"
    );
    // The controller side says the same.
    let mut s = NatsSettings::new(&nats.url);
    s.user = Some("synapse".into());
    s.password = Some("nope".into());
    let e = synapse_node::connect(&s, "t").await.unwrap_err();
    assert!(matches!(e, synapse_node::NatsError::Auth { .. }), "{e}");
    // The right ones work.
    let n = NodeProc::spawn(
        &nats.url,
        "ok",
        "",
        &["--user", "synapse"],
        &[("SYNAPSE_NATS_PASSWORD", "right-pass")],
        dir.path(),
    );
    drop(n);
}

/// The HTTP contract: `GET /synapse/nodes`, `Node` in the result tree, 503 while NATS is down and recovery
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_api_lists_nodes_names_them_in_results_and_survives_a_nats_restart() {
    let nats = Nats::start();
    let dir = tempfile_dir();
    let plans = dir.path().join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::write(
        plans.join("Empty.yaml"),
        "Name: Empty\nActions:\n- Name: one\n  Handler: {Type: EmptyHandler}\n  Parameters: {Values: {SleepMilliseconds: 300}}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut ns = nodes(
        &nats,
        dir.path(),
        &[("api1", "site=dc1"), ("api2", "")],
        &[],
    );
    let url = nats.url.clone();
    let cfg = synapse_controller::config::ServeConfig::load(
        &synapse_controller::config::Overrides {
            config: Some(dir.path().join("none.yaml")).filter(|p| p.exists()),
            listen: Some("127.0.0.1:0".into()),
            plans: Some(plans),
            data: Some(data.clone()),
            no_auth: true,
        },
        &move |k| (k == "SYNAPSE_NATS_URL").then(|| url.clone()),
    )
    .unwrap();
    let n = cfg.nats.clone().expect("SYNAPSE_NATS_URL turns NATS on");
    let reg = Arc::new(synapse_handlers::builtin_registry());
    let client = synapse_node::connect(&n, "test-controller").await.unwrap();
    let d = NatsDispatcher::start(client, reg.clone(), &n)
        .await
        .unwrap();
    wait_nodes(&d, 2).await;
    let store = Arc::new(synapse_controller::store::RedbStore::open(&data.join("s.redb")).unwrap());
    let state = synapse_controller::AppState::with_dispatch(
        &cfg,
        reg,
        Some(d.clone()),
        synapse_controller::store::Stores::all_in(store),
        None,
    )
    .unwrap();
    let router = synapse_controller::router(Arc::new(state));
    let call = |method: Method, uri: &str| {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let router = router.clone();
        async move {
            let resp = tokio::time::timeout(Duration::from_secs(30), router.oneshot(req))
                .await
                .unwrap()
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let (st, list) = call(Method::GET, "/synapse/nodes").await;
    assert_eq!(st, 200);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    for n in &list {
        for k in [
            "Name", "Labels", "Handlers", "LastSeen", "Version", "InFlight", "Lost",
        ] {
            assert!(n.get(k).is_some(), "{k} missing in {n}");
        }
        assert!(n["Handlers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "EmptyHandler"));
    }
    assert_eq!(list[0]["Name"], "api1");
    assert_eq!(list[0]["Labels"]["site"], "dc1");

    let (st, r) = call(Method::POST, "/synapse/execute/Empty/start/sync").await;
    assert_eq!(st, 200, "{r}");
    let node = r["Actions"][0]["Node"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(node == "api1" || node == "api2", "{r}");

    // NATS goes away: starts are refused with 503 and a clear message, not hung.
    nats.kill();
    let end = Instant::now() + Duration::from_secs(10);
    let mut last = (0, Value::Null);
    while Instant::now() < end {
        last = call(Method::POST, "/synapse/execute/Empty/start/sync").await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    assert!(last.1.to_string().contains("NATS"), "{}", last.1);
    // It comes back: starts work again without restarting anything.
    nats.restart();
    let end = Instant::now() + Duration::from_secs(30);
    let mut ok = false;
    while Instant::now() < end {
        let (st, r) = call(Method::POST, "/synapse/execute/Empty/start/sync").await;
        if st == 200 && r["Status"] == "Complete" {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "starts work again after NATS returned");
    for n in ns.iter_mut() {
        n.stop();
    }
}

/// NATS restarted while a run is in flight: every action still completes (requests are in the file store;
/// answers and acks lost in the gap lead to redelivery, and the first answer wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_nats_restarted_mid_run_loses_nothing() {
    let nats = Nats::start();
    let dir = tempfile_dir();
    let ns: Vec<NodeProc> = ["r1", "r2"]
        .iter()
        .map(|n| {
            NodeProc::spawn(
                &nats.url,
                n,
                "",
                &["--ack-wait-seconds", "2"],
                &[("SYNAPSE_LOG", "synapse_node=debug,async_nats=info")],
                dir.path(),
            )
        })
        .collect();
    let (exec, d) = dispatcher(&nats.url).await;
    wait_nodes(&d, 2).await;
    let plan = many(200, "", 400);
    let run = tokio::spawn(async move { exec.run(&plan, RunOptions::default()).await });
    tokio::time::sleep(Duration::from_millis(600)).await;
    nats.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.restart();
    let r = match tokio::time::timeout(Duration::from_secs(60), run).await {
        Ok(r) => r.unwrap().unwrap(),
        Err(_) => panic!(
            "the run did not end; nodes: {:?}\n{}",
            d.directory().list(),
            ns.iter()
                .map(|n| n.output())
                .collect::<Vec<_>>()
                .join("\n----\n")
        ),
    };
    assert_eq!(r.actions.len(), 200);
    let bad: Vec<String> = r
        .actions
        .iter()
        .filter(|a| a.status != StatusType::Complete)
        .map(|a| format!("{}: {:?} {}", a.name, a.status, a.message))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}

fn tempfile_dir() -> TempDir {
    TempDir::new()
}

/// A temporary directory removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "synapse-nodes-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn nodes_run_on_labels_are_validated() {
    let y = "Name: p\nRunOn: {site: dc1, 'bad key': x}\nActions:\n- Name: a\n  Handler: {Type: EmptyHandler}\n  RunOn: {zone: ''}\n";
    let l = synapse_engine::load::load_str(y, "p.yaml").unwrap();
    let diags = synapse_engine::validate::validate(&l, &synapse_handlers::builtin_registry());
    let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert!(
        text.iter().any(|t| t.contains("RunOn label 'bad key: x'")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.contains("RunOn label 'zone: '")),
        "{text:?}"
    );
    assert_eq!(l.plan.run_on.as_ref().unwrap()["site"], "dc1");
}

/// 50 AD users created by 3 nodes, one killed with kill -9 mid-run: exactly 50 users exist afterwards (an LDAP
/// search of the test's OU), none twice; an action that did not complete is a replay (its first delivery's
/// create stands, the replay reports that the user exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ad_creates_survive_a_killed_node_exactly_once() {
    let dc = crate::support::dc::dc();
    let ou = dc.unique_ou("nodes").await;
    let nats = Nats::start();
    let dir = tempfile_dir();
    let env = [
        ("SYNAPSE_AD_URL", dc.url.as_str()),
        ("SYNAPSE_AD_BIND_DN", dc.bind_dn.as_str()),
        ("SYNAPSE_AD_PASSWORD", dc.password.as_str()),
        ("SYNAPSE_AD_TLS_INSECURE", "true"),
        ("SYNAPSE_AD_ALIASES", "SANDBOX"),
    ];
    let mut ns: Vec<NodeProc> = ["ad1", "ad2", "ad3"]
        .iter()
        .map(|n| {
            NodeProc::spawn(
                &nats.url,
                n,
                "",
                &["--concurrency", "2", "--ack-wait-seconds", "2"],
                &env,
                dir.path(),
            )
        })
        .collect();
    let (exec, d) = dispatcher(&nats.url).await;
    wait_nodes(&d, 3).await;
    let mut y = String::from("Name: users\nActions:\n");
    for i in 0..50 {
        y.push_str(&format!(
            "- Name: u{i}\n  Handler:\n    Type: ActiveDirectoryHandler\n    Config: {{Values: {{Action: Create}}}}\n  Parameters: {{Values: {{Users: [{{Identity: 'cn=nodeuser{i},{ou}'}}]}}}}\n"
        ));
    }
    let plan = synapse_engine::load::load_str(&y, "users.yaml")
        .unwrap()
        .plan;
    let run = tokio::spawn(async move { exec.run(&plan, RunOptions::default()).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    ns[0].kill9();
    let r = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap();
    assert_eq!(r.actions.len(), 50);
    for a in &r.actions {
        if a.status != StatusType::Complete {
            assert!(
                a.delivery.is_some_and(|d| d > 1),
                "{} ended {:?} without being a replay: {}",
                a.name,
                a.status,
                a.message
            );
        }
    }
    let pool = dc.pool().await;
    let users = pool
        .search(&ou, ldap3::Scope::Subtree, "(objectClass=user)", &["cn"])
        .await
        .unwrap();
    let mut cns: Vec<String> = users
        .iter()
        .map(|e| {
            e.attrs
                .get("cn")
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    cns.sort();
    let total = cns.len();
    cns.dedup();
    assert_eq!(total, 50, "{cns:?}");
    assert_eq!(cns.len(), 50, "none twice");
    eprintln!(
        "per node: {:?}; redelivered: {}",
        per_node(&r),
        r.actions.iter().filter(|a| a.delivery.is_some()).count()
    );
    for n in ns.iter_mut() {
        n.stop();
    }
}

/// An action's `Timeout` holds on both sides: the controller stops waiting, and the node stops the handler
/// (told to cancel, or by the request's deadline) instead of holding it until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_timeout_is_enforced_on_both_sides() {
    let nats = Nats::start();
    let dir = tempfile_dir();
    let mut ns = nodes(&nats, dir.path(), &[("t1", "")], &[]);
    let (exec, d) = dispatcher(&nats.url).await;
    wait_nodes(&d, 1).await;
    let y = "Name: t\nActions:\n- Name: slow\n  Timeout: 500ms\n  Handler: {Type: EmptyHandler}\n  Parameters: {Values: {SleepMilliseconds: 60000}}\n";
    let plan = synapse_engine::load::load_str(y, "t.yaml").unwrap().plan;
    let started = Instant::now();
    let r = exec.run(&plan, RunOptions::default()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.actions[0].status, StatusType::Failed);
    assert!(
        r.actions[0].message.contains("timed out"),
        "{}",
        r.actions[0].message
    );
    let started = Instant::now();
    assert_eq!(ns[0].stop(), 1, "the node ended the handler and answered");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "nothing was left running on the node"
    );
}
