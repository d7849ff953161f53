//! Executor semantics, modelled on upstream's unit tests: ExecuteCase, roll-up, ActionGroup ordering,
//! ParentExitData, ForEach products, InheritFrom, resolve failures, cancellation, timeout, retry.
//! Time is paused (tokio test-util), so sleeps are virtual and ordering is checked through progress events.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use synapse_engine::{
    load, ActionContext, ActionJob, ActionKind, BasicDescriptor, DispatchOutcome, Dispatcher,
    DynamicParams, EscapeRule, ExecuteResult, Executor, Handler, HandlerDescriptor,
    HandlerRegistry, InProcess, ManualClock, PlanResult, ProgressEvent, ProgressSink, RunError,
    RunOptions, StatusType,
};
use synapse_handlers::ldap::escape::{LdapDn, LdapFilter};

fn named(name: &'static str) -> Arc<dyn HandlerDescriptor> {
    Arc::new(BasicDescriptor { name, aliases: &[] })
}

/// Fails until it has been called `fail_times` times (per action name), then succeeds.
struct Flaky {
    fail_times: u32,
    calls: AtomicU32,
}

#[async_trait]
impl Handler for Flaky {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        named("FlakyHandler")
    }
    async fn execute(&self, _: &ActionContext, _: Value, _: Value) -> ExecuteResult {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.fail_times {
            ExecuteResult::failed(format!("failure {n}"))
        } else {
            ExecuteResult::complete(json!({"calls": n}))
        }
    }
}

/// Declares its `Filter` parameter an LDAP filter and `Base` a DN, and echoes what it received.
struct FilterEcho;

struct FilterEchoInfo(Vec<EscapeRule>);

impl HandlerDescriptor for FilterEchoInfo {
    fn name(&self) -> &'static str {
        "FilterEchoHandler"
    }
    fn parameter_escaping(&self) -> &[EscapeRule] {
        &self.0
    }
}

#[async_trait]
impl Handler for FilterEcho {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        Arc::new(FilterEchoInfo(vec![
            EscapeRule::new("Filter", LdapFilter),
            EscapeRule::new("Base", LdapDn),
        ]))
    }
    async fn execute(&self, _: &ActionContext, _: Value, params: Value) -> ExecuteResult {
        ExecuteResult::complete(params)
    }
}

/// Never finishes on its own; only cancellation or a timeout ends it.
struct Hang;

#[async_trait]
impl Handler for Hang {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        named("HangHandler")
    }
    async fn execute(&self, _: &ActionContext, _: Value, _: Value) -> ExecuteResult {
        futures::future::pending::<()>().await;
        ExecuteResult::new(StatusType::Complete)
    }
}

fn registry(flaky_failures: u32) -> HandlerRegistry {
    let mut r = synapse_handlers::builtin_registry();
    r.register(Arc::new(Flaky {
        fail_times: flaky_failures,
        calls: AtomicU32::new(0),
    }));
    r.register(Arc::new(FilterEcho));
    r.register(Arc::new(Hang));
    r
}

fn executor(flaky_failures: u32) -> Executor {
    Executor::in_process(Arc::new(registry(flaky_failures)))
}

fn plan(yaml: &str) -> synapse_engine::Plan {
    match load::load_str(yaml, "test.yaml") {
        Ok(l) => {
            let diags = synapse_engine::validate::validate(&l, &registry(0));
            let errors: Vec<String> = diags
                .iter()
                .filter(|d| d.severity == synapse_engine::Severity::Error)
                .map(ToString::to_string)
                .collect();
            assert!(errors.is_empty(), "plan does not validate: {errors:?}");
            l.plan
        }
        Err(e) => panic!("plan does not load: {e}"),
    }
}

async fn run(yaml: &str) -> PlanResult {
    run_with(yaml, RunOptions::default()).await
}

async fn run_with(yaml: &str, opts: RunOptions) -> PlanResult {
    executor(0)
        .run(&plan(yaml), opts)
        .await
        .expect("the run starts")
}

fn recording() -> (ProgressSink, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let sink = ProgressSink::new(move |e| sink_events.lock().unwrap().push(e.clone()));
    (sink, events)
}

fn names(r: &PlanResult) -> Vec<String> {
    fn rec(list: &[synapse_engine::ActionResult], out: &mut Vec<String>) {
        for a in list {
            out.push(a.name.clone());
            rec(&a.action_group, out);
            rec(&a.actions, out);
        }
    }
    let mut out = Vec::new();
    rec(&r.actions, &mut out);
    out.sort();
    out
}

const EXECUTE_CASES: &str = r#"
Name: cases
Actions:
- Name: root-skipped
  ExecuteCase: Complete
  Handler: {Type: Empty}
- Name: parent
  Handler: {Type: Empty}
  Parameters: {Values: {ReturnStatus: CompletedWithErrors}}
  Actions:
  - {Name: on-none, Handler: {Type: Empty}}
  - {Name: on-any, ExecuteCase: Any, Handler: {Type: Empty}}
  - {Name: on-complete, ExecuteCase: Complete, Handler: {Type: Empty}}
  - {Name: on-cwe, ExecuteCase: CompletedWithErrors, Handler: {Type: Empty}}
  - {Name: on-list, ExecuteCase: [Failed, CompletedWithErrors], Handler: {Type: Empty}}
  - {Name: on-failed, ExecuteCase: Failed, Handler: {Type: Empty}}
"#;

#[tokio::test(start_paused = true)]
async fn execute_case_selects_children_by_the_parents_status() {
    let r = run(EXECUTE_CASES).await;
    assert_eq!(
        names(&r),
        vec!["on-any", "on-cwe", "on-list", "on-none", "parent"],
        "roots are matched against None; Complete != CompletedWithErrors; a list means any of"
    );
    assert_eq!(r.status, StatusType::CompletedWithErrors);
}

#[tokio::test(start_paused = true)]
async fn status_rolls_up_as_the_worst_in_each_branch() {
    let r = run(r#"
Name: rollup
Actions:
- Name: a
  Handler: {Type: Empty}
  Actions:
  - Name: b
    Handler: {Type: Empty}
    Parameters: {Values: {ReturnStatus: Failed}}
- Name: c
  Handler: {Type: Empty}
"#)
    .await;
    let a = r.find("a").unwrap();
    assert_eq!(
        (a.status, a.branch_status),
        (StatusType::Complete, StatusType::Failed)
    );
    assert_eq!(r.find("c").unwrap().branch_status, StatusType::Complete);
    assert_eq!(r.status, StatusType::Failed);
    assert!(!r.succeeded());
}

#[tokio::test(start_paused = true)]
async fn action_group_subtree_finishes_before_the_owners_actions() {
    let (progress, events) = recording();
    let r = run_with(
        r#"
Name: grouping
Actions:
- Name: owner
  Handler: {Type: Empty}
  ActionGroup:
    Name: group
    Handler: {Type: Empty}
    Parameters: {Values: {SleepMilliseconds: 300}}
    Actions:
    - Name: group-child
      Handler: {Type: Empty}
      Parameters: {Values: {SleepMilliseconds: 300}}
  Actions:
  - Name: child
    Handler: {Type: Empty}
"#,
        RunOptions {
            progress,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(r.status, StatusType::Complete);
    let ev = events.lock().unwrap();
    let pos = |name: &str, status: StatusType| {
        ev.iter()
            .position(|e| e.action_name == name && e.status == status)
            .unwrap_or_else(|| panic!("no {status} event for {name}"))
    };
    assert!(pos("group-child", StatusType::Complete) < pos("child", StatusType::Running));
    assert!(pos("group", StatusType::Complete) < pos("child", StatusType::Running));
    assert!(pos("owner", StatusType::Complete) < pos("group", StatusType::Running));
}

#[tokio::test(start_paused = true)]
async fn the_groups_status_filters_the_owners_actions() {
    let r = run(r#"
Name: group-filter
Actions:
- Name: owner
  Handler: {Type: Empty}
  ActionGroup:
    Name: group
    Handler: {Type: Empty}
    Parameters: {Values: {ReturnStatus: Failed}}
  Actions:
  - {Name: when-complete, ExecuteCase: Complete, Handler: {Type: Empty}}
  - {Name: when-failed, ExecuteCase: Failed, Handler: {Type: Empty}}
"#)
    .await;
    assert_eq!(names(&r), vec!["group", "owner", "when-failed"]);
}

#[tokio::test(start_paused = true)]
async fn siblings_run_concurrently() {
    let (progress, events) = recording();
    run_with(
        r#"
Name: siblings
Actions:
- {Name: s1, Handler: {Type: Empty}, Parameters: {Values: {SleepMilliseconds: 500}}}
- {Name: s2, Handler: {Type: Empty}, Parameters: {Values: {SleepMilliseconds: 500}}}
- {Name: s3, Handler: {Type: Empty}, Parameters: {Values: {SleepMilliseconds: 500}}}
"#,
        RunOptions {
            progress,
            ..Default::default()
        },
    )
    .await;
    let ev = events.lock().unwrap();
    let last_start = ev
        .iter()
        .rposition(|e| e.status == StatusType::Running && e.action_name.starts_with('s'));
    let first_end = ev
        .iter()
        .position(|e| e.status == StatusType::Complete && e.action_name.starts_with('s'));
    assert!(
        last_start < first_end,
        "all three start before any finishes"
    );
}

#[tokio::test(start_paused = true)]
async fn parent_exit_data_flows_to_children_and_groups() {
    let r = run(r#"
Name: ped
Actions:
- Name: parent
  Handler: {Type: Empty}
  Parameters: {Values: {ExitData: {Servers: [a, b], Owner: {Name: ops}}}}
  ActionGroup:
    Name: group
    Handler: {Type: Echo}
    Parameters:
      ParentExitData:
      - CopyToValues: {Source: 'Owner:Name', Target: Team}
  Actions:
  - Name: child
    Handler: {Type: Echo}
    Parameters:
      Values: {First: null}
      ParentExitData:
      - TransformInPlace: {Source: 'Servers[0]', Target: Primary}
        CopyToValues: {Target: First}
"#)
    .await;
    assert_eq!(
        r.find("group").unwrap().exit_data["Parameters"],
        json!({"Team": "ops"})
    );
    assert_eq!(
        r.find("child").unwrap().exit_data["Parameters"],
        json!({"First": "a"})
    );
    assert_eq!(
        r.find("child").unwrap().exit_data["ParentExitData"],
        json!({"Servers": ["a", "b"], "Owner": {"Name": "ops"}})
    );
}

#[tokio::test(start_paused = true)]
async fn for_each_runs_the_cartesian_product_of_config_and_parameters() {
    let r = run(r#"
Name: foreach
Actions:
- Name: fan
  Handler:
    Type: Echo
    Config:
      Values: {Region: x}
      ForEach: [{Target: Region, Values: [east, west]}]
  Parameters:
    Values: {Host: x, Port: 0}
    ForEach:
    - {Target: Host, Values: [h1, h2, h3]}
    - {Target: Port, Values: [80, 443]}
  Actions:
  - {Name: after, Handler: {Type: Empty}}
"#)
    .await;
    let clones = r.find_all("fan");
    assert_eq!(clones.len(), 12, "2 configs x (3 hosts x 2 ports)");
    let mut seen: Vec<String> = clones
        .iter()
        .map(|c| {
            let e = &c.exit_data;
            format!(
                "{}/{}:{}",
                e["Config"]["Region"].as_str().unwrap(),
                e["Parameters"]["Host"].as_str().unwrap(),
                e["Parameters"]["Port"]
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12);
    assert_eq!(
        r.find_all("after").len(),
        12,
        "each clone runs its own subtree"
    );
    let indexes: Vec<usize> = clones.iter().filter_map(|c| c.for_each_index).collect();
    assert_eq!(indexes.len(), 12);
}

#[tokio::test(start_paused = true)]
async fn for_each_over_parent_exit_data_and_named_sets() {
    let r = run(r#"
Name: foreach-sources
Actions:
- Name: list
  Handler: {Type: Empty}
  Parameters:
    Name: Inventory
    Values: {ExitData: {Servers: [a, b, c]}, Extra: {Deep: {Zones: [z1, z2]}}}
  Actions:
  - Name: per-server
    Handler: {Type: Echo}
    Parameters:
      Values: {Server: null}
      ForEach: [{Target: Server, ParameterSource: {Name: ParentExitData, Source: Servers}}]
  - Name: per-zone
    Handler: {Type: Echo}
    Parameters:
      Values: {Zone: null}
      ForEach: [{Target: Zone, ParameterSource: {Name: Inventory, Source: Extra}}]
"#)
    .await;
    assert_eq!(r.find_all("per-server").len(), 3);
    let zones: Vec<Value> = r
        .find_all("per-zone")
        .iter()
        .map(|c| c.exit_data["Parameters"]["Zone"].clone())
        .collect();
    assert_eq!(zones.len(), 2, "the first list found under Extra");
    assert!(zones.contains(&json!("z1")) && zones.contains(&json!("z2")));
}

#[tokio::test(start_paused = true)]
async fn inherit_from_and_save_exit_data_as() {
    let r = run(r#"
Name: inherit
Actions:
- Name: base
  Handler: {Type: Empty}
  SaveExitDataAs: {Parameters: Saved}
  Parameters:
    Name: Common
    Values: {Domain: sandbox.local, Port: 636, ExitData: {Ticket: abc}}
  Actions:
  - Name: child
    Handler: {Type: Echo}
    Parameters:
      InheritFrom: Common
      Values: {Port: 389}
    Actions:
    - Name: grandchild
      Handler: {Type: Echo}
      Parameters: {InheritFrom: Saved}
"#)
    .await;
    let child = &r.find("child").unwrap().exit_data["Parameters"];
    assert_eq!(child["Domain"], json!("sandbox.local"));
    assert_eq!(child["Port"], json!(389));
    assert_eq!(
        r.find("grandchild").unwrap().exit_data["Parameters"],
        json!({"Ticket": "abc"})
    );
}

#[tokio::test(start_paused = true)]
async fn a_resolve_failure_fails_the_action_without_running_it_and_failed_branches_run() {
    let r = run(r#"
Name: resolve-failure
Actions:
- Name: broken
  Handler: {Type: Empty}
  Parameters:
    Values: {Name: text}
    Dynamic: [{Source: x, Target: 'Name:Sub', Default: {Value: 1}}]
  Actions:
  - {Name: cleanup, ExecuteCase: Failed, Handler: {Type: Empty}}
  - {Name: happy, ExecuteCase: Complete, Handler: {Type: Empty}}
"#)
    .await;
    let broken = r.find("broken").unwrap();
    assert_eq!(broken.status, StatusType::Failed);
    assert_eq!(broken.attempts, 0, "the handler did not run");
    assert!(
        broken.message.contains("'Name' is a string"),
        "{}",
        broken.message
    );
    assert!(r.find("cleanup").is_some());
    assert!(r.find("happy").is_none());
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_running_handlers_and_skips_the_rest() {
    let (progress, events) = recording();
    let opts = RunOptions {
        progress,
        ..Default::default()
    };
    let cancel = opts.cancel.clone();
    let p = plan(
        r#"
Name: cancel
Actions:
- Name: hang
  Handler: {Type: Hang}
  Actions:
  - {Name: never, ExecuteCase: Any, Handler: {Type: Empty}}
- Name: slow
  Handler: {Type: Empty}
  Parameters: {Values: {SleepMilliseconds: 3600000}}
"#,
    );
    let exec = executor(0);
    let run = exec.run(&p, opts);
    let canceller = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        cancel.cancel();
    };
    let (r, ()) = tokio::join!(run, canceller);
    let r = r.unwrap();
    assert_eq!(r.status, StatusType::Cancelled);
    assert_eq!(r.find("hang").unwrap().status, StatusType::Cancelled);
    assert_eq!(r.find("slow").unwrap().status, StatusType::Cancelled);
    let never = r.find("never").unwrap();
    assert_eq!((never.status, never.attempts), (StatusType::Cancelled, 0));
    assert!(!events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.action_name == "never" && e.status == StatusType::Running));
}

#[tokio::test(start_paused = true)]
async fn timeout_fails_the_action_and_retry_reruns_it() {
    let r = run(r#"
Name: timeouts
Actions:
- Name: too-slow
  Handler: {Type: Hang}
  Timeout: 250ms
  Retry: {Count: 2, Delay: 1s, Backoff: 2}
  Actions:
  - {Name: on-failed, ExecuteCase: Failed, Handler: {Type: Empty}}
"#)
    .await;
    let a = r.find("too-slow").unwrap();
    assert_eq!(a.status, StatusType::Failed);
    assert_eq!(a.attempts, 3);
    assert!(a.message.contains("timed out after 250ms"), "{}", a.message);
    assert!(r.find("on-failed").is_some());
}

#[tokio::test(start_paused = true)]
async fn retry_succeeds_after_transient_failures() {
    let p = plan("Name: retry\nActions:\n- Name: flaky\n  Handler: {Type: Flaky}\n  Retry: {Count: 3, Delay: 100ms}\n");
    let r = executor(2).run(&p, RunOptions::default()).await.unwrap();
    let a = r.find("flaky").unwrap();
    assert_eq!((a.status, a.attempts), (StatusType::Complete, 3));
    assert_eq!(a.exit_data, json!({"calls": 3}));

    let p = plan(
        "Name: retry\nActions:\n- Name: flaky\n  Handler: {Type: Flaky}\n  Retry: {Count: 1}\n",
    );
    let r = executor(5).run(&p, RunOptions::default()).await.unwrap();
    let a = r.find("flaky").unwrap();
    assert_eq!((a.status, a.attempts), (StatusType::Failed, 2));
}

#[tokio::test(start_paused = true)]
async fn dry_run_and_start_info_reach_the_handler() {
    let r = run_with(
        "Name: dry\nActions:\n- Name: echo\n  Handler: {Type: Echo}\n  Parameters: {Values: {Who: '~~PlanStartInfo_RequestUser~~'}}\n",
        RunOptions { dry_run: true, request_user: Some("alice".into()), ..Default::default() },
    )
    .await;
    let e = &r.find("echo").unwrap().exit_data;
    assert_eq!(e["IsDryRun"], json!(true));
    assert_eq!(e["RequestUser"], json!("alice"));
    assert_eq!(e["Parameters"]["Who"], json!("alice"));
    assert!(r.dry_run);
}

#[tokio::test(start_paused = true)]
async fn start_info_cannot_be_forged_by_the_caller() {
    let inputs: DynamicParams = [("PlanStartInfo_RequestUser", "mallory")]
        .into_iter()
        .collect();
    let r = run_with(
        "Name: forge\nActions:\n- Name: echo\n  Handler: {Type: Echo}\n  Parameters: {Values: {Who: '~~PlanStartInfo_RequestUser~~'}}\n",
        RunOptions { inputs, request_user: Some("alice".into()), ..Default::default() },
    )
    .await;
    assert_eq!(
        r.find("echo").unwrap().exit_data["Parameters"]["Who"],
        json!("alice")
    );
}

#[tokio::test(start_paused = true)]
async fn missing_and_invalid_inputs_are_reported_together_and_nothing_runs() {
    let (progress, events) = recording();
    let inputs: DynamicParams = [("count", "many")].into_iter().collect();
    let p = plan(
        r#"
Name: inputs
Actions:
- Name: a
  Handler: {Type: Echo}
  Parameters:
    Values: {Filter: '(cn=~~user~~)'}
    Dynamic:
    - {Source: ou, Target: Ou, Required: true}
    - {Source: count, Target: Count, DataType: Int32}
"#,
    );
    let err = executor(0)
        .run(
            &p,
            RunOptions {
                inputs,
                progress,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let RunError::Inputs(e) = err else {
        panic!("expected input errors")
    };
    let text = e.to_string();
    assert_eq!(e.problems.len(), 3, "{text}");
    for needle in ["'user'", "'ou'", "'count'"] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
    assert!(events.lock().unwrap().is_empty(), "nothing ran");
}

#[tokio::test(start_paused = true)]
async fn tokens_are_escaped_for_the_place_they_land() {
    let inputs: DynamicParams = [
        ("user", "*)(objectClass=*"),
        ("name", "Fox, Michael"),
        ("note", "~~user~~ stays literal"),
    ]
    .into_iter()
    .collect();
    let r = run_with(
        r#"
Name: tokens
Actions:
- Name: search
  Handler: {Type: FilterEcho}
  Parameters:
    Values:
      Filter: '(&(objectClass=user)(sAMAccountName=~~user~~))'
      Base: 'cn=~~name~~,ou=Synapse,dc=sandbox,dc=local'
      Text: 'Hello ~~name~~'
    Dynamic: [{Source: note, Target: Note}]
"#,
        RunOptions {
            inputs,
            ..Default::default()
        },
    )
    .await;
    let p = &r.find("search").unwrap().exit_data;
    assert_eq!(
        p["Filter"],
        json!("(&(objectClass=user)(sAMAccountName=\\2a\\29\\28objectClass=\\2a))")
    );
    assert_eq!(
        p["Base"],
        json!("cn=Fox\\, Michael,ou=Synapse,dc=sandbox,dc=local")
    );
    assert_eq!(p["Text"], json!("Hello Fox, Michael"));
    assert_eq!(
        p["Note"],
        json!("~~user~~ stays literal"),
        "values from callers are never re-scanned"
    );
}

#[tokio::test(start_paused = true)]
async fn an_inactive_plan_is_refused() {
    let p = plan("Name: off\nIsActive: false\nActions:\n- {Name: a, Handler: {Type: Empty}}\n");
    let err = executor(0)
        .run(&p, RunOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Inactive(_)));
}

#[tokio::test(start_paused = true)]
async fn a_handler_panic_fails_only_its_action() {
    struct Boom;
    #[async_trait]
    impl Handler for Boom {
        fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
            named("BoomHandler")
        }
        async fn execute(&self, _: &ActionContext, _: Value, _: Value) -> ExecuteResult {
            panic!("boom")
        }
    }
    let mut reg = registry(0);
    reg.register(Arc::new(Boom));
    let exec = Executor::in_process(Arc::new(reg));
    let l = load::load_str("Name: p\nActions:\n- {Name: boom, Handler: {Type: Boom}}\n- {Name: fine, Handler: {Type: Empty}}\n", "p.yaml").unwrap();
    let r = exec.run(&l.plan, RunOptions::default()).await.unwrap();
    assert_eq!(r.find("boom").unwrap().status, StatusType::Failed);
    assert!(r.find("boom").unwrap().message.contains("panicked"));
    assert_eq!(r.find("fine").unwrap().status, StatusType::Complete);
}

#[tokio::test(start_paused = true)]
async fn run_as_is_inherited_unless_blocked_and_its_password_is_masked() {
    let r = run(r#"
Name: runas
RunAs: {Domain: SANDBOX, UserName: svc1, Password: s3cret, IsInheritable: true}
Actions:
- Name: inherits
  Handler: {Type: Echo}
- Name: own
  Handler: {Type: Echo}
  RunAs: {UserName: svc2, Password: other}
"#)
    .await;
    assert_eq!(
        r.find("inherits").unwrap().exit_data["RunAs"]["UserName"],
        json!("svc1")
    );
    assert_eq!(
        r.find("own").unwrap().exit_data["RunAs"]["UserName"],
        json!("svc2")
    );
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        !text.contains("s3cret") && !text.contains("other"),
        "passwords are masked"
    );
}

/// Answers with scripted transport outcomes first, then runs handlers in process.
struct Scripted {
    script: Mutex<Vec<DispatchOutcome>>,
    inner: InProcess,
    seen: Mutex<Vec<(u32, String)>>,
}

#[async_trait]
impl Dispatcher for Scripted {
    async fn dispatch(&self, job: ActionJob) -> DispatchOutcome {
        self.seen
            .lock()
            .unwrap()
            .push((job.request.attempt, job.request.idempotency_key.to_string()));
        let next = {
            let mut s = self.script.lock().unwrap();
            (!s.is_empty()).then(|| s.remove(0))
        };
        match next {
            Some(o) => o,
            None => self.inner.dispatch(job).await,
        }
    }
}

/// A handler whose descriptor says every action only reads.
struct Reader;
struct ReaderInfo;
impl HandlerDescriptor for ReaderInfo {
    fn name(&self) -> &'static str {
        "ReaderHandler"
    }
    fn action_kind(&self, _: &Value) -> ActionKind {
        ActionKind::Read
    }
}
#[async_trait]
impl Handler for Reader {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        Arc::new(ReaderInfo)
    }
    async fn execute(&self, ctx: &ActionContext, _: Value, _: Value) -> ExecuteResult {
        ExecuteResult::complete(
            json!({"Attempt": ctx.attempt, "Key": ctx.idempotency_key.to_string()}),
        )
    }
}

async fn scripted_run(
    handler: &str,
    script: Vec<DispatchOutcome>,
) -> (PlanResult, Vec<(u32, String)>) {
    let mut reg = registry(0);
    reg.register(Arc::new(Reader));
    let reg = Arc::new(reg);
    let d = Arc::new(Scripted {
        script: Mutex::new(script),
        inner: InProcess::new(reg.clone()),
        seen: Mutex::new(Vec::new()),
    });
    let exec = Executor::new(reg, d.clone());
    let yaml = format!(
        "Name: t\nActions:\n- Name: a\n  Handler: {{Type: {handler}}}\n  Retry: {{Count: 2, Delay: 1s}}\n"
    );
    let l = load::load_str(&yaml, "t.yaml").unwrap();
    let r = exec.run(&l.plan, RunOptions::default()).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    (r, seen)
}

#[tokio::test(start_paused = true)]
async fn an_undelivered_request_is_retried_with_a_new_attempt_and_key() {
    let (r, seen) = scripted_run(
        "Empty",
        vec![DispatchOutcome::NotDelivered {
            reason: "no node".into(),
        }],
    )
    .await;
    let a = r.find("a").unwrap();
    assert_eq!(a.status, StatusType::Complete, "{}", a.message);
    assert_eq!(a.attempts, 2);
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].0, seen[1].0), (1, 2));
    assert_ne!(
        seen[0].1, seen[1].1,
        "each attempt has its own idempotency key"
    );
    assert!(seen[0].1.starts_with(&r.instance_id.to_string()));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_never_retried_for_a_write() {
    let (r, seen) = scripted_run(
        "Empty",
        vec![DispatchOutcome::Unknown {
            reason: "connection lost after delivery".into(),
        }],
    )
    .await;
    let a = r.find("a").unwrap();
    assert_eq!(a.status, StatusType::Failed);
    assert_eq!(a.attempts, 1);
    assert_eq!(seen.len(), 1);
    assert!(a.message.contains("outcome unknown"), "{}", a.message);
    assert!(a.message.contains("not retried"), "{}", a.message);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_retried_for_a_read() {
    let (r, _) = scripted_run(
        "Reader",
        vec![DispatchOutcome::Unknown {
            reason: "connection lost".into(),
        }],
    )
    .await;
    let a = r.find("a").unwrap();
    assert_eq!(a.status, StatusType::Complete, "{}", a.message);
    assert_eq!(a.attempts, 2);
    assert_eq!(a.exit_data["Attempt"], json!(2));
    assert!(a.exit_data["Key"].as_str().unwrap().ends_with("/2"));
}

#[tokio::test(start_paused = true)]
async fn a_descriptor_only_handler_validates_but_is_not_run_here() {
    let mut reg = registry(0);
    reg.register_descriptor(named("RemoteOnlyHandler"));
    let l = load::load_str(
        "Name: r\nActions:\n- {Name: a, Handler: {Type: RemoteOnly}}\n",
        "r.yaml",
    )
    .unwrap();
    let diags = synapse_engine::validate::validate(&l, &reg);
    assert!(
        diags
            .iter()
            .all(|d| d.severity != synapse_engine::Severity::Error),
        "{diags:?}"
    );
    let r = Executor::in_process(Arc::new(reg))
        .run(&l.plan, RunOptions::default())
        .await
        .unwrap();
    let a = r.find("a").unwrap();
    assert_eq!(a.status, StatusType::Failed);
    assert!(a.message.contains("not delivered"), "{}", a.message);
    assert!(
        a.message.contains("does not run in this process"),
        "{}",
        a.message
    );
}

#[tokio::test(start_paused = true)]
async fn timestamps_come_from_the_clock() {
    use chrono::TimeZone;
    let t0 = chrono::Utc.with_ymd_and_hms(2026, 12, 24, 7, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let (sink, events) = recording();
    let exec = executor(0).with_clock(Arc::new(clock.clone()));
    let r = exec
        .run(
            &plan("Name: c\nActions:\n- {Name: a, Handler: {Type: Empty}}\n"),
            RunOptions {
                progress: sink,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.started_at, t0);
    assert_eq!(r.finished_at, t0);
    assert_eq!(r.find("a").unwrap().started_at, t0);
    assert!(events.lock().unwrap().iter().all(|e| e.time == t0));
}

/// Sends every request through JSON and back (what a remote node would receive) before running it here, and
/// the outcome through JSON again: proves the wire request is complete, secrets included.
struct WireLoopback {
    inner: InProcess,
    wire: Mutex<Vec<String>>,
    logged: Mutex<Vec<String>>,
}

#[async_trait]
impl Dispatcher for WireLoopback {
    async fn dispatch(&self, job: ActionJob) -> DispatchOutcome {
        let text = serde_json::to_string(&job.request).unwrap();
        self.logged
            .lock()
            .unwrap()
            .push(serde_json::to_string(&job.request.redacted()).unwrap());
        self.wire.lock().unwrap().push(text.clone());
        let request: synapse_engine::ActionRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(request, job.request, "the request survives the wire");
        let outcome = self
            .inner
            .dispatch(ActionJob {
                request,
                runtime: job.runtime,
            })
            .await;
        let back = serde_json::to_string(&outcome).unwrap();
        let outcome2: DispatchOutcome = serde_json::from_str(&back).unwrap();
        assert_eq!(serde_json::to_string(&outcome2).unwrap(), back);
        outcome2
    }
}

/// Reports whether the secrets it was given are the real ones (never echoes them).
struct SecretCheck;

#[async_trait]
impl Handler for SecretCheck {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        named("SecretCheckHandler")
    }
    async fn execute(&self, ctx: &ActionContext, _: Value, params: Value) -> ExecuteResult {
        ExecuteResult::complete(json!({
            "PasswordIsReal": params["Password"] == json!("Hunter2!x"),
            "RunAsPasswordIsReal": ctx.run_as.as_ref().and_then(|r| r.password.as_deref()) == Some("s3cret"),
            "Principal": ctx.request_user,
            "Attempt": ctx.attempt,
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn a_plan_runs_the_same_through_the_wire_with_secrets_intact_and_masked_in_logs() {
    let yaml = r#"
Name: wire
RunAs: {Domain: SANDBOX, UserName: svc, Password: s3cret}
Actions:
- Name: check
  Handler: {Type: SecretCheck}
  Parameters:
    Values: {Password: '~~password~~'}
    Dynamic: [{Name: password, Path: Password}]
"#;
    let mut reg = registry(0);
    reg.register(Arc::new(SecretCheck));
    let reg = Arc::new(reg);
    let l = load::load_str(yaml, "wire.yaml").unwrap();
    let opts = || RunOptions {
        inputs: [("password", "Hunter2!x")].into_iter().collect(),
        request_user: Some("helpdesk".into()),
        ..RunOptions::default()
    };
    let local = Executor::in_process(reg.clone())
        .run(&l.plan, opts())
        .await
        .unwrap();
    let loopback = Arc::new(WireLoopback {
        inner: InProcess::new(reg.clone()),
        wire: Mutex::new(Vec::new()),
        logged: Mutex::new(Vec::new()),
    });
    let remote = Executor::new(reg, loopback.clone())
        .run(&l.plan, opts())
        .await
        .unwrap();
    let (a, b) = (local.find("check").unwrap(), remote.find("check").unwrap());
    assert_eq!(a.status, StatusType::Complete, "{}", a.message);
    assert_eq!(a.exit_data, b.exit_data);
    assert_eq!(a.exit_data["PasswordIsReal"], json!(true));
    assert_eq!(a.exit_data["RunAsPasswordIsReal"], json!(true));
    assert_eq!(a.exit_data["Principal"], json!("helpdesk"));
    let wire = loopback.wire.lock().unwrap().join("\n");
    assert!(
        wire.contains("Hunter2!x") && wire.contains("s3cret"),
        "secrets travel: {wire}"
    );
    let logged = loopback.logged.lock().unwrap().join("\n");
    assert!(
        !logged.contains("Hunter2!x") && !logged.contains("s3cret"),
        "logs mask: {logged}"
    );
    let history = serde_json::to_string(&remote).unwrap();
    assert!(
        !history.contains("Hunter2!x") && !history.contains("s3cret"),
        "history masks: {history}"
    );
}
