//! Scheduled plan execution (issue 10): the scheduler driven by a ManualClock (time is never slept), the
//! exactly-once store transaction across kill -9 (a child process), and the `/synapse/schedules` API.

use axum::body::Body;
use axum::http::{Method, Request};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use synapse_controller::catalog::Catalog;
use synapse_controller::config::{InstanceLimits, ServeConfig, DEFAULT_BODY_LIMIT};
use synapse_controller::runner::Runner;
use synapse_controller::schedule::model::{
    Misfire, OccurrenceRecord, OccurrenceStatus, Overlap, ScheduleSpec, SkipReason, Source, Trigger,
};
use synapse_controller::schedule::scheduler::next_occurrence;
use synapse_controller::schedule::{cron::CronSpec, Scheduler};
use synapse_controller::store::{
    InstanceStore, RedbStore, ScheduleRecord, ScheduleState, ScheduleStore, Stores,
};
use synapse_controller::writer::Writer;
use synapse_controller::AppState;
use synapse_engine::{Executor, ManualClock, SharedClock, StatusType};
use tower::ServiceExt;

use uuid::Uuid;

const QUICK_PLAN: &str = "\
Name: Quick
Actions:
- Name: first
  Handler: {Type: Empty}
  Parameters:
    Values: {ExitData: {Answer: 42}}
    Dynamic:
    - {Source: sleep, Target: SleepMilliseconds, DataType: Int32}
";

/// Runs a minute unless cancelled: the "long-running" plan of the overlap tests.
const LONG_PLAN: &str = "\
Name: Long
Actions:
- Name: nap
  Handler: {Type: Empty}
  Parameters:
    Values: {SleepMilliseconds: 60000}
";

const FAIL_PLAN: &str = "\
Name: Fail
Actions:
- Name: boom
  Handler: {Type: Empty}
  Parameters:
    Values: {ReturnStatus: Failed, Message: boom}
";

struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "synapse-sched-{prefix}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(p.join("plans")).unwrap();
        for (name, text) in [
            ("Quick.yaml", QUICK_PLAN),
            ("Long.yaml", LONG_PLAN),
            ("Fail.yaml", FAIL_PLAN),
        ] {
            std::fs::write(p.join("plans").join(name), text).unwrap();
        }
        TempDir(p)
    }

    fn plans(&self) -> PathBuf {
        self.0.join("plans")
    }

    fn store_path(&self) -> PathBuf {
        self.0.join("data").join("synapse.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap()
}

/// One controller's scheduling parts over a store file, with a manual clock.
struct Node {
    store: Arc<RedbStore>,
    runner: Arc<Runner>,
    catalog: Catalog,
    sched: Scheduler,
}

fn boot(plans: &Path, store_path: &Path, clock: &ManualClock) -> Node {
    let store = Arc::new(RedbStore::open(store_path).unwrap());
    store.mark_interrupted(clock.now_utc()).unwrap();
    let registry = synapse_handlers::builtin_registry();
    let catalog = Catalog::load(plans, &registry).unwrap();
    let shared: SharedClock = Arc::new(clock.clone());
    let executor = Executor::in_process(Arc::new(registry)).with_clock(shared.clone());
    let writer = Arc::new(Writer::start(store.clone()));
    let runner = Arc::new(Runner::new(executor, store.clone(), writer, 1000));
    let sched = Scheduler::new(store.clone(), runner.clone(), shared);
    Node {
        store,
        runner,
        catalog,
        sched,
    }
}

trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        synapse_engine::Clock::now(self)
    }
}

fn spec(name: &str, plan: &str, cron: &str) -> ScheduleSpec {
    serde_json::from_value(json!({"Name": name, "Plan": plan, "Cron": cron})).unwrap()
}

/// Stores a schedule the way the API does (next occurrence computed from `now`).
fn add(node: &Node, spec: ScheduleSpec, now: DateTime<Utc>) {
    let cron = CronSpec::parse(&spec.cron, &spec.time_zone).unwrap();
    let rec = ScheduleRecord {
        state: ScheduleState {
            next_fire_at: next_occurrence(&spec, &cron, now),
            ..Default::default()
        },
        spec,
        source: Source::Api,
        file: None,
        owner: Some("test".into()),
        created_at: now,
        updated_at: now,
        deferred: None,
    };
    node.store.insert_schedule(&rec).unwrap();
}

/// Occurrences, oldest first.
fn history(node: &Node, name: &str) -> Vec<OccurrenceRecord> {
    let mut v = node.store.list_occurrences(name, 10_000, None).unwrap();
    v.reverse();
    v
}

fn minute(m: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(m)
}

fn summary(occ: &[OccurrenceRecord]) -> Vec<String> {
    occ.iter()
        .map(|o| {
            let m = (o.scheduled_for - t0()).num_minutes();
            match o.status {
                OccurrenceStatus::Fired => format!("{m}:fired:{:?}", o.trigger),
                OccurrenceStatus::Skipped => format!("{m}:skipped:{:?}", o.reason.unwrap()),
            }
        })
        .collect()
}

async fn wait_finished(node: &Node, id: Uuid) -> StatusType {
    for _ in 0..1500 {
        node.runner.flush();
        if let Some(r) = node.runner.instance(id).unwrap() {
            if !r.is_running() && !node.runner.is_live(id) {
                return r.status;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "instance {id} did not finish: {:?}",
        node.runner.instance(id).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------------------
// Misfire after a 10-minute downtime (a real restart: the store is closed and reopened)
// ---------------------------------------------------------------------------------------------------------

async fn misfire_case(misfire: Misfire) -> Vec<String> {
    let dir = TempDir::new("misfire");
    let clock = ManualClock::new(t0());
    let mut s = spec("every-minute", "Quick", "* * * * *");
    s.misfire = misfire;
    s.catch_up_window = "5m".into();
    s.overlap = Overlap::AllowAll;
    {
        let node = boot(&dir.plans(), &dir.store_path(), &clock);
        add(&node, s, clock.now_utc());
        clock.set(minute(1) + Duration::seconds(2));
        assert_eq!(node.sched.tick(&node.catalog).unwrap(), 1);
        node.runner
            .shutdown(std::time::Duration::from_secs(5))
            .await;
    }
    // Down from 08:01:02 to 08:11:30.
    clock.set(minute(11) + Duration::seconds(30));
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    node.sched.tick(&node.catalog).unwrap();
    // A second tick at the same instant records nothing more.
    assert_eq!(node.sched.tick(&node.catalog).unwrap(), 0);
    let h = history(&node, "every-minute");
    for o in &h {
        if let Some(id) = o.instance {
            assert!(node.runner.instance(id).unwrap().is_some(), "{o:?}");
        }
        assert_eq!(
            o.lateness_ms,
            (o.recorded_at - o.scheduled_for).num_milliseconds()
        );
    }
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
    summary(&h)
}

#[tokio::test]
async fn misfire_skip_records_every_missed_occurrence_and_runs_the_next_on_time() {
    let h = misfire_case(Misfire::Skip).await;
    let mut want = vec!["1:fired:Cron".to_string()];
    want.extend((2..=10).map(|m| format!("{m}:skipped:Misfire")));
    want.push("11:fired:Cron".into());
    assert_eq!(h, want);
}

#[tokio::test]
async fn misfire_run_once_runs_the_newest_missed_occurrence_once() {
    let h = misfire_case(Misfire::RunOnce).await;
    let mut want = vec!["1:fired:Cron".to_string()];
    want.extend((2..=9).map(|m| format!("{m}:skipped:Misfire")));
    want.push("10:fired:CatchUp".into());
    want.push("11:fired:Cron".into());
    assert_eq!(h, want);
}

#[tokio::test]
async fn misfire_catch_up_runs_the_missed_occurrences_in_the_window_oldest_first() {
    let h = misfire_case(Misfire::CatchUp).await;
    // Window 5m before 08:11:30: 08:06:30 onwards runs.
    let mut want = vec!["1:fired:Cron".to_string()];
    want.extend((2..=6).map(|m| format!("{m}:skipped:Misfire")));
    want.extend((7..=10).map(|m| format!("{m}:fired:CatchUp")));
    want.push("11:fired:Cron".into());
    assert_eq!(h, want);
}

// ---------------------------------------------------------------------------------------------------------
// Overlap with a long-running plan
// ---------------------------------------------------------------------------------------------------------

async fn overlap_node(overlap: Overlap) -> (TempDir, ManualClock, Node, Uuid) {
    let dir = TempDir::new("overlap");
    let clock = ManualClock::new(t0());
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    let mut s = spec("long", "Long", "* * * * *");
    s.overlap = overlap;
    add(&node, s, clock.now_utc());
    clock.set(minute(1));
    assert_eq!(node.sched.tick(&node.catalog).unwrap(), 1);
    let first = history(&node, "long")[0].instance.unwrap();
    assert!(node.runner.is_live(first));
    clock.set(minute(2));
    node.sched.tick(&node.catalog).unwrap();
    (dir, clock, node, first)
}

#[tokio::test]
async fn overlap_skip_records_the_occurrence_as_skipped() {
    let (_dir, _clock, node, first) = overlap_node(Overlap::Skip).await;
    assert_eq!(
        summary(&history(&node, "long")),
        ["1:fired:Cron", "2:skipped:Overlap"]
    );
    assert!(node.runner.is_live(first));
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn overlap_allow_all_runs_both() {
    let (_dir, _clock, node, first) = overlap_node(Overlap::AllowAll).await;
    let h = history(&node, "long");
    assert_eq!(summary(&h), ["1:fired:Cron", "2:fired:Cron"]);
    assert!(node.runner.is_live(first) && node.runner.is_live(h[1].instance.unwrap()));
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn overlap_cancel_other_cancels_the_running_one() {
    let (_dir, _clock, node, first) = overlap_node(Overlap::CancelOther).await;
    let h = history(&node, "long");
    assert_eq!(summary(&h), ["1:fired:Cron", "2:fired:Cron"]);
    assert_eq!(wait_finished(&node, first).await, StatusType::Cancelled);
    assert!(node.runner.is_live(h[1].instance.unwrap()));
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn overlap_buffer_one_keeps_the_newest_and_runs_it_when_the_previous_ends() {
    let (_dir, clock, node, first) = overlap_node(Overlap::BufferOne).await;
    // 08:02 waits in the buffer: nothing recorded yet.
    assert_eq!(summary(&history(&node, "long")), ["1:fired:Cron"]);
    clock.set(minute(3));
    node.sched.tick(&node.catalog).unwrap();
    // 08:03 replaced 08:02 in the buffer.
    assert_eq!(
        summary(&history(&node, "long")),
        ["1:fired:Cron", "2:skipped:Overlap"]
    );
    let shown = node.store.get_schedule("long").unwrap().unwrap();
    assert_eq!(shown.state.buffered, Some(minute(3)));
    // The first run ends; the buffered occurrence fires at the next tick, late.
    assert!(node.runner.cancel(first));
    wait_finished(&node, first).await;
    clock.set(minute(3) + Duration::seconds(20));
    node.sched.tick(&node.catalog).unwrap();
    let h = history(&node, "long");
    assert_eq!(
        summary(&h),
        ["1:fired:Cron", "2:skipped:Overlap", "3:fired:Cron"]
    );
    assert_eq!(h[2].lateness_ms, 20_000);
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

// ---------------------------------------------------------------------------------------------------------
// Pause/resume, PauseOnFailure, a plan that goes away, start/end
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn paused_occurrences_are_handled_by_the_misfire_policy_on_resume() {
    let dir = TempDir::new("pause");
    let clock = ManualClock::new(t0());
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    let mut s = spec("p", "Quick", "*/5 * * * *");
    s.overlap = Overlap::AllowAll;
    add(&node, s, clock.now_utc());
    clock.set(minute(5));
    node.sched.tick(&node.catalog).unwrap();
    wait_finished(&node, history(&node, "p")[0].instance.unwrap()).await;
    // Pause at 08:06, resume at 08:31.
    let mut rec = node.store.get_schedule("p").unwrap().unwrap();
    rec.spec.enabled = false;
    rec.state.paused_at = Some(minute(6));
    node.store.put_schedule(&rec).unwrap();
    assert_eq!(
        node.store.next_due().unwrap(),
        None,
        "a paused schedule is not due"
    );
    clock.set(minute(31));
    assert_eq!(node.sched.tick(&node.catalog).unwrap(), 0);
    let mut rec = node.store.get_schedule("p").unwrap().unwrap();
    rec.spec.enabled = true;
    rec.state.resumed_at = Some(minute(31));
    node.store.put_schedule(&rec).unwrap();
    node.sched.tick(&node.catalog).unwrap();
    // Default misfire policy RunOnce: 08:10..08:20 skipped as Paused, 08:25 (6 minutes late) runs once as
    // the catch-up run, 08:30 (1 minute late, within the threshold) on time.
    assert_eq!(
        summary(&history(&node, "p")),
        [
            "5:fired:Cron",
            "10:skipped:Paused",
            "15:skipped:Paused",
            "20:skipped:Paused",
            "25:fired:CatchUp",
            "30:fired:Cron"
        ]
    );
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn pause_on_failure_pauses_after_n_consecutive_failures_with_the_reason() {
    let dir = TempDir::new("pof");
    let clock = ManualClock::new(t0());
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    let mut s = spec("fails", "Fail", "* * * * *");
    s.pause_on_failure = Some(2);
    add(&node, s, clock.now_utc());
    for m in 1..=3 {
        clock.set(minute(m));
        node.sched.tick(&node.catalog).unwrap();
        if let Some(id) = history(&node, "fails").last().and_then(|o| o.instance) {
            wait_finished(&node, id).await;
        }
    }
    clock.set(minute(3) + Duration::seconds(1));
    node.sched.tick(&node.catalog).unwrap();
    let rec = node.store.get_schedule("fails").unwrap().unwrap();
    assert!(!rec.spec.enabled);
    assert_eq!(rec.state.consecutive_failures, 2);
    let reason = rec.state.paused_reason.unwrap();
    assert!(reason.contains("2 consecutive failed runs"), "{reason}");
    // Paused after the second failure: 08:03 was handled after the pause took effect or fired before it.
    let h = history(&node, "fails");
    assert!(h.len() <= 3, "{:?}", summary(&h));
    clock.set(minute(10));
    node.sched.tick(&node.catalog).unwrap();
    assert_eq!(
        history(&node, "fails").len(),
        h.len(),
        "nothing runs while paused"
    );
}

#[tokio::test]
async fn a_plan_that_disappears_or_parameters_that_stop_fitting_skip_visibly() {
    let dir = TempDir::new("plan-gone");
    let clock = ManualClock::new(t0());
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    add(&node, spec("gone", "Missing", "* * * * *"), clock.now_utc());
    let mut s = spec("params", "Quick", "* * * * *");
    s.parameters.insert("nope".into(), json!(1));
    add(&node, s, clock.now_utc());
    let mut s = spec("bad-value", "Quick", "* * * * *");
    s.parameters.insert("sleep".into(), json!("not a number"));
    add(&node, s, clock.now_utc());
    clock.set(minute(1));
    node.sched.tick(&node.catalog).unwrap();
    let gone = history(&node, "gone");
    assert_eq!(gone[0].reason, Some(SkipReason::PlanMissing));
    assert!(gone[0].detail.as_deref().unwrap().contains("Missing"));
    assert_eq!(
        history(&node, "params")[0].reason,
        Some(SkipReason::ParametersInvalid)
    );
    let bad = history(&node, "bad-value");
    assert_eq!(bad[0].reason, Some(SkipReason::ParametersInvalid));
    // The last result is on the schedule.
    let rec = node.store.get_schedule("gone").unwrap().unwrap();
    assert_eq!(
        rec.state.last.unwrap().reason,
        Some(SkipReason::PlanMissing)
    );
}

#[tokio::test]
async fn start_and_end_bound_the_occurrences_and_manual_triggers_are_recorded() {
    let dir = TempDir::new("bounds");
    let clock = ManualClock::new(t0());
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    let mut s = spec("bounded", "Quick", "* * * * *");
    s.start_at = Some(minute(3).fixed_offset());
    s.end_at = Some(minute(4).fixed_offset());
    s.overlap = Overlap::AllowAll;
    add(&node, s, clock.now_utc());
    for m in 1..=6 {
        clock.set(minute(m));
        node.sched.tick(&node.catalog).unwrap();
    }
    assert_eq!(
        summary(&history(&node, "bounded")),
        ["3:fired:Cron", "4:fired:Cron"]
    );
    assert_eq!(
        node.store
            .get_schedule("bounded")
            .unwrap()
            .unwrap()
            .state
            .next_fire_at,
        None
    );
    let occ = node
        .sched
        .trigger(&node.catalog, "bounded")
        .unwrap()
        .unwrap();
    assert_eq!(occ.trigger, Trigger::Manual);
    assert_eq!(occ.status, OccurrenceStatus::Fired);
    assert_eq!(occ.scheduled_for, minute(6));
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn dst_occurrences_fire_once_at_the_documented_instants() {
    let dir = TempDir::new("dst");
    // 2026-03-29 in Berlin: 02:30 does not exist and runs at 03:00 CEST (01:00 UTC).
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap());
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    let mut s = spec("berlin", "Quick", "30 2 * * *");
    s.time_zone = "Europe/Berlin".into();
    add(&node, s, clock.now_utc());
    let jump = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
    clock.set(jump - Duration::seconds(1));
    assert_eq!(node.sched.tick(&node.catalog).unwrap(), 0);
    clock.set(jump);
    assert_eq!(node.sched.tick(&node.catalog).unwrap(), 1);
    let h = history(&node, "berlin");
    assert_eq!(h[0].scheduled_for, jump);
    assert!(
        h[0].detail.as_deref().unwrap().contains("does not exist"),
        "{h:?}"
    );
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

// ---------------------------------------------------------------------------------------------------------
// Exactly once across kill -9
// ---------------------------------------------------------------------------------------------------------

const CRASH_SCHEDULES: usize = 150;

/// Run in a child process by the next test: ticks many due schedules, and is killed (SIGKILL) meanwhile.
#[tokio::test]
#[ignore = "helper of exactly_once_across_kill_9 (runs in a child process)"]
async fn crash_child() {
    let Some(dir) = std::env::var_os("SYNAPSE_SCHED_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let clock = ManualClock::new(minute(1));
    let node = boot(
        &dir.join("plans"),
        &dir.join("data").join("synapse.redb"),
        &clock,
    );
    println!("ticking");
    let _ = node.sched.tick(&node.catalog);
    println!("ticked");
    // Never exit cleanly: the parent kills us.
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[tokio::test]
async fn exactly_once_across_kill_9() {
    use std::io::BufRead;
    for round in 0..3u64 {
        let dir = TempDir::new("crash");
        {
            let clock = ManualClock::new(t0());
            let node = boot(&dir.plans(), &dir.store_path(), &clock);
            for i in 0..CRASH_SCHEDULES {
                let mut s = spec(&format!("s{i}"), "Quick", "* * * * *");
                s.overlap = Overlap::AllowAll;
                add(&node, s, t0());
            }
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "schedules::crash_child",
                "--nocapture",
            ])
            .env("SYNAPSE_SCHED_CRASH_DIR", &dir.0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("ticking") => break,
                Some(_) => continue,
                None => panic!("the child ended before ticking"),
            }
        }
        // Kill it at different moments of the tick (round 0: at once).
        std::thread::sleep(std::time::Duration::from_millis(
            [0, 40, 400][round as usize],
        ));
        child.kill().unwrap();
        child.wait().unwrap();

        // After the restart: every occurrence is fired at most once, with its instance; the rest is still due.
        let clock = ManualClock::new(minute(1) + Duration::seconds(5));
        let node = boot(&dir.plans(), &dir.store_path(), &clock);
        let mut fired_before = 0;
        for i in 0..CRASH_SCHEDULES {
            let name = format!("s{i}");
            let h = history(&node, &name);
            assert!(h.len() <= 1, "{name}: {:?}", summary(&h));
            let rec = node.store.get_schedule(&name).unwrap().unwrap();
            match h.first() {
                Some(o) => {
                    fired_before += 1;
                    let inst = node.runner.instance(o.instance.unwrap()).unwrap().unwrap();
                    // Started by the killed process: failed as interrupted at start-up.
                    assert!(!inst.is_running(), "{inst:?}");
                    assert_eq!(rec.state.next_fire_at, Some(minute(2)));
                }
                None => assert_eq!(rec.state.next_fire_at, Some(minute(1)), "{name} lost"),
            }
        }
        node.sched.tick(&node.catalog).unwrap();
        for i in 0..CRASH_SCHEDULES {
            let h = history(&node, &format!("s{i}"));
            assert_eq!(summary(&h), ["1:fired:Cron"], "s{i} (round {round})");
        }
        eprintln!("round {round}: {fired_before} of {CRASH_SCHEDULES} fired before the kill");
        node.runner
            .shutdown(std::time::Duration::from_secs(5))
            .await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------------------

struct Api {
    router: axum::Router,
    state: Arc<AppState>,
    _dir: TempDir,
}

fn api() -> Api {
    let dir = TempDir::new("api");
    let store = Arc::new(RedbStore::open(&dir.store_path()).unwrap());
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        plans: dir.plans(),
        data: dir.0.join("data"),
        no_auth: true,
        body_limit: DEFAULT_BODY_LIMIT,
        retention_days: 0,
        sync_timeout_seconds: 30,
        instance_limits: InstanceLimits::default(),
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
    let state = Arc::new(state);
    Api {
        router: synapse_controller::router(state.clone()),
        state,
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> (u16, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b
            .body(body.map_or_else(Body::empty, |s| Body::from(s.to_string())))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn api_create_list_get_pause_resume_trigger_occurrences_delete() {
    let api = api();
    let body = json!({"Name": "nightly", "Plan": "Quick", "Cron": "0 2 * * *",
        "TimeZone": "Europe/Berlin", "Parameters": {"sleep": 1}, "Misfire": "CatchUp",
        "Overlap": "BufferOne", "Enabled": true});
    let (s, v) = api
        .call(Method::POST, "/synapse/schedules", Some(&body.to_string()))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["Name"], "nightly");
    assert_eq!(v["Source"], "Api");
    assert_eq!(v["Owner"], "anonymous");
    assert_eq!(v["Misfire"], "CatchUp");
    assert_eq!(v["CatchUpWindow"], "1h", "defaults are spelled out");
    assert_eq!(v["Overlap"], "BufferOne");
    assert_eq!(v["NextFireTimes"].as_array().unwrap().len(), 5);
    let first = &v["NextFireTimes"][0];
    assert!(
        first["Local"].as_str().unwrap().contains("T02:00:00+0"),
        "{first}"
    );

    // The same name again (any case): 409.
    let again = body.to_string().replace("nightly", "NIGHTLY");
    let (s, _) = api
        .call(Method::POST, "/synapse/schedules", Some(&again))
        .await;
    assert_eq!(s, 409);

    let (s, v) = api.call(Method::GET, "/synapse/schedules", None).await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, v) = api
        .call(Method::GET, "/synapse/schedules/Nightly", None)
        .await;
    assert_eq!((s, v["Plan"].as_str()), (200, Some("Quick")));

    let (s, v) = api
        .call(Method::POST, "/synapse/schedules/nightly/pause", None)
        .await;
    assert_eq!((s, v["Paused"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(v["PausedReason"], "paused by anonymous");
    let (s, v) = api
        .call(Method::POST, "/synapse/schedules/nightly/resume", None)
        .await;
    assert_eq!((s, v["Paused"].as_bool()), (200, Some(false)));

    let (s, v) = api
        .call(Method::POST, "/synapse/schedules/nightly/trigger", None)
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["Status"], "Fired");
    let instance = v["Instance"].as_str().unwrap().to_string();
    let (s, v) = api
        .call(Method::GET, "/synapse/schedules/nightly/occurrences", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["Instance"], instance.as_str());
    assert!(v[0]["ScheduledFor"].is_string());
    let (s, v) = api
        .call(
            Method::GET,
            &format!("/synapse/execute/Quick/{instance}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Requester"], "schedule:nightly");

    let (s, _) = api
        .call(Method::DELETE, "/synapse/schedules/nightly", None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = api
        .call(Method::GET, "/synapse/schedules/nightly", None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = api
        .call(Method::GET, "/synapse/schedules/nightly/occurrences", None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn api_refuses_bad_definitions_with_400_naming_the_field() {
    let api = api();
    let base = json!({"Name": "x", "Plan": "Quick", "Cron": "*/5 * * * *"});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"Cron": "61 * * * *"}), "Cron:"),
        (json!({"Cron": "* * *"}), "Cron:"),
        (json!({"TimeZone": "Mars/Olympus"}), "TimeZone:"),
        (json!({"Plan": "NoSuchPlan"}), "Plan:"),
        (json!({"Misfire": "Sometimes"}), "Misfire"),
        (json!({"Overlap": 3}), "Overlap"),
        (json!({"CatchUpWindow": "forever"}), "CatchUpWindow:"),
        (json!({"Name": "a b"}), "Name:"),
        (json!({"Colour": "red"}), "Colour: unknown field"),
        (json!({"PauseOnFailure": 0}), "PauseOnFailure:"),
        (json!({"StartAt": "tomorrow"}), "StartAt"),
    ];
    for (patch, field) in cases {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, v) = api
            .call(Method::POST, "/synapse/schedules", Some(&body.to_string()))
            .await;
        assert_eq!(s, 400, "{body}: {v}");
        let msg = v.to_string();
        assert!(msg.contains(field), "{body}: {msg}");
    }
    // Parameters: the same 400 a start gives.
    let mut body = base.clone();
    body["Parameters"] = json!({"nope": 1});
    let (s, sched) = api
        .call(Method::POST, "/synapse/schedules", Some(&body.to_string()))
        .await;
    let (s2, start) = api
        .call(
            Method::POST,
            "/synapse/execute/Quick/start",
            Some(r#"{"nope": 1}"#),
        )
        .await;
    assert_eq!((s, s2), (400, 400));
    assert_eq!(sched, start);
    body["Parameters"] = json!({"sleep": "soon"});
    let (s, sched) = api
        .call(Method::POST, "/synapse/schedules", Some(&body.to_string()))
        .await;
    let (s2, start) = api
        .call(
            Method::POST,
            "/synapse/execute/Quick/start",
            Some(r#"{"sleep": "soon"}"#),
        )
        .await;
    assert_eq!((s, s2), (400, 400), "{sched}");
    assert_eq!(sched, start);
    let (s, v) = api.call(Method::GET, "/synapse/schedules", None).await;
    assert_eq!((s, v), (200, json!([])));
}

#[test]
fn cli_schedule_next_prints_one_instant_per_line_and_dst_notes_on_stderr() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_synapse"))
        .args([
            "schedule",
            "next",
            "30 2 * * *",
            "--tz",
            "Europe/Berlin",
            "--count",
            "3",
            "--from",
            "2026-10-24T12:00:00Z",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T02:30:00+01:00",
            "2026-10-27T02:30:00+01:00"
        ]
    );
    for line in stdout.lines() {
        DateTime::parse_from_rfc3339(line).unwrap();
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("occurs twice"), "{stderr}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_synapse"))
        .args(["schedule", "next", "* * *", "--tz", "Nowhere/Else"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8(bad.stderr)
        .unwrap()
        .contains("Nowhere/Else"));
}

// ---------------------------------------------------------------------------------------------------------
// Deferred runs (`/start?at=`)
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_deferred_run_waits_as_scheduled_and_fires_once_across_a_restart() {
    let dir = TempDir::new("deferred");
    let clock = ManualClock::new(t0());
    let principal = synapse_controller::auth::Principal::anonymous();
    let mut inputs = synapse_engine::DynamicParams::new();
    inputs.insert("sleep", json!(1));
    let id = {
        let node = boot(&dir.plans(), &dir.store_path(), &clock);
        let id = node
            .sched
            .defer("Quick", &inputs, false, &principal, minute(30))
            .unwrap();
        let rec = node.runner.instance(id).unwrap().unwrap();
        assert_eq!(rec.status, StatusType::Scheduled);
        clock.set(minute(29));
        node.sched.tick(&node.catalog).unwrap();
        assert_eq!(
            node.runner.instance(id).unwrap().unwrap().status,
            StatusType::Scheduled
        );
        id
        // The controller stops before the run's time.
    };
    // Restarted after the time: still Scheduled (not failed as interrupted), then fires once.
    clock.set(minute(45));
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    assert_eq!(
        node.runner.instance(id).unwrap().unwrap().status,
        StatusType::Scheduled
    );
    // A deferred run is not a schedule occurrence: it fires under its instance id.
    node.sched.tick(&node.catalog).unwrap();
    assert_eq!(wait_finished(&node, id).await, StatusType::Complete);
    let rec = node.runner.instance(id).unwrap().unwrap();
    assert_eq!(rec.requester.as_deref(), Some("anonymous"));
    assert_eq!(rec.parameters["sleep"], json!(1));
    node.sched.tick(&node.catalog).unwrap();
    assert_eq!(
        node.store.next_due().unwrap(),
        None,
        "fired once, nothing left"
    );
    // Cancelling a fired run's deferral does nothing.
    assert!(!node.sched.cancel_deferred(&rec).unwrap());
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn api_start_at_answers_202_scheduled_and_can_be_cancelled_before_it_fires() {
    let api = api();
    let (s, v) = api
        .call(
            Method::POST,
            "/synapse/execute/Quick/start?at=2099-12-24T08:00:00%2B01:00",
            Some(r#"{"sleep": 1}"#),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["Status"], "Scheduled");
    let id = v["PlanInstanceId"].as_str().unwrap().to_string();
    let (s, v) = api
        .call(Method::GET, &format!("/synapse/execute/Quick/{id}"), None)
        .await;
    assert_eq!((s, v["Status"].as_str()), (200, Some("Scheduled")), "{v}");
    let (_, list) = api.call(Method::GET, "/synapse/execute/Quick", None).await;
    assert_eq!(list[0]["Status"], "Scheduled");
    // Not among the schedules, nor reachable as one.
    let (_, v) = api.call(Method::GET, "/synapse/schedules", None).await;
    assert_eq!(v, json!([]));
    let (s, _) = api
        .call(
            Method::GET,
            &format!("/synapse/schedules/~deferred:{id}"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = api
        .call(
            Method::DELETE,
            &format!("/synapse/execute/Quick/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let (_, v) = api
        .call(Method::GET, &format!("/synapse/execute/Quick/{id}"), None)
        .await;
    assert_eq!(v["Status"], "Cancelled");
    // Bad inputs: the same 400 as a start now; a bad time names `at`.
    let (s, v) = api
        .call(
            Method::POST,
            "/synapse/execute/Quick/start?at=2099-01-01T00:00:00Z",
            Some(r#"{"nope": 1}"#),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = api
        .call(
            Method::POST,
            "/synapse/execute/Quick/start?at=tomorrow",
            Some("{}"),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v.to_string().contains("at: 'tomorrow'"), "{v}");
    // A time in the past starts at once.
    let (s, v) = api
        .call(
            Method::POST,
            "/synapse/execute/Quick/start?at=2001-01-01T00:00:00Z",
            Some("{}"),
        )
        .await;
    assert_eq!(s, 202);
    assert!(v.get("Status").is_none(), "{v}");
}

// ---------------------------------------------------------------------------------------------------------
// Schedule files
// ---------------------------------------------------------------------------------------------------------

#[test]
fn cli_schedule_validate_reports_errors_with_file_line_and_column() {
    let dir = TempDir::new("files");
    let sched = dir.0.join("schedules");
    std::fs::create_dir_all(&sched).unwrap();
    std::fs::write(
        sched.join("good.yaml"),
        "Plan: Quick\nCron: \"0 2 * * *\"\n",
    )
    .unwrap();
    std::fs::write(
        sched.join("bad.yaml"),
        "Plan: Quick\nTimeZone: Europe/Berlin\nCron:   \"61 2 * * *\"\n",
    )
    .unwrap();
    std::fs::write(
        sched.join("params.yaml"),
        "Plan: Quick\nCron: \"@hourly\"\nParameters: {nope: 1}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_synapse"))
        .args(["schedule", "validate"])
        .arg(sched.join("good.yaml"))
        .arg(sched.join("bad.yaml"))
        .arg(sched.join("params.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("good.yaml: ok"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("bad.yaml:3:9: error: Cron: invalid cron expression '61 2 * * *'"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "params.yaml:3:13: error: Parameters: plan 'Quick' takes no parameter 'nope'"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn schedule_files_join_the_one_list_read_only_and_follow_their_files() {
    let dir = TempDir::new("files-sync");
    let clock = ManualClock::new(t0());
    let node = boot(&dir.plans(), &dir.store_path(), &clock);
    add(&node, spec("api-one", "Quick", "@daily"), t0());
    let sched = dir.0.join("schedules");
    std::fs::create_dir_all(&sched).unwrap();
    std::fs::write(
        sched.join("from-file.yaml"),
        "Plan: Quick\nCron: \"*/10 * * * *\"\n",
    )
    .unwrap();
    let load = |node: &Node| {
        let specs: Vec<_> = synapse_controller::schedule::files::files_in(&sched)
            .into_iter()
            .map(|f| {
                let s = synapse_controller::schedule::files::load_file(
                    &f,
                    Some((&node.catalog, node.runner.executor())),
                )
                .unwrap();
                (f, s)
            })
            .collect();
        node.sched.sync_files(specs).unwrap()
    };
    assert_eq!(load(&node), 1);
    let all = node.store.list_schedules().unwrap();
    let file = all.iter().find(|r| r.spec.name == "from-file").unwrap();
    assert_eq!(file.source, Source::File);
    assert_eq!(file.state.next_fire_at, Some(minute(10)));
    assert_eq!(all.len(), 2);
    clock.set(minute(10));
    assert_eq!(node.sched.tick(&node.catalog).unwrap(), 1);
    // Changed file: replaced, history kept; removed file: gone.
    std::fs::write(
        sched.join("from-file.yaml"),
        "Plan: Quick\nCron: \"*/20 * * * *\"\n",
    )
    .unwrap();
    load(&node);
    let rec = node.store.get_schedule("from-file").unwrap().unwrap();
    assert_eq!(rec.spec.cron, "*/20 * * * *");
    assert_eq!(history(&node, "from-file").len(), 1);
    std::fs::remove_file(sched.join("from-file.yaml")).unwrap();
    assert_eq!(load(&node), 0);
    assert!(node.store.get_schedule("from-file").unwrap().is_none());
    assert!(node.store.get_schedule("api-one").unwrap().is_some());
    node.runner
        .shutdown(std::time::Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn api_file_schedules_are_listed_with_their_source_and_read_only() {
    let api = api();
    let spec = spec("from-file", "Quick", "@hourly");
    api.state
        .scheduler
        .sync_files(vec![(PathBuf::from("schedules/from-file.yaml"), spec)])
        .unwrap();
    let (s, v) = api.call(Method::GET, "/synapse/schedules", None).await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["Source"], "File");
    assert_eq!(v[0]["File"], "schedules/from-file.yaml");
    let (s, v) = api
        .call(Method::DELETE, "/synapse/schedules/from-file", None)
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(v.to_string().contains("read-only"), "{v}");
    let body = json!({"Plan": "Quick", "Cron": "@daily"}).to_string();
    let (s, _) = api
        .call(Method::PUT, "/synapse/schedules/from-file", Some(&body))
        .await;
    assert_eq!(s, 409);
    // Pausing is state, not definition: allowed.
    let (s, _) = api
        .call(Method::POST, "/synapse/schedules/from-file/pause", None)
        .await;
    assert_eq!(s, 200);
}
