//! ActiveDirectoryHandler vs raw ldap3 on the same Samba AD DC (issue: "Get user through the handler vs a
//! raw ldap3 base search; create 200 users through the handler vs raw ldap3; goal <= 1.2x").
//!
//! Run it through `bench/ad-handler.sh`, which starts a throwaway DC, points `SYNAPSE_BENCH_DC_ENV` at its
//! `samba-dc.sh start` output (KEY=VALUE lines) and always stops the DC. Without `SYNAPSE_BENCH_DC_ENV` this
//! prints how to run it and exits 0. Speed goals are reported (PASS/MISS), never enforced: exit 0 either way.
//!
//! Everything runs in one process, on one multi-threaded tokio runtime (like the `synapse` binary), against
//! one DC, each measurement after a warm-up. The bench leaves its objects behind (the DC is disposable); every
//! run works under its own `ou=bench-<run>` OU.

// A bench, not library code: a failed step stops the run loudly, with the LDAP error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde_json::{json, Value};
use synapse_engine::{ActionContext, Handler, StatusType};
use synapse_handlers::ad::conn::ldap3::adapters::PagedResults;
use synapse_handlers::ad::conn::ldap3::{self, LdapConnAsync, LdapConnSettings, StdStream};
use synapse_handlers::ad::conn::{Ldap, LdapPool, Scope, SearchEntry, PAGE_SIZE};
use synapse_handlers::ad::envelope::AdObjectType;
use synapse_handlers::ad::fields::Changes;
use synapse_handlers::ad::identity::{class_filter, READ_ATTRS};
use synapse_handlers::ad::model::AdConfig;
use synapse_handlers::ad::objects::{self, Shape};
use synapse_handlers::ad::ops::{self, Ctx, Target};
use synapse_handlers::ad::settings::{dns_name_from_dn, DomainSettings, Secret};
use synapse_handlers::ad::ActiveDirectoryHandler;

/// Sequential Get operations per variant.
const GET_N: usize = 2000;
const GET_WARMUP: usize = 200;
/// Users per create variant.
const CREATE_N: usize = 200;
const CREATE_WARMUP: usize = 20;
/// The goal of the issue: handler time / raw ldap3 time.
const GOAL: f64 = 1.2;

fn main() {
    let Some(env_file) = std::env::var_os("SYNAPSE_BENCH_DC_ENV").filter(|v| !v.is_empty()) else {
        println!(
            "ad bench: SYNAPSE_BENCH_DC_ENV is not set, nothing measured.\n\
             Run it with a throwaway Samba AD DC:   bench/ad-handler.sh\n\
             or against a DC you started yourself:\n  \
             tests/fixtures/samba-dc.sh start /tmp/dc-bench \"$(tests/fixtures/samba-dc.sh free-ip)\" > /tmp/dc.env\n  \
             SYNAPSE_BENCH_DC_ENV=/tmp/dc.env cargo bench -p synapse-handlers --bench ad\n  \
             tests/fixtures/samba-dc.sh stop /tmp/dc-bench"
        );
        return;
    };
    let text = std::fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("reading SYNAPSE_BENCH_DC_ENV={env_file:?}: {e}"));
    let dc = Dc::parse(&text);
    // ldap3 builds its rustls config with `ClientConfig::builder()`, which wants a process default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(run(&dc));
}

// ------------------------------------------------------------------------------------------------
// The DC

struct Dc {
    ip: String,
    base_dn: String,
    bind_dn: String,
    password: String,
    realm: String,
}

impl Dc {
    /// `samba-dc.sh start` output: split each line at the first `=` (the password may contain `=`).
    fn parse(text: &str) -> Dc {
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .unwrap_or_else(|| panic!("{k} missing in SYNAPSE_BENCH_DC_ENV"))
        };
        Dc {
            ip: get("DC_IP"),
            base_dn: get("DC_BASE_DN"),
            bind_dn: get("DC_BIND_DN"),
            password: get("DC_PASSWORD"),
            realm: vars
                .get("DC_REALM")
                .map_or("SANDBOX.LOCAL".into(), |v| v.to_string()),
        }
    }

    fn url(&self) -> String {
        format!("ldaps://{}:636", self.ip)
    }

    /// The same settings the integration tests use: LDAPS, certificate not verified (no SAN), base DN given.
    fn settings(&self) -> DomainSettings {
        let name = dns_name_from_dn(&self.base_dn).unwrap_or_else(|| "sandbox.local".into());
        let mut s = DomainSettings::new(
            name,
            vec![self.url()],
            self.bind_dn.clone(),
            Secret::new(self.password.clone()),
        );
        s.aliases = vec![self
            .realm
            .split('.')
            .next()
            .unwrap_or("SANDBOX")
            .to_string()];
        s.tls_insecure = true;
        s.base_dn = Some(self.base_dn.clone());
        s
    }

    /// One raw ldap3 connection: our own TCP socket with TCP_NODELAY, LDAPS, simple bind.
    async fn raw(&self) -> Ldap {
        let tcp = tokio::net::TcpStream::connect((self.ip.as_str(), 636))
            .await
            .expect("TCP connect");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let settings = LdapConnSettings::new()
            .set_std_stream(StdStream::Tcp(tcp.into_std().expect("std socket")))
            .set_no_tls_verify(true);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url())
            .await
            .expect("LDAPS connect");
        ldap3::drive!(conn);
        let res = ldap
            .simple_bind(&self.bind_dn, &self.password)
            .await
            .expect("bind");
        assert_eq!(res.rc, 0, "bind refused: {}", res.text);
        ldap
    }
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or_default();
    format!(
        "{:05x}",
        (nanos ^ std::process::id().rotate_left(7)) & 0xf_ffff
    )
}

fn set(values: &[&str]) -> HashSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

async fn add(ldap: &mut Ldap, dn: &str, attrs: Vec<(String, HashSet<String>)>) {
    let res = ldap.add(dn, attrs).await.expect("add");
    assert_eq!(res.rc, 0, "adding {dn}: rc={} {}", res.rc, res.text);
}

async fn add_ou(ldap: &mut Ldap, dn: &str) {
    add(
        ldap,
        dn,
        vec![("objectClass".into(), set(&["organizationalUnit"]))],
    )
    .await;
}

/// The raw create of the issue: objectClass user and sAMAccountName, nothing else.
fn raw_user_attrs(sam: &str) -> Vec<(String, HashSet<String>)> {
    vec![
        ("objectClass".into(), set(&["user"])),
        ("sAMAccountName".into(), set(&[sam])),
    ]
}

/// What the handler's Create sends for the same user (fields::initial_attrs).
fn handler_like_user_attrs(sam: &str, domain: &str) -> Vec<(String, HashSet<String>)> {
    vec![
        (
            "objectClass".into(),
            set(&["top", "person", "organizationalPerson", "user"]),
        ),
        ("sAMAccountName".into(), set(&[sam])),
        (
            "userPrincipalName".into(),
            set(&[&format!("{sam}@{domain}")]),
        ),
        ("userAccountControl".into(), set(&["514"])),
    ]
}

// ------------------------------------------------------------------------------------------------
// Statistics and output

#[derive(Clone, Copy)]
struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(samples: &[Duration]) -> Stats {
    let mut v = samples.to_vec();
    v.sort();
    let n = v.len().max(1);
    let total: Duration = v.iter().sum();
    let at = |q: f64| {
        v.get(((n as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
    };
    Stats {
        p50: at(0.50).unwrap_or_default(),
        p99: at(0.99).unwrap_or_default(),
        mean: total / n as u32,
    }
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

fn verdict(r: f64) -> &'static str {
    if r <= GOAL {
        "PASS"
    } else {
        "MISS"
    }
}

/// Times `$body` (an expression that may `.await`) `$n` times after `$warm` untimed runs.
macro_rules! timed {
    ($n:expr, $warm:expr, $body:expr) => {{
        for _ in 0..$warm {
            $body;
        }
        let mut samples = Vec::with_capacity($n);
        for _ in 0..$n {
            let t = Instant::now();
            $body;
            samples.push(t.elapsed());
        }
        samples
    }};
}

// ------------------------------------------------------------------------------------------------
// LDAP round-trip counting: the pool logs one debug event per operation ("LDAP operation ok"); a scoped
// subscriber collects them while one handler call runs.

#[derive(Default)]
struct OpLog {
    ops: Mutex<Vec<String>>,
}

struct OpCounter(Arc<OpLog>);

#[derive(Default)]
struct OpVisitor {
    message: String,
    op: String,
    target: String,
}

impl tracing::field::Visit for OpVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "op" => self.op = value.to_string(),
            "target" => self.target = value.to_string(),
            "message" => self.message = value.to_string(),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "op" => self.op = format!("{value:?}"),
            "target" => self.target = format!("{value:?}"),
            _ => {}
        }
    }
}

impl tracing::Subscriber for OpCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut v = OpVisitor::default();
        event.record(&mut v);
        if v.message.starts_with("LDAP operation") {
            let target = if v.target.is_empty() {
                String::new()
            } else {
                format!(" [{}]", v.target)
            };
            let line = format!("{}{target} ({})", v.op, v.message);
            self.0
                .ops
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs `fut` to completion on the current thread with the op counter installed; returns the LDAP
/// operations the pool performed. (The futures run on this thread: block_on polls them here; only the
/// connection drivers are spawned, and they log nothing we count.)
fn count_ops<F: Future>(rt: &tokio::runtime::Handle, fut: F) -> (F::Output, Vec<String>) {
    let log = Arc::new(OpLog::default());
    let out = tracing::subscriber::with_default(OpCounter(log.clone()), || rt.block_on(fut));
    let ops = std::mem::take(&mut *log.ops.lock().unwrap_or_else(|p| p.into_inner()));
    (out, ops)
}

// ------------------------------------------------------------------------------------------------
// The run

struct GetRow {
    name: &'static str,
    stats: Stats,
}

struct CreateRow {
    name: &'static str,
    total: Duration,
    per_op: Option<Stats>,
}

async fn run(dc: &Dc) {
    let run = run_id();
    let domain = dns_name_from_dn(&dc.base_dn).unwrap_or_else(|| "sandbox.local".into());
    let started = Instant::now();
    println!(
        "ad bench: DC {} base {} run {run}; Get N={GET_N} (warm-up {GET_WARMUP}), Create N={CREATE_N} \
         (warm-up {CREATE_WARMUP})",
        dc.url(),
        dc.base_dn
    );

    let mut raw = dc.raw().await;
    let pool = LdapPool::connect(dc.settings()).await.expect("pool");
    let handler = ActiveDirectoryHandler::new(vec![dc.settings()]);
    let ctx = ActionContext::standalone("bench");

    let root = format!("ou=bench-{run},{}", dc.base_dn);
    add_ou(&mut raw, &root).await;

    // ---- Get ------------------------------------------------------------------------------------
    let get_ou = format!("ou=get,{root}");
    add_ou(&mut raw, &get_ou).await;
    let sam = format!("bg{run}");
    let user_dn = format!("cn={sam},{get_ou}");
    let mut attrs = raw_user_attrs(&sam);
    attrs.extend([
        ("givenName".into(), set(&["Bench"])),
        ("sn".into(), set(&["User"])),
        ("displayName".into(), set(&["Bench User"])),
        ("mail".into(), set(&[&format!("{sam}@{domain}")])),
        ("description".into(), set(&["ad bench user"])),
        ("telephoneNumber".into(), set(&["+1 555 0100"])),
    ]);
    add(&mut raw, &user_dn, attrs).await;

    let user_class = class_filter(AdObjectType::User).to_string();
    let sam_filter = format!("(&{user_class}(|(sAMAccountName={sam})(name={sam})))");
    let get_cfg = json!({"Action": "Get", "ReturnObjects": true, "ReturnObjectProperties": true});
    let get_cfg_noprops =
        json!({"Action": "Get", "ReturnObjects": true, "ReturnObjectProperties": false});
    let get_cfg_noobj = json!({"Action": "Get", "ReturnObjects": false});
    let by_dn = json!({"Users": [{"Identity": user_dn}]});
    let by_sam = json!({"Users": [{"Identity": sam}]});

    let one = |entries: usize, what: &str| assert_eq!(entries, 1, "{what}: expected one entry");
    let ok = |r: &synapse_engine::ExecuteResult, what: &str| {
        assert_eq!(r.status, StatusType::Complete, "{what}: {}", r.message)
    };

    let mut rows: Vec<GetRow> = Vec::new();
    let mut push = |name, samples: Vec<Duration>| {
        let s = stats(&samples);
        println!("  {name:<58} p50 {:>8}  mean {:>8}", us(s.p50), us(s.mean));
        rows.push(GetRow { name, stats: s });
    };
    println!("\nGet ({GET_N} sequential operations each):");

    // (i) the baseline: raw ldap3, one bound LDAPS connection, base search of the DN for `*`.
    push(
        "raw ldap3 base search `*` (baseline)",
        timed!(GET_N, GET_WARMUP, {
            let ldap3::SearchResult(e, res) = raw
                .search(&user_dn, Scope::Base, "(objectClass=*)", vec!["*"])
                .await
                .unwrap();
            assert_eq!(res.rc, 0);
            one(e.len(), "raw");
        }),
    );
    // The exact request the handler sends (its class filter and READ_ATTRS), without paging...
    push(
        "raw ldap3, the handler's filter + attributes, not paged",
        timed!(GET_N, GET_WARMUP, {
            let ldap3::SearchResult(e, res) = raw
                .search(&user_dn, Scope::Base, &user_class, READ_ATTRS)
                .await
                .unwrap();
            assert_eq!(res.rc, 0);
            one(e.len(), "raw handler filter");
        }),
    );
    // ... and with the paged-results control, as LdapPool::search always sends it.
    push(
        "raw ldap3 base search `*`, paged-results control",
        timed!(GET_N, GET_WARMUP, {
            let mut stream = raw
                .streaming_search_with(
                    PagedResults::new(PAGE_SIZE),
                    &user_dn,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["*"],
                )
                .await
                .unwrap();
            let mut n = 0;
            while let Some(e) = stream.next().await.unwrap() {
                if !e.is_ref() && !e.is_intermediate() {
                    n += 1;
                }
            }
            assert_eq!(stream.finish().await.rc, 0);
            one(n, "raw paged");
        }),
    );
    // (ii) the pool's search helper (paged, timeout, checkout/return).
    push(
        "LdapPool::search base `*` (paged)",
        timed!(GET_N, GET_WARMUP, {
            let e = pool
                .search(&user_dn, Scope::Base, "(objectClass=*)", &["*"])
                .await
                .unwrap();
            one(e.len(), "pool");
        }),
    );
    // (iii) the handler, Get by DN, objects and properties returned.
    push(
        "handler Get by DN (ReturnObjects, ReturnObjectProperties)",
        timed!(GET_N, GET_WARMUP, {
            let r = handler.execute(&ctx, get_cfg.clone(), by_dn.clone()).await;
            ok(&r, "handler get");
        }),
    );
    // Decomposition of (iii): ops::get alone (no JSON in/out, no envelope render), no properties, no objects.
    let cfg: AdConfig = serde_json::from_value(get_cfg.clone()).unwrap();
    let octx = Ctx {
        pool: &pool,
        cfg: &cfg,
        dry_run: false,
    };
    let no_members: Vec<String> = Vec::new();
    let target = || Target {
        t: AdObjectType::User,
        identity: &user_dn,
        name: None,
        move_to: None,
        member_of: &no_members,
        changes: Ok(Changes::default()),
    };
    push(
        "  ops::get by DN (the handler minus execute's JSON in/out)",
        timed!(GET_N, GET_WARMUP, {
            let r = ops::get(&octx, &target()).await;
            assert!(r.user.is_some());
        }),
    );
    push(
        "  handler Get by DN, ReturnObjectProperties: false",
        timed!(GET_N, GET_WARMUP, {
            let r = handler
                .execute(&ctx, get_cfg_noprops.clone(), by_dn.clone())
                .await;
            ok(&r, "handler get noprops");
        }),
    );
    push(
        "  handler Get by DN, ReturnObjects: false",
        timed!(GET_N, GET_WARMUP, {
            let r = handler
                .execute(&ctx, get_cfg_noobj.clone(), by_dn.clone())
                .await;
            ok(&r, "handler get noobj");
        }),
    );
    // (iv) the handler, Get by sAMAccountName (subtree search from the base DN).
    push(
        "handler Get by sAMAccountName (subtree search)",
        timed!(GET_N, GET_WARMUP, {
            let r = handler.execute(&ctx, get_cfg.clone(), by_sam.clone()).await;
            ok(&r, "handler get by sam");
        }),
    );
    push(
        "  raw ldap3 subtree search, the handler's sAMAccountName filter",
        timed!(GET_N, GET_WARMUP, {
            let ldap3::SearchResult(e, res) = raw
                .search(&dc.base_dn, Scope::Subtree, &sam_filter, READ_ATTRS)
                .await
                .unwrap();
            assert_eq!(res.rc, 0);
            one(e.iter().filter(|e| !e.is_ref()).count(), "raw subtree");
        }),
    );
    push(
        "raw ldap3 base search `*` (baseline, again: drift check)",
        timed!(GET_N, GET_WARMUP, {
            let ldap3::SearchResult(e, res) = raw
                .search(&user_dn, Scope::Base, "(objectClass=*)", vec!["*"])
                .await
                .unwrap();
            assert_eq!(res.rc, 0);
            one(e.len(), "raw");
        }),
    );

    // CPU only: building the User object from the entry, and execute's envelope -> exit data copy.
    let entry: SearchEntry = pool
        .search(&user_dn, Scope::Base, &user_class, READ_ATTRS)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let cpu_user_props = stats(&timed!(GET_N, GET_WARMUP, {
        std::hint::black_box(objects::user(
            std::hint::black_box(&entry),
            Shape { properties: true },
            None,
        ));
    }));
    let cpu_user_noprops = stats(&timed!(GET_N, GET_WARMUP, {
        std::hint::black_box(objects::user(
            std::hint::black_box(&entry),
            Shape { properties: false },
            None,
        ));
    }));
    let sample = ops::get(&octx, &target()).await;
    let cpu_to_value = stats(&timed!(GET_N, GET_WARMUP, {
        std::hint::black_box(serde_json::to_value(std::hint::black_box(&sample)).unwrap());
    }));
    let cpu_parse = stats(&timed!(GET_N, GET_WARMUP, {
        let c: AdConfig = serde_json::from_value(get_cfg.clone()).unwrap();
        std::hint::black_box(c);
    }));
    println!(
        "  CPU: objects::user with properties {} / without {}; envelope to_value {}; Config parse {}",
        us(cpu_user_props.mean),
        us(cpu_user_noprops.mean),
        us(cpu_to_value.mean),
        us(cpu_parse.mean)
    );

    // ---- Create -----------------------------------------------------------------------------------
    println!("\nCreate ({CREATE_N} users per variant, each variant in its own OU):");
    let warm_ou = format!("ou=warmup,{root}");
    add_ou(&mut raw, &warm_ou).await;
    let mut warm_i = 0usize;
    let mut next_warm = || {
        warm_i += 1;
        format!("bw{run}{warm_i:03}")
    };
    let mut creates: Vec<CreateRow> = Vec::new();
    let mut report = |row: CreateRow| {
        println!(
            "  {:<58} total {:>10}  {:>7.0} ops/s",
            row.name,
            ms(row.total),
            CREATE_N as f64 / row.total.as_secs_f64()
        );
        creates.push(row);
    };
    let create_cfg = json!({"Action": "Create"});
    let create_cfg_noobj = json!({"Action": "Create", "ReturnObjects": false});

    // Raw sequential adds (the baseline).
    async fn raw_sequential(
        raw: &mut Ldap,
        ou: &str,
        prefix: &str,
        attrs: impl Fn(&str) -> Vec<(String, HashSet<String>)>,
    ) -> (Duration, Stats) {
        add_ou(raw, ou).await;
        let mut samples = Vec::with_capacity(CREATE_N);
        let t0 = Instant::now();
        for i in 0..CREATE_N {
            let sam = format!("{prefix}{i:03}");
            let dn = format!("cn={sam},{ou}");
            let a = attrs(&sam);
            let t = Instant::now();
            add(raw, &dn, a).await;
            samples.push(t.elapsed());
        }
        (t0.elapsed(), stats(&samples))
    }

    // 1. raw ldap3: objectClass user + sAMAccountName.
    for _ in 0..CREATE_WARMUP {
        let sam = next_warm();
        add(
            &mut raw,
            &format!("cn={sam},{warm_ou}"),
            raw_user_attrs(&sam),
        )
        .await;
    }
    let (total, per) = raw_sequential(
        &mut raw,
        &format!("ou=c-raw,{root}"),
        &format!("br{run}"),
        raw_user_attrs,
    )
    .await;
    report(CreateRow {
        name: "raw ldap3 add, sequential (baseline)",
        total,
        per_op: Some(per),
    });

    // 2. raw ldap3 with the attributes the handler sends (isolates attribute cost from round trips).
    for _ in 0..CREATE_WARMUP {
        let sam = next_warm();
        add(
            &mut raw,
            &format!("cn={sam},{warm_ou}"),
            handler_like_user_attrs(&sam, &domain),
        )
        .await;
    }
    let (total, per) = raw_sequential(
        &mut raw,
        &format!("ou=c-rawattrs,{root}"),
        &format!("ba{run}"),
        |s| handler_like_user_attrs(s, &domain),
    )
    .await;
    report(CreateRow {
        name: "  raw ldap3 add with the handler's attributes, sequential",
        total,
        per_op: Some(per),
    });

    // 3. the handler, one call per user, sequentially (default Config: ReturnObjects true).
    async fn handler_sequential(
        handler: &ActiveDirectoryHandler,
        ctx: &ActionContext,
        raw: &mut Ldap,
        cfg: &Value,
        ou: &str,
        prefix: &str,
    ) -> (Duration, Stats) {
        add_ou(raw, ou).await;
        let mut samples = Vec::with_capacity(CREATE_N);
        let t0 = Instant::now();
        for i in 0..CREATE_N {
            let params = json!({"Users": [{"Identity": format!("cn={prefix}{i:03},{ou}")}]});
            let t = Instant::now();
            let r = handler.execute(ctx, cfg.clone(), params).await;
            samples.push(t.elapsed());
            assert_eq!(r.status, StatusType::Complete, "create: {}", r.message);
        }
        (t0.elapsed(), stats(&samples))
    }
    let warm_create = |cfg: Value, sam: String| {
        let params = json!({"Users": [{"Identity": format!("cn={sam},{warm_ou}")}]});
        let handler = &handler;
        let ctx = &ctx;
        async move {
            let r = handler.execute(ctx, cfg, params).await;
            assert_eq!(
                r.status,
                StatusType::Complete,
                "warm-up create: {}",
                r.message
            );
        }
    };
    for _ in 0..CREATE_WARMUP {
        warm_create(create_cfg.clone(), next_warm()).await;
    }
    let (total, per) = handler_sequential(
        &handler,
        &ctx,
        &mut raw,
        &create_cfg,
        &format!("ou=c-hseq,{root}"),
        &format!("bh{run}"),
    )
    .await;
    report(CreateRow {
        name: "handler Create, one call per user, sequential",
        total,
        per_op: Some(per),
    });

    // 4. the same with ReturnObjects: false (no read-back of the created user).
    for _ in 0..CREATE_WARMUP {
        warm_create(create_cfg_noobj.clone(), next_warm()).await;
    }
    let (total, per) = handler_sequential(
        &handler,
        &ctx,
        &mut raw,
        &create_cfg_noobj,
        &format!("ou=c-hseqnoobj,{root}"),
        &format!("bn{run}"),
    )
    .await;
    report(CreateRow {
        name: "  handler Create per user, ReturnObjects: false",
        total,
        per_op: Some(per),
    });

    // 5. the handler, all users in one call (concurrent inside the handler, pool of 8).
    {
        let warm: Vec<Value> = (0..CREATE_WARMUP)
            .map(|_| json!({"Identity": format!("cn={},{warm_ou}", next_warm())}))
            .collect();
        let r = handler
            .execute(&ctx, create_cfg.clone(), json!({ "Users": warm }))
            .await;
        assert_eq!(r.status, StatusType::Complete, "warm-up: {}", r.message);
    }
    let ou = format!("ou=c-hone,{root}");
    add_ou(&mut raw, &ou).await;
    let users: Vec<Value> = (0..CREATE_N)
        .map(|i| json!({"Identity": format!("cn=bc{run}{i:03},{ou}")}))
        .collect();
    let params = json!({ "Users": users });
    let t0 = Instant::now();
    let r = handler.execute(&ctx, create_cfg.clone(), params).await;
    let total = t0.elapsed();
    assert_eq!(r.status, StatusType::Complete, "create all: {}", r.message);
    report(CreateRow {
        name: "handler Create, all users in one call (concurrent)",
        total,
        per_op: None,
    });

    // 6. raw ldap3, all adds in flight at once over 8 connections (what the server allows concurrently).
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(dc.raw().await);
    }
    {
        let warm: Vec<_> = (0..CREATE_WARMUP)
            .map(|i| {
                let sam = next_warm();
                let mut l = conns[i % conns.len()].clone();
                let dn = format!("cn={sam},{warm_ou}");
                async move { add(&mut l, &dn, raw_user_attrs(&sam)).await }
            })
            .collect();
        join_all(warm).await;
    }
    let ou = format!("ou=c-rawconc,{root}");
    add_ou(&mut raw, &ou).await;
    let futs: Vec<_> = (0..CREATE_N)
        .map(|i| {
            let sam = format!("bk{run}{i:03}");
            let dn = format!("cn={sam},{ou}");
            let mut l = conns[i % conns.len()].clone();
            async move { add(&mut l, &dn, raw_user_attrs(&sam)).await }
        })
        .collect();
    let t0 = Instant::now();
    join_all(futs).await;
    let total = t0.elapsed();
    report(CreateRow {
        name: "  raw ldap3 add, all at once over 8 connections",
        total,
        per_op: None,
    });

    // 7. the baseline again (the directory has grown by ~1,000 users): drift check.
    let (total, per) = raw_sequential(
        &mut raw,
        &format!("ou=c-raw2,{root}"),
        &format!("bs{run}"),
        raw_user_attrs,
    )
    .await;
    report(CreateRow {
        name: "raw ldap3 add, sequential (baseline, again: drift check)",
        total,
        per_op: Some(per),
    });

    // ---- Tables --------------------------------------------------------------------------------
    let base = rows[0].stats;
    println!("\n### Get user ({GET_N} sequential operations each, after {GET_WARMUP} warm-up)\n");
    println!("| variant | p50 | p99 | mean | p50 / raw | mean / raw |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.2}x | {:.2}x |",
            r.name.trim(),
            us(r.stats.p50),
            us(r.stats.p99),
            us(r.stats.mean),
            ratio(r.stats.p50, base.p50),
            ratio(r.stats.mean, base.mean),
        );
    }
    println!(
        "\nCPU per call (no network): objects::user with Properties {}, without {}; envelope \
         serde_json::to_value {}; Config parse {}.",
        us(cpu_user_props.mean),
        us(cpu_user_noprops.mean),
        us(cpu_to_value.mean),
        us(cpu_parse.mean)
    );

    let raw_create = creates[0].total;
    println!(
        "\n### Create {CREATE_N} users (each variant in a fresh OU, after {CREATE_WARMUP} warm-up creates)\n"
    );
    println!("| variant | total | users/s | per user p50 | per user p99 | total / raw |");
    println!("|---|---|---|---|---|---|");
    for r in &creates {
        let (p50, p99) = r.per_op.map_or(("—".to_string(), "—".to_string()), |s| {
            (ms(s.p50), ms(s.p99))
        });
        println!(
            "| {} | {} | {:.0} | {p50} | {p99} | {:.2}x |",
            r.name.trim(),
            ms(r.total),
            CREATE_N as f64 / r.total.as_secs_f64(),
            ratio(r.total, raw_create),
        );
    }

    // ---- Goals ---------------------------------------------------------------------------------
    let by = |name: &str| rows.iter().find(|r| r.name.trim() == name).map(|r| r.stats);
    let create = |name: &str| {
        creates
            .iter()
            .find(|r| r.name.trim() == name)
            .map(|r| r.total)
    };
    println!("\n### Ratios against raw ldap3 (goal <= {GOAL:.1}x; information only)\n");
    println!("| comparison | ratio | goal | |");
    println!("|---|---|---|---|");
    let goal_line = |what: String, r: f64| {
        println!("| {what} | {r:.2}x | <= {GOAL:.1}x | {} |", verdict(r));
    };
    for (label, name) in [
        ("LdapPool::search base", "LdapPool::search base `*` (paged)"),
        (
            "handler Get by DN",
            "handler Get by DN (ReturnObjects, ReturnObjectProperties)",
        ),
        (
            "handler Get by sAMAccountName",
            "handler Get by sAMAccountName (subtree search)",
        ),
    ] {
        if let Some(s) = by(name) {
            goal_line(format!("{label}, p50"), ratio(s.p50, base.p50));
            goal_line(format!("{label}, mean"), ratio(s.mean, base.mean));
        }
    }
    for (label, name) in [
        (
            "handler Create, one call per user",
            "handler Create, one call per user, sequential",
        ),
        (
            "handler Create, one call for all users",
            "handler Create, all users in one call (concurrent)",
        ),
    ] {
        if let Some(t) = create(name) {
            goal_line(format!("{label}, total time"), ratio(t, raw_create));
        }
    }

    // ---- Where the handler's time goes: LDAP operations per call ------------------------------
    println!("\n### LDAP operations per handler call (counted from the pool's debug events)\n");
    let ops_ou = format!("ou=ops,{root}");
    add_ou(&mut raw, &ops_ou).await;
    let calls: Vec<(&str, Value, Value)> = vec![
        ("Get by DN", get_cfg.clone(), by_dn.clone()),
        ("Get by sAMAccountName", get_cfg.clone(), by_sam.clone()),
        (
            "Create (default Config)",
            create_cfg.clone(),
            json!({"Users": [{"Identity": format!("cn=bo{run}1,{ops_ou}")}]}),
        ),
        (
            "Create, ReturnObjects: false",
            create_cfg_noobj.clone(),
            json!({"Users": [{"Identity": format!("cn=bo{run}2,{ops_ou}")}]}),
        ),
    ];
    // block_on cannot nest inside this runtime's task: count on a helper thread with its own runtime.
    let counted = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            // One handler, its pool opened by an uncounted call first (the connect is not an operation).
            let h = ActiveDirectoryHandler::new(vec![dc.settings()]);
            let ctx = ActionContext::standalone("bench-ops");
            let r = rt.block_on(h.execute(&ctx, get_cfg_noobj.clone(), by_dn.clone()));
            assert_eq!(r.status, StatusType::Complete, "{}", r.message);
            let mut out = Vec::new();
            for (label, cfg, params) in calls {
                let (r, ops) = count_ops(rt.handle(), h.execute(&ctx, cfg, params));
                assert_eq!(r.status, StatusType::Complete, "{label}: {}", r.message);
                out.push((label, ops));
            }
            out
        })
        .join()
        .expect("op counting thread")
    });
    for (label, ops) in &counted {
        println!("- {label}: {} LDAP operation(s)", ops.len());
        for o in ops {
            println!("    - {o}");
        }
    }
    println!("\nraw ldap3 equivalents: Get = 1 search; Create = 1 add.");
    println!(
        "\nad bench done in {:.1} s (run {run}, objects left under {root}).",
        started.elapsed().as_secs_f64()
    );
}
