//! The operator around the API (issue 9, "Running server"): live plan reload (directory watch,
//! `POST /synapse/plans/reload`, SIGHUP), the key admin API, readiness, the request log, metrics and `/docs`.
//!
//! `op_*` tests drive the router in process (`tower::ServiceExt::oneshot`) over plans they write into a temp
//! directory; `op_binary_*` tests run `synapse serve` as a child process on a free loopback port. Every wait is
//! bounded.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synapse_controller::config::{ServeConfig, DEFAULT_BODY_LIMIT};
use synapse_controller::store::{hash_token, KeyStore, RedbStore, Stores, TokenRecord};
use synapse_controller::AppState;
use tower::ServiceExt;

use crate::support::dc::random_suffix;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(15);

struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("synapse-op-{prefix}-{}", random_suffix()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    fn check(&self, status: u16, what: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{what}: expected HTTP {status}, got {}: {}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plan that sleeps `ms` and returns `{Version: version}`.
fn versioned(version: u32, ms: u32) -> String {
    format!(
        "Name: V\nActions:\n- Name: a\n  Handler: {{Type: Empty}}\n  Parameters:\n    Values: {{SleepMilliseconds: {ms}, ExitData: {{Version: {version}}}}}\n"
    )
}

struct App {
    router: axum::Router,
    state: Arc<AppState>,
    store: Arc<RedbStore>,
    plans: PathBuf,
    admin: String,
    _dir: TempDir,
}

/// Stores a key with `roles`; returns its secret.
fn key(store: &RedbStore, name: &str, roles: &[&str]) -> String {
    let secret = format!("syn_{name}_{}", random_suffix());
    store
        .put_token(&TokenRecord {
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            created_at: chrono::Utc::now(),
            hash: hash_token(&secret),
            ..TokenRecord::default()
        })
        .unwrap();
    secret
}

fn app(plans: &[(&str, &str)]) -> App {
    let dir = TempDir::new("app");
    let plans_dir = dir.0.join("plans");
    std::fs::create_dir_all(&plans_dir).unwrap();
    for (name, text) in plans {
        std::fs::write(plans_dir.join(name), text).unwrap();
    }
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Arc::new(RedbStore::open(&data.join("synapse.redb")).unwrap());
    let admin = key(&store, "root", &["admin"]);
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        plans: plans_dir.clone(),
        data,
        no_auth: false,
        body_limit: DEFAULT_BODY_LIMIT,
        retention_days: 0,
        sync_timeout_seconds: 30,
        instance_limits: Default::default(),
        ad_routes: Default::default(),
        handlers: Default::default(),
        edge: Default::default(),
        log_format: Default::default(),
        nats: None,
    };
    let state = Arc::new(
        AppState::new(
            &cfg,
            synapse_handlers::builtin_registry(),
            Stores::all_in(store.clone()),
            None,
        )
        .unwrap(),
    );
    App {
        router: synapse_controller::router(state.clone()),
        state,
        store,
        plans: plans_dir,
        admin,
        _dir: dir,
    }
}

impl App {
    async fn call(&self, method: Method, uri: &str, key: Option<&str>, body: &str) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        if !body.is_empty() {
            b = b.header("content-type", "application/json");
        }
        let req = b.body(Body::from(body.to_string())).unwrap();
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.router.clone().oneshot(req))
            .await
            .unwrap_or_else(|_| panic!("{uri}: no response"))
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn admin(&self, method: Method, uri: &str, body: &str) -> Resp {
        self.call(method, uri, Some(&self.admin.clone()), body)
            .await
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.plans.join(name), text).unwrap();
    }

    async fn version(&self, plan: &str) -> Value {
        let v = self
            .admin(
                Method::POST,
                &format!("/synapse/execute/{plan}/start/sync"),
                "",
            )
            .await
            .check(200, plan);
        v["Actions"][0]["ExitData"]["Version"].clone()
    }
}

#[tokio::test]
async fn op_plans_reload_serves_new_and_edited_plans_keeps_last_good_and_running_versions() {
    let v1 = versioned(1, 0);
    let app = app(&[("Versioned.yaml", &v1)]);
    assert_eq!(app.version("Versioned").await, 1);
    // Not there yet.
    app.admin(Method::POST, "/synapse/execute/NewPlan/start/sync", "")
        .await
        .check(404, "before reload");

    // A slow run of version 1 is in flight while the file changes to version 2.
    app.write("Versioned.yaml", &versioned(1, 1500));
    let r = app.admin(Method::POST, "/synapse/plans/reload", "").await;
    let report = r.check(200, "reload");
    assert_eq!(
        report["Changed"],
        serde_json::json!(["Versioned"]),
        "{report}"
    );
    let started = app
        .admin(Method::POST, "/synapse/execute/Versioned/start", "")
        .await
        .check(202, "start");
    let id = started["PlanInstanceId"].as_str().unwrap().to_string();
    app.write("Versioned.yaml", &versioned(2, 0));
    app.write("NewPlan.yaml", &versioned(7, 0));
    let report = app
        .admin(Method::POST, "/synapse/plans/reload", "")
        .await
        .check(200, "reload");
    assert_eq!(report["Added"], serde_json::json!(["NewPlan"]), "{report}");
    assert_eq!(
        report["Changed"],
        serde_json::json!(["Versioned"]),
        "{report}"
    );
    assert_eq!(report["Problems"], serde_json::json!([]), "{report}");
    assert_eq!(app.version("NewPlan").await, 7);
    assert_eq!(app.version("Versioned").await, 2);
    // The running instance finishes with the version it started with.
    let deadline = Instant::now() + WAIT;
    let inst = loop {
        let v = app
            .admin(Method::GET, &format!("/synapse/execute/Versioned/{id}"), "")
            .await
            .check(200, "instance");
        if v["Status"] != "Running" {
            break v;
        }
        assert!(Instant::now() < deadline, "still running: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        inst["Result"]["Actions"][0]["ExitData"]["Version"], 1,
        "{inst:#}"
    );

    // A broken edit: refused, reported, and the last good version keeps serving.
    app.write(
        "Versioned.yaml",
        "Name: V\nActions:\n- Name: a\n  Handler: {Type: Nope}\n",
    );
    app.write("Broken.yaml", "Name: [unclosed\n");
    let report = app
        .admin(Method::POST, "/synapse/plans/reload", "")
        .await
        .check(200, "reload");
    let problems = report["Problems"].as_array().unwrap();
    let kept = problems.iter().find(|p| p["Name"] == "Versioned").unwrap();
    assert_eq!(kept["KeptLastGood"], true, "{report}");
    assert!(
        kept["Message"].as_str().unwrap().contains("Nope"),
        "{report}"
    );
    let broken = problems.iter().find(|p| p["Name"] == "Broken").unwrap();
    assert_eq!(broken["KeptLastGood"], false, "{report}");
    assert_eq!(app.version("Versioned").await, 2);
    let health = app
        .call(Method::GET, "/healthz", None, "")
        .await
        .check(200, "healthz");
    assert_eq!(
        health["PlanReload"]["Problems"].as_array().unwrap().len(),
        2,
        "{health}"
    );
    assert_eq!(health["Plans"], 3, "{health}");
    // Fixed: served, and no longer reported.
    app.write("Versioned.yaml", &versioned(3, 0));
    std::fs::remove_file(app.plans.join("Broken.yaml")).unwrap();
    let report = app
        .admin(Method::POST, "/synapse/plans/reload", "")
        .await
        .check(200, "reload");
    assert_eq!(report["Removed"], serde_json::json!(["Broken"]), "{report}");
    assert_eq!(report["Problems"], serde_json::json!([]), "{report}");
    assert_eq!(app.version("Versioned").await, 3);

    // Reloading is for admins.
    let exec = key(&app.store, "runner", &["execute"]);
    app.call(Method::POST, "/synapse/plans/reload", Some(&exec), "")
        .await
        .check(403, "execute key");
    app.call(Method::POST, "/synapse/plans/reload", None, "")
        .await
        .check(401, "no key");
}

#[tokio::test]
async fn op_plans_directory_watch_reloads_without_a_request() {
    let app = app(&[("Versioned.yaml", &versioned(1, 0))]);
    let catalog: Arc<dyn synapse_controller::reload::Reload> = app.state.catalog.clone();
    let _watch =
        synapse_controller::reload::watch_dir(&app.plans, Duration::from_millis(100), catalog)
            .unwrap();
    app.write("Watched.yaml", &versioned(5, 0));
    app.write("Versioned.yaml", &versioned(2, 0));
    let deadline = Instant::now() + WAIT;
    loop {
        let r = app
            .admin(Method::POST, "/synapse/execute/Watched/start/sync", "")
            .await;
        if r.status == 200 && app.version("Versioned").await == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not reloaded: {}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.version("Watched").await, 5);
}

#[tokio::test]
async fn op_keys_are_managed_live_all_by_admins_own_by_every_key() {
    let app = app(&[("Versioned.yaml", &versioned(1, 0))]);
    let created = app
        .admin(
            Method::POST,
            "/synapse/keys",
            r#"{"Name": "helpdesk", "Roles": ["execute"], "Description": "service desk", "ExpiresInDays": 30}"#,
        )
        .await
        .check(201, "create");
    let helpdesk = created["Secret"].as_str().unwrap().to_string();
    assert!(
        helpdesk.starts_with("syn_") && helpdesk.len() == 68,
        "{created}"
    );
    assert_eq!(created["Key"]["Owner"], "root", "{created}");
    assert_eq!(created["Key"]["Enabled"], true, "{created}");
    assert!(created["Key"]["ExpiresAt"].is_string(), "{created}");
    // It works at once, without a restart.
    assert_eq!(
        app.call(
            Method::POST,
            "/synapse/execute/Versioned/start/sync",
            Some(&helpdesk),
            ""
        )
        .await
        .check(200, "run")["Actions"][0]["ExitData"]["Version"],
        1
    );
    // Listed (never with a secret or hash), with its last use recorded.
    let deadline = Instant::now() + WAIT;
    let all = loop {
        let all = app
            .admin(Method::GET, "/synapse/keys", "")
            .await
            .check(200, "list");
        let h = all
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["Name"] == "helpdesk")
            .cloned()
            .unwrap();
        if h["LastUsedAt"].is_string() {
            break all;
        }
        assert!(Instant::now() < deadline, "LastUsedAt never set: {all}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = all.to_string();
    assert!(
        !text.contains(&helpdesk)
            && !text.contains(&hash_token(&helpdesk))
            && !text.contains("Hash"),
        "{text}"
    );
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["helpdesk", "root"]);
    let one = app
        .admin(Method::GET, "/synapse/keys/helpdesk", "")
        .await
        .check(200, "get");
    assert_eq!(one["Description"], "service desk");

    // All keys are for admins; own keys for every key.
    app.call(Method::GET, "/synapse/keys", Some(&helpdesk), "")
        .await
        .check(403, "list all");
    let own = app
        .call(Method::GET, "/synapse/keys/own", Some(&helpdesk), "")
        .await
        .check(200, "own");
    assert_eq!(own.as_array().unwrap().len(), 1, "{own}");
    let ci = app
        .call(
            Method::POST,
            "/synapse/keys/own",
            Some(&helpdesk),
            r#"{"Name": "helpdesk-ci", "Roles": ["read"]}"#,
        )
        .await
        .check(201, "own create");
    assert_eq!(ci["Key"]["Owner"], "helpdesk");
    let ci = ci["Secret"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::POST,
            "/synapse/keys/own",
            Some(&helpdesk),
            r#"{"Name": "escalate", "Roles": ["admin"]}"#,
        )
        .await;
    assert!(
        r.check(403, "own create above own role")["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("admin"),
        "{}",
        r.text()
    );
    let own = app
        .call(Method::GET, "/synapse/keys/own", Some(&helpdesk), "")
        .await
        .check(200, "own");
    assert_eq!(own.as_array().unwrap().len(), 2, "{own}");
    // A key may not extend its own expiry; it may change its description.
    app.call(
        Method::PATCH,
        "/synapse/keys/own/helpdesk",
        Some(&helpdesk),
        r#"{"ExpiresAt": null}"#,
    )
    .await
    .check(403, "own expiry");
    app.call(
        Method::PATCH,
        "/synapse/keys/own/helpdesk",
        Some(&helpdesk),
        r#"{"Description": "desk"}"#,
    )
    .await
    .check(200, "own description");
    // Someone else's key is not found through /own.
    app.call(
        Method::PATCH,
        "/synapse/keys/own/root",
        Some(&helpdesk),
        r#"{"Enabled": false}"#,
    )
    .await
    .check(404, "not own");

    // Disable own: refused at once; an admin enables it again.
    app.call(Method::GET, "/synapse/execute", Some(&ci), "")
        .await
        .check(200, "ci works");
    app.call(
        Method::PATCH,
        "/synapse/keys/own/helpdesk-ci",
        Some(&helpdesk),
        r#"{"Enabled": false}"#,
    )
    .await
    .check(200, "disable own");
    let r = app
        .call(Method::GET, "/synapse/execute", Some(&ci), "")
        .await;
    assert!(
        r.check(401, "disabled")["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{}",
        r.text()
    );
    app.admin(
        Method::PATCH,
        "/synapse/keys/helpdesk-ci",
        r#"{"Enabled": true}"#,
    )
    .await
    .check(200, "enable");
    app.call(Method::GET, "/synapse/execute", Some(&ci), "")
        .await
        .check(200, "enabled again");

    // Expiry: past is refused.
    app.admin(
        Method::PATCH,
        "/synapse/keys/helpdesk-ci",
        r#"{"ExpiresAt": "2020-01-01T00:00:00Z"}"#,
    )
    .await
    .check(200, "expire");
    let r = app
        .call(Method::GET, "/synapse/execute", Some(&ci), "")
        .await;
    assert!(
        r.check(401, "expired")["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        r.text()
    );
    let k = app
        .admin(
            Method::PATCH,
            "/synapse/keys/helpdesk-ci",
            r#"{"ExpiresAt": null}"#,
        )
        .await
        .check(200, "unexpire");
    assert!(k["ExpiresAt"].is_null() && k["Expired"] == false, "{k}");
    app.call(Method::GET, "/synapse/execute", Some(&ci), "")
        .await
        .check(200, "no expiry");

    // Bad requests name the field; duplicates conflict; `own` is reserved.
    let r = app
        .admin(
            Method::POST,
            "/synapse/keys",
            r#"{"Name": "x", "Roles": ["read"], "Rolez": 1}"#,
        )
        .await;
    assert!(
        r.check(400, "unknown field").to_string().contains("Rolez"),
        "{}",
        r.text()
    );
    let r = app
        .admin(
            Method::POST,
            "/synapse/keys",
            r#"{"Name": "x", "Roles": ["root"]}"#,
        )
        .await;
    assert!(
        r.check(400, "bad role").to_string().contains("Roles"),
        "{}",
        r.text()
    );
    app.admin(
        Method::POST,
        "/synapse/keys",
        r#"{"Name": "own", "Roles": ["read"]}"#,
    )
    .await
    .check(400, "own");
    app.admin(
        Method::POST,
        "/synapse/keys",
        r#"{"Name": "helpdesk", "Roles": ["read"]}"#,
    )
    .await
    .check(409, "dup");

    // Delete: refused from then on.
    app.admin(Method::DELETE, "/synapse/keys/helpdesk-ci", "")
        .await
        .check(204, "delete");
    app.call(Method::GET, "/synapse/execute", Some(&ci), "")
        .await
        .check(401, "deleted");
    app.admin(Method::DELETE, "/synapse/keys/helpdesk-ci", "")
        .await
        .check(404, "delete again");
    app.call(
        Method::DELETE,
        "/synapse/keys/own/helpdesk",
        Some(&helpdesk),
        "",
    )
    .await
    .check(204, "delete self");
    app.call(Method::GET, "/synapse/keys/own", Some(&helpdesk), "")
        .await
        .check(401, "self deleted");
}

// ---------------------------------------------------------------------------------------------------------------
// `synapse serve` as a child process
// ---------------------------------------------------------------------------------------------------------------

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_synapse")
}

/// `synapse` with `args` (no SYNAPSE_* from the environment); (exit code, stdout, stderr).
fn cli(args: &[&str], work: &std::path::Path) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(args)
        .current_dir(work)
        .stdin(std::process::Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SYNAPSE_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `synapse serve` child; killed by PID on drop.
struct Server {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(
        plans: &std::path::Path,
        data: &std::path::Path,
        work: &std::path::Path,
        vars: &[(&str, &str)],
    ) -> Server {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = work.join(format!("serve-{port}.log"));
            let file = std::fs::File::create(&log).unwrap();
            let mut cmd = std::process::Command::new(bin());
            cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--plans")
                .arg(plans)
                .arg("--data")
                .arg(data)
                .current_dir(work)
                .stdin(std::process::Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file);
            for (k, _) in std::env::vars() {
                if k.starts_with("SYNAPSE_") {
                    cmd.env_remove(k);
                }
            }
            for (k, v) in vars {
                cmd.env(k, v);
            }
            let mut server = Server {
                child: cmd.spawn().unwrap(),
                port,
                log,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if let Ok(r) = server.http("GET", "/healthz", None, None).await {
                    if r.status == 200 {
                        return server;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "serve did not come up: {}",
                    server.log_text()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !server.log_text().contains("cannot listen") {
                panic!("serve exited: {}", server.log_text());
            }
        }
        panic!("serve did not come up");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.1 exchange (`Connection: close`), bounded.
    async fn http(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Result<Resp, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = self.port;
        let exchange = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| e.to_string())?;
            let mut req = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            );
            if let Some(k) = key {
                req.push_str(&format!("Authorization: Bearer {k}\r\n"));
            }
            let b = body.unwrap_or("");
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
            let end = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or("no header end")?;
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|s| s.parse().ok())
                .ok_or("bad status")?;
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            Ok(Resp {
                status,
                headers,
                body: raw[end + 4..].to_vec(),
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| "timeout".to_string())?
    }
}

#[tokio::test]
async fn op_binary_token_cli_manages_keys_while_the_server_runs_and_sighup_reloads() {
    let work = TempDir::new("bin");
    let plans = work.0.join("plans");
    let data = work.0.join("data");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::write(plans.join("Versioned.yaml"), versioned(1, 0)).unwrap();
    let data_s = data.to_str().unwrap();
    // The first admin key: on the store, before the server runs.
    let (rc, admin, err) = cli(
        &[
            "token", "create", "--name", "root", "--roles", "admin", "--data", data_s,
        ],
        &work.0,
    );
    assert_eq!(rc, 0, "{err}");
    let admin = admin.trim().to_string();
    let server = Server::start(&plans, &data, &work.0, &[]).await;
    let url = server.url();

    // On the store while the server has it: refused, pointing at --server.
    let (rc, _, err) = cli(&["token", "list", "--data", data_s], &work.0);
    assert_ne!(rc, 0);
    assert!(err.contains("--server"), "{err}");

    // Through the server.
    let remote = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--server".into(),
            url.clone(),
            "--key".into(),
            admin.clone(),
        ]);
        v
    };
    let args = remote(&[
        "token",
        "create",
        "--name",
        "dash",
        "--roles",
        "read",
        "--description",
        "wallboard",
        "--expires-in-days",
        "7",
    ]);
    let (rc, dash, err) = cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &work.0,
    );
    assert_eq!(rc, 0, "{err}");
    let dash = dash.trim().to_string();
    assert!(dash.starts_with("syn_"), "{dash}");
    server
        .http("GET", "/synapse/execute", Some(&dash), None)
        .await
        .unwrap()
        .check(200, "dash works");
    let args = remote(&["token", "list", "--output", "json"]);
    let (rc, out, err) = cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &work.0,
    );
    assert_eq!(rc, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let d = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["Name"] == "dash")
        .unwrap();
    assert_eq!(
        (d["Description"].as_str(), d["Enabled"].as_bool()),
        (Some("wallboard"), Some(true)),
        "{list}"
    );
    let args = remote(&["token", "disable", "--name", "dash"]);
    let (rc, _, err) = cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &work.0,
    );
    assert_eq!(rc, 0, "{err}");
    server
        .http("GET", "/synapse/execute", Some(&dash), None)
        .await
        .unwrap()
        .check(401, "disabled");
    // --own: the calling key and the keys it created.
    let (rc, out, err) = cli(
        &[
            "token", "list", "--own", "--output", "json", "--server", &url, "--key", &admin,
        ],
        &work.0,
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2,
        "{out}"
    );
    let args = remote(&["token", "delete", "--name", "dash"]);
    let (rc, _, err) = cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &work.0,
    );
    assert_eq!(rc, 0, "{err}");
    let args = remote(&["token", "delete", "--name", "dash"]);
    let (rc, _, err) = cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &work.0,
    );
    assert_ne!(rc, 0);
    assert!(err.contains("404") && err.contains("dash"), "{err}");

    // SIGHUP reloads the plans (the watch would too; this checks the signal path).
    std::fs::write(plans.join("Hup.yaml"), versioned(9, 0)).unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + WAIT;
    loop {
        let r = server
            .http(
                "POST",
                "/synapse/execute/Hup/start/sync",
                Some(&admin),
                None,
            )
            .await
            .unwrap();
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not reloaded: {}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.header_check().await);

    // /docs: Swagger UI from the binary, over /openapi.json whose `servers` is this server.
    let page = server.http("GET", "/docs", None, None).await.unwrap();
    page.check(200, "docs");
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert!(
        html.contains("/docs/swagger-ui-bundle.js") && html.contains("/openapi.json"),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "external: {html}"
    );
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let r = server.http("GET", asset, None, None).await.unwrap();
        r.check(200, asset);
        assert!(r.body.len() > 100_000, "{asset}: {} bytes", r.body.len());
    }
    server
        .http("GET", "/docs/nope.js", None, None)
        .await
        .unwrap()
        .check(404, "no asset");
    let doc = server
        .http("GET", "/openapi.json", None, None)
        .await
        .unwrap()
        .check(200, "openapi");
    assert_eq!(
        doc["servers"][0]["url"],
        server.url().as_str(),
        "{}",
        doc["servers"]
    );
    assert!(doc["paths"]["/synapse/keys"].is_object() && doc["paths"]["/readyz"].is_object());
}

impl Server {
    /// Every response carries a request id.
    async fn header_check(&self) -> bool {
        let r = self.http("GET", "/healthz", None, None).await.unwrap();
        r.header("x-request-id").is_some()
    }
}

/// `/readyz` per domain (a wrong bind password: live but not ready, with the error), the request log as JSON
/// lines (route templates, status, key name, request id; never the key), auth failures and route templates in
/// `/metrics` with `# HELP` lines, LDAP pool gauges and per-handler action latency.
#[tokio::test]
async fn op_binary_readiness_request_log_and_metrics() {
    let dc = crate::support::dc::dc();
    let work = TempDir::new("ready");
    let plans = work.0.join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/GetUser.yaml"),
        plans.join("GetUser.yaml"),
    )
    .unwrap();
    let data = work.0.join("data");
    let (rc, admin, err) = cli(
        &[
            "token",
            "create",
            "--name",
            "root",
            "--roles",
            "admin",
            "--data",
            data.to_str().unwrap(),
        ],
        &work.0,
    );
    assert_eq!(rc, 0, "{err}");
    let admin = admin.trim().to_string();
    let wrong = "not-the-password-Zq9";
    let ad = |password: &str| -> Vec<(String, String)> {
        vec![
            ("SYNAPSE_AD_URL".into(), dc.url.clone()),
            ("SYNAPSE_AD_BIND_DN".into(), dc.bind_dn.clone()),
            ("SYNAPSE_AD_PASSWORD".into(), password.to_string()),
            ("SYNAPSE_AD_TLS_INSECURE".into(), "true".into()),
            ("SYNAPSE_LOG_FORMAT".into(), "json".into()),
        ]
    };
    let vars = ad(wrong);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(&plans, &data, &work.0, &vars).await;

    // Live, not ready, with the error, once the start-up check is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let r = server.http("GET", "/readyz", None, None).await.unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        if v["Targets"][0]["CheckedAt"].is_string() {
            assert_eq!(r.status, 503, "{v}");
            break v;
        }
        assert!(Instant::now() < deadline, "never checked: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready["Status"], "not ready", "{ready}");
    let t = &ready["Targets"][0];
    assert_eq!(
        (t["Handler"].as_str(), t["Ready"].as_bool()),
        (Some("ActiveDirectoryHandler"), Some(false)),
        "{ready}"
    );
    assert!(
        t["Error"].as_str().unwrap().contains("Cannot Connect"),
        "{ready}"
    );
    assert!(!ready.to_string().contains(wrong), "{ready}");
    server
        .http("GET", "/healthz", None, None)
        .await
        .unwrap()
        .check(200, "live");
    assert!(
        server.log_text().contains("NOT READY"),
        "{}",
        server.log_text()
    );

    // Requests: refused ones, an AD call that cannot bind.
    server
        .http("GET", "/synapse/execute", None, None)
        .await
        .unwrap()
        .check(401, "no key");
    server
        .http("GET", "/synapse/execute", Some("syn_nope"), None)
        .await
        .unwrap()
        .check(401, "unknown key");
    let r = server
        .http("GET", "/ad/user/Administrator", Some(&admin), None)
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    let rid = r.header("x-request-id").unwrap().to_string();
    // On use: an action that finds the domain unavailable has it checked again within seconds (not 30 s).
    let first_check = ready["Targets"][0]["CheckedAt"].clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v: Value = serde_json::from_slice(
            &server
                .http("GET", "/readyz", None, None)
                .await
                .unwrap()
                .body,
        )
        .unwrap();
        if v["Targets"][0]["CheckedAt"] != first_check {
            assert_eq!(v["Targets"][0]["Ready"], false, "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "not checked again on use: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = server
        .http("GET", "/metrics", None, None)
        .await
        .unwrap()
        .text();
    for needle in [
        "# HELP synapse_http_requests_total",
        "# TYPE synapse_http_requests_total counter",
        "# HELP synapse_auth_failures_total",
        "synapse_auth_failures_total{reason=\"missing_key\"} 1",
        "synapse_auth_failures_total{reason=\"unknown_key\"} 1",
        "route=\"/ad/{object}/{identity}\"",
        "synapse_ready{handler=\"ActiveDirectoryHandler\"",
        "synapse_handler_action_seconds",
    ] {
        assert!(metrics.contains(needle), "{needle} not in:\n{metrics}");
    }
    // The request log: one JSON line per request, without secrets.
    let log = server.log_text();
    assert!(
        !log.contains(&admin) && !log.contains(wrong),
        "a secret in the log:\n{log}"
    );
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let line = lines
        .iter()
        .find(|l| l["request_id"] == rid.as_str())
        .unwrap_or_else(|| panic!("no log line for {rid}:\n{log}"));
    assert_eq!(line["route"], "/ad/{object}/{identity}", "{line}");
    assert_eq!(line["status"], 503, "{line}");
    assert_eq!(line["key"], "root", "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    assert!(line["latency_ms"].is_number(), "{line}");
    let refused = lines
        .iter()
        .filter(|l| l["status"] == 401 && l["route"] == "/synapse/execute")
        .count();
    assert_eq!(refused, 2, "{log}");
    drop(server);

    // The right password: ready, and the pool's gauges are there.
    let vars = ad(&dc.password);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(&plans, &data, &work.0, &vars).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.http("GET", "/readyz", None, None).await.unwrap();
        if r.status == 200 {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["Targets"][0]["Ready"], true, "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
        .http("GET", "/ad/user/Administrator", Some(&admin), None)
        .await
        .unwrap()
        .check(200, "get user");
    // A custom search plan dropped into the plans directory is served without a restart (the watch).
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/GetAllGroups.yaml"),
        plans.join("NewPlan.yaml"),
    )
    .unwrap();
    let body = format!(
        r#"{{"distinguishedname": "CN=Administrator,CN=Users,{}"}}"#,
        dc.base_dn
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let r = server
            .http("POST", "/ad/search/NewPlan", Some(&admin), Some(&body))
            .await
            .unwrap();
        if r.status == 200 {
            assert!(r.text().contains("Administrator"), "{}", r.text());
            break;
        }
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "NewPlan never served: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = server
        .http("GET", "/metrics", None, None)
        .await
        .unwrap()
        .text();
    for needle in [
        "synapse_ldap_pool_connections{handler=\"ActiveDirectoryHandler\"",
        "state=\"idle\"",
        "synapse_ldap_pool_opened_total",
        "synapse_handler_action_seconds_count{handler=\"ActiveDirectoryHandler\",status=\"Complete\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} not in:\n{metrics}");
    }
}

#[tokio::test]
async fn op_plans_reload_of_an_unreadable_directory_swaps_nothing() {
    let app = app(&[("Versioned.yaml", &versioned(4, 0))]);
    let moved = app.plans.with_extension("moved");
    std::fs::rename(&app.plans, &moved).unwrap();
    let report = app
        .admin(Method::POST, "/synapse/plans/reload", "")
        .await
        .check(200, "reload");
    assert!(
        report["Error"]
            .as_str()
            .unwrap()
            .contains("plans directory"),
        "{report}"
    );
    assert_eq!(report["Generation"], 0, "{report}");
    // The last good set keeps serving.
    assert_eq!(app.version("Versioned").await, 4);
    std::fs::rename(&moved, &app.plans).unwrap();
    let report = app
        .admin(Method::POST, "/synapse/plans/reload", "")
        .await
        .check(200, "reload");
    assert!(report["Error"].is_null(), "{report}");
    assert_eq!(
        (report["Generation"].as_u64(), report["Unchanged"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
}
