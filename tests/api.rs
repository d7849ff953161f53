//! The HTTP API.
//!
//! - `api_*`: the router of `synapse_controller`, in process, over small Empty/Echo plans the tests write into a
//!   temp plans directory, with a RedbStore in a temp directory; driven with `tower::ServiceExt::oneshot`.
//! - `binary_*`: `synapse serve` as a child process on a free loopback port, spoken to with a tiny raw HTTP/1.1
//!   client: the AD API against the fixture Samba AD DC (seed 002's examples, statuses, injection), restart after
//!   `kill -9` (running instances become Failed "interrupted") and graceful SIGTERM shutdown.
//!
//! Every request and every wait is bounded; every test has its own temp directories (and OU), so they run in
//! parallel. Servers are killed by PID when their guard drops, whatever happens in the test.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use synapse_controller::config::{ServeConfig, DEFAULT_BODY_LIMIT};
use synapse_controller::http::error::outcome_status;
use synapse_controller::store::{hash_token, KeyStore, RedbStore, Stores, TokenRecord};
use synapse_controller::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::support::dc::{dc, random_suffix};

/// Upper bound of one request (AD calls included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound of waiting for an instance to finish.
const FINISH_TIMEOUT: Duration = Duration::from_secs(15);
/// Upper bound of waiting for a started server's /healthz.
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------------------------

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("synapse-api-{prefix}-{}", random_suffix()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A response, from the router or from the wire.
#[derive(Debug)]
struct Resp {
    status: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status and returns the JSON body (Null when the body is not JSON).
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
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved characters).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `{"Error": {...}}` body of a non-AD error response.
#[track_caller]
fn error_message(r: &Resp) -> String {
    let v = r.json();
    assert_eq!(
        v["Error"]["Status"].as_u64(),
        Some(u64::from(r.status)),
        "error body: {v}"
    );
    v["Error"]["Message"]
        .as_str()
        .unwrap_or_else(|| panic!("no Error.Message: {v}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// In-process router
// ---------------------------------------------------------------------------------------------------------------

const ECHO_PLAN: &str = "\
Name: Echo
Description: Echoes a greeting and its inputs.
Actions:
- Name: echo
  Handler: {Type: Echo}
  Parameters:
    Values:
      Greeting: Hello, ~~name~~!
    Dynamic:
    - {Source: color, Target: Color, Description: A color.}
    - {Source: loud, Target: Loud, DataType: Boolean, Default: {Value: false}}
";

const EMPTY_PLAN: &str = "\
Name: Empty
Description: Returns fixed exit data, after an optional sleep.
Actions:
- Name: first
  Handler: {Type: Empty}
  Parameters:
    Values:
      ExitData: {Answer: 42, Words: [alpha, beta]}
    Dynamic:
    - {Source: sleep, Target: SleepMilliseconds, Description: Milliseconds to sleep first., DataType: Int32}
";

const SLEEP_PLAN: &str = "\
Name: Sleep
Description: Sleeps a minute (cancellably).
Actions:
- Name: nap
  Handler: {Type: Empty}
  Parameters:
    Values: {SleepMilliseconds: 60000, ExitData: {Woke: true}}
";

const INPUTS_PLAN: &str = "\
Name: Inputs
Description: Two required inputs, a restricted option and a number.
Actions:
- Name: check
  Handler: {Type: Echo}
  Parameters:
    Values: {Note: inputs}
    Dynamic:
    - {Source: first, Target: First, Required: true}
    - {Source: second, Target: Second, Required: true}
    - Source: mode
      Target: Mode
      Options: [{Key: fast, Value: Fast}, {Key: slow, Value: Slow}]
      RestrictToOptions: true
    - {Source: count, Target: Count, DataType: Int32}
";

/// A plan shaped like an AD route's (it takes `identity`) whose handler (Empty) has no result body.
const IDENTITY_PLAN: &str = "\
Name: Identity
Actions:
- Name: get
  Handler: {Type: Empty}
  Parameters:
    Values: {ExitData: {Got: ~~identity~~}}
    Dynamic:
    - {Source: dn, Target: Dn}
";

/// The repository's GetAllGroups search plan (an ActiveDirectoryHandler Search; request errors are refused
/// before it reaches a DC).
const GET_ALL_GROUPS_PLAN: &str = include_str!("../plans/GetAllGroups.yaml");

/// The router over the test plans, with its own store and temp directory.
struct App {
    router: axum::Router,
    store: Arc<RedbStore>,
    _dir: TempDir,
}

fn write_plans(dir: &Path, plans: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in plans {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn app_with(no_auth: bool) -> App {
    app_with_ad_routes(no_auth, &[], &[])
}

/// With AD API route -> plan overrides (`AdRoutes`) and more plans.
fn app_with_ad_routes(no_auth: bool, ad_routes: &[(&str, &str)], extra: &[(&str, &str)]) -> App {
    app_with_limits(no_auth, ad_routes, extra, Default::default())
}

/// With instance limits too (tests/api/limits.rs).
fn app_with_limits(
    no_auth: bool,
    ad_routes: &[(&str, &str)],
    extra: &[(&str, &str)],
    instance_limits: synapse_controller::config::InstanceLimits,
) -> App {
    let dir = TempDir::new("app");
    let plans = dir.path().join("plans");
    write_plans(
        &plans,
        &[
            ("Echo.yaml", ECHO_PLAN),
            ("Empty.yaml", EMPTY_PLAN),
            ("Sleep.yaml", SLEEP_PLAN),
            ("Inputs.yaml", INPUTS_PLAN),
        ],
    );
    write_plans(&plans, extra);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Arc::new(RedbStore::open(&data.join("synapse.redb")).unwrap());
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        plans,
        data,
        no_auth,
        body_limit: DEFAULT_BODY_LIMIT,
        retention_days: 0,
        sync_timeout_seconds: 30,
        instance_limits,
        ad_routes: ad_routes
            .iter()
            .map(|(r, p)| (r.to_string(), p.to_string()))
            .collect(),
        handlers: Default::default(),
        edge: Default::default(),
        log_format: Default::default(),
        nats: None,
    };
    let stores = Stores::all_in(store.clone());
    let state = AppState::new(&cfg, synapse_handlers::builtin_registry(), stores, None).unwrap();
    App {
        router: synapse_controller::router(Arc::new(state)),
        store,
        _dir: dir,
    }
}

/// The router without authentication (every caller is `anonymous`, admin).
fn app() -> App {
    app_with(true)
}

impl App {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body.into()).unwrap();
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.router.clone().oneshot(req))
            .await
            .unwrap_or_else(|_| panic!("{uri}: no response within {REQUEST_TIMEOUT:?}"))
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
            .await
            .unwrap_or_else(|_| panic!("{uri}: body not complete within {REQUEST_TIMEOUT:?}"))
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, &[], Body::empty()).await
    }

    async fn post(&self, uri: &str, body: &str) -> Resp {
        self.call(
            Method::POST,
            uri,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    async fn delete(&self, uri: &str) -> Resp {
        self.call(Method::DELETE, uri, &[], Body::empty()).await
    }

    /// Starts a plan async (POST, body) and returns its instance id.
    async fn start(&self, plan: &str, body: &str) -> String {
        let r = self
            .post(&format!("/synapse/execute/{plan}/start/async"), body)
            .await;
        let v = r.check(202, "start/async");
        v["PlanInstanceId"]
            .as_str()
            .unwrap_or_else(|| panic!("no PlanInstanceId: {v}"))
            .to_string()
    }

    /// Polls the instance until it is no longer Running (bounded).
    async fn wait_done(&self, plan: &str, id: &str) -> Value {
        let deadline = Instant::now() + FINISH_TIMEOUT;
        loop {
            let v = self
                .get(&format!("/synapse/execute/{plan}/{id}"))
                .await
                .check(200, "get instance");
            if v["Status"] != "Running" {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{plan}/{id} still running after {FINISH_TIMEOUT:?}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn api_lists_plans_with_a_filter_and_shows_item_and_help() {
    let app = app();
    let all = app.get("/synapse/execute").await.check(200, "list");
    assert_eq!(all, json!(["Echo", "Empty", "Inputs", "Sleep"]));
    let some = app
        .get("/synapse/execute?filter=%5Ee")
        .await
        .check(200, "filter ^e");
    assert_eq!(some, json!(["Echo", "Empty"]), "case-insensitive regex");
    let one = app
        .get("/synapse/execute?filter=SLEEP")
        .await
        .check(200, "filter");
    assert_eq!(one, json!(["Sleep"]));
    let none = app
        .get("/synapse/execute?filter=nothing-matches")
        .await
        .check(200, "filter");
    assert_eq!(none, json!([]));
    let r = app.get("/synapse/execute?filter=%28").await;
    r.check(400, "bad regex");
    assert!(error_message(&r).contains("filter"), "{}", r.text());

    let item = app
        .get("/synapse/execute/echo/item")
        .await
        .check(200, "item (case-insensitive name)");
    assert_eq!(item["Name"], "Echo");
    assert_eq!(item["Actions"][0]["Name"], "echo");

    let help = app
        .get("/synapse/execute/Echo/help")
        .await
        .check(200, "help");
    let names: Vec<&str> = help
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["color", "loud", "name"], "{help:#}");
    let name = &help[2];
    assert_eq!(
        name["Required"], true,
        "a token makes it required: {help:#}"
    );
    assert_eq!(name["Token"], true);
    assert_eq!(help[0]["Description"], "A color.");
    assert_eq!(help[1]["DataType"], "Boolean");

    let r = app.get("/synapse/execute/NoSuchPlan/help").await;
    r.check(404, "help of an unknown plan");
    assert!(error_message(&r).contains("NoSuchPlan"));
}

/// A plan with secrets in its file: values, a config key and a secret parameter's default.
const SECRETS_PLAN: &str = "\
Name: Secrets
Actions:
- Name: call
  Handler:
    Type: Echo
    Config:
      Values: {ApiKey: plan-api-key-1, Url: https://example.invalid}
  Parameters:
    Values:
      Password: plan-password-2
      Properties: {userPassword: plan-password-3, description: kept}
      PasswordNeverExpires: true
    Dynamic:
    - {Source: token, Target: Token, Default: {Value: plan-token-4}}
    - {Source: name, Target: Name, Default: {Value: kept-default}}
";

#[tokio::test]
async fn api_plan_item_and_help_mask_the_plans_secrets() {
    let app = app_with_ad_routes(true, &[], &[("Secrets.yaml", SECRETS_PLAN)]);
    let item = app
        .get("/synapse/execute/Secrets/item")
        .await
        .check(200, "item");
    let help = app
        .get("/synapse/execute/Secrets/help")
        .await
        .check(200, "help");
    for (what, v) in [("item", &item), ("help", &help)] {
        let text = v.to_string();
        for secret in [
            "plan-api-key-1",
            "plan-password-2",
            "plan-password-3",
            "plan-token-4",
        ] {
            assert!(!text.contains(secret), "{what} shows {secret}: {v:#}");
        }
        assert!(
            text.contains("kept"),
            "{what} keeps what is not secret: {v:#}"
        );
    }
    let action = &item["Actions"][0];
    assert_eq!(
        action["Parameters"]["Values"]["Password"], "********",
        "{item:#}"
    );
    assert_eq!(action["Parameters"]["Values"]["PasswordNeverExpires"], true);
    assert_eq!(action["Handler"]["Config"]["Values"]["ApiKey"], "********");
    assert_eq!(
        action["Handler"]["Config"]["Values"]["Url"],
        "https://example.invalid"
    );
}

#[tokio::test]
async fn api_start_async_returns_202_and_the_instance_completes() {
    let app = app();
    for uri in [
        "/synapse/execute/Empty/start/async",
        "/synapse/execute/Empty/start",
    ] {
        let r = app.post(uri, "").await;
        let v = r.check(202, uri);
        let id = v["PlanInstanceId"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 36, "{v}");
        let inst = app.wait_done("Empty", &id).await;
        assert_eq!(inst["Status"], "Complete", "{inst:#}");
        assert_eq!(inst["Id"], id.as_str());
        assert_eq!(inst["Plan"], "Empty");
        assert_eq!(inst["Requester"], "anonymous");
        assert_eq!(inst["RequesterKind"], "Anonymous", "--no-auth");
        assert!(inst["FinishedAt"].is_string(), "{inst:#}");
        assert_eq!(
            inst["Result"]["Actions"][0]["ExitData"],
            json!({"Answer": 42, "Words": ["alpha", "beta"]})
        );
        // One part of the stored result, both path spellings.
        for p in [
            "Actions[0]:ExitData:Answer",
            "Actions[0]:Result:ExitData:Answer",
        ] {
            let part = app
                .get(&format!(
                    "/synapse/execute/Empty/{id}/part?elementPath={}",
                    enc(p)
                ))
                .await
                .check(200, "part");
            assert_eq!(part, json!(42), "{p}");
        }
    }
    // GET starts too (parameters in the query).
    let r = app.get("/synapse/execute/Empty/start/async?sleep=1").await;
    let id = r.check(202, "GET start")["PlanInstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.wait_done("Empty", &id).await["Status"], "Complete");
    // An unknown or malformed instance id.
    let r = app
        .get("/synapse/execute/Empty/0190c1b2-0000-7000-8000-000000000001")
        .await;
    r.check(404, "unknown instance");
    error_message(&r);
    let r = app.get("/synapse/execute/Empty/not-a-uuid").await;
    r.check(400, "malformed instance id");
    assert!(error_message(&r).contains("not-a-uuid"));
}

#[tokio::test]
async fn api_start_sync_returns_the_result_tree_and_path_selects() {
    let app = app();
    let r = app.post("/synapse/execute/Empty/start/sync", "").await;
    let v = r.check(200, "sync");
    assert_eq!(r.header("x-synapse-status"), Some("Complete"));
    assert_eq!(v["Status"], "Complete", "{v:#}");
    assert_eq!(v["PlanName"], "Empty");
    assert_eq!(v["DryRun"], false);
    assert_eq!(v["Actions"][0]["Name"], "first");
    assert_eq!(v["Actions"][0]["Status"], "Complete");
    assert_eq!(v["Actions"][0]["ExitData"]["Answer"], 42);
    // The instance is stored under the id of the result.
    let id = v["InstanceId"].as_str().unwrap();
    let inst = app
        .get(&format!("/synapse/execute/Empty/{id}"))
        .await
        .check(200, "stored instance");
    assert_eq!(inst["Status"], "Complete");

    for (path, want) in [
        (
            "Actions[0]:ExitData",
            json!({"Answer": 42, "Words": ["alpha", "beta"]}),
        ),
        (
            "Actions[0]:Result:ExitData",
            json!({"Answer": 42, "Words": ["alpha", "beta"]}),
        ),
        ("Actions[0]:ExitData:Words[1]", json!("beta")),
        ("Actions[0]:Status", json!("Complete")),
        ("Actions[5]:ExitData", Value::Null),
    ] {
        let got = app
            .get(&format!(
                "/synapse/execute/Empty/start/sync?path={}",
                enc(path)
            ))
            .await
            .check(200, path);
        assert_eq!(got, want, "path={path}");
    }
    // A malformed path is refused before the plan runs.
    let r = app
        .get("/synapse/execute/Empty/start/sync?path=Actions%5B")
        .await;
    r.check(400, "malformed path");
    error_message(&r);
    let n = app
        .get("/synapse/execute/Empty")
        .await
        .check(200, "list")
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 1 + 5, "the bad-path call started nothing");

    // YAML rendering on request.
    let r = app
        .get("/synapse/execute/Empty/start/sync?outputtype=yaml&path=Actions%5B0%5D%3AExitData")
        .await;
    r.check(200, "yaml");
    assert_eq!(r.header("content-type"), Some("application/yaml"));
    assert!(r.text().contains("Answer: 42"), "{}", r.text());
    // A sync call that outlives its timeout answers 202 with the id; the instance keeps running.
    let r = app
        .get("/synapse/execute/Sleep/start/sync?timeoutSeconds=0.2")
        .await;
    let v = r.check(202, "sync timeout");
    assert_eq!(v["Status"], "Running");
    let id = v["PlanInstanceId"].as_str().unwrap().to_string();
    app.delete(&format!("/synapse/execute/Sleep/{id}"))
        .await
        .check(202, "cancel");
    assert_eq!(app.wait_done("Sleep", &id).await["Status"], "Cancelled");
}

#[tokio::test]
async fn api_dynamic_parameters_from_query_and_every_body_form() {
    let app = app();
    let echoed = |v: &Value| v["Actions"][0]["ExitData"]["Parameters"].clone();

    let v = app
        .get("/synapse/execute/Echo/start/sync?name=World&color=red&loud=TRUE&dryRun=false")
        .await
        .check(200, "GET query");
    let p = echoed(&v);
    assert_eq!(p["Greeting"], "Hello, World!", "{v:#}");
    assert_eq!(p["Color"], "red");
    assert_eq!(p["Loud"], true, "DataType Boolean converts");

    for (body, greeting, color, loud) in [
        (
            r#"{"DynamicParameters": {"name": "Ann", "color": "blue"}}"#,
            "Hello, Ann!",
            json!("blue"),
            json!(false),
        ),
        (
            r#"{"name": "Bob", "loud": true}"#,
            "Hello, Bob!",
            Value::Null,
            json!(true),
        ),
        (
            "{name: Cy, color: \"green, dark\"}",
            "Hello, Cy!",
            json!("green, dark"),
            json!(false),
        ),
        (
            "name: Di\ncolor: teal\nloud: false\n",
            "Hello, Di!",
            json!("teal"),
            json!(false),
        ),
        (
            r#"{"NAME": "Eve"}"#,
            "Hello, Eve!",
            Value::Null,
            json!(false),
        ),
    ] {
        let v = app
            .post("/synapse/execute/Echo/start/sync", body)
            .await
            .check(200, body);
        let p = echoed(&v);
        assert_eq!(p["Greeting"], greeting, "{body}: {v:#}");
        assert_eq!(p["Color"], color, "{body}");
        assert_eq!(p["Loud"], loud, "{body}");
    }

    // The inputs are stored with the instance.
    let id = app.start("Echo", r#"{"name": "Stored"}"#).await;
    let inst = app.wait_done("Echo", &id).await;
    assert_eq!(inst["Parameters"]["name"], "Stored", "{inst:#}");

    // A repeated query key (in any letter case) is refused, not "last one wins".
    let r = app
        .get("/synapse/execute/Echo/start/sync?name=a&NAME=b")
        .await;
    r.check(400, "repeated query key");
    assert!(error_message(&r).contains("more than once"), "{}", r.text());

    // POST takes parameters from the body only.
    let r = app
        .post(
            "/synapse/execute/Echo/start/sync?name=Q",
            r#"{"name": "B"}"#,
        )
        .await;
    r.check(400, "query parameter on POST");
    assert!(error_message(&r).contains("'name'"), "{}", r.text());
    // A body that is not a mapping.
    let r = app.post("/synapse/execute/Echo/start/sync", "[1, 2]").await;
    r.check(400, "list body");
    assert!(error_message(&r).contains("mapping"), "{}", r.text());
}

#[tokio::test]
async fn api_unknown_parameter_is_400_naming_it() {
    let app = app();
    let r = app
        .get("/synapse/execute/Echo/start/sync?name=x&colour=red")
        .await;
    r.check(400, "unknown query parameter");
    let m = error_message(&r);
    assert!(m.contains("'colour'"), "{m}");
    assert!(m.contains("color"), "lists what the plan takes: {m}");
    let r = app
        .post(
            "/synapse/execute/Echo/start/async",
            r#"{"name": "x", "bogus": 1, "other": 2}"#,
        )
        .await;
    r.check(400, "unknown body parameters");
    let m = error_message(&r);
    assert!(m.contains("'bogus'") && m.contains("'other'"), "{m}");
    let list = app
        .get("/synapse/execute/Echo")
        .await
        .check(200, "instances");
    assert_eq!(list, json!([]), "nothing was started");
}

#[tokio::test]
async fn api_missing_and_invalid_inputs_are_400_listing_every_problem() {
    let app = app();
    for uri in [
        "/synapse/execute/Inputs/start/sync",
        "/synapse/execute/Inputs/start/async",
    ] {
        let r = app.post(uri, "{mode: medium, count: many}").await;
        r.check(400, uri);
        let v = r.json();
        let m = error_message(&r);
        for name in ["first", "second", "mode", "count"] {
            assert!(m.contains(&format!("'{name}'")), "{name} in {m}");
        }
        let problems = v["Error"]["Problems"]
            .as_array()
            .unwrap_or_else(|| panic!("{v:#}"));
        assert_eq!(problems.len(), 4, "{v:#}");
        let kinds: Vec<&str> = problems
            .iter()
            .map(|p| p["Kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds, ["Missing", "Missing", "Invalid", "Invalid"], "{v:#}");
        let params: Vec<&str> = problems
            .iter()
            .map(|p| p["Parameter"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(params, ["first", "second", "mode", "count"], "{v:#}");
    }
    // A missing token parameter is a problem too.
    let r = app.post("/synapse/execute/Echo/start/sync", "{}").await;
    r.check(400, "missing token");
    assert!(error_message(&r).contains("'name'"));
    let list = app
        .get("/synapse/execute/Inputs")
        .await
        .check(200, "instances");
    assert_eq!(list, json!([]), "nothing was started");
    // And the valid call runs (options map keys to values).
    let v = app
        .post(
            "/synapse/execute/Inputs/start/sync",
            "{first: 1, second: two, mode: fast, count: 3}",
        )
        .await
        .check(200, "valid inputs");
    let p = &v["Actions"][0]["ExitData"]["Parameters"];
    assert_eq!(p["Mode"], "Fast", "{v:#}");
    assert_eq!(p["Count"], 3);
}

#[tokio::test]
async fn api_dry_run_reaches_the_handler() {
    let app = app();
    let v = app
        .get("/synapse/execute/Echo/start/sync?name=x&dryRun=true")
        .await
        .check(200, "dry run GET");
    assert_eq!(v["DryRun"], true, "{v:#}");
    assert_eq!(v["Actions"][0]["ExitData"]["IsDryRun"], true, "{v:#}");
    let v = app
        .post(
            "/synapse/execute/Echo/start/sync?dryrun=1",
            r#"{"name": "x"}"#,
        )
        .await
        .check(200, "dry run POST");
    assert_eq!(v["Actions"][0]["ExitData"]["IsDryRun"], true, "{v:#}");
    let v = app
        .get("/synapse/execute/Echo/start/sync?name=x")
        .await
        .check(200, "no dry run");
    assert_eq!(v["Actions"][0]["ExitData"]["IsDryRun"], false);
    let id = app.start("Echo", r#"{"name": "x"}"#).await;
    assert_eq!(app.wait_done("Echo", &id).await["DryRun"], false);
    let r = app
        .get("/synapse/execute/Echo/start/sync?name=x&dryRun=maybe")
        .await;
    r.check(400, "bad dryRun");
    assert!(error_message(&r).contains("maybe"));
}

#[tokio::test]
async fn api_cancel_a_running_instance() {
    let app = app();
    let id = app.start("Sleep", "").await;
    let inst = app
        .get(&format!("/synapse/execute/Sleep/{id}"))
        .await
        .check(200, "running instance");
    assert_eq!(inst["Status"], "Running", "{inst:#}");
    assert!(inst["FinishedAt"].is_null());
    let started = Instant::now();
    let v = app
        .delete(&format!("/synapse/execute/Sleep/{id}"))
        .await
        .check(202, "cancel");
    assert_eq!(v["PlanInstanceId"], id.as_str());
    let inst = app.wait_done("Sleep", &id).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancellation is prompt"
    );
    assert_eq!(inst["Status"], "Cancelled", "{inst:#}");
    assert_eq!(inst["Result"]["Actions"][0]["Status"], "Cancelled");
    // Cancelling a finished instance is a conflict.
    let r = app.delete(&format!("/synapse/execute/Sleep/{id}")).await;
    r.check(409, "cancel twice");
    assert!(error_message(&r).contains("not running"));
}

/// Splits an SSE text into (event, data) pairs.
fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            (event, data)
        })
        .collect()
}

#[tokio::test]
async fn api_events_stream_progress_and_a_finished_event() {
    let app = app();
    let id = app.start("Empty", r#"{"sleep": 700}"#).await;
    let req = Request::builder()
        .uri(format!("/synapse/execute/Empty/{id}/events"))
        .body(Body::empty())
        .unwrap();
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, app.router.clone().oneshot(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .starts_with("text/event-stream"));
    let mut body = resp.into_body();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + FINISH_TIMEOUT;
    while !text.contains("event: finished") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no finished event within {FINISH_TIMEOUT:?}: {text}"));
        match frame {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    text.push_str(&String::from_utf8_lossy(&d));
                }
            }
            Some(Err(e)) => panic!("stream error: {e}; so far: {text}"),
            None => break,
        }
    }
    let events = sse_events(&text);
    let (last_kind, last_data) = events.last().unwrap_or_else(|| panic!("no events: {text}"));
    assert_eq!(last_kind, "finished", "{text}");
    let last: Value = serde_json::from_str(last_data).unwrap();
    assert_eq!(last["Status"], "Complete", "{text}");
    let progress: Vec<Value> = events
        .iter()
        .filter(|(k, _)| k == "progress")
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        progress
            .iter()
            .any(|p| p["ActionName"] == "first" && p["Status"] == "Complete"),
        "the action's completion is reported: {text}"
    );
    assert!(
        progress.iter().all(|p| p["PlanInstanceId"] == id.as_str()),
        "{text}"
    );
    // The stream ends after the finished event.
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the stream ends after finished");
    assert!(end.is_none(), "nothing after finished");

    // A finished instance: one finished event from the store.
    let r = app
        .get(&format!("/synapse/execute/Empty/{id}/events"))
        .await;
    r.check(200, "events of a finished instance");
    let events = sse_events(&r.text());
    assert_eq!(events.len(), 1, "{}", r.text());
    assert_eq!(events[0].0, "finished");
    assert!(events[0].1.contains("Complete"), "{}", r.text());
}

#[tokio::test]
async fn api_instance_list_pages_newest_first() {
    let app = app();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let v = app
            .post("/synapse/execute/Empty/start/sync", "")
            .await
            .check(200, "sync");
        ids.push(v["InstanceId"].as_str().unwrap().to_string());
    }
    ids.reverse(); // newest first
    let page = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|i| i["Id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = app.get("/synapse/execute/Empty").await.check(200, "list");
    assert_eq!(page(&all), ids);
    assert_eq!(all[0]["Status"], "Complete");
    assert!(all[0].get("Result").is_none(), "summaries only: {all:#}");

    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    for round in 0..5 {
        let uri = match &before {
            None => "/synapse/execute/Empty?limit=2".to_string(),
            Some(b) => format!("/synapse/execute/Empty?limit=2&before={b}"),
        };
        let got = page(&app.get(&uri).await.check(200, &uri));
        assert!(got.len() <= 2, "{uri}: {got:?}");
        if got.is_empty() {
            break;
        }
        assert!(round < 3, "three pages hold five instances");
        before = got.last().cloned();
        seen.extend(got);
    }
    assert_eq!(seen, ids, "pages are disjoint, complete and newest first");
    // Another plan's list is separate; bad paging values are 400.
    assert_eq!(
        app.get("/synapse/execute/Echo").await.check(200, "list"),
        json!([])
    );
    for uri in [
        "/synapse/execute/Empty?limit=many",
        "/synapse/execute/Empty?before=yesterday",
    ] {
        let r = app.get(uri).await;
        r.check(400, uri);
        error_message(&r);
    }
    let r = app.get("/synapse/execute/NoSuchPlan").await;
    r.check(404, "list of an unknown plan");
}

#[tokio::test]
async fn api_unknown_route_and_plan_are_404_and_wrong_method_405_with_a_json_error() {
    let app = app();
    for (method, uri) in [
        (Method::GET, "/no/such/route"),
        (Method::GET, "/synapse/execute/NoSuchPlan/item"),
        (Method::POST, "/synapse/execute/NoSuchPlan/start/sync"),
        (Method::POST, "/synapse/execute/NoSuchPlan/start/async"),
        (Method::GET, "/synapse/execute/NoSuchPlan/start/sync"),
    ] {
        let r = app.call(method.clone(), uri, &[], Body::empty()).await;
        r.check(404, uri);
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("application/json"),
            "{uri}: {:?}",
            r.headers
        );
        let m = error_message(&r);
        assert!(!m.is_empty());
        assert!(r.header("x-request-id").is_some(), "{uri}");
    }
    let r = app.get("/no/such/route").await;
    assert!(error_message(&r).contains("/no/such/route"));
    // A known route with a wrong method: 405, same JSON error body.
    let r = app.delete("/synapse/execute/Echo/item").await;
    r.check(405, "DELETE on item");
    assert!(error_message(&r).contains("DELETE"), "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    let r = app.get("/synapse/execute/NoSuchPlan/item").await;
    assert!(error_message(&r).contains("NoSuchPlan"));
}

#[tokio::test]
async fn api_malformed_json_and_yaml_are_400_with_line_and_column() {
    let app = app();
    for (body, line) in [
        ("{\"name\": \"x\",\n \"color\": [1, 2}", 2),
        ("{\"name\": \"x\" \"color\": \"y\"}", 1),
        ("name: x\ncolor: [unclosed\nloud: true\n", 0),
        ("name: 'unterminated\n", 0),
        ("{name: x, color: {a: b}\n", 0),
    ] {
        let r = app.post("/synapse/execute/Echo/start/sync", body).await;
        r.check(400, body);
        let m = error_message(&r);
        assert!(
            m.contains("line ") && m.contains("column "),
            "{body:?}: {m}"
        );
        if line > 0 {
            assert!(m.contains(&format!("line {line},")), "{body:?}: {m}");
        }
    }
    // Not UTF-8.
    let r = app
        .call(
            Method::POST,
            "/synapse/execute/Echo/start/sync",
            &[],
            vec![0xff_u8, 0xfe, 0x00],
        )
        .await;
    r.check(400, "not UTF-8");
    assert!(error_message(&r).contains("UTF-8"));
}

/// Hostile input: a body nested deeper than the limit (64) is a 400 naming the limit, refused before any parser
/// sees it (the 100,000-deep array took 38-54 s in the YAML parser), on every route that reads a body.
#[tokio::test]
async fn api_deeply_nested_bodies_are_400_naming_the_limit() {
    let app = app_with_ad_routes(true, &[], &[("GetAllGroups.yaml", GET_ALL_GROUPS_PLAN)]);
    let n = 100_000;
    let arrays = format!("{{\"name\":{}{}}}", "[".repeat(n), "]".repeat(n));
    let objects = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    assert!(objects.len() > 600_000);
    let yaml_dashes = format!("name:\n{}x\n", "- ".repeat(n));
    let limit = "nested deeper than 64 levels (the nesting limit)";
    for (uri, body) in [
        ("/synapse/execute/Echo/start/sync", &arrays),
        ("/synapse/execute/Echo/start/async", &objects),
        ("/synapse/execute/Echo/start/sync", &yaml_dashes),
    ] {
        let started = Instant::now();
        let r = app.post(uri, body).await;
        r.check(400, uri);
        let m = error_message(&r);
        assert!(m.contains(limit), "{m}");
        // Generous bound: the defect was 38+ s; the mechanism (refused before parsing) is asserted above.
        assert!(started.elapsed() < Duration::from_secs(10), "{uri}");
    }
    for (uri, body) in [
        ("/ad/search", &arrays),
        ("/ad/search/GetAllGroups", &objects),
        ("/ad/user/cn=x,dc=sandbox,dc=local", &arrays),
    ] {
        let v = app.post(uri, body).await.check(400, uri);
        assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
        assert!(v.to_string().contains(limit), "{v}");
    }
    let id = app.start("Empty", "{}").await;
    app.wait_done("Empty", &id).await;
    let r = app
        .post(&format!("/synapse/execute/Empty/{id}/part"), &arrays)
        .await;
    r.check(400, "part");
    assert!(error_message(&r).contains(limit));
}

/// Request bodies only with JSON or YAML content types (or none): a browser can send `text/plain`, form and
/// multipart bodies cross-site without a preflight, so those are 415 (CSRF), before anything runs.
#[tokio::test]
async fn api_bodies_need_a_json_or_yaml_content_type() {
    let app = app();
    let body = r#"{"name": "csrf"}"#;
    for t in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = app
            .call(
                Method::POST,
                "/synapse/execute/Echo/start/sync",
                &[("content-type", t)],
                body,
            )
            .await;
        r.check(415, t);
        let m = error_message(&r);
        assert!(m.contains(t) && m.contains("application/json"), "{m}");
        let v = app
            .call(
                Method::POST,
                "/ad/user/cn=csrf,dc=sandbox,dc=local",
                &[("content-type", t)],
                "{Enabled: true}",
            )
            .await
            .check(415, t);
        assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
        assert!(v.to_string().contains("application/yaml"), "{v}");
        // Also where the body is ignored (membership: the CSRF report put a user in Domain Admins).
        let v = app
            .call(
                Method::POST,
                "/ad/user/csrf/group/Domain%20Admins",
                &[("content-type", t), ("content-length", "3")],
                "x=1",
            )
            .await
            .check(415, t);
        assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
    }
    for t in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "application/yaml",
        "application/x-yaml",
        "text/yaml",
        "text/x-yaml",
    ] {
        let v = app
            .call(
                Method::POST,
                "/synapse/execute/Echo/start/sync",
                &[("content-type", t)],
                "name: yaml",
            )
            .await
            .check(200, t);
        assert_eq!(v["Status"], "Complete", "{t}: {v}");
    }
    // No content type: accepted (a browser cannot send a body without one cross-site).
    app.call(Method::POST, "/synapse/execute/Echo/start/sync", &[], body)
        .await
        .check(200, "no content type");
    // The document lists the 415 on the routes that read a body.
    let doc = synapse_controller::openapi::document();
    for (path, op) in [
        ("/synapse/execute/{plan}/start/sync", "post"),
        ("/synapse/execute/{plan}/{id}/part", "post"),
        ("/ad/search", "post"),
        ("/ad/search/{plan}", "post"),
    ] {
        assert!(
            doc["paths"][path][op]["responses"]["415"].is_object(),
            "{op} {path}: no 415 in the document"
        );
    }
    // Nothing to refuse in an empty body.
    app.call(
        Method::POST,
        "/synapse/execute/Empty/start/sync",
        &[("content-type", "text/plain")],
        "",
    )
    .await
    .check(200, "empty text/plain body");
}

/// A key given twice is ambiguous, in a body (`name`/`name`, `name`/`Name`, YAML `name`/`NAME`) as in a query
/// string, and so is a key given in both the query string and the body, or a body key for what the URL gives.
#[tokio::test]
async fn api_duplicate_keys_are_400_naming_the_key() {
    let app = app_with_ad_routes(true, &[], &[("GetAllGroups.yaml", GET_ALL_GROUPS_PLAN)]);
    for (body, key) in [
        (r#"{"name":"a","name":"b"}"#, "name"),
        (r#"{"name":"a","Name":"b"}"#, "Name"),
        ("name: a\nNAME: b\n", "NAME"),
        (
            r#"{"DynamicParameters": {"color": "red", "COLOR": "blue"}}"#,
            "COLOR",
        ),
    ] {
        let r = app.post("/synapse/execute/Echo/start/sync", body).await;
        r.check(400, body);
        let m = error_message(&r);
        assert!(
            m.contains(&format!("key '{key}' is given more than once")),
            "{body}: {m}"
        );
    }
    let v = app
        .post(
            "/ad/search/GetAllGroups?distinguishedname=cn=a,dc=x",
            r#"{"distinguishedname": "cn=b,dc=x"}"#,
        )
        .await
        .check(400, "query and body");
    assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
    assert!(
        v.to_string()
            .contains("'distinguishedname' is given in both the query string and the body"),
        "{v}"
    );
    let v = app
        .post("/ad/search?filter=(cn=a)", r#"{"Filter": "(cn=b)"}"#)
        .await
        .check(400, "search query and body");
    assert!(v.to_string().contains("'Filter' is given twice"), "{v}");
    let v = app
        .post(
            "/ad/search/GetAllGroups",
            r#"{"distinguishedname": "cn=a,dc=x", "DistinguishedName": "cn=b,dc=x"}"#,
        )
        .await
        .check(400, "body twice");
    assert!(v.to_string().contains("is given more than once"), "{v}");
    let v = app
        .post(
            "/ad/user/cn=a,dc=sandbox,dc=local",
            r#"{"Identity": "cn=b,dc=sandbox,dc=local"}"#,
        )
        .await
        .check(400, "identity in the body");
    assert!(
        v.to_string()
            .contains("body key 'Identity' is ambiguous: the identity comes from the URL"),
        "{v}"
    );
}

/// A NUL in a token value is refused by the LDAP escapers (400 InvalidInput naming the parameter), as the
/// identity routes refuse it, instead of reaching the DC (whose "Indexed and full searches both failed!" was a
/// 500).
#[tokio::test]
async fn api_nul_in_an_ldap_token_is_400_naming_the_parameter() {
    let app = app_with_ad_routes(true, &[], &[("GetAllGroups.yaml", GET_ALL_GROUPS_PLAN)]);
    let v = app
        .post(
            "/ad/search/GetAllGroups",
            &json!({"distinguishedname": "cn=x\u{0}y,dc=sandbox,dc=local"}).to_string(),
        )
        .await
        .check(400, "NUL in distinguishedname");
    assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
    assert_eq!(v["Problems"][0]["Kind"], "Invalid", "{v}");
    assert_eq!(v["Problems"][0]["Parameter"], "distinguishedname", "{v}");
    assert!(v.to_string().contains("NUL"), "{v}");
}

#[tokio::test]
async fn api_body_over_one_mebibyte_is_413() {
    let app = app();
    let frame = r#"{"name": ""}"#.len();
    // Exactly at the limit: accepted.
    let at = format!(
        r#"{{"name": "{}"}}"#,
        "x".repeat(DEFAULT_BODY_LIMIT - frame)
    );
    assert_eq!(at.len(), DEFAULT_BODY_LIMIT);
    let r = app.post("/synapse/execute/Echo/start/async", &at).await;
    r.check(202, "a body of exactly 1 MiB");
    // One byte over: 413, with the JSON error body.
    let over = format!(
        r#"{{"name": "{}"}}"#,
        "x".repeat(DEFAULT_BODY_LIMIT - frame + 1)
    );
    let r = app.post("/synapse/execute/Echo/start/sync", &over).await;
    r.check(413, "1 MiB + 1");
    assert!(error_message(&r).contains("1048576"), "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    // Also when the length is not announced up front (a stream).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..17).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let r = app
        .call(Method::POST, "/synapse/execute/Echo/start/sync", &[], body)
        .await;
    r.check(413, "streamed 1.06 MiB");
    // On the AD routes the same message comes in an envelope (Status 14 InvalidInput).
    let v = app
        .post("/ad/user/cn=x,dc=sandbox,dc=local", &over)
        .await
        .check(413, "AD create, 1 MiB + 1");
    assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
    assert!(v.to_string().contains("larger than 1048576 bytes"), "{v}");
    let v = app
        .post("/ad/search", &over)
        .await
        .check(413, "AD search, 1 MiB + 1");
    assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
}

/// One reading of boolean query flags on every route, and `timeoutSeconds` read like a plan's `Timeout`.
#[tokio::test]
async fn api_query_flags_read_the_same_everywhere() {
    let app = app_with_ad_routes(
        true,
        &[("GetUser", "Identity")],
        &[("Identity.yaml", IDENTITY_PLAN)],
    );
    for uri in [
        "/synapse/execute/Echo/start/sync?name=x&prettyprint=maybe",
        "/synapse/execute/Echo/start?name=x&dryRun=maybe",
    ] {
        let r = app.get(uri).await;
        r.check(400, uri);
        assert!(
            error_message(&r).contains("'maybe' is not true or false"),
            "{uri}"
        );
    }
    for uri in [
        "/ad/user/mfox?prettyprint=maybe",
        "/ad/user/mfox?DRYRUN=maybe",
    ] {
        let v = app.get(uri).await.check(400, uri);
        assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{v}");
        assert!(
            v.to_string().contains("'maybe' is not true or false"),
            "{uri}: {v}"
        );
    }
    // Pretty output with `?prettyprint` (no value) and `1`, compact with `0`.
    let r = app
        .get("/synapse/execute/Empty/start/sync?prettyprint")
        .await;
    assert!(
        r.check(200, "pretty").is_object() && r.text().contains("\n  "),
        "{}",
        r.text()
    );
    let r = app
        .get("/synapse/execute/Empty/start/sync?PrettyPrint=0")
        .await;
    r.check(200, "compact");
    assert!(!r.text().contains('\n'), "{}", r.text());
    // Seconds, fractions, or a unit; zero and nonsense are refused.
    let r = app
        .get("/synapse/execute/Sleep/start/sync?timeoutSeconds=150ms")
        .await;
    assert_eq!(r.check(202, "150ms")["Status"], "Running");
    for (t, says) in [
        ("0", "must be positive"),
        ("soon", "invalid duration 'soon'"),
    ] {
        let uri = format!("/synapse/execute/Empty/start/sync?timeoutSeconds={t}");
        let r = app.get(&uri).await;
        r.check(400, &uri);
        assert!(error_message(&r).contains(says), "{uri}: {}", r.text());
    }
}

#[tokio::test]
async fn api_every_response_has_a_request_id() {
    let app = app_with(false);
    let cases: Vec<(Method, &str, Body, u16)> = vec![
        (Method::GET, "/healthz", Body::empty(), 200),
        (Method::GET, "/openapi.json", Body::empty(), 200),
        (Method::GET, "/no/such/route", Body::empty(), 404),
        (Method::GET, "/synapse/execute", Body::empty(), 401),
        (Method::GET, "/metrics", Body::empty(), 404),
    ];
    let mut seen = Vec::new();
    for (method, uri, body, status) in cases {
        let r = app.call(method, uri, &[], body).await;
        r.check(status, uri);
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{uri}: no x-request-id: {:?}", r.headers))
            .to_string();
        assert!(!id.is_empty());
        seen.push(id);
    }
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "every request gets its own id");

    // With a key: success, 400, 413 and 404 all carry it; a caller's id is kept.
    let secret = "syn_request_id_test_key";
    put_key(&app, "rid", "execute", secret);
    let auth = format!("Bearer {secret}");
    for (method, uri, body, status) in [
        (Method::GET, "/synapse/execute", String::new(), 200),
        (
            Method::POST,
            "/synapse/execute/Empty/start/sync",
            String::new(),
            200,
        ),
        (
            Method::POST,
            "/synapse/execute/Echo/start/sync",
            "{bad".to_string(),
            400,
        ),
        (
            Method::POST,
            "/synapse/execute/Echo/start/sync",
            "x".repeat(DEFAULT_BODY_LIMIT + 1),
            413,
        ),
        (
            Method::GET,
            "/synapse/execute/Nope/help",
            String::new(),
            404,
        ),
    ] {
        let r = app
            .call(
                method.clone(),
                uri,
                &[("authorization", &auth), ("x-request-id", "caller-id-42")],
                body,
            )
            .await;
        r.check(status, uri);
        assert_eq!(r.header("x-request-id"), Some("caller-id-42"), "{uri}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The OpenAPI document against the router
// ---------------------------------------------------------------------------------------------------------------

/// What the router does with a request, as far as routing goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Routing {
    /// A route took it (whatever the handler or the auth layer answered).
    Served,
    /// The path is a route, the method is not (405).
    WrongMethod,
    /// No route (the 404 fallback).
    NoRoute,
}

/// The documented paths as segments, with their methods (upper case). `/myriad` serves the `/ad` paths again
/// (described in the document's text, not listed), so they are added here.
fn documented_routes(doc: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let methods: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| synapse_controller::openapi::check::METHODS.contains(&m.as_str()))
            .map(|m| m.to_ascii_uppercase())
            .collect();
        let segments: Vec<String> = path.split('/').skip(1).map(str::to_string).collect();
        if segments[0] == "ad" {
            let mut alias = segments.clone();
            alias[0] = "myriad".into();
            out.push((alias, methods.clone()));
        }
        out.push((segments, methods));
    }
    out
}

fn is_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// What the documented routes say about `path`: the route axum would pick (a static segment wins over a
/// parameter, from the left), then whether it has the method (GET routes also answer HEAD).
fn expected_routing(
    routes: &[(Vec<String>, Vec<String>)],
    path: &[String],
    method: &str,
) -> Routing {
    let best = routes
        .iter()
        .filter(|(t, _)| {
            t.len() == path.len() && t.iter().zip(path).all(|(t, p)| is_param(t) || t == p)
        })
        .max_by_key(|(t, _)| t.iter().map(|s| !is_param(s)).collect::<Vec<bool>>());
    match best {
        None => Routing::NoRoute,
        Some((_, methods)) => {
            let has = methods.iter().any(|m| m == method)
                || (method == "HEAD" && methods.iter().any(|m| m == "GET"));
            if has {
                Routing::Served
            } else {
                Routing::WrongMethod
            }
        }
    }
}

/// The router serves exactly the routes its OpenAPI document lists (and `/myriad` the `/ad` ones): every
/// documented path and method is served, every other method on it is a 405, and paths next to the documented
/// ones (each parameter replaced by every literal segment of the document, one segment more, one less) are
/// routed the way the document says. Without a key, a served protected route answers 401 before any handler
/// runs; the 404 fallback says "no route for".
#[tokio::test]
async fn api_openapi_documents_exactly_the_served_routes() {
    let app = app_with(false);
    let doc = app.get("/openapi.json").await.check(200, "openapi.json");
    let routes = documented_routes(&doc);
    assert!(routes.len() > 25, "{} routes", routes.len());
    let mut literals: Vec<String> = routes
        .iter()
        .flat_map(|(t, _)| t.iter().filter(|s| !is_param(s)).cloned())
        .collect();
    literals.push("x".into());
    literals.sort();
    literals.dedup();
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    for (template, _) in &routes {
        let plain: Vec<String> = template
            .iter()
            .map(|s| if is_param(s) { "x".into() } else { s.clone() })
            .collect();
        for (i, s) in template.iter().enumerate() {
            if is_param(s) {
                for l in &literals {
                    let mut p = plain.clone();
                    p[i] = l.clone();
                    paths.push(p);
                }
            }
        }
        for l in &literals {
            let mut longer = plain.clone();
            longer.push(l.clone());
            paths.push(longer);
        }
        paths.push(plain[..plain.len() - 1].to_vec());
        paths.push(plain);
    }
    for l in &literals {
        paths.push(vec![l.clone()]);
    }
    paths.sort();
    paths.dedup();
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
    ];
    let mut wrong = Vec::new();
    let mut served = 0;
    for path in &paths {
        let uri = format!("/{}", path.join("/"));
        for method in methods {
            let want = expected_routing(&routes, path, method);
            let r = app
                .call(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &uri,
                    &[],
                    Body::empty(),
                )
                .await;
            // HEAD answers carry no body: there the fallback's JSON content type tells it from /metrics'
            // plain-text 404.
            let fallback = r.text().contains("no route for")
                || (method == "HEAD" && r.header("content-type") == Some("application/json"));
            let got = match r.status {
                405 => Routing::WrongMethod,
                404 if fallback => Routing::NoRoute,
                _ => Routing::Served,
            };
            if got == Routing::Served {
                served += 1;
            }
            if got != want {
                wrong.push(format!(
                    "{method} {uri}: the document says {want:?}, the router {got:?} ({} {})",
                    r.status,
                    r.text()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(served > 100, "{served} served requests");
}

/// Responses of the in-process router have the shapes the document gives for their operation and status.
#[tokio::test]
async fn api_responses_match_the_document() {
    let app = app();
    let doc = app.get("/openapi.json").await.check(200, "openapi.json");
    let check = |r: &Resp, method: &str, template: &str| {
        let v: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{method} {template}: not JSON ({e}): {}", r.text()));
        let mut resp = &doc["paths"][template][method]["responses"][r.status.to_string()];
        if let Some(name) = resp["$ref"].as_str() {
            resp = doc.pointer(name.trim_start_matches('#')).unwrap();
        }
        let schema = &resp["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template}: no JSON schema documented for {}: {}",
            r.status,
            r.text()
        );
        let errors = synapse_controller::openapi::check::check_value(&doc, schema, &v);
        assert!(
            errors.is_empty(),
            "{method} {template} {}: {v}\n{}",
            r.status,
            errors.join("\n")
        );
    };
    let r = app.get("/healthz").await;
    check(&r, "get", "/healthz");
    check(
        &app.get("/synapse/execute").await,
        "get",
        "/synapse/execute",
    );
    check(
        &app.get("/synapse/execute?filter=(").await,
        "get",
        "/synapse/execute",
    );
    for plan in ["Echo", "Inputs"] {
        for (what, template) in [
            ("help", "/synapse/execute/{plan}/help"),
            ("item", "/synapse/execute/{plan}/item"),
        ] {
            let r = app.get(&format!("/synapse/execute/{plan}/{what}")).await;
            r.check(200, what);
            check(&r, "get", template);
        }
    }
    check(
        &app.get("/synapse/execute/Nope/help").await,
        "get",
        "/synapse/execute/{plan}/help",
    );
    let id = app.start("Echo", r#"{"name": "Bob"}"#).await;
    app.wait_done("Echo", &id).await;
    let r = app.post("/synapse/execute/Echo/start/async", "{}").await;
    check(&r, "post", "/synapse/execute/{plan}/start/async");
    for r in [
        app.get(&format!("/synapse/execute/Echo/{id}")).await,
        app.get("/synapse/execute/Echo/not-an-id").await,
    ] {
        check(&r, "get", "/synapse/execute/{plan}/{id}");
    }
    let r = app.get("/synapse/execute/Echo?limit=5").await;
    r.check(200, "list");
    check(&r, "get", "/synapse/execute/{plan}");
    let r = app.delete(&format!("/synapse/execute/Echo/{id}")).await;
    r.check(409, "cancel a finished instance");
    check(&r, "delete", "/synapse/execute/{plan}/{id}");
    let r = app
        .post(
            &format!("/synapse/execute/Echo/{id}/part"),
            r#"{"ElementPaths": ["Status", "Actions[0]:Status"]}"#,
        )
        .await;
    r.check(200, "part");
    check(&r, "post", "/synapse/execute/{plan}/{id}/part");
    for (body, status) in [(r#"{"name": "Bob"}"#, 200), (r#"{"nope": 1}"#, 400)] {
        let r = app.post("/synapse/execute/Echo/start/sync", body).await;
        r.check(status, body);
        check(&r, "post", "/synapse/execute/{plan}/start/sync");
    }
    let r = app
        .post("/synapse/execute/Inputs/start/sync", r#"{"count": "x"}"#)
        .await;
    r.check(400, "missing and invalid inputs");
    check(&r, "post", "/synapse/execute/{plan}/start/sync");
    let r = app
        .post("/synapse/execute/Sleep/start/sync?timeoutSeconds=0.05", "")
        .await;
    let still = r.check(202, "still running");
    check(&r, "post", "/synapse/execute/{plan}/start/sync");
    let sleeping = still["PlanInstanceId"].as_str().unwrap().to_string();
    let r = app
        .delete(&format!("/synapse/execute/Sleep/{sleeping}"))
        .await;
    r.check(202, "cancel");
    check(&r, "delete", "/synapse/execute/{plan}/{id}");
    // AD routes answer request errors as envelopes even without a domain controller.
    for (method, uri, template, status) in [
        ("get", "/ad/printer/x", "/ad/{object}/{identity}", 404),
        ("post", "/ad/user/x", "/ad/{object}/{identity}", 400),
        ("delete", "/ad/user/x", "/ad/{object}/{identity}", 404),
        (
            "post",
            "/ad/ou/x/group/y",
            "/ad/{object}/{identity}/group/{group}",
            400,
        ),
        ("post", "/ad/search/Nope", "/ad/search/{plan}", 404),
        ("post", "/ad/search", "/ad/search", 400),
        ("get", "/ad/search/Nope/help", "/ad/search/{plan}/help", 404),
    ] {
        let r = app
            .call(
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap(),
                uri,
                &[],
                "{not: [valid",
            )
            .await;
        r.check(status, uri);
        check(&r, method, template);
    }
    let with_keys = app_with(false);
    for (uri, template) in [
        ("/synapse/execute", "/synapse/execute"),
        ("/ad/user/mfox", "/ad/{object}/{identity}"),
    ] {
        let r = with_keys.get(uri).await;
        r.check(401, uri);
        check(&r, "get", template);
    }
}

fn put_key(app: &App, name: &str, roles: &str, secret: &str) {
    app.store
        .put_token(&TokenRecord {
            name: name.to_string(),
            roles: roles
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect(),
            created_at: chrono::Utc::now(),
            hash: hash_token(secret),
            ..TokenRecord::default()
        })
        .unwrap();
}

#[tokio::test]
async fn api_auth_keys_and_roles() {
    let app = app_with(false);
    put_key(&app, "reader", "read", "syn_reader_secret");
    put_key(&app, "runner", "execute", "syn_runner_secret");
    put_key(&app, "boss", "admin", "syn_boss_secret");
    let with = |secret: &'static str| format!("Bearer {secret}");

    // No key, an unknown key, a malformed header: 401 with WWW-Authenticate.
    for auth in [
        None,
        Some("Bearer syn_unknown".to_string()),
        Some("Basic dXNlcjpwYXNz".to_string()),
        Some("Bearer ".to_string()),
    ] {
        for (method, uri) in [
            (Method::GET, "/synapse/execute"),
            (Method::POST, "/synapse/execute/Empty/start/sync"),
            (Method::GET, "/ad/user/someone"),
        ] {
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            let r = app.call(method, uri, &headers, Body::empty()).await;
            r.check(401, &format!("{uri} with {auth:?}"));
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            if uri.starts_with("/ad/") {
                // AD API clients get the envelope, also for refusals.
                let v = r.json();
                assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 8, "{v}");
            } else {
                error_message(&r);
            }
        }
    }

    // read: GET yes, POST/DELETE no.
    let reader = with("syn_reader_secret");
    let h = [("authorization", reader.as_str())];
    app.call(Method::GET, "/synapse/execute", &h, Body::empty())
        .await
        .check(200, "read GET");
    app.call(Method::GET, "/synapse/execute/Echo/help", &h, Body::empty())
        .await
        .check(200, "read GET help");
    let r = app
        .call(
            Method::POST,
            "/synapse/execute/Empty/start/sync",
            &h,
            Body::empty(),
        )
        .await;
    r.check(403, "read POST");
    assert!(error_message(&r).contains("reader"), "{}", r.text());
    for uri in [
        "/synapse/execute/Empty/start",
        "/synapse/execute/Empty/start/async",
        "/synapse/execute/Empty/start/sync",
    ] {
        app.call(Method::GET, uri, &h, Body::empty())
            .await
            .check(403, "read may not start a plan through GET");
    }
    assert_eq!(
        app.get("/synapse/execute/Empty").await.status,
        401,
        "no key"
    );

    // execute: both; the key's name is the requester.
    let runner = with("syn_runner_secret");
    let h = [("authorization", runner.as_str())];
    app.call(Method::GET, "/synapse/execute", &h, Body::empty())
        .await
        .check(200, "execute GET");
    let r = app
        .call(
            Method::POST,
            "/synapse/execute/Echo/start/sync",
            &h,
            r#"{"name": "x"}"#,
        )
        .await;
    let v = r.check(200, "execute POST");
    assert_eq!(
        v["Actions"][0]["ExitData"]["RequestUser"], "runner",
        "{v:#}"
    );
    let id = r.json()["InstanceId"].as_str().unwrap().to_string();

    // read may GET the instance but not cancel anything. The record names the principal that started it.
    let h = [("authorization", reader.as_str())];
    let v = app
        .call(
            Method::GET,
            &format!("/synapse/execute/Echo/{id}"),
            &h,
            Body::empty(),
        )
        .await
        .check(200, "read GET instance");
    assert_eq!(v["Requester"], "runner", "{v:#}");
    assert_eq!(v["RequesterKind"], "ApiKey", "{v:#}");
    let r = app
        .call(
            Method::DELETE,
            &format!("/synapse/execute/Echo/{id}"),
            &h,
            Body::empty(),
        )
        .await;
    r.check(403, "read DELETE");
    assert!(
        error_message(&r).contains("needs the CancelInstances permission"),
        "{}",
        r.text()
    );
    // Routes that only read are open to read keys whatever their method: POST .../part selects parts of a
    // result, POST /ad/search searches (here it gets past the permission check to the missing Search plan).
    let v = app
        .call(
            Method::POST,
            &format!("/synapse/execute/Echo/{id}/part"),
            &h,
            r#"{"ElementPaths": ["Status"]}"#,
        )
        .await
        .check(200, "read POST part");
    assert_eq!(v, "Complete");
    let v = app
        .call(Method::POST, "/ad/search", &h, r#"{"Filter": "(cn=x)"}"#)
        .await
        .check(404, "read POST /ad/search reaches the route");
    assert!(v.to_string().contains("no plan named 'Search'"), "{v}");
    let v = app
        .call(Method::POST, "/ad/user/cn=x,dc=y", &h, "{}")
        .await
        .check(403, "read may not change the directory");
    assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 8, "{v}");
    assert!(v.to_string().contains("RunAdWrites"), "{v}");

    // admin: everything; `bearer` in lower case works too.
    let h = [("authorization", "bearer syn_boss_secret")];
    let v = app
        .call(
            Method::POST,
            "/synapse/execute/Echo/start/sync",
            &h,
            r#"{"name": "x"}"#,
        )
        .await
        .check(200, "admin POST");
    assert_eq!(v["Actions"][0]["ExitData"]["RequestUser"], "boss");

    // Open routes.
    let v = app.get("/healthz").await.check(200, "healthz");
    assert_eq!(v["Status"], "ok");
    assert_eq!(v["Plans"], 4);
    assert_eq!(v["InvalidPlans"], json!([]));
    app.get("/openapi.json").await.check(200, "openapi");
    app.get("/metrics")
        .await
        .check(404, "metrics without a recorder (None in process)");
}

/// Every protected route declares a permission where it is registered: a key without roles is refused (403) on
/// every route and method the OpenAPI document lists (and on the `/myriad` twins of the `/ad` routes), before
/// the route runs. A key whose stored role this version does not know is refused everywhere too.
#[tokio::test]
async fn api_every_route_declares_a_permission() {
    let app = app_with(false);
    put_key(&app, "nobody", "", "syn_nobody_secret");
    app.store
        .put_token(&TokenRecord {
            name: "legacy".into(),
            roles: vec!["superuser".into()],
            created_at: chrono::Utc::now(),
            hash: hash_token("syn_legacy_secret"),
            ..TokenRecord::default()
        })
        .unwrap();
    let doc = app.get("/openapi.json").await.check(200, "openapi");
    let paths = doc["paths"].as_object().unwrap();
    let concrete = |template: &str| -> String {
        template
            .split('/')
            .map(|seg| match seg {
                "{plan}" => "Echo",
                "{id}" => "0190c1b2-0000-7000-8000-000000000001",
                s if s.starts_with('{') => "x",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut checked = 0;
    for (template, item) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            let Some(op) = item.get(method) else { continue };
            if op["security"] == json!([]) {
                continue; // open: /healthz, /metrics, /openapi.json
            }
            let mut uris = vec![concrete(template)];
            if let Some(rest) = template.strip_prefix("/ad/") {
                uris.push(concrete(&format!("/myriad/{rest}")));
            }
            for uri in uris {
                let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                for (secret, expect) in [
                    ("syn_nobody_secret", "that needs the"),
                    ("syn_legacy_secret", "unknown role 'superuser'"),
                ] {
                    let auth = format!("Bearer {secret}");
                    let r = app
                        .call(m.clone(), &uri, &[("authorization", &auth)], "{}")
                        .await;
                    let what = format!("{m} {uri} with {secret}");
                    let v = r.check(403, &what);
                    let message = if uri.starts_with("/synapse/") {
                        error_message(&r)
                    } else {
                        assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 8, "{what}: {v}");
                        v["Results"][0]["Statuses"][0]["Message"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    };
                    assert!(message.contains(expect), "{what}: {message}");
                    // The document names the permission the route declares, and the refusal names it too.
                    if secret == "syn_nobody_secret" {
                        let permission = op["x-permission"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{what}: no x-permission in {op}"));
                        assert!(message.contains(permission), "{what}: {message}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} routes checked");
}

/// The AD routes know plans only through handler descriptors: a custom search must be a search by its first
/// action's descriptor, a plan whose handler has no result body answers 500 in an envelope, and request errors
/// are envelopes of the ActiveDirectoryHandler's descriptor.
#[tokio::test]
async fn api_ad_routes_work_from_handler_descriptors() {
    // NeedsDn is AD-route-shaped too, and requires `dn`.
    const NEEDS_DN_PLAN: &str = "\
Name: NeedsDn
Actions:
- Name: get
  Handler: {Type: Empty}
  Parameters:
    Values: {ExitData: {Got: ~~identity~~, Dn: ~~dn~~}}
";
    let app = app_with_ad_routes(
        true,
        &[("GetUser", "Identity"), ("GetGroup", "NeedsDn")],
        &[
            ("Identity.yaml", IDENTITY_PLAN),
            ("NeedsDn.yaml", NEEDS_DN_PLAN),
        ],
    );
    let status_of = |v: &Value| v["Results"][0]["Statuses"][0]["Status"].clone();
    // Echo's descriptor calls its actions writes: not a search.
    let v = app
        .post("/ad/search/Echo", "{}")
        .await
        .check(400, "not a search");
    assert_eq!(status_of(&v), 14, "{v}");
    assert_eq!(v["Results"][0]["Identity"], "Echo");
    assert!(v.to_string().contains("is not a search"), "{v}");
    let v = app
        .post("/ad/search/NoSuchSearch", "{}")
        .await
        .check(404, "unknown search");
    assert_eq!(status_of(&v), 4, "{v}");
    // GetUser runs Identity, whose handler (Empty) has no result body of its own.
    let v = app.get("/ad/user/mfox").await.check(500, "no envelope");
    assert_eq!(status_of(&v), 0, "{v}");
    assert!(v.to_string().contains("no result envelope"), "{v}");
    assert_eq!(v["Results"][0]["Identity"], "mfox");
    // Missing inputs: Status 2 with the Problems beside the results.
    let v = app.get("/ad/group/g1").await.check(400, "dn missing");
    assert_eq!(status_of(&v), 2, "{v}");
    assert_eq!(v["Problems"][0]["Kind"], "Missing", "{v}");
    assert_eq!(v["Results"][0]["Identity"], "g1");
}

/// The controller maps handler outcome classes to HTTP (`outcome_status`); for every AD Status code that gives
/// exactly the status the controller gave the AD envelope before it worked from descriptors (docs/decisions.md
/// "HTTP status of AD API responses").
#[test]
fn api_outcome_classes_map_to_the_ad_http_statuses() {
    use synapse_engine::{HandlerDescriptor, StatusType};
    use synapse_handlers::ad::descriptor::AdDescriptor;
    use synapse_handlers::ad::envelope::AdStatus;
    let before = |s: AdStatus| -> u16 {
        match s {
            AdStatus::Success => 200,
            AdStatus::DoesNotExist => 404,
            AdStatus::AlreadyExists => 409,
            AdStatus::MissingInput
            | AdStatus::InvalidInput
            | AdStatus::InvalidName
            | AdStatus::InvalidAttribute
            | AdStatus::InvalidPath
            | AdStatus::InvalidContainer
            | AdStatus::PasswordPolicyNotMet
            | AdStatus::MultipleMatches => 400,
            AdStatus::NotAllowed => 403,
            AdStatus::NotSupported => 501,
            AdStatus::ConnectionError => 503,
            AdStatus::Unknown => 500,
        }
    };
    let d = AdDescriptor::default();
    let mut seen = std::collections::BTreeSet::new();
    for code in 0u8..=14 {
        let status: AdStatus = serde_json::from_value(json!(code)).unwrap();
        assert_eq!(status.code(), code);
        seen.insert(code);
        // The worst status of the envelope decides, whatever the engine status says.
        let envelope = json!({"Results": [{"Statuses": [{"Status": 1}, {"Status": code}]}]});
        for engine_status in [StatusType::Complete, StatusType::Failed] {
            let class = d.outcome(engine_status, &envelope);
            assert_eq!(
                outcome_status(class).as_u16(),
                before(status),
                "{status:?} ({class:?})"
            );
        }
    }
    assert_eq!(seen.len(), 15, "every AdStatus code");
}

// ---------------------------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------------------------

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_synapse")
}

fn repo_plans() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans")
}

/// `synapse token create`: the key printed on stdout.
fn create_key(data: &Path, work: &Path, name: &str, roles: &str) -> String {
    let out = Command::new(bin())
        .args([
            "token", "create", "--name", name, "--roles", roles, "--data",
        ])
        .arg(data)
        .current_dir(work)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("syn_") && !key.contains('\n'), "{key:?}");
    key
}

/// A free loopback port (bound, then released: `serve` retries on the rare race).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange (`Connection: close`, read to EOF), bounded by `limit`.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    limit: Duration,
) -> Result<Resp, String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        if let Some(k) = key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        } else if method != "GET" {
            req.push_str("Content-Length: 0\r\n");
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        parse_response(&raw)
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| format!("{method} {path}: no answer within {limit:?}"))?
}

fn parse_response(raw: &[u8]) -> Result<Resp, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {:?}", String::from_utf8_lossy(raw)))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A `synapse serve` child process; killed (SIGKILL, by PID) and reaped on drop.
struct Server {
    child: Child,
    port: u16,
    key: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `synapse serve` and waits (bounded) for /healthz. `ad`: point it at the fixture DC.
    async fn start(plans: &Path, data: &Path, work: &Path, key: &str, ad: bool) -> Server {
        Server::start_with(plans, data, work, key, ad, &[]).await
    }

    /// `start` with more `SYNAPSE_*` variables.
    async fn start_with(
        plans: &Path,
        data: &Path,
        work: &Path,
        key: &str,
        ad: bool,
        vars: &[(&str, &str)],
    ) -> Server {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = work.join(format!("serve-{port}.log"));
            let file = std::fs::File::create(&log).unwrap();
            let mut cmd = Command::new(bin());
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
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
            for (k, v) in vars {
                cmd.env(k, v);
            }
            if ad {
                let dc = dc();
                cmd.env("SYNAPSE_AD_URL", &dc.url)
                    .env("SYNAPSE_AD_BIND_DN", &dc.bind_dn)
                    .env("SYNAPSE_AD_PASSWORD", &dc.password)
                    .env("SYNAPSE_AD_TLS_INSECURE", "true")
                    .env("SYNAPSE_AD_ALIASES", "SANDBOX");
            }
            let mut server = Server {
                child: cmd.spawn().unwrap(),
                port,
                key: key.to_string(),
                log,
            };
            match server.wait_healthy().await {
                Ok(()) => return server,
                Err(e) if e.contains("cannot listen") => last = e,
                Err(e) => panic!("synapse serve did not come up: {e}"),
            }
        }
        panic!("synapse serve did not come up: {last}");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + HEALTHY_TIMEOUT;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!("exited ({st}): {}", self.log_text()));
            }
            if let Ok(r) = http(
                self.port,
                "GET",
                "/healthz",
                None,
                None,
                Duration::from_secs(2),
            )
            .await
            {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no healthy /healthz within {HEALTHY_TIMEOUT:?}: {}",
                    self.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn req(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        http(
            self.port,
            method,
            path,
            Some(&self.key),
            body,
            REQUEST_TIMEOUT,
        )
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\nserver log:\n{}", self.log_text()))
    }

    async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None).await
    }

    async fn post(&self, path: &str, body: &str) -> Resp {
        self.req("POST", path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &str) -> Resp {
        self.req("PUT", path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None).await
    }

    /// Waits (bounded) for the process to exit on its own.
    async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "synapse serve still running {limit:?} after the signal: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A server on the repo's plans with an `execute` key, pointed at the fixture DC.
async fn ad_server(work: &TempDir) -> Server {
    let data = work.path().join("data");
    let key = create_key(&data, work.path(), "api-test", "execute");
    Server::start(&repo_plans(), &data, work.path(), &key, true).await
}

/// (Status, Message) of every status in an AD envelope.
#[track_caller]
fn ad_statuses(env: &Value) -> Vec<(u64, String)> {
    env["Results"]
        .as_array()
        .unwrap_or_else(|| panic!("no Results: {env:#}"))
        .iter()
        .flat_map(|r| {
            r["Statuses"]
                .as_array()
                .unwrap_or_else(|| panic!("no Statuses: {env:#}"))
                .iter()
                .map(|s| {
                    (
                        s["Status"].as_u64().unwrap(),
                        s["Message"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect()
}

/// Asserts that an AD envelope has the shape the OpenAPI document gives (`AdEnvelope`: the controller
/// describes the handler's envelope without importing it, so real envelopes from the DC keep it honest).
#[track_caller]
fn ad_conforms(env: &Value, what: &str) {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(synapse_controller::openapi::document);
    let schema = json!({"$ref": "#/components/schemas/AdEnvelope"});
    let errors = synapse_controller::openapi::check::check_value(doc, &schema, env);
    assert!(
        errors.is_empty(),
        "{what}: the envelope does not fit AdEnvelope of the OpenAPI document:\n{}\n{env:#}",
        errors.join("\n")
    );
}

/// Asserts the HTTP status and that every envelope status is `code`; returns the envelope.
#[track_caller]
fn ad_check(r: &Resp, http_status: u16, code: u64, what: &str) -> Value {
    let env = r.check(http_status, what);
    if env.is_object() {
        ad_conforms(&env, what);
    }
    let st = ad_statuses(&env);
    assert!(
        !st.is_empty() && st.iter().all(|(c, _)| *c == code),
        "{what}: expected Status {code}, got {st:?}: {env:#}"
    );
    env
}

/// The DNs of a search envelope's rows, lower-case and sorted.
#[track_caller]
fn search_dns(env: &Value) -> Vec<String> {
    let rows = &env["Results"][0]["SearchResults"]["Results"];
    let mut dns: Vec<String> = rows
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r["DistinguishedName"]
                        .as_str()
                        .or_else(|| r["Properties"]["distinguishedName"][0].as_str())
                        .unwrap_or_else(|| panic!("row without a DN: {r:#}"))
                        .to_lowercase()
                })
                .collect()
        })
        .unwrap_or_default();
    dns.sort();
    dns
}

fn sorted_lower(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_lowercase()).collect();
    v.sort();
    v
}

/// Seed 002's Create User body, as written there (unquoted keys), with `mfox` replaced by the test's name.
const SEED_USER_BODY: &str = r#"{
  Password: "bi@02LL49_VWQ{b",
  GivenName: "Michael",
  Surname: "Fox",
  Description: "American Actor, Back to the Future.",
  UserPrincipalName: "mfox@sandbox.local",
  SamAccountName: "mfox",
  DisplayName: "Michael J. Fox",
  EmailAddress: "mfox@company.com",
  VoiceTelephoneNumber: "1-800-555-1212",
  EmployeeId: "42",
  Enabled: true,
  AccountExpirationDate: "2017-10-10T16:35:46.0417954Z",
  SmartcardLogonRequired: true,
  DelegationPermitted: true,
  HomeDirectory: "C:\\Temp",
  ScriptPath: "C:\\Temp\\Scripts",
  PasswordNotRequired: false,
  PasswordNeverExpires: true,
  UserCannotChangePassword: false,
  AllowReversiblePasswordEncryption: true,
  HomeDrive: "F:"
}"#;

/// Seed 002's Create Group body (its tab included), `mfox` replaced.
const SEED_GROUP_BODY: &str = "{
  Description: \"Famous Actors and Actresses\",
  Scope: \"Universal\",
  IsSecurityGroup: \"true\",
  ManagedBy: mfox,
  Properties: {
\t\"info\": [ \"Group of famous actors and actresses.\" ]
  }
}";

/// Seed 002's Create OU body without ManagedBy (the OU is created before the user it would name).
const SEED_OU_BODY: &str = r#"{
  Description: "Hello World",
  Properties: {
  	"postalCode": [ "90210" ]
  }
}"#;

const LEAN: &str = "returnobjectproperties=false";

#[tokio::test]
async fn binary_ad_create_user_stores_properties_secrets_masked_and_the_user_gets_them() {
    let work = TempDir::new("secretprops");
    let srv = ad_server(&work).await;
    let ou = dc().unique_ou("api-secretprops").await;
    let sam = format!("sp{}", &random_suffix()[..8]);
    let dn = format!("cn={sam},{ou}");
    let password = "Prop-Secret-9!xQ";
    let body = json!({
        "SamAccountName": sam,
        "Password": "Typed-Secret-7!zR",
        "Properties": {"userPassword": password, "info": "kept-info"}
    })
    .to_string();
    ad_check(
        &srv.post(&format!("/ad/user/{}?{LEAN}", enc(&dn)), &body)
            .await,
        200,
        1,
        "create user with Properties userPassword",
    );
    // The user got the value (read independently).
    let pool = dc().pool().await;
    let found = pool
        .search(
            &dn,
            synapse_handlers::ldap::Scope::Base,
            "(objectClass=user)",
            &["info", "userPassword"],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the user exists");
    let value = |name: &str| {
        found[0]
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first().cloned())
    };
    assert_eq!(value("info").as_deref(), Some("kept-info"));
    // Samba keeps userPassword as an attribute (no dSHeuristics password support): the value arrived intact.
    assert_eq!(
        value("userPassword").as_deref(),
        Some(password),
        "{:?}",
        found[0].attrs
    );
    // The instance record (read back through the API) holds masks only.
    let list = srv
        .get("/synapse/execute/CreateUser?limit=50")
        .await
        .check(200, "list");
    let mut seen = false;
    for i in list.as_array().unwrap() {
        let id = i["Id"].as_str().unwrap();
        let rec = srv
            .get(&format!("/synapse/execute/CreateUser/{id}"))
            .await
            .check(200, "instance");
        let text = rec["Parameters"].to_string();
        if !text.contains(&sam) {
            continue;
        }
        seen = true;
        assert!(
            !text.contains(password),
            "Properties' userPassword stored in clear: {text}"
        );
        assert!(
            !text.contains("Typed-Secret-7"),
            "Password stored in clear: {text}"
        );
        assert!(
            text.contains("kept-info"),
            "the rest of Properties is kept: {text}"
        );
        assert!(
            !rec.to_string().contains(password),
            "nowhere in the record: {rec}"
        );
    }
    assert!(seen, "the instance is listed: {list}");
}

#[tokio::test]
async fn binary_ad_api_walks_the_seed_examples() {
    let work = TempDir::new("seed");
    let srv = ad_server(&work).await;
    let base = dc().unique_ou("api-seed").await;
    let sfx = &random_suffix()[..6];
    let ou = format!("ou=Synapse-{sfx},{base}");
    let sam = format!("mf{sfx}");
    let user_dn = format!("cn={sam},{ou}");
    let upn = format!("{sam}@sandbox.local");
    let famous = format!("FamousActors-{sfx}");
    let famous_dn = format!("cn={famous},{ou}");
    let all = format!("AllActors-{sfx}");
    let all_dn = format!("cn={all},{ou}");

    // Create the OU (POST /ad/ou/{dn}).
    let env = ad_check(
        &srv.post(&format!("/ad/ou/{}", enc(&ou)), SEED_OU_BODY)
            .await,
        200,
        1,
        "create OU",
    );
    let o = &env["Results"][0]["OrganizationalUnit"];
    assert_eq!(o["Description"], "Hello World", "{env:#}");
    assert_eq!(o["Properties"]["postalCode"], json!(["90210"]), "{env:#}");
    assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 2);

    // Create the user with the seed's body.
    let body = SEED_USER_BODY.replace("mfox", &sam);
    let env = ad_check(
        &srv.post(&format!("/ad/user/{}?{LEAN}", enc(&user_dn)), &body)
            .await,
        200,
        1,
        "create user (seed body)",
    );
    let user = env["Results"][0]["User"].clone();
    assert_eq!(env["Results"][0]["Type"], 1);
    assert_eq!(user["GivenName"], "Michael", "{env:#}");
    assert_eq!(user["SamAccountName"], sam.as_str());
    assert_eq!(user["UserPrincipalName"], upn.as_str());
    assert_eq!(user["Enabled"], true);
    assert_eq!(user["HomeDirectory"], "C:\\Temp");
    let sid = user["Sid"].as_str().unwrap().to_string();
    let guid = user["Guid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");
    assert_eq!(guid.len(), 36, "{guid}");

    // Get it by name, DN, SID, GUID, UPN and DOMAIN\name (the twin route).
    for id in [&sam, &user_dn, &sid, &guid, &upn] {
        let env = ad_check(
            &srv.get(&format!("/ad/user/{}?{LEAN}", enc(id))).await,
            200,
            1,
            &format!("get user by {id}"),
        );
        let u = &env["Results"][0]["User"];
        assert_eq!(
            u["DistinguishedName"].as_str().unwrap().to_lowercase(),
            user_dn.to_lowercase(),
            "by {id}"
        );
        assert_eq!(u["Sid"], sid.as_str());
        assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 1);
    }
    ad_check(
        &srv.get(&format!("/ad/user/SANDBOX/{}?{LEAN}", enc(&sam)))
            .await,
        200,
        1,
        "get user by SANDBOX/name",
    );
    // returnobjects=false: the status without the object.
    let env = ad_check(
        &srv.get(&format!("/ad/user/{}?returnobjects=false", enc(&sam)))
            .await,
        200,
        1,
        "get without object",
    );
    assert!(env["Results"][0]["User"].is_null(), "{env:#}");

    // Create the groups (the seed's body for FamousActors: ManagedBy the user, Properties info).
    let env = ad_check(
        &srv.post(
            &format!("/ad/group/{}?{LEAN}", enc(&famous_dn)),
            &SEED_GROUP_BODY.replace("mfox", &sam),
        )
        .await,
        200,
        1,
        "create group (seed body)",
    );
    let g = &env["Results"][0]["Group"];
    assert_eq!(env["Results"][0]["Type"], 2);
    assert_eq!(g["Description"], "Famous Actors and Actresses", "{env:#}");
    assert_eq!(g["IsSecurityGroup"], true, "{env:#}");
    ad_check(
        &srv.post(
            &format!("/ad/group/{}?{LEAN}", enc(&all_dn)),
            r#"{Description: "All actors", Scope: Universal}"#,
        )
        .await,
        200,
        1,
        "create group AllActors",
    );
    let env = ad_check(
        &srv.get(&format!("/ad/group/{}", enc(&famous))).await,
        200,
        1,
        "get group",
    );
    let g = &env["Results"][0]["Group"];
    assert_eq!(
        g["Properties"]["info"],
        json!(["Group of famous actors and actresses."]),
        "{env:#}"
    );
    assert!(
        g["Properties"]["managedBy"][0]
            .as_str()
            .unwrap_or_default()
            .eq_ignore_ascii_case(&user_dn),
        "{env:#}"
    );

    let member_of = |env: &Value| -> bool {
        let groups = env["Results"][0]["User"]["Groups"]
            .to_string()
            .to_lowercase();
        groups.contains(&famous.to_lowercase())
    };
    let groups_of_user = || async {
        let r = srv
            .get(&format!(
                "/ad/user/{}?{LEAN}&returngroupmembership=true",
                enc(&sam)
            ))
            .await;
        ad_check(&r, 200, 1, "get user with groups")
    };

    // Add and remove membership: /group/ form by name, then the seed's two-segment form by UPN and DN.
    let env = ad_check(
        &srv.post(
            &format!("/ad/user/{}/group/{}?{LEAN}", enc(&sam), enc(&famous)),
            "",
        )
        .await,
        200,
        1,
        "add user to group",
    );
    assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 64);
    assert!(member_of(&groups_of_user().await), "added");
    let env = ad_check(
        &srv.delete(&format!(
            "/ad/user/{}/group/{}?{LEAN}",
            enc(&sam),
            enc(&famous)
        ))
        .await,
        200,
        1,
        "remove user from group",
    );
    assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 128);
    assert!(!member_of(&groups_of_user().await), "removed");
    ad_check(
        &srv.post(
            &format!("/ad/user/{}/{}?{LEAN}", enc(&upn), enc(&famous_dn)),
            "",
        )
        .await,
        200,
        1,
        "add user to group (seed's two-segment form)",
    );
    assert!(member_of(&groups_of_user().await), "added again");

    // Group to group (seed's two-segment form, by name).
    ad_check(
        &srv.post(
            &format!("/ad/group/{}/{}?{LEAN}", enc(&famous), enc(&all)),
            "",
        )
        .await,
        200,
        1,
        "add group to group",
    );

    // POST /ad/search with the seed's body shape.
    let search = json!({
        "Filter": "(objectClass=User)",
        "SearchBase": ou,
        "ReturnAttributes": ["name", "objectGUID", "objectSid", "distinguishedName", "dSCorePropagationData"]
    })
    .to_string();
    let env = ad_check(&srv.post("/ad/search", &search).await, 200, 1, "search");
    assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 256);
    assert_eq!(search_dns(&env), sorted_lower(&[&user_dn]), "{env:#}");
    let row = &env["Results"][0]["SearchResults"]["Results"][0];
    assert_eq!(row["Properties"]["name"], json!([sam.clone()]), "{env:#}");
    assert_eq!(row["Properties"]["objectSid"], json!([sid.clone()]));
    assert_eq!(row["Properties"]["objectGUID"], json!([guid.clone()]));
    let env = ad_check(
        &srv.post(
            "/ad/search",
            &json!({"Filter": "(objectClass=group)", "SearchBase": ou, "ReturnAttributes": ["cn"]})
                .to_string(),
        )
        .await,
        200,
        1,
        "search groups",
    );
    assert_eq!(
        search_dns(&env),
        sorted_lower(&[&famous_dn, &all_dn]),
        "{env:#}"
    );

    // The GetAllGroups custom search: the user and both groups (one of them through nesting).
    let env = ad_check(
        &srv.post(
            "/ad/search/GetAllGroups",
            &json!({"distinguishedname": user_dn}).to_string(),
        )
        .await,
        200,
        1,
        "GetAllGroups",
    );
    assert_eq!(
        search_dns(&env),
        sorted_lower(&[&user_dn, &famous_dn, &all_dn]),
        "{env:#}"
    );
    let help = srv
        .get("/ad/search/GetAllGroups/help")
        .await
        .check(200, "custom search help");
    assert_eq!(help["Plan"], "GetAllGroups", "{help:#}");
    assert!(help["Description"].as_str().unwrap_or_default().len() > 10);
    let dn_param = help["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Name"] == "distinguishedname")
        .unwrap_or_else(|| panic!("{help:#}"));
    assert_eq!(dn_param["Required"], true);

    // Remove the nesting (two-segment DELETE) and the membership: GetAllGroups finds only the user.
    ad_check(
        &srv.delete(&format!("/ad/group/{}/{}?{LEAN}", enc(&famous), enc(&all)))
            .await,
        200,
        1,
        "remove group from group",
    );
    ad_check(
        &srv.delete(&format!("/ad/user/{}/{}?{LEAN}", enc(&sid), enc(&famous)))
            .await,
        200,
        1,
        "remove user from group (two-segment, by SID)",
    );
    let env = ad_check(
        &srv.post(
            "/ad/search/GetAllGroups",
            &json!({"distinguishedname": user_dn}).to_string(),
        )
        .await,
        200,
        1,
        "GetAllGroups after removal",
    );
    assert_eq!(search_dns(&env), sorted_lower(&[&user_dn]), "{env:#}");

    // Modify (PUT) then delete everything; gone afterwards.
    ad_check(
        &srv.put(
            &format!("/ad/user/{}?{LEAN}", enc(&sam)),
            r#"{Description: "Changed"}"#,
        )
        .await,
        200,
        1,
        "modify user",
    );
    let env = ad_check(
        &srv.get(&format!("/ad/user/{}?{LEAN}", enc(&sam))).await,
        200,
        1,
        "get modified",
    );
    assert_eq!(env["Results"][0]["User"]["Description"], "Changed");
    assert_eq!(
        env["Results"][0]["User"]["GivenName"], "Michael",
        "untouched"
    );
    for (object, id) in [
        ("user", &user_dn),
        ("group", &famous_dn),
        ("group", &all_dn),
    ] {
        let env = ad_check(
            &srv.delete(&format!("/ad/{object}/{}", enc(id))).await,
            200,
            1,
            &format!("delete {id}"),
        );
        assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 8);
        ad_check(
            &srv.get(&format!("/ad/{object}/{}", enc(id))).await,
            404,
            4,
            &format!("{id} is gone"),
        );
    }
    ad_check(
        &srv.delete(&format!("/ad/ou/{}", enc(&ou))).await,
        200,
        1,
        "delete OU",
    );
}

#[tokio::test]
async fn binary_ad_api_statuses_map_to_http_statuses() {
    let work = TempDir::new("statuses");
    let srv = ad_server(&work).await;
    let base = dc().unique_ou("api-status").await;
    let sfx = &random_suffix()[..6];

    // 404 DoesNotExist.
    let env = ad_check(
        &srv.get(&format!("/ad/user/nobody-{sfx}")).await,
        404,
        4,
        "missing user",
    );
    assert!(env["Results"][0]["User"].is_null());
    ad_check(
        &srv.get(&format!("/ad/group/nogroup-{sfx}")).await,
        404,
        4,
        "missing group",
    );

    // 409 AlreadyExists.
    let dn = format!("cn=dup{sfx},{base}");
    let path = format!("/ad/user/{}?{LEAN}", enc(&dn));
    ad_check(&srv.post(&path, "{}").await, 200, 1, "create");
    ad_check(&srv.post(&path, "{}").await, 409, 3, "create twice");

    // dryRun on an AD route: the handler reports and changes nothing.
    let dry = format!("cn=dry{sfx},{base}");
    let r = srv
        .post(&format!("/ad/user/{}?dryRun=true&{LEAN}", enc(&dry)), "{}")
        .await;
    r.check(200, "create with dryRun");
    ad_check(
        &srv.get(&format!("/ad/user/{}", enc(&dry))).await,
        404,
        4,
        "a dry-run create creates nothing",
    );
    // A flag the route's plan does not take is a 400 naming it (docs/api.md).
    let r = srv.get(&format!("/ad/user/{}?upsert=true", enc(&dn))).await;
    let env = r.check(400, "upsert on a GET");
    assert!(env.to_string().contains("upsert"), "{env:#}");

    // 400: a custom search without its parameter names it.
    let r = srv.post("/ad/search/GetAllGroups", "{}").await;
    let env = ad_check(&r, 400, 2, "GetAllGroups without distinguishedname");
    assert!(
        ad_statuses(&env)[0].1.contains("distinguishedname"),
        "{env:#}"
    );
    // 400: Search without a filter.
    ad_check(
        &srv.post("/ad/search", r#"{"SearchBase": "dc=x"}"#).await,
        400,
        2,
        "search without Filter",
    );

    // 400 PasswordPolicyNotMet (Status 5); nothing is created.
    let weak = format!("cn=weak{sfx},{base}");
    let env = ad_check(
        &srv.post(
            &format!("/ad/user/{}?{LEAN}", enc(&weak)),
            r#"{Password: "abc"}"#,
        )
        .await,
        400,
        5,
        "weak password",
    );
    assert!(
        !env.to_string().contains("\"abc\""),
        "the password is not echoed: {env}"
    );
    ad_check(
        &srv.get(&format!("/ad/user/{}", enc(&weak))).await,
        404,
        4,
        "the weak user was not created",
    );

    // 400 for a body key the plan does not take (named), for a malformed body (position), and for a
    // non-DN identity on create; 404 for an unknown object type and an unknown custom search.
    let r = srv
        .post(
            &format!("/ad/user/{}", enc(&format!("cn=typo{sfx},{base}"))),
            "{GivenNmae: x}",
        )
        .await;
    let env = r.check(400, "unknown body key");
    assert!(env.to_string().contains("GivenNmae"), "{env:#}");
    let r = srv
        .post(
            &format!("/ad/user/{}", enc(&format!("cn=bad{sfx},{base}"))),
            "{Password: \"x\",\n GivenName: [",
        )
        .await;
    let env = r.check(400, "malformed body");
    let text = env.to_string();
    assert!(text.contains("line") && text.contains("column"), "{env:#}");
    ad_check(
        &srv.post("/ad/user/justaname", "{}").await,
        400,
        2,
        "create with a non-DN identity",
    );
    let r = srv.get("/ad/printer/x").await;
    r.check(404, "unknown object type");
    let r = srv.post("/ad/search/NoSuchSearch", "{}").await;
    r.check(404, "unknown custom search");

    // 401 without a key; /healthz and /metrics are open.
    let r = http(srv.port, "GET", "/ad/user/x", None, None, REQUEST_TIMEOUT)
        .await
        .unwrap();
    r.check(401, "no key");
    let r = http(srv.port, "GET", "/metrics", None, None, REQUEST_TIMEOUT)
        .await
        .unwrap();
    r.check(200, "metrics");
    assert!(
        r.text().contains("synapse_http_requests_total"),
        "{}",
        r.text()
    );
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn binary_ad_api_injection_finds_nothing_extra() {
    let work = TempDir::new("inject");
    let srv = ad_server(&work).await;
    let base = dc().unique_ou("api-inject").await;
    let sfx = &random_suffix()[..6];
    let user_dn = format!("cn=victim{sfx},{base}");
    let group_dn = format!("cn=grp{sfx},{base}");
    ad_check(
        &srv.post(
            &format!("/ad/user/{}?{LEAN}", enc(&user_dn)),
            r#"{Description: "original"}"#,
        )
        .await,
        200,
        1,
        "create user",
    );
    ad_check(
        &srv.post(&format!("/ad/group/{}?{LEAN}", enc(&group_dn)), "{}")
            .await,
        200,
        1,
        "create group",
    );
    let before = everything(&srv, &base).await;
    assert_eq!(search_dns(&before).len(), 3, "{before:#}");

    for id in ["*)(objectClass=*", "*", "victim*", "\\2a"] {
        let p = enc(id);
        for object in ["user", "group"] {
            ad_check(
                &srv.get(&format!("/ad/{object}/{p}")).await,
                404,
                4,
                &format!("GET {object} {id}"),
            );
            ad_check(
                &srv.delete(&format!("/ad/{object}/{p}")).await,
                404,
                4,
                &format!("DELETE {object} {id}"),
            );
            let r = srv
                .put(&format!("/ad/{object}/{p}"), r#"{Description: "pwned"}"#)
                .await;
            assert_eq!(r.status, 404, "PUT {object} {id}: {}", r.text());
        }
        // As the group of a membership, and as the member.
        let r = srv
            .post(&format!("/ad/user/{}/group/{p}", enc(&user_dn)), "")
            .await;
        assert_eq!(r.status, 404, "add to group {id}: {}", r.text());
        let r = srv
            .post(&format!("/ad/user/{p}/group/{}", enc(&group_dn)), "")
            .await;
        assert_eq!(r.status, 404, "add {id} to group: {}", r.text());
        // As the body value of the custom search: nothing found.
        let r = srv
            .post(
                "/ad/search/GetAllGroups",
                &json!({"distinguishedname": id, "searchbase": base}).to_string(),
            )
            .await;
        let env = r.check(200, &format!("GetAllGroups {id}"));
        assert_eq!(search_dns(&env), Vec::<String>::new(), "{id}: {env:#}");
        // A hostile ManagedBy (a body value resolved as an identity) sets nothing.
        let r = srv
            .put(
                &format!("/ad/group/{}?{LEAN}", enc(&group_dn)),
                &json!({"ManagedBy": id}).to_string(),
            )
            .await;
        assert_eq!(r.status, 404, "ManagedBy {id}: {}", r.text());
    }
    // A DN with the filter injected in its value finds nothing either.
    let r = srv
        .post(
            "/ad/search/GetAllGroups",
            &json!({"distinguishedname": format!("{user_dn})(objectClass=*")}).to_string(),
        )
        .await;
    assert_eq!(
        search_dns(&r.check(200, "DN + injection")),
        Vec::<String>::new()
    );

    let after = everything(&srv, &base).await;
    assert_eq!(after, before, "nothing changed");
    assert!(!after.to_string().contains("pwned"));
}

/// Every object under `base` (with description and member), as a search envelope.
/// A group whose name holds a `/` (`Sales/Marketing`, requested as `Sales%2FMarketing`): the encoded slash is
/// part of the name, not a `domain/name` separator. Also against the DC: a NUL in a raw search filter or base is a
/// 400 like everywhere else.
#[tokio::test]
async fn binary_ad_api_encoded_slash_is_part_of_a_name() {
    let work = TempDir::new("slash");
    let srv = ad_server(&work).await;
    let base = dc().unique_ou("api-slash").await;
    let sfx = &random_suffix()[..6];
    let name = format!("Sales/Marketing{sfx}");
    let dn = format!("cn={name},{base}");
    // sAMAccountName cannot hold a `/`; the name (cn) can.
    ad_check(
        &srv.post(
            &format!("/ad/group/{}?{LEAN}", enc(&dn)),
            &format!(r#"{{"SamAccountName": "salesmkt{sfx}"}}"#),
        )
        .await,
        200,
        1,
        "create Sales/Marketing",
    );
    // (`DOMAIN\name` names the sAMAccountName, which cannot hold a slash: only the one-segment form applies.)
    for path in [
        format!("/ad/group/{}", enc(&name)),
        format!("/ad/group/{}?{LEAN}", enc(&name)),
    ] {
        let v = ad_check(&srv.get(&path).await, 200, 1, &path);
        assert_eq!(
            v["Results"][0]["Group"]["Name"]
                .as_str()
                .map(str::to_lowercase),
            Some(name.to_lowercase()),
            "{path}: {v:#}"
        );
    }
    // A NUL in a raw search filter or search base: 400 InvalidInput, as for identities, not the DC's 500.
    for body in [
        json!({"Filter": "(cn=a\u{0}b)", "SearchBase": base}),
        json!({"Filter": "(cn=a)", "SearchBase": format!("ou=a\u{0}b,{base}")}),
    ] {
        let r = srv.post("/ad/search", &body.to_string()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    // A name with a slash that does not exist is simply not found (not "Domain [Sales] Is Not Configured").
    let v = srv.get(&format!("/ad/group/{}", enc("Sales/Nobody"))).await;
    assert_eq!(v.status, 404, "{}", v.text());
    assert!(!v.text().contains("Is Not Configured"), "{}", v.text());
}

/// Deeply nested bodies in flight do not stall the server: /healthz answers meanwhile, and each body is a
/// 400 naming the nesting limit.
#[tokio::test]
async fn binary_deep_bodies_do_not_stall_healthz() {
    let work = TempDir::new("deep");
    let (plans, data, key) = plain_setup(&work);
    let srv = Server::start(&plans, &data, work.path(), &key, false).await;
    let n = 100_000;
    let arrays = format!("{{\"sleep\":{}{}}}", "[".repeat(n), "]".repeat(n));
    let bound = Duration::from_secs(10);
    let deep = (0..4).map(|_| {
        http(
            srv.port,
            "POST",
            "/synapse/execute/Empty/start/sync",
            Some(&key),
            Some(&arrays),
            bound,
        )
    });
    let health = http(srv.port, "GET", "/healthz", None, None, bound);
    let (deep, health) = tokio::join!(futures::future::join_all(deep), health);
    let health = health.unwrap_or_else(|e| panic!("/healthz: {e}"));
    assert_eq!(health.status, 200, "{}", health.text());
    for r in deep {
        let r = r.unwrap_or_else(|e| panic!("deep body: {e}"));
        r.check(400, "deep body");
        assert!(
            error_message(&r).contains("nested deeper than 64 levels"),
            "{}",
            r.text()
        );
    }
}

async fn everything(srv: &Server, base: &str) -> Value {
    let body = json!({"Filter": "(objectClass=*)", "SearchBase": base, "ReturnAttributes": ["description", "member"]})
        .to_string();
    srv.post("/ad/search", &body)
        .await
        .check(200, "search everything")
}

const LONG_PLAN: &str = "\
Name: Long
Description: Sleeps a minute.
Actions:
- Name: nap
  Handler: {Type: Empty}
  Parameters:
    Values: {SleepMilliseconds: 60000}
";

/// Temp plans (Long + Empty) and data directories with an `execute` key.
fn plain_setup(work: &TempDir) -> (PathBuf, PathBuf, String) {
    let plans = work.path().join("plans");
    write_plans(
        &plans,
        &[("Long.yaml", LONG_PLAN), ("Empty.yaml", EMPTY_PLAN)],
    );
    let data = work.path().join("data");
    let key = create_key(&data, work.path(), "restart", "execute");
    (plans, data, key)
}

#[tokio::test]
async fn binary_restart_marks_running_instances_interrupted() {
    let work = TempDir::new("restart");
    let (plans, data, key) = plain_setup(&work);
    let mut srv = Server::start(&plans, &data, work.path(), &key, false).await;
    let done = srv
        .post("/synapse/execute/Empty/start/sync", "")
        .await
        .check(200, "a finished instance");
    let done_id = done["InstanceId"].as_str().unwrap().to_string();
    let v = srv
        .post("/synapse/execute/Long/start/async", "")
        .await
        .check(202, "start Long");
    let id = v["PlanInstanceId"].as_str().unwrap().to_string();
    let inst = srv
        .get(&format!("/synapse/execute/Long/{id}"))
        .await
        .check(200, "running");
    assert_eq!(inst["Status"], "Running");

    // kill -9, then start again on the same data directory. The pause lets the store's group commit
    // (docs/decisions.md) write the Running record: a crash may lose the last few milliseconds by design.
    tokio::time::sleep(Duration::from_millis(500)).await;
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    drop(srv);
    let srv = Server::start(&plans, &data, work.path(), &key, false).await;
    let inst = srv
        .get(&format!("/synapse/execute/Long/{id}"))
        .await
        .check(200, "after restart");
    assert_eq!(inst["Status"], "Failed", "{inst:#}");
    assert!(
        inst["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{inst:#}"
    );
    assert!(inst["FinishedAt"].is_string(), "{inst:#}");
    let list = srv
        .get("/synapse/execute/Long")
        .await
        .check(200, "list after restart");
    assert_eq!(list[0]["Id"], id.as_str());
    assert_eq!(list[0]["Status"], "Failed");
    // The key survived, and finished instances are untouched.
    let inst = srv
        .get(&format!("/synapse/execute/Empty/{done_id}"))
        .await
        .check(200, "finished before the kill");
    assert_eq!(inst["Status"], "Complete");
    let r = srv.delete(&format!("/synapse/execute/Long/{id}")).await;
    r.check(409, "an interrupted instance cannot be cancelled");
}

#[tokio::test]
async fn binary_sigterm_shuts_down_gracefully() {
    let work = TempDir::new("sigterm");
    let (plans, data, key) = plain_setup(&work);
    let mut srv = Server::start(&plans, &data, work.path(), &key, false).await;
    let v = srv
        .post("/synapse/execute/Long/start/async", "")
        .await
        .check(202, "start Long");
    let id = v["PlanInstanceId"].as_str().unwrap().to_string();
    // The metrics recorder is installed in the binary.
    let r = http(srv.port, "GET", "/metrics", None, None, REQUEST_TIMEOUT)
        .await
        .unwrap();
    r.check(200, "metrics");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(srv.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = srv.wait_exit(Duration::from_secs(8)).await;
    assert_eq!(exit.code(), Some(0), "{}", srv.log_text());
    assert!(started.elapsed() < Duration::from_secs(8));
    let log = srv.log_text();
    drop(srv);

    // The running plan was cancelled and stored as such (not "interrupted").
    let srv = Server::start(&plans, &data, work.path(), &key, false).await;
    let inst = srv
        .get(&format!("/synapse/execute/Long/{id}"))
        .await
        .check(200, "after graceful shutdown");
    assert_eq!(inst["Status"], "Cancelled", "{inst:#}\nlog:\n{log}");
    assert!(inst["FinishedAt"].is_string());
}

// ---------------------------------------------------------------------------------------------------------------
// The server's edges: timeouts, the connection limit, Content-Length, same origin, metrics labels, auth scheme
// ---------------------------------------------------------------------------------------------------------------

/// `Authorization` schemes are case-insensitive (RFC 7235): `BEARER key` works like `Bearer key`.
#[tokio::test]
async fn api_auth_scheme_is_case_insensitive() {
    let app = app_with(false);
    put_key(&app, "boss", "admin", "syn_boss_secret");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let h = format!("{scheme} syn_boss_secret");
        app.call(
            Method::GET,
            "/synapse/execute",
            &[("authorization", &h)],
            Body::empty(),
        )
        .await
        .check(200, &h);
    }
    for h in ["Basic syn_boss_secret", "BEARER", "Bearersyn_boss_secret"] {
        app.call(
            Method::GET,
            "/synapse/execute",
            &[("authorization", h)],
            Body::empty(),
        )
        .await
        .check(401, h);
    }
}

/// Reads one response from `s` (head, then `Content-Length` bytes of body, or to EOF), bounded by `limit`.
async fn read_response(s: &mut tokio::net::TcpStream, limit: Duration) -> Result<Resp, String> {
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if len.is_some_and(|n| raw.len() >= end + 4 + n) {
                    return parse_response(&raw);
                }
            }
            let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return parse_response(&raw);
            }
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| format!("no response within {limit:?}"))?
}

/// A partial request (and a connection that sends nothing) is closed after `HeaderReadTimeout`; a slow body
/// gets 408 after `BodyReadTimeout`.
#[tokio::test]
async fn binary_slow_headers_and_bodies_are_cut_off() {
    let work = TempDir::new("slow-client");
    let (plans, data, key) = plain_setup(&work);
    let srv = Server::start_with(
        &plans,
        &data,
        work.path(),
        &key,
        false,
        &[
            ("SYNAPSE_HEADER_READ_TIMEOUT", "1s"),
            ("SYNAPSE_BODY_READ_TIMEOUT", "1s"),
        ],
    )
    .await;
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", srv.port));
    let mut partial = connect().await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut silent = connect().await.unwrap();
    for (what, s) in [
        ("a partial header", &mut partial),
        ("nothing sent", &mut silent),
    ] {
        let mut rest = Vec::new();
        // The server closes it (EOF or reset); without the timeout this read would wait forever.
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
        assert!(
            r.is_ok(),
            "{what}: still open 10 s after a 1 s header-read timeout"
        );
    }

    // A body announced as 100 bytes of which 10 arrive: 408, and nothing started.
    let mut slow = connect().await.unwrap();
    let head = format!(
        "POST /synapse/execute/Empty/start/async HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\": \"xx",
        srv.port
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let r = read_response(&mut slow, Duration::from_secs(10))
        .await
        .unwrap();
    r.check(408, "a body that stops arriving");
    assert!(
        error_message(&r).contains("not received within 1s"),
        "{}",
        r.text()
    );
    let list = srv.get("/synapse/execute/Empty").await.check(200, "list");
    assert_eq!(list, json!([]), "nothing started");

    // Complete requests are answered as before.
    srv.get("/healthz").await.check(200, "healthz");
}

/// `Content-Length` over `BodyLimit` is refused from the header alone: 413 without a byte of the body sent.
#[tokio::test]
async fn binary_content_length_over_the_limit_is_413_before_the_body() {
    let work = TempDir::new("content-length");
    let (plans, data, key) = plain_setup(&work);
    let srv = Server::start(&plans, &data, work.path(), &key, false).await;
    for path in [
        "/synapse/execute/Empty/start/sync",
        "/ad/user/cn=x,dc=sandbox,dc=local",
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", srv.port))
            .await
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n",
            srv.port
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let r = read_response(&mut s, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        r.check(413, path);
        assert!(
            r.text().contains("larger than 1048576 bytes"),
            "{}",
            r.text()
        );
    }
    let list = srv.get("/synapse/execute/Empty").await.check(200, "list");
    assert_eq!(list, json!([]), "nothing started");
}

/// With `MaxConnections: 32`, 64 connections that send half a request line do not lock `/healthz` out: the
/// connections waiting longest for a request are closed to make room (long before their 10 s header timeout).
#[tokio::test]
async fn binary_partial_connections_do_not_lock_out_healthz() {
    let work = TempDir::new("conn-limit");
    let (plans, data, key) = plain_setup(&work);
    let srv = Server::start_with(
        &plans,
        &data,
        work.path(),
        &key,
        false,
        &[("SYNAPSE_MAX_CONNECTIONS", "32")],
    )
    .await;
    let mut partial = Vec::new();
    for _ in 0..64 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", srv.port))
            .await
            .unwrap();
        s.write_all(b"GET /healthz HT").await.unwrap();
        partial.push(s);
    }
    for i in 0..3 {
        let r = http(
            srv.port,
            "GET",
            "/healthz",
            None,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|e| panic!("healthz {i} with 64 partial connections open: {e}"));
        r.check(200, "healthz");
    }
    // The mechanism: the server holds at most 32 connections, so at least 32 of the 64 were closed.
    let reads = partial.iter_mut().map(|s| async move {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    });
    let closed = futures::future::join_all(reads)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert!(
        closed >= 32,
        "only {closed} of 64 partial connections were closed"
    );
}

/// A raw request with the given extra header lines (`Connection: close`), read to the end.
async fn raw_request(port: u16, head: &str, body: &str) -> Resp {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!(
        "{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    read_response(&mut s, REQUEST_TIMEOUT).await.unwrap()
}

/// `--no-auth`: a page on another site (its own `Origin`, or its name rebound to 127.0.0.1 as `Host`) is
/// refused before anything runs; requests from the server's own origin, or without one, work.
#[tokio::test]
async fn binary_no_auth_refuses_foreign_origins_and_hosts() {
    let work = TempDir::new("same-origin");
    let (plans, data, key) = plain_setup(&work);
    let srv = Server::start_with(
        &plans,
        &data,
        work.path(),
        &key,
        false,
        &[("SYNAPSE_NO_AUTH", "true")],
    )
    .await;
    let port = srv.port;
    let start = "POST /synapse/execute/Empty/start/async HTTP/1.1";
    // The issue's reproduction: a text/plain POST from http://evil.example, Host evil.example:PORT.
    for (what, headers) in [
        (
            "foreign Origin and Host",
            format!("Origin: http://evil.example\r\nHost: evil.example:{port}"),
        ),
        (
            "rebound name, no Origin",
            format!("Host: evil.example:{port}"),
        ),
        (
            "foreign Origin, own Host",
            format!("Origin: http://evil.example\r\nHost: 127.0.0.1:{port}"),
        ),
        (
            "opaque Origin",
            format!("Origin: null\r\nHost: 127.0.0.1:{port}"),
        ),
    ] {
        let r = raw_request(
            port,
            &format!("{start}\r\n{headers}\r\nContent-Type: text/plain"),
            "name=x",
        )
        .await;
        r.check(403, what);
        assert!(error_message(&r).starts_with("refused:"), "{}", r.text());
        // The AD API refuses the same way (in its envelope).
        let r = raw_request(
            port,
            &format!(
                "POST /ad/user/cn=x,dc=sandbox,dc=local HTTP/1.1\r\n{headers}\r\nContent-Type: text/plain"
            ),
            "{}",
        )
        .await;
        let v = r.check(403, what);
        assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 8, "{v}");
    }
    let list = srv.get("/synapse/execute/Empty").await.check(200, "list");
    assert_eq!(list, json!([]), "nothing started");

    for (what, headers) in [
        (
            "same origin",
            format!("Origin: http://127.0.0.1:{port}\r\nHost: 127.0.0.1:{port}"),
        ),
        (
            "localhost",
            format!("Origin: http://localhost:{port}\r\nHost: localhost:{port}"),
        ),
        ("no Origin", format!("Host: 127.0.0.1:{port}")),
    ] {
        raw_request(
            port,
            &format!("{start}\r\n{headers}\r\nContent-Type: application/json"),
            "{}",
        )
        .await
        .check(202, what);
    }
}

/// Random methods and paths do not add label values to `/metrics`: unknown methods and unmatched paths are
/// `other`, routes are their templates.
#[tokio::test]
async fn binary_metrics_labels_stay_bounded() {
    let work = TempDir::new("metrics-labels");
    let (plans, data, key) = plain_setup(&work);
    let srv = Server::start(&plans, &data, work.path(), &key, false).await;
    let round = |n: usize| {
        let key = key.clone();
        let port = srv.port;
        async move {
            let mut sent = Vec::new();
            for _ in 0..n {
                let r = random_suffix()
                    .to_ascii_uppercase()
                    .replace(char::is_numeric, "Q");
                let method = format!("X{r}{r}{r}");
                let path = format!("/zz-{}", random_suffix());
                http(port, &method, &path, Some(&key), None, REQUEST_TIMEOUT)
                    .await
                    .unwrap();
                let id = random_suffix();
                let p2 = format!("/synapse/execute/Empty/{id}");
                http(port, "GET", &p2, Some(&key), None, REQUEST_TIMEOUT)
                    .await
                    .unwrap();
                sent.extend([method, path, id]);
            }
            sent
        }
    };
    let metrics = || async {
        http(srv.port, "GET", "/metrics", None, None, REQUEST_TIMEOUT)
            .await
            .unwrap()
            .text()
    };
    round(5).await;
    metrics().await;
    let before = metrics().await;
    let sent = round(40).await;
    let after = metrics().await;
    for s in &sent {
        assert!(
            !after.contains(s.as_str()),
            "'{s}' became a label:\n{after}"
        );
    }
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "new series appeared:\n{after}"
    );
    assert!(after.contains(r#"method="other""#), "{after}");
    assert!(
        after.contains(r#"route="/synapse/execute/{plan}/{id}""#),
        "{after}"
    );
}

/// Resource limits: `/part` amplification, durations from input, running and stored instance caps, writes
/// answered after their record is committed.
mod limits;
