//! Node workers, the late pieces (issue 11): results that outlive a controller restart, remote progress on
//! the SSE stream. Real nats-server (tests/fixtures/nats.sh), real `synapse node` and `synapse serve`
//! processes, HTTP with curl.

use crate::support::nats::{Nats, NodeProc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `synapse serve --no-auth` child process with `SYNAPSE_NATS_URL` (killed on drop).
struct Serve {
    child: Option<Child>,
    base: String,
    log: PathBuf,
}

impl Serve {
    fn start(nats: &str, plans: &Path, data: &Path, work: &Path) -> Serve {
        let port = free_port();
        let log = work.join(format!("serve-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_synapse"));
        cmd.args([
            "serve",
            "--no-auth",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--plans")
        .arg(plans)
        .arg("--data")
        .arg(data)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
        for (k, _) in std::env::vars() {
            if k.starts_with("SYNAPSE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SYNAPSE_NATS_URL", nats).env("SYNAPSE_LOG", "info");
        let s = Serve {
            child: Some(cmd.spawn().unwrap()),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if s.get("/healthz").0 == 200 {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("serve did not come up: {}", s.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.curl(&[], path)
    }

    fn json(&self, method: &str, path: &str) -> (u16, Value) {
        let (st, body) = self.curl(&["-X", method], path);
        (st, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Work(PathBuf);

impl Work {
    fn new(tag: &str) -> Work {
        let p = std::env::temp_dir().join(format!(
            "synapse-nodes-late-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(p.join("plans")).unwrap();
        std::fs::create_dir_all(p.join("data")).unwrap();
        Work(p)
    }
    fn plans(&self) -> PathBuf {
        self.0.join("plans")
    }
    fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(x) = f() {
            return x;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The controller is killed (-9) while its action sleeps on a node and restarted on the same store: the
/// instance is marked interrupted, and the node's answer, which arrives afterwards, is recorded into the
/// stored instance (marked `Late`, naming the node) and survives another restart.
#[test]
fn nodes_late_result_after_a_controller_restart_is_recorded() {
    let nats = Nats::start();
    let work = Work::new("restart");
    std::fs::write(
        work.plans().join("Sleepy.yaml"),
        "Name: Sleepy\nActions:\n- Name: nap\n  Handler: {Type: EmptyHandler}\n  Parameters: {Values: {SleepMilliseconds: 4000, Message: woke up}}\n",
    )
    .unwrap();
    let mut node = NodeProc::spawn(&nats.url, "late1", "", &[], &[], &work.0);
    let mut serve = Serve::start(&nats.url, &work.plans(), &work.data(), &work.0);
    wait_for("the node in /synapse/nodes", 15, || {
        let (st, body) = serve.get("/synapse/nodes");
        (st == 200 && body.contains("late1")).then_some(())
    });
    let (st, started) = serve.json("POST", "/synapse/execute/Sleepy/start");
    assert_eq!(st, 202, "{started}");
    let id = started["PlanInstanceId"].as_str().unwrap().to_string();
    // The node holds the action: kill the controller.
    wait_for("the node to take the action", 10, || {
        let (_, body) = serve.get("/synapse/nodes");
        let v: Value = serde_json::from_str(&body).ok()?;
        (v[0]["InFlight"].as_u64()? > 0).then_some(())
    });
    serve.kill9();
    let serve = Serve::start(&nats.url, &work.plans(), &work.data(), &work.0);
    let path = format!("/synapse/execute/Sleepy/{id}");
    let (st, rec) = serve.json("GET", &path);
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["Status"], "Failed", "{rec}");
    assert!(
        rec["Message"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted"),
        "{rec}"
    );
    // The node finishes (4 s), finds nobody confirming on the old reply subject, keeps the result in the
    // late stream; the restarted controller records it.
    let rec = wait_for("the late result in the stored instance", 30, || {
        let (st, rec) = serve.json("GET", &path);
        (st == 200 && rec["Result"]["Actions"][0]["Late"] == true).then_some(rec)
    });
    let a = &rec["Result"]["Actions"][0];
    assert_eq!(a["Name"], "nap", "{rec}");
    assert_eq!(a["Node"], "late1", "{rec}");
    assert_eq!(a["Status"], "Complete", "{rec}");
    assert_eq!(a["Message"], "woke up", "{rec}");
    // The instance itself stays as it was: interrupted, not turned into a success.
    assert_eq!(rec["Status"], "Failed", "{rec}");
    assert_eq!(rec["Result"]["Status"], "Failed", "{rec}");
    // The history listing still shows it failed (interrupted).
    let (st, list) = serve.json("GET", "/synapse/execute/Sleepy");
    assert_eq!(st, 200, "{list}");
    assert!(list.to_string().contains(&id), "{list}");
    // Recorded, not just shown: it survives another restart.
    drop(serve);
    let serve = Serve::start(&nats.url, &work.plans(), &work.data(), &work.0);
    let (_, rec) = serve.json("GET", &path);
    assert_eq!(rec["Result"]["Actions"][0]["Late"], true, "{rec}");
    assert_eq!(rec["Result"]["Actions"][0]["Node"], "late1", "{rec}");
    assert!(
        serve.log_text().is_empty() || !serve.log_text().contains("panicked"),
        "{}",
        serve.log_text()
    );
    node.stop();
}

/// A remote action's progress events reach the instance's SSE stream, in order, like local ones.
#[test]
fn nodes_remote_progress_reaches_the_sse_stream_in_order() {
    let nats = Nats::start();
    let work = Work::new("sse");
    std::fs::write(
        work.plans().join("Steps.yaml"),
        "Name: Steps\nActions:\n- Name: stepper\n  Handler: {Type: EmptyHandler}\n  Parameters: {Values: {SleepMilliseconds: 1500, ProgressCount: 5}}\n",
    )
    .unwrap();
    let mut node = NodeProc::spawn(&nats.url, "sse1", "", &[], &[], &work.0);
    let serve = Serve::start(&nats.url, &work.plans(), &work.data(), &work.0);
    wait_for("the node in /synapse/nodes", 15, || {
        let (st, body) = serve.get("/synapse/nodes");
        (st == 200 && body.contains("sse1")).then_some(())
    });
    let (st, started) = serve.json("POST", "/synapse/execute/Steps/start");
    assert_eq!(st, 202, "{started}");
    let id = started["PlanInstanceId"].as_str().unwrap().to_string();
    let (st, stream) = serve.curl(&["-N"], &format!("/synapse/execute/Steps/{id}/events"));
    assert_eq!(st, 200, "{stream}");
    let steps: Vec<String> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .filter(|e| e["ActionName"] == "stepper")
        .filter_map(|e| e["Message"].as_str().map(str::to_string))
        .filter(|m| m.starts_with("step "))
        .collect();
    assert_eq!(
        steps,
        (1..=5).map(|i| format!("step {i}/5")).collect::<Vec<_>>(),
        "{stream}"
    );
    assert!(stream.contains("event: finished"), "{stream}");
    let (_, rec) = serve.json("GET", &format!("/synapse/execute/Steps/{id}"));
    assert_eq!(rec["Result"]["Actions"][0]["Node"], "sse1", "{rec}");
    node.stop();
}

/// A node that finds the shared durable consumer created with other redelivery settings updates it (and says
/// so): the last node started sets AckWaitSeconds and MaxDeliver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_consumer_with_other_settings_is_updated() {
    let nats = Nats::start();
    let work = Work::new("consumer");
    let mut a = NodeProc::spawn(
        &nats.url,
        "c1",
        "",
        &["--ack-wait-seconds", "2"],
        &[],
        &work.0,
    );
    let name = synapse_node::subjects::consumer_name("EmptyHandler", &Default::default());
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let info = |js: async_nats::jetstream::Context, name: String| async move {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = js.get_stream(synapse_node::subjects::STREAM).await {
                if let Ok(i) = s.consumer_info(&name).await {
                    return i.config;
                }
            }
            assert!(Instant::now() < end, "consumer {name} never appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(
        info(js.clone(), name.clone()).await.ack_wait,
        Duration::from_secs(2)
    );
    let mut b = NodeProc::spawn(
        &nats.url,
        "c2",
        "",
        &["--ack-wait-seconds", "7"],
        &[("SYNAPSE_NATS_MAX_DELIVER", "3")],
        &work.0,
    );
    // "serving" is printed before the consumers are opened, one handler after another: wait for this
    // consumer's own line (waiting for any "consumer " line raced: ActiveDirectoryHandler's came first).
    let line = format!("consumer {name} ");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && !b.output().contains(&line) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cfg = info(js.clone(), name.clone()).await;
    assert_eq!(cfg.ack_wait, Duration::from_secs(7), "{}", b.output());
    assert_eq!(cfg.max_deliver, 3, "{}", b.output());
    assert!(
        b.output().contains("updated to this node's settings"),
        "{}",
        b.output()
    );
    a.stop();
    b.stop();
}

/// Replays (a node lost after the DC applied the change; the same request, same key, delivered again) of an
/// AD Move and of a Modify that renames: one object at the target, and the replay says what it found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_replayed_ad_move_and_rename_leave_one_object() {
    use synapse_engine::{ActionContext, Handler, IdempotencyKey, StatusType};
    let dc = crate::support::dc::dc();
    let ou = dc.unique_ou("replay").await;
    let target = dc.unique_ou("replayto").await;
    let handler = synapse_handlers::ad::ActiveDirectoryHandler::new(vec![dc.settings()]);
    let pool = dc.pool().await;
    let sam = format!("rp{}", &crate::support::dc::random_suffix()[..8]);
    let count = |base: String, filter: String| {
        let pool = pool.clone();
        async move {
            pool.search(&base, ldap3::Scope::Subtree, &filter, &["cn"])
                .await
                .unwrap()
                .len()
        }
    };
    let ctx = |delivery: u32| {
        let mut c = ActionContext::standalone("replay");
        c.idempotency_key = IdempotencyKey::new(uuid::Uuid::now_v7(), 1, 1);
        c.delivery = delivery;
        c
    };
    let r = handler
        .execute(
            &ctx(1),
            serde_json::json!({"Action": "Create"}),
            serde_json::json!({"Users": [{"Identity": format!("cn={sam},{ou}"), "SamAccountName": sam}]}),
        )
        .await;
    assert_eq!(r.status, StatusType::Complete, "{}", r.exit_data);
    let status = |v: &Value| {
        (
            v["Results"][0]["Statuses"][0]["Status"]
                .as_u64()
                .unwrap_or(0),
            v["Results"][0]["Statuses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s["Message"].as_str().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .unwrap_or_default(),
        )
    };
    let usn = |v: &Value| v["Results"][0]["User"]["Properties"]["uSNChanged"][0].clone();
    // Move: the first delivery moves; the replay (same request, delivery 2) finds it there, changes nothing
    // and says so.
    // One request delivered twice (delivery 1, then its replay as delivery 2, same idempotency key): both
    // answers, each Complete.
    let twice = async |action: &str, params: Value| {
        let key = ctx(1);
        let mut answers = Vec::new();
        for delivery in [1, 2] {
            let c = ActionContext {
                delivery,
                ..key.clone()
            };
            let r = handler
                .execute(&c, serde_json::json!({"Action": action}), params.clone())
                .await;
            assert_eq!(r.status, StatusType::Complete, "{}", r.exit_data);
            answers.push(r.exit_data);
        }
        answers
    };
    let answers = twice(
        "Move",
        serde_json::json!({"Users": [{"Identity": sam, "MoveTo": target}]}),
    )
    .await;
    assert!(status(&answers[0]).1.contains("Moved To"), "{}", answers[0]);
    let (code, message) = status(&answers[1]);
    assert_eq!(code, 1, "{}", answers[1]);
    assert!(message.contains("Is Already In"), "{message}");
    assert_eq!(
        usn(&answers[0]),
        usn(&answers[1]),
        "the replay changed nothing"
    );
    assert_eq!(
        count(target.clone(), format!("(sAMAccountName={sam})")).await,
        1
    );
    assert_eq!(
        count(ou.clone(), format!("(sAMAccountName={sam})")).await,
        0
    );

    // Rename through Modify Name, replayed with the same identity (sAMAccountName): the name is already the
    // new one, so no rename step runs a second time.
    let new_name = format!("{sam} renamed");
    let answers = twice(
        "Modify",
        serde_json::json!({"Users": [{"Identity": sam, "Name": new_name}]}),
    )
    .await;
    assert!(
        status(&answers[0]).1.contains("Renamed To"),
        "{}",
        answers[0]
    );
    assert!(
        !status(&answers[1]).1.contains("Renamed To"),
        "{}",
        answers[1]
    );
    assert_eq!(
        usn(&answers[0]),
        usn(&answers[1]),
        "the replay changed nothing"
    );
    assert_eq!(
        count(target.clone(), format!("(sAMAccountName={sam})")).await,
        1
    );
    assert_eq!(count(target.clone(), format!("(cn={new_name})")).await, 1);
    // A rename whose identity is the old DN: the replay finds nothing under the old name and says so
    // (DoesNotExist); the renamed object stays the only one.
    let old_dn = format!("cn={sam},{target}");
    let r = handler
        .execute(
            &ctx(2),
            serde_json::json!({"Action": "Modify"}),
            serde_json::json!({"Users": [{"Identity": old_dn, "Name": new_name}]}),
        )
        .await;
    assert_eq!(r.status, StatusType::Failed, "{}", r.exit_data);
    assert_eq!(status(&r.exit_data).0, 4, "{}", r.exit_data);
    assert_eq!(
        count(target.clone(), format!("(sAMAccountName={sam})")).await,
        1
    );
}

/// With node workers, plans whose handler (+ RunOn labels) no live node serves are warned about: `/healthz`
/// `PlanWarnings` (live: the warning goes when a matching node comes), the controller's log, and
/// `synapse plan validate --nats` (exit 0; 2 with --strict; "cannot check" when NATS is unreachable).
#[test]
fn nodes_plans_no_live_node_serves_are_warned_about() {
    let nats = Nats::start();
    let work = Work::new("warn");
    std::fs::write(
        work.plans().join("Dc3.yaml"),
        "Name: Dc3\nRunOn: {site: dc3}\nActions:\n- Name: a\n  Handler: {Type: EmptyHandler}\n",
    )
    .unwrap();
    std::fs::write(
        work.plans().join("Anywhere.yaml"),
        "Name: Anywhere\nActions:\n- Name: a\n  Handler: {Type: EmptyHandler}\n",
    )
    .unwrap();
    let mut any = NodeProc::spawn(&nats.url, "w1", "site=dc1", &[], &[], &work.0);
    let serve = Serve::start(&nats.url, &work.plans(), &work.data(), &work.0);
    let expected = "plan Dc3: no live node serves EmptyHandler with labels site=dc3";
    let warnings = |serve: &Serve| {
        let (st, body) = serve.get("/healthz");
        assert_eq!(st, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["PlanWarnings"].clone()
    };
    wait_for("the node in /synapse/nodes", 15, || {
        let (st, body) = serve.get("/synapse/nodes");
        (st == 200 && body.contains("w1")).then_some(())
    });
    assert_eq!(warnings(&serve), serde_json::json!([expected]));
    wait_for("the warning in the log", 15, || {
        serve.log_text().contains(expected).then_some(())
    });

    // The CLI sees the same directory.
    let validate = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_synapse"))
            .args(["plan", "validate", "--plans"])
            .arg(work.plans())
            .args(args)
            .current_dir(&work.0)
            .env_remove("SYNAPSE_NATS_URL")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = validate(&["--nats", &nats.url]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("warning: {expected}")), "{err}");
    assert!(!err.contains("plan Anywhere"), "{err}");
    let (code, err) = validate(&["--nats", &nats.url, "--strict"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = validate(&["--nats", "nats://127.0.0.1:1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("cannot check which handlers can run the plans"),
        "{err}"
    );

    // A node with the label comes: the warning goes.
    let mut dc3 = NodeProc::spawn(&nats.url, "w3", "site=dc3", &[], &[], &work.0);
    wait_for("the warning to go", 15, || {
        (warnings(&serve) == serde_json::json!([])).then_some(())
    });
    let (code, err) = validate(&["--nats", &nats.url, "--strict"]);
    assert_eq!(code, Some(0), "{err}");
    any.stop();
    dc3.stop();
}
