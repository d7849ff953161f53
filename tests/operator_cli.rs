//! What an operator meets on day one (issue 9): caller errors that are 400s, roll-up of partly failed ForEach
//! items, plan files with a BOM, the `synapse` CLI (plan run/validate/list, config print round trip,
//! completions) and the curl examples of docs/api.md run as written.
//!
//! In-process tests drive `synapse_controller::router` with `tower::ServiceExt::oneshot`; CLI tests run the
//! built binary. Every test has its own temp directory.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use synapse_controller::config::{ServeConfig, DEFAULT_BODY_LIMIT};
use synapse_controller::store::{RedbStore, Stores};
use synapse_controller::AppState;
use tower::ServiceExt;

use crate::support::dc::random_suffix;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("synapse-op-{prefix}-{}", random_suffix()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The router over `plans` (file name, text), without authentication.
struct App {
    router: axum::Router,
    _dir: TempDir,
}

fn app(plans: &[(&str, &str)]) -> App {
    let dir = TempDir::new("app");
    let plans_dir = dir.path().join("plans");
    std::fs::create_dir_all(&plans_dir).unwrap();
    for (name, text) in plans {
        std::fs::write(plans_dir.join(name), text).unwrap();
    }
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Arc::new(RedbStore::open(&data.join("synapse.redb")).unwrap());
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        plans: plans_dir,
        data,
        no_auth: true,
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
    let state = AppState::new(
        &cfg,
        synapse_handlers::builtin_registry(),
        Stores::all_in(store),
        None,
    )
    .unwrap();
    App {
        router: synapse_controller::router(Arc::new(state)),
        _dir: dir,
    }
}

impl App {
    async fn call(&self, method: Method, uri: &str, body: &str) -> (u16, Value) {
        let (status, _, v) = self.call_h(method, uri, body).await;
        (status, v)
    }

    /// With the response headers (lower-case names).
    async fn call_h(
        &self,
        method: Method,
        uri: &str,
        body: &str,
    ) -> (u16, Vec<(String, String)>, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.router.clone().oneshot(req))
            .await
            .unwrap_or_else(|_| panic!("{uri}: no response within {REQUEST_TIMEOUT:?}"))
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }
}

/// A custom search whose `~~ou~~` fills the whole SearchBase, and one whose `ou` is patched in by Dynamic.
const OU_SEARCH_TOKEN: &str = "\
Name: OuSearch
Actions:
- Name: Search
  Handler:
    Type: ActiveDirectoryHandler
    Config: {Values: {Action: Search}}
  Parameters:
    Values:
      SearchRequests:
      - {Filter: (objectClass=user), SearchBase: ~~ou~~}
";

const OU_SEARCH_DYNAMIC: &str = "\
Name: OuSearchDynamic
Actions:
- Name: Search
  Handler:
    Type: ActiveDirectoryHandler
    Config: {Values: {Action: Search}}
  Parameters:
    Values:
      SearchRequests:
      - {Filter: (objectClass=user)}
    Dynamic:
    - {Source: ou, Target: 'SearchRequests[0]:SearchBase', Required: true}
";

/// A caller's malformed DN where a whole DN goes is the caller's error: 400 InvalidInput naming the
/// parameter, before anything reaches a directory (no DC is configured here).
#[tokio::test]
async fn behaviour_malformed_dn_in_a_custom_search_is_400_naming_the_parameter() {
    let app = app(&[
        ("OuSearch.yaml", OU_SEARCH_TOKEN),
        ("OuSearchDynamic.yaml", OU_SEARCH_DYNAMIC),
    ]);
    for plan in ["OuSearch", "OuSearchDynamic"] {
        let (status, v) = app
            .call(
                Method::POST,
                &format!("/ad/search/{plan}"),
                &json!({"ou": "not a dn"}).to_string(),
            )
            .await;
        assert_eq!(status, 400, "{plan}: {v}");
        assert_eq!(v["Results"][0]["Statuses"][0]["Status"], 14, "{plan}: {v}");
        assert_eq!(v["Problems"][0]["Kind"], "Invalid", "{plan}: {v}");
        assert_eq!(v["Problems"][0]["Parameter"], "ou", "{plan}: {v}");
    }
}

/// ForEach items partly failing: each clone keeps its own Failed, the plan (and the owner's branch) is
/// CompletedWithErrors; all items failing is still Failed (docs/plan-language.md "Execution").
#[tokio::test]
async fn behaviour_for_each_partly_failed_is_completed_with_errors() {
    use synapse_engine::{load, Executor, RunOptions, StatusType};
    let run = |statuses: &str| {
        let yaml = format!(
            "Name: items\nActions:\n- Name: owner\n  Handler: {{Type: Empty}}\n  Actions:\n  - Name: item\n    Handler: {{Type: Empty}}\n    Parameters:\n      ForEach: [{{Target: ReturnStatus, Values: [{statuses}]}}]\n"
        );
        async move {
            let plan = load::load_str(&yaml, "items.yaml").unwrap().plan;
            Executor::in_process(Arc::new(synapse_handlers::builtin_registry()))
                .run(&plan, RunOptions::default())
                .await
                .unwrap()
        }
    };
    let r = run("Complete, Failed, Complete").await;
    assert_eq!(r.status, StatusType::CompletedWithErrors, "{r:?}");
    let owner = r.find("owner").unwrap();
    assert_eq!(owner.branch_status, StatusType::CompletedWithErrors);
    let failed: Vec<_> = owner
        .actions
        .iter()
        .filter(|a| a.status == StatusType::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "the failed clone keeps its own status");
    assert_eq!(
        run("Failed, Failed, Failed").await.status,
        StatusType::Failed
    );
    assert_eq!(run("Complete, Complete").await.status, StatusType::Complete);
}

/// Plans saved by Windows editors start with a UTF-8 BOM: they load, from a file and in the server.
#[tokio::test]
async fn behaviour_plan_files_with_a_bom_load() {
    let text = "\u{feff}Name: Bom\nActions:\n- Name: a\n  Handler: {Type: Empty}\n  Parameters: {Values: {ExitData: {Ok: true}}}\n";
    let dir = TempDir::new("bom");
    let file = dir.path().join("Bom.yaml");
    std::fs::write(&file, text).unwrap();
    let loaded = synapse_engine::load::load_file(&file).unwrap();
    assert_eq!(loaded.plan.name, "Bom");
    let app = app(&[("Bom.yaml", text)]);
    let (status, v) = app
        .call(Method::POST, "/synapse/execute/Bom/start/sync", "{}")
        .await;
    assert_eq!(status, 200, "{v}");
}

// ---------------------------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------------------------

/// Runs `synapse` in `dir` with a clean environment for the settings it reads.
fn synapse_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_synapse"));
    c.args(args).current_dir(dir).env("USER", "tester");
    for (k, _) in std::env::vars() {
        if k.starts_with("SYNAPSE_") {
            c.env_remove(k);
        }
    }
    c.output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const GREET_PLAN: &str = "\
Name: Greet
Description: Says hello.
Actions:
- Name: greet
  Handler: {Type: Echo}
  Parameters:
    Values: {Greeting: hello}
    Dynamic: [{Source: name, Target: Name}]
";

/// A plans directory with Greet (and a broken plan) and a synapse.yaml naming it.
fn cli_workspace() -> TempDir {
    let dir = TempDir::new("cli");
    let plans = dir.path().join("ops-plans");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::write(plans.join("Greet.yaml"), GREET_PLAN).unwrap();
    std::fs::write(
        plans.join("Broken.yaml"),
        "Name: Broken\nActions:\n- Name: a\n  Handler: {Type: Nope}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("synapse.yaml"), "Plans: ops-plans\n").unwrap();
    dir
}

/// `plan run` refuses a parameter the plan does not take (exit 2) with the API's words.
#[test]
fn cli_plan_run_refuses_unknown_parameters_like_the_api() {
    let ws = cli_workspace();
    let o = synapse_in(ws.path(), &["plan", "run", "Greet", "-p", "nmae=y"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("plan 'Greet' takes no parameter 'nmae' (it takes: name)"),
        "{}",
        text(&o.stderr)
    );
    let o = synapse_in(ws.path(), &["plan", "run", "greet", "-p", "NAME=y"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["Actions"][0]["ExitData"]["Parameters"]["Name"], "y",
        "{v}"
    );
}

/// `plan list`, names within the configured plans directory (synapse.yaml or --config), paths still work.
#[test]
fn cli_plan_list_and_plans_by_name() {
    let ws = cli_workspace();
    let o = synapse_in(ws.path(), &["plan", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("Greet\tok\tSays hello."), "{out}");
    assert!(out.contains("Broken\t1 error(s)"), "{out}");
    let o = synapse_in(ws.path(), &["plan", "list", "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    // --config from elsewhere; --plans wins over the file.
    let elsewhere = TempDir::new("elsewhere");
    let cfg = ws.path().join("synapse.yaml");
    let cfg_text = format!("Plans: {}\n", ws.path().join("ops-plans").display());
    std::fs::write(&cfg, cfg_text).unwrap();
    let o = synapse_in(
        elsewhere.path(),
        &["plan", "help", "Greet", "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("name"), "{}", text(&o.stdout));
    let o = synapse_in(elsewhere.path(), &["plan", "run", "Greet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no plan named 'Greet'"),
        "{}",
        text(&o.stderr)
    );
    let file = ws.path().join("ops-plans/Greet.yaml");
    let o = synapse_in(elsewhere.path(), &["plan", "run", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

/// `plan validate` reports the handlers' static checks, every error in one run, and as JSON.
#[test]
fn cli_plan_validate_catches_run_time_errors_all_at_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("tests/corpus/broken/11-handler-checks.yaml");
    let o = synapse_in(root, &["plan", "validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    for needle in [
        "unknown variant `Serch`",
        "is not an LDAP filter",
        "no field 'Fliter'",
        "no field 'OutputTyp'",
        "no field 'Domian'",
        "no field 'Enabeld'",
        "no field 'Descripton'",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let o = synapse_in(
        root,
        &["plan", "validate", "-o", "json", file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Ok"], false, "{v}");
    assert_eq!(v[0]["Diagnostics"].as_array().unwrap().len(), 7, "{v}");
    assert_eq!(v[0]["Diagnostics"][0]["Severity"], "Error", "{v}");
    // Loading and validation in one run: an unknown field does not hide the handler's problems.
    let dir = TempDir::new("stages");
    let both = dir.path().join("both.yaml");
    std::fs::write(
        &both,
        "Name: both\nDescripton: typo\nActions:\n- Name: a\n  Handler:\n    Type: ActiveDirectoryHandler\n    Config: {Values: {Action: Serch}}\n",
    )
    .unwrap();
    let o = synapse_in(root, &["plan", "validate", both.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("unknown field 'Descripton'"), "{err}");
    assert!(err.contains("unknown variant `Serch`"), "{err}");
    // Without arguments: every plan of the configured directory; the repository's plans are all valid.
    let o = synapse_in(root, &["plan", "validate", "--plans", "plans"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

/// `config print` output is a configuration file that reads back to the same output.
#[test]
fn cli_config_print_round_trips() {
    let dir = TempDir::new("config");
    let cfg = dir.path().join("in.yaml");
    std::fs::write(
        &cfg,
        "Listen: 127.0.0.1:20123\nPlans: p\nRetentionDays: 7\nHeaderReadTimeout: 1500ms\n\
         AdRoutes: {GetUser: MyGetUser}\nAllowedHosts: [synapse.example]\n\
         Handlers:\n  ActiveDirectory:\n    Domains:\n    - Urls: ldaps://127.0.0.5\n      BindDn: admin@sandbox.local\n      \
         Password: Passw0rd\n      Aliases: [SANDBOX]\n      StartTls: false\n      ConnectTimeout: 2500ms\n",
    )
    .unwrap();
    let first = synapse_in(dir.path(), &["config", "print", "--config", "in.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let printed = text(&first.stdout);
    assert!(!printed.contains("Passw0rd"), "{printed}");
    std::fs::write(dir.path().join("out.yaml"), &printed).unwrap();
    let second = synapse_in(dir.path(), &["config", "print", "--config", "out.yaml"]);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}\n{printed}",
        text(&second.stderr)
    );
    assert_eq!(text(&second.stdout), printed);
}

/// Shell completions for bash, zsh and fish.
#[test]
fn cli_completions_for_bash_zsh_fish() {
    let dir = TempDir::new("completions");
    for shell in ["bash", "zsh", "fish"] {
        let o = synapse_in(dir.path(), &["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o.stderr));
        let out = text(&o.stdout);
        assert!(
            out.contains("synapse") && out.contains("validate"),
            "{shell}"
        );
    }
    // Every flag has help text: checked on the clap definition by the binary's unit test
    // (src/main.rs `every_flag_and_argument_has_help`).
}

// ---------------------------------------------------------------------------------------------------------------
// docs/api.md examples, run as written
// ---------------------------------------------------------------------------------------------------------------

/// `synapse serve` over the repository's plans on a free loopback port; killed by PID on drop.
struct DocsServer {
    child: std::process::Child,
    base: String,
    key: String,
    _dir: TempDir,
}

impl Drop for DocsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `sh -c script` with the docs' variables (`H`, `J`, `Y` of the AD walk-through too, and `vars`);
/// returns stdout.
fn sh_with(script: &str, srv: &DocsServer, vars: &[(&str, &str)]) -> String {
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(script)
        .env("SYNAPSE", &srv.base)
        .env("SYNAPSE_KEY", &srv.key)
        .env("H", format!("Authorization: Bearer {}", srv.key))
        .env("J", "Content-Type: application/json")
        .env("Y", "Content-Type: application/yaml");
    for (k, v) in vars {
        c.env(k, v);
    }
    text(&c.output().expect("sh runs").stdout)
}

fn sh(script: &str, srv: &DocsServer) -> String {
    sh_with(script, srv, &[])
}

/// Shell variables set for the next examples.
type Vars = Vec<(String, String)>;

/// Runs `examples`; every one answers its documented status (a 2xx without one). The body of each answer is
/// kept in `body_file`; `after` sees it and may set variables for the next examples.
fn run_examples(
    srv: &DocsServer,
    examples: &[&Example],
    body_file: &Path,
    mut vars: Vars,
    after: &mut dyn FnMut(&Example, &str, &mut Vars),
) -> Vec<String> {
    let mut failures = Vec::new();
    let capture = format!(
        "curl -sS -o '{}' -w '%{{http_code}}' --max-time 60 ",
        body_file.display()
    );
    for e in examples {
        let command = e.command.replacen("curl ", &capture, 1);
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let got: u16 = sh_with(&command, srv, &refs).trim().parse().unwrap_or(0);
        let ok = match e.status {
            Some(s) => got == s,
            None => (200..300).contains(&got),
        };
        let body = std::fs::read_to_string(body_file).unwrap_or_default();
        if !ok {
            failures.push(format!(
                "docs/api.md:{}: expected {}, got {got}: {}\n  answer: {}",
                e.line,
                e.status.map_or("2xx".to_string(), |s| s.to_string()),
                e.command,
                body.chars().take(400).collect::<String>()
            ));
        }
        after(e, &body, &mut vars);
    }
    failures
}

fn docs_server(ad: bool) -> DocsServer {
    let dir = TempDir::new("docs");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_string();
    let o = synapse_in(
        dir.path(),
        &[
            "token", "create", "--name", "docs", "--roles", "admin", "--data", &data_arg,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let key = text(&o.stdout).trim().to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let plans = root.join("plans");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_synapse"));
    c.args(["serve", "--listen", &listen, "--data", &data_arg])
        .arg("--plans")
        .arg(&plans)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SYNAPSE_") {
            c.env_remove(k);
        }
    }
    if ad {
        let dc = crate::support::dc::dc();
        c.env("SYNAPSE_AD_URL", &dc.url)
            .env("SYNAPSE_AD_BIND_DN", &dc.bind_dn)
            .env("SYNAPSE_AD_PASSWORD", &dc.password)
            .env("SYNAPSE_AD_TLS_INSECURE", "true")
            .env("SYNAPSE_AD_ALIASES", "SANDBOX");
    }
    let srv = DocsServer {
        child: c.spawn().unwrap(),
        base: format!("http://{listen}"),
        key,
        _dir: dir,
    };
    for _ in 0..200 {
        if sh(
            "curl -s -o /dev/null -w '%{http_code}' $SYNAPSE/healthz",
            &srv,
        ) == "200"
        {
            return srv;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("synapse serve did not answer /healthz within 20 s");
}

/// One `curl` example: the command (continuation lines and here-documents included) and the status a `# NNN`
/// comment under it documents.
#[derive(Debug)]
struct Example {
    line: usize,
    section: String,
    command: String,
    status: Option<u16>,
}

fn curl_examples(doc: &str) -> Vec<Example> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out: Vec<Example> = Vec::new();
    let (mut in_sh, mut section) = (false, String::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("## ") {
            section = line.trim_start_matches("## ").to_string();
        }
        if line.trim_start().starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            i += 1;
            continue;
        }
        let t = line.trim_start();
        if in_sh && t.starts_with("curl ") {
            let start = i;
            let mut command = line.to_string();
            let mut heredoc = None;
            loop {
                let cur = lines[i];
                if let Some(pos) = cur.find("<<'") {
                    heredoc = cur[pos + 3..].split('\'').next().map(str::to_string);
                }
                if cur.trim_end().ends_with('\\') {
                    i += 1;
                    command.push('\n');
                    command.push_str(lines[i]);
                    continue;
                }
                break;
            }
            if let Some(end) = heredoc {
                loop {
                    i += 1;
                    command.push('\n');
                    command.push_str(lines[i]);
                    if lines[i].trim() == end {
                        break;
                    }
                }
            }
            out.push(Example {
                line: start + 1,
                section: section.clone(),
                command,
                status: None,
            });
        } else if in_sh && t.starts_with("# ") {
            if let Some(last) = out.last_mut().filter(|e| e.status.is_none()) {
                let word = t[2..].split_whitespace().next().unwrap_or("");
                if word.len() == 3 {
                    last.status = word.parse().ok();
                }
            }
        }
        i += 1;
    }
    out
}

/// Every curl example of docs/api.md outside the AD sections runs as written against `synapse serve` over
/// the repository's plans and answers the status it documents (a 2xx when none is written).
#[test]
fn docs_api_examples_run() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md")).unwrap();
    let examples = curl_examples(&doc);
    assert!(
        examples.len() >= 30,
        "only {} curl examples found",
        examples.len()
    );
    let srv = docs_server(false);
    let start = |plan: &str, body: &str| -> String {
        let out = sh(
            &format!(
                "curl -s -H \"Authorization: Bearer $SYNAPSE_KEY\" -H 'Content-Type: application/json' \
                 -X POST $SYNAPSE/synapse/execute/{plan}/start/async -d '{body}'"
            ),
            &srv,
        );
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("start {plan}: {out}"));
        v["PlanInstanceId"].as_str().unwrap().to_string()
    };
    let hello_id = start("hello", r#"{"name": "Zed"}"#);
    let slow_id = start("slow", "{}");
    let chosen: Vec<&Example> = examples
        .iter()
        .filter(|e| {
            !e.section.starts_with("/ad")
                && !e.section.starts_with("/dns")
                && !e.section.starts_with("The seed")
        })
        .collect();
    let ran = chosen.len();
    let body_file = srv._dir.path().join("answer");
    // `$ID` is an instance of the plan the example names.
    let with_ids: Vec<Example> = chosen
        .iter()
        .map(|e| Example {
            line: e.line,
            section: e.section.clone(),
            command: e
                .command
                .replace("/hello/$ID", &format!("/hello/{hello_id}"))
                .replace("/slow/$ID", &format!("/slow/{slow_id}")),
            status: e.status,
        })
        .collect();
    let refs: Vec<&Example> = with_ids.iter().collect();
    // `$HELPDESK_KEY` is the secret of the key the API keys section creates.
    let failures = run_examples(&srv, &refs, &body_file, Vec::new(), &mut |e, body, vars| {
        if e.command.contains("/synapse/keys") && e.command.contains("\"helpdesk\"") {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if let Some(s) = v["Secret"].as_str() {
                vars.push(("HELPDESK_KEY".to_string(), s.to_string()));
            }
        }
    });
    eprintln!("{ran} docs/api.md examples ran");
    assert!(ran >= 15, "only {ran} examples ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The docs/api.md "Caveats" as the server behaves: 405 has the JSON Error body and an Allow header; HEAD
/// answers as GET, on the AD routes too.
#[tokio::test]
async fn docs_caveats_hold() {
    let app = app(&[("Greet.yaml", GREET_PLAN)]);
    let (status, headers, v) = app
        .call_h(Method::DELETE, "/synapse/execute/Greet/item", "")
        .await;
    assert_eq!(status, 405, "{v}");
    assert_eq!(v["Error"]["Status"], 405, "{v}");
    let allow = headers
        .iter()
        .find(|(k, _)| k == "allow")
        .map(|(_, v)| v.clone());
    assert!(allow.is_some_and(|a| a.contains("GET")), "{headers:?}");
    for uri in ["/ad/user/mfox", "/synapse/execute/Greet/help"] {
        let (head, _, _) = app.call_h(Method::HEAD, uri, "").await;
        let (get, _, _) = app.call_h(Method::GET, uri, "").await;
        assert_eq!(head, get, "HEAD {uri} answers as GET");
        assert_ne!(head, 405, "{uri}");
    }
}

/// The OpenAPI document spells `Problems` items as the server sends them: `Kind`, `Parameter`, `Reason`.
#[tokio::test]
async fn docs_openapi_problems_are_pascal_case_like_the_wire() {
    let app = app(&[("Greet.yaml", GREET_PLAN)]);
    let (status, doc) = app.call(Method::GET, "/openapi.json", "").await;
    assert_eq!(status, 200);
    let props = &doc["components"]["schemas"]["Problem"]["properties"];
    let mut keys: Vec<&str> = props
        .as_object()
        .unwrap_or_else(|| panic!("no Problem schema: {props}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["Kind", "Parameter", "Reason"]);
    // And on the wire: a missing token input.
    let (status, v) = app
        .call(Method::POST, "/synapse/execute/Greet/start/sync", "{}")
        .await;
    assert_eq!(status, 200, "{v}");
    let plan = "Name: Needs\nActions:\n- Name: a\n  Handler: {Type: Echo}\n  Parameters:\n    Values: {X: ~~x~~}\n";
    let app = self::app(&[("Needs.yaml", plan)]);
    let (status, v) = app
        .call(Method::POST, "/synapse/execute/Needs/start/sync", "{}")
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["Error"]["Problems"][0]["Kind"], "Missing", "{v}");
    assert_eq!(v["Error"]["Problems"][0]["Parameter"], "x", "{v}");
}

/// Every curl example of docs/api.md's AD sections (the seed's walk-through: OU, user, groups, memberships,
/// searches, modify, move, delete) runs as written against `synapse serve` on the test DC and answers the
/// status it documents. `$SID`/`$GUID` come from step 2's answer, as the page says.
#[test]
fn docs_api_ad_examples_run() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md")).unwrap();
    let examples = curl_examples(&doc);
    let chosen: Vec<&Example> = examples
        .iter()
        .filter(|e| {
            e.section.starts_with("/ad")
                || e.section.starts_with("/dns")
                || e.section.starts_with("The seed")
        })
        .collect();
    assert!(chosen.len() >= 25, "only {} AD examples", chosen.len());
    let srv = docs_server(true);
    // A run that stopped half-way left the walk-through's objects behind: remove them first.
    for path in [
        "ad/user/mfox",
        "ad/group/FamousActors",
        "ad/group/AllActors",
        "ad/ou/ou=Synapse,dc=sandbox,dc=local",
        "dns/zones/example.test",
        "dns/reversezones/2.1.10.in-addr.arpa",
    ] {
        sh(
            &format!("curl -s -o /dev/null --max-time 60 -H \"$H\" -X DELETE \"$SYNAPSE/{path}\""),
            &srv,
        );
    }
    let body_file = srv._dir.path().join("answer");
    let failures = run_examples(
        &srv,
        &chosen,
        &body_file,
        Vec::new(),
        &mut |e, body, vars| {
            if e.command.contains("-X POST \"$SYNAPSE/ad/user/cn=mfox") {
                let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                let user = &v["Results"][0]["User"];
                for (name, key) in [("SID", "Sid"), ("GUID", "Guid")] {
                    if let Some(s) = user[key].as_str() {
                        vars.push((name.to_string(), s.to_string()));
                    }
                }
            }
        },
    );
    eprintln!("{} AD examples of docs/api.md ran", chosen.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `PUT /ad/group/x {Scope: Weird}` lists each accepted scope once (DomainLocal included, no duplicate).
#[tokio::test]
async fn behaviour_refused_scope_lists_each_option_once() {
    let app = app(&[(
        "ModifyGroup.yaml",
        include_str!("../plans/ModifyGroup.yaml"),
    )]);
    let (status, v) = app
        .call(Method::PUT, "/ad/group/x", r#"{"Scope": "Weird"}"#)
        .await;
    assert_eq!(status, 400, "{v}");
    let text = v.to_string();
    assert!(
        text.contains("allowed options: Local, Global, Universal, DomainLocal"),
        "{text}"
    );
    assert_eq!(v["Problems"][0]["Parameter"], "scope", "{v}");
}

/// The server refuses at start what `plan validate` refuses: a plan with a handler's static error is listed
/// as invalid and does not run.
#[tokio::test]
async fn behaviour_server_start_reports_handler_checks() {
    let typo = "Name: Typo\nActions:\n- Name: a\n  Handler:\n    Type: ActiveDirectoryHandler\n    Config: {Values: {Action: Serch}}\n";
    let app = app(&[("Typo.yaml", typo), ("Greet.yaml", GREET_PLAN)]);
    let (status, v) = app.call(Method::GET, "/healthz", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["InvalidPlans"], json!(["Typo"]), "{v}");
    let (status, v) = app
        .call(Method::POST, "/synapse/execute/Typo/start/sync", "{}")
        .await;
    assert_eq!(status, 500, "{v}");
    assert!(v.to_string().contains("unknown variant `Serch`"), "{v}");
}
