//! Resource limits and durability of the API (in process): `/part` amplification refused before it is built,
//! durations from input that cannot be durations, the cap on running instances, size-based retention, and
//! writes answered only once their record is committed.

use super::*;
use synapse_controller::auth::Principal;
use synapse_controller::config::InstanceLimits;
use synapse_controller::runner::{Keep, Runner, StartRequest, SyncOutcome};
use synapse_controller::store::{InstanceStore, Page};
use synapse_controller::writer::Writer;

/// Instances of a plan in the store (after everything queued is committed: the list route flushes).
async fn listed(app: &App, plan: &str) -> Vec<Value> {
    app.get(&format!("/synapse/execute/{plan}"))
        .await
        .check(200, "list instances")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn api_part_refuses_amplification_naming_the_limit() {
    let limits = InstanceLimits {
        part_max_bytes: 1024 * 1024,
        part_max_paths: 300,
        ..Default::default()
    };
    let app = app_with_limits(true, &[], &[], limits);
    // A 100 KB parameter: Echo returns it in its exit data.
    let big = "x".repeat(100 * 1024);
    let body = json!({"name": "n", "color": big}).to_string();
    let v = app
        .post("/synapse/execute/Echo/start/sync", &body)
        .await
        .check(200, "echo a big parameter");
    let id = v["InstanceId"].as_str().unwrap().to_string();
    let uri = format!("/synapse/execute/Echo/{id}/part");

    // 200 copies of 100 KB would be 20 MB from a 6 KB request: refused, naming the limit.
    let paths = |n: usize, p: &str| json!({"ElementPaths": vec![p; n]}).to_string();
    let r = app.post(&uri, &paths(200, "Actions[0]:ExitData")).await;
    r.check(400, "amplifying part");
    let msg = error_message(&r);
    assert!(
        msg.contains("PartMaxBytes") && msg.contains("1048576"),
        "{msg}"
    );
    // Within the limit the parts come back (the same part twice is sent twice).
    let v = app
        .post(&uri, &paths(5, "Actions[0]:ExitData:Parameters:Color"))
        .await
        .check(200, "five parts");
    assert_eq!(v.as_array().map(Vec::len), Some(5));
    assert_eq!(v[4].as_str().map(str::len), Some(100 * 1024));
    // Small parts, but too many paths.
    let r = app.post(&uri, &paths(301, "Status")).await;
    r.check(400, "too many paths");
    let msg = error_message(&r);
    assert!(msg.contains("PartMaxPaths") && msg.contains("300"), "{msg}");
    // The GET form and the whole result are unchanged.
    let v = app
        .get(&format!("{uri}?elementPath=Actions[0]:ExitData:PlanName"))
        .await
        .check(200, "GET part");
    assert_eq!(v, "Echo");
    let v = app.post(&uri, "{}").await.check(200, "whole result");
    assert_eq!(v["Status"], "Complete");
}

#[tokio::test]
async fn api_timeout_seconds_that_are_no_duration_are_400_and_nothing_runs() {
    let app = app_with_ad_routes(
        true,
        &[("GetUser", "Identity")],
        &[("Identity.yaml", IDENTITY_PLAN)],
    );
    // The red team's values (a panic in Duration::from_secs_f64 before), and their relatives.
    let values = [
        "1e20",
        "inf",
        "-inf",
        "-1",
        "NaN",
        "1e400",
        "99999999999999999999",
        "2592001",
        "18446744073709551616ms",
        "-0.5",
    ];
    for t in values {
        let t = enc(t);
        for (method, uri, body) in [
            (
                Method::GET,
                format!("/synapse/execute/Empty/start/sync?timeoutSeconds={t}"),
                "",
            ),
            (
                Method::POST,
                format!("/synapse/execute/Empty/start/sync?timeoutSeconds={t}"),
                "{}",
            ),
            (Method::GET, format!("/ad/user/mfox?timeoutSeconds={t}"), ""),
        ] {
            let r = app
                .call(
                    method.clone(),
                    &uri,
                    &[("content-type", "application/json")],
                    body.to_string(),
                )
                .await;
            r.check(400, &uri);
            assert!(r.text().contains("timeoutSeconds"), "{uri}: {}", r.text());
        }
    }
    // Nothing ran: no instance of either plan.
    assert_eq!(listed(&app, "Empty").await, Vec::<Value>::new());
    assert_eq!(listed(&app, "Identity").await, Vec::<Value>::new());
    // The largest allowed value still works (bounded by the server's SyncTimeoutSeconds).
    app.get("/synapse/execute/Empty/start/sync?timeoutSeconds=2592000")
        .await
        .check(200, "30 days");
}

#[tokio::test]
async fn api_running_instances_are_capped_with_429_and_retry_after() {
    let limits = InstanceLimits {
        max_running_instances: 2,
        ..Default::default()
    };
    let app = app_with_limits(
        true,
        &[("GetUser", "Identity")],
        &[("Identity.yaml", IDENTITY_PLAN)],
        limits,
    );
    let a = app.start("Sleep", "{}").await;
    let b = app.start("Sleep", "{}").await;
    for (method, uri, body) in [
        (Method::POST, "/synapse/execute/Sleep/start/async", "{}"),
        (Method::POST, "/synapse/execute/Empty/start/sync", "{}"),
        (Method::GET, "/synapse/execute/Empty/start", ""),
        (Method::GET, "/ad/user/mfox", ""),
    ] {
        let r = app
            .call(
                method,
                uri,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await;
        r.check(429, uri);
        assert_eq!(r.header("retry-after"), Some("1"), "{uri}");
        assert!(
            r.text().contains("MaxRunningInstances = 2"),
            "{uri}: {}",
            r.text()
        );
        if uri.starts_with("/ad/") {
            // The AD envelope says ConnectionError (10): try again later.
            assert_eq!(
                r.json()["Results"][0]["Statuses"][0]["Status"],
                10,
                "{}",
                r.text()
            );
        }
    }
    // Refused starts stored nothing.
    assert_eq!(listed(&app, "Empty").await, Vec::<Value>::new());
    assert_eq!(listed(&app, "Sleep").await.len(), 2);
    // When one finishes, there is room again.
    app.delete(&format!("/synapse/execute/Sleep/{a}"))
        .await
        .check(202, "cancel a");
    assert_eq!(app.wait_done("Sleep", &a).await["Status"], "Cancelled");
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let c = loop {
        let r = app.post("/synapse/execute/Sleep/start/async", "{}").await;
        if r.status == 202 {
            break r.json()["PlanInstanceId"].as_str().unwrap().to_string();
        }
        r.check(429, "still full");
        assert!(Instant::now() < deadline, "no room after a cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for id in [&b, &c] {
        app.delete(&format!("/synapse/execute/Sleep/{id}"))
            .await
            .check(202, "cancel");
        app.wait_done("Sleep", id).await;
    }
}

#[tokio::test]
async fn api_retention_keeps_at_most_the_configured_finished_instances() {
    let app = app();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let v = app
            .post("/synapse/execute/Empty/start/sync", "{}")
            .await
            .check(200, "run");
        ids.push(v["InstanceId"].as_str().unwrap().to_string());
    }
    let running = app.start("Sleep", "{}").await;
    assert_eq!(listed(&app, "Empty").await.len(), 5);
    let clock = synapse_engine::ManualClock::new(chrono::Utc::now());
    // No age limit, at most 3 finished: the 2 oldest go, the running instance stays.
    let pruned = synapse_controller::serve::prune(&*app.store, 0, 3, &clock);
    assert_eq!(pruned, 2);
    let left: Vec<String> = listed(&app, "Empty")
        .await
        .iter()
        .map(|s| s["Id"].as_str().unwrap().to_string())
        .collect();
    let mut newest: Vec<String> = ids[2..].to_vec();
    newest.reverse();
    assert_eq!(left, newest);
    assert_eq!(listed(&app, "Sleep").await.len(), 1);
    // An age limit beyond the calendar prunes nothing (it used to overflow the date arithmetic).
    assert_eq!(
        synapse_controller::serve::prune(&*app.store, u32::MAX, 0, &clock),
        0
    );
    app.delete(&format!("/synapse/execute/Sleep/{running}"))
        .await
        .check(202, "cancel");
    app.wait_done("Sleep", &running).await;
}

#[tokio::test]
async fn api_sync_write_answers_after_its_record_is_committed() {
    let app = app();
    // Empty's actions are writes (its descriptor's ActionKind): the answer waits for the commit, so the
    // finished record is in the store itself (not only queued) when the caller reads the answer.
    for i in 0..20 {
        let v = app
            .post("/synapse/execute/Empty/start/sync", "{}")
            .await
            .check(200, "sync write");
        let id = serde_json::from_value(v["InstanceId"].clone()).unwrap();
        let stored = app
            .store
            .get_instance(id)
            .unwrap()
            .unwrap_or_else(|| panic!("call {i}: instance {id} answered but not committed"));
        assert_eq!(stored.status.name(), "Complete", "call {i}");
        assert!(stored.result.is_some(), "call {i}");
    }
}

/// What committing before answering costs a sync write: N sequential sync runs of an Empty plan through
/// the runner, answered at once (as reads are) vs after the group commit (as writes are). Printed, not
/// asserted (docs/performance.md).
#[tokio::test]
async fn api_commit_before_answer_cost_is_printed() {
    const N: usize = 200;
    let dir = TempDir::new("durable-cost");
    let store = Arc::new(RedbStore::open(&dir.path().join("synapse.redb")).unwrap());
    let writer = Arc::new(Writer::start(store.clone()));
    let executor =
        synapse_engine::Executor::in_process(Arc::new(synapse_handlers::builtin_registry()));
    let runner = Arc::new(Runner::new(executor, store.clone(), writer, 100));
    let plan = Arc::new(
        synapse_engine::load::load_str(EMPTY_PLAN, "Empty.yaml")
            .unwrap()
            .plan,
    );
    let request = |durable: bool| StartRequest {
        plan_key: "Empty".into(),
        plan: plan.clone(),
        inputs: Default::default(),
        dry_run: false,
        principal: Principal::anonymous(),
        keep: Keep::Result,
        durable,
    };
    let mut report = Vec::new();
    for durable in [false, true, false, true] {
        let started = Instant::now();
        for _ in 0..N {
            let out = runner.run_sync(request(durable), FINISH_TIMEOUT).await;
            assert!(matches!(out, Ok(SyncOutcome::Finished(_))));
        }
        let per_call = started.elapsed().as_secs_f64() * 1e6 / N as f64;
        report.push(format!(
            "1 caller,   {}: {per_call:.0} us per call",
            if durable {
                "after commit"
            } else {
                "at once     "
            }
        ));
    }
    // 32 callers at once: the group commit shares one flush between their writes.
    for durable in [false, true] {
        let started = Instant::now();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let runner = runner.clone();
                let reqs: Vec<StartRequest> = (0..N / 32).map(|_| request(durable)).collect();
                tokio::spawn(async move {
                    for req in reqs {
                        let out = runner.run_sync(req, FINISH_TIMEOUT).await;
                        assert!(matches!(out, Ok(SyncOutcome::Finished(_))));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let rate = (N / 32 * 32) as f64 / started.elapsed().as_secs_f64();
        report.push(format!(
            "32 callers, {}: {rate:.0} calls/s",
            if durable {
                "after commit"
            } else {
                "at once     "
            }
        ));
    }
    runner.flush();
    assert_eq!(
        store
            .list_instances("Empty", Page::first(1000))
            .unwrap()
            .len(),
        (4 * N + 2 * (N / 32 * 32)).min(1000)
    );
    println!(
        "commit before answer, {N} sequential sync calls of an Empty plan:\n  {}",
        report.join("\n  ")
    );
}
