//! ActiveDirectoryHandler vs raw ldap3 on the same Samba AD DC (issue: "Get user through the handler vs a
//! raw ldap3 base search; create 200 users through the handler vs raw ldap3; goal <= 1.2x").
//!
//! Run it through `bench/ad-handler.sh`, which starts a throwaway DC, points `SYNAPSE_BENCH_DC_ENV` at its
//! `samba-dc.sh start` output (KEY=VALUE lines) and always stops the DC. Without `SYNAPSE_BENCH_DC_ENV` this
//! prints how to run it and exits 0. Speed goals are reported (PASS/MISS), never enforced: exit 0 either way.
//!
//! Everything runs in one process, on one multi-threaded tokio runtime (like the `synapse` binary), against
//! one DC, after a warm-up. The variants are **interleaved** (round-robin, rotating the order every round), so
//! every variant sees the same DC state: on a 2-core machine shared with samba, back-to-back blocks drift by
//! 10-60 % (and a growing directory makes later adds slower), which would swamp the differences we look for.
//! The bench leaves its objects behind (the DC is disposable); every run works under its own
//! `ou=bench-<run>` OU. `SYNAPSE_BENCH_GET_N` / `SYNAPSE_BENCH_CREATE_N` override the counts (smoke runs).

// A bench, not library code: a failed step stops the run loudly, with the LDAP error.
#![allow(clippy::disallowed_methods)] // unique names for bench objects come from the wall clock
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde_json::{json, Value};
use synapse_engine::{ActionContext, ExecuteResult, Handler, StatusType};
use synapse_handlers::ad::domain::DomainPool;
use synapse_handlers::ad::envelope::AdObjectType;
use synapse_handlers::ad::fields::Changes;
use synapse_handlers::ad::identity::{class_filter, READ_ATTRS};
use synapse_handlers::ad::model::AdConfig;
use synapse_handlers::ad::objects::{self, Shape};
use synapse_handlers::ad::ops::{self, Ctx, Target};
use synapse_handlers::ad::settings::{dns_name_from_dn, DomainSettings};
use synapse_handlers::ad::{values, ActiveDirectoryHandler};
use synapse_handlers::ldap::ldap3::adapters::PagedResults;
use synapse_handlers::ldap::ldap3::{self, LdapConnAsync, LdapConnSettings, StdStream};
use synapse_handlers::ldap::{Ldap, Scope, SearchEntry, Secret, PAGE_SIZE};

/// Timed Get operations per variant (after `GET_WARMUP` untimed rounds).
const GET_N: usize = 2000;
const GET_WARMUP: usize = 200;
/// Users per create variant (after `CREATE_WARMUP` untimed creates per variant).
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
             ip=$(tests/fixtures/samba-dc.sh free-ip)\n  \
             tests/fixtures/samba-dc.sh start /tmp/dc-bench \"$ip\" 900 > /tmp/dc-bench.env\n  \
             SYNAPSE_BENCH_DC_ENV=/tmp/dc-bench.env cargo bench -p synapse-handlers --bench ad\n  \
             tests/fixtures/samba-dc.sh stop /tmp/dc-bench"
        );
        return;
    };
    let text = std::fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("reading SYNAPSE_BENCH_DC_ENV={env_file:?}: {e}"));
    let dc = Dc::parse(&text);
    let counts = Counts {
        get: env_count("SYNAPSE_BENCH_GET_N", GET_N),
        get_warmup: GET_WARMUP.min(env_count("SYNAPSE_BENCH_GET_N", GET_N)),
        create: env_count("SYNAPSE_BENCH_CREATE_N", CREATE_N),
        create_warmup: CREATE_WARMUP,
    };
    // ldap3 builds its rustls config with `ClientConfig::builder()`, which wants a process default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let started = Instant::now();
    let setup = rt.block_on(measure(&dc, counts));
    count_round_trips(&rt, &dc, &setup);
    println!("\nload average at the end: {}", load_average());
    println!(
        "\nad bench done in {:.1} s (run {}, objects left under {}).",
        started.elapsed().as_secs_f64(),
        setup.run,
        setup.root
    );
}

#[derive(Clone, Copy)]
struct Counts {
    get: usize,
    get_warmup: usize,
    create: usize,
    create_warmup: usize,
}

/// `/proc/loadavg` (1, 5 and 15 minutes): a busy machine makes every number here noisier.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
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

    /// The settings the integration tests use: LDAPS, certificate not verified (no SAN), base DN given,
    /// defaults otherwise (pool of 8).
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
        s.ldap.tls_insecure = true;
        s.ldap.base_dn = Some(self.base_dn.clone());
        s
    }

    /// One raw ldap3 connection: our own TCP socket with TCP_NODELAY (as the pool does), LDAPS, simple bind.
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

/// What the handler's Create sends for the same user (fields::initial_attrs): full objectClass chain,
/// a userPrincipalName and userAccountControl NORMAL_ACCOUNT | ACCOUNTDISABLE.
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

fn assert_complete(r: &ExecuteResult, what: &str) {
    assert_eq!(r.status, StatusType::Complete, "{what}: {}", r.message);
}

// ------------------------------------------------------------------------------------------------
// Statistics and output

#[derive(Clone, Copy)]
struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    total: Duration,
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
        total,
    }
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
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

/// This thread's CPU time (ns) from `/proc/thread-self/schedstat`. Every handler and raw-ldap3 future is
/// polled on the thread that runs `block_on` (only ldap3's connection drivers, the same for all variants,
/// run on the runtime's workers), so the difference between two variants' CPU per call is the client-side
/// work one does more than the other, whatever the DC or the machine's load do to the latencies.
///
/// The kernel updates a running thread's `sum_exec_runtime` only at scheduler events, so a plain read lags
/// by up to the whole time since the thread last woke up (which would charge one call's post-processing to
/// the next). `sched_yield` first makes the kernel account the time so far (checked: a 300 µs busy loop
/// reads as 302 µs with the yield and as 10 µs without).
struct ThreadClock(Option<std::fs::File>);

impl ThreadClock {
    fn open() -> Self {
        ThreadClock(std::fs::File::open("/proc/thread-self/schedstat").ok())
    }

    fn now(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let Some(f) = &self.0 else {
            return 0;
        };
        std::thread::yield_now();
        let mut buf = [0u8; 128];
        let n = f.read_at(&mut buf, 0).unwrap_or(0);
        std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|t| t.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn available(&self) -> bool {
        self.0.is_some()
    }
}

/// Per-variant sum of this thread's CPU time (ns).
#[derive(Clone, Copy, Default)]
struct Cpu(u64);

impl Cpu {
    fn add(&mut self, before: u64, after: u64) {
        self.0 += after.saturating_sub(before);
    }

    fn per_op(&self, n: usize, clock: &ThreadClock) -> String {
        if !clock.available() || n == 0 {
            return "—".into();
        }
        format!("{:.0} µs", self.0 as f64 / n as f64 / 1e3)
    }
}

/// Mean CPU time of `f` over `n` calls after `n / 10` warm-up calls.
fn cpu(n: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n.max(1) as u32
}

// ------------------------------------------------------------------------------------------------
// Get

#[derive(Clone, Copy, PartialEq, Eq)]
enum GetV {
    /// (i) the baseline.
    RawStar,
    RawStarPaged,
    /// Byte for byte the request the handler's Get by DN sends (LdapPool does not page base searches).
    RawHandlerRequestUnpaged,
    RawHandlerRequestPaged,
    /// (ii)
    PoolStar,
    PoolHandlerRequest,
    /// (iii)
    Handler,
    OpsGet,
    HandlerNoProps,
    HandlerNoObjects,
    /// (iv)
    HandlerBySam,
    RawSubtreeSam,
    /// Byte for byte the request the handler's Get by sAMAccountName sends (subtree: paged).
    RawSubtreeSamPaged,
    /// What Create's two existence checks cost: a base search of a DN that does not exist (rc 32)...
    RawMissingDn,
    /// ... and of the parent OU, `1.1` (no attributes).
    RawParentExists,
}

impl GetV {
    const ALL: [GetV; 15] = [
        GetV::RawStar,
        GetV::RawStarPaged,
        GetV::RawHandlerRequestUnpaged,
        GetV::RawHandlerRequestPaged,
        GetV::PoolStar,
        GetV::PoolHandlerRequest,
        GetV::Handler,
        GetV::OpsGet,
        GetV::HandlerNoProps,
        GetV::HandlerNoObjects,
        GetV::HandlerBySam,
        GetV::RawSubtreeSam,
        GetV::RawSubtreeSamPaged,
        GetV::RawMissingDn,
        GetV::RawParentExists,
    ];

    fn name(self) -> &'static str {
        match self {
            GetV::RawStar => "(i) raw ldap3 base search, `(objectClass=*)`, `*` — **baseline**",
            GetV::RawStarPaged => "raw ldap3 base search `*` + paged-results control",
            GetV::RawHandlerRequestUnpaged => {
                "raw ldap3 base search, the handler's filter and attributes (= its wire request for a DN)"
            }
            GetV::RawHandlerRequestPaged => {
                "raw ldap3 base search, the handler's filter and attributes, paged"
            }
            GetV::PoolStar => "(ii) `LdapPool::search` base `*` (base scope: not paged)",
            GetV::PoolHandlerRequest => "`LdapPool::search`, the handler's filter and attributes",
            GetV::Handler => {
                "(iii) handler Get by DN (ReturnObjects, ReturnObjectProperties) — **goal**"
            }
            GetV::OpsGet => "`ops::get` by DN (the handler without execute's JSON in/out)",
            GetV::HandlerNoProps => "handler Get by DN, ReturnObjectProperties: false",
            GetV::HandlerNoObjects => "handler Get by DN, ReturnObjects: false",
            GetV::HandlerBySam => "(iv) handler Get by sAMAccountName (subtree) — **goal**",
            GetV::RawSubtreeSam => "raw ldap3 subtree search, the handler's sAMAccountName filter",
            GetV::RawSubtreeSamPaged => {
                "raw ldap3 subtree search, the handler's sAMAccountName filter, paged (= its wire request)"
            }
            GetV::RawMissingDn => {
                "raw ldap3 base search of a DN that does not exist, `1.1` (Create's first check; rc 32)"
            }
            GetV::RawParentExists => {
                "raw ldap3 base search of the parent OU, `1.1` (Create's second check)"
            }
        }
    }
}

struct GetBench {
    raw: Ldap,
    pool: DomainPool,
    handler: ActiveDirectoryHandler,
    ctx: ActionContext,
    cfg: AdConfig,
    base_dn: String,
    user_dn: String,
    user_class: String,
    sam_filter: String,
    get_cfg: Value,
    get_cfg_noprops: Value,
    get_cfg_noobj: Value,
    by_dn: Value,
    by_sam: Value,
}

impl GetBench {
    async fn raw_search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> usize {
        let ldap3::SearchResult(e, res) =
            self.raw.search(base, scope, filter, attrs).await.unwrap();
        assert_eq!(res.rc, 0, "raw search: {}", res.text);
        e.iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .count()
    }

    async fn raw_paged(&mut self, base: &str, scope: Scope, filter: &str, attrs: &[&str]) -> usize {
        let mut stream = self
            .raw
            .streaming_search_with(PagedResults::new(PAGE_SIZE), base, scope, filter, attrs)
            .await
            .unwrap();
        let mut n = 0;
        while let Some(e) = stream.next().await.unwrap() {
            if !e.is_ref() && !e.is_intermediate() {
                n += 1;
            }
        }
        let res = stream.finish().await;
        assert_eq!(res.rc, 0, "raw paged search: {}", res.text);
        n
    }

    async fn once(&mut self, v: GetV) {
        let (dn, class, base, sam) = (
            self.user_dn.clone(),
            self.user_class.clone(),
            self.base_dn.clone(),
            self.sam_filter.clone(),
        );
        let n = match v {
            GetV::RawStar => {
                self.raw_search(&dn, Scope::Base, "(objectClass=*)", &["*"])
                    .await
            }
            GetV::RawStarPaged => {
                self.raw_paged(&dn, Scope::Base, "(objectClass=*)", &["*"])
                    .await
            }
            GetV::RawHandlerRequestUnpaged => {
                self.raw_search(&dn, Scope::Base, &class, READ_ATTRS).await
            }
            GetV::RawHandlerRequestPaged => {
                self.raw_paged(&dn, Scope::Base, &class, READ_ATTRS).await
            }
            GetV::PoolStar => self
                .pool
                .search(&dn, Scope::Base, "(objectClass=*)", &["*"])
                .await
                .unwrap()
                .len(),
            GetV::PoolHandlerRequest => self
                .pool
                .search(&dn, Scope::Base, &class, READ_ATTRS)
                .await
                .unwrap()
                .len(),
            GetV::Handler | GetV::HandlerNoProps | GetV::HandlerNoObjects | GetV::HandlerBySam => {
                let (cfg, params) = match v {
                    GetV::Handler => (&self.get_cfg, &self.by_dn),
                    GetV::HandlerNoProps => (&self.get_cfg_noprops, &self.by_dn),
                    GetV::HandlerNoObjects => (&self.get_cfg_noobj, &self.by_dn),
                    _ => (&self.get_cfg, &self.by_sam),
                };
                let r = self
                    .handler
                    .execute(&self.ctx, cfg.clone(), params.clone())
                    .await;
                assert_complete(&r, v.name());
                1
            }
            GetV::OpsGet => {
                let ctx = Ctx {
                    pool: &self.pool,
                    cfg: &self.cfg,
                    dry_run: false,
                    deadline: None,
                };
                let target = Target {
                    t: AdObjectType::User,
                    identity: &dn,
                    name: None,
                    move_to: None,
                    member_of: &[],
                    changes: Ok(Changes::default()),
                };
                let r = ops::get(&ctx, &target).await;
                assert!(r.user.is_some(), "ops::get returned no user");
                1
            }
            GetV::RawSubtreeSam => {
                self.raw_search(&base, Scope::Subtree, &sam, READ_ATTRS)
                    .await
            }
            GetV::RawSubtreeSamPaged => {
                self.raw_paged(&base, Scope::Subtree, &sam, READ_ATTRS)
                    .await
            }
            GetV::RawMissingDn => {
                let parent = dn.split_once(',').map(|(_, p)| p).unwrap();
                let missing = format!("cn=bench-missing,{parent}");
                let ldap3::SearchResult(e, res) = self
                    .raw
                    .search(&missing, Scope::Base, "(objectClass=*)", &["1.1"])
                    .await
                    .unwrap();
                assert_eq!((e.len(), res.rc), (0, 32), "missing DN: {}", res.text);
                1
            }
            GetV::RawParentExists => {
                let parent = dn.split_once(',').map(|(_, p)| p.to_string()).unwrap();
                self.raw_search(&parent, Scope::Base, "(objectClass=*)", &["1.1"])
                    .await
            }
        };
        assert_eq!(n, 1, "{}: expected one entry", v.name());
    }
}

// ------------------------------------------------------------------------------------------------
// Create

#[derive(Clone, Copy, PartialEq, Eq)]
enum CreateV {
    Raw,
    RawHandlerAttrs,
    Handler,
    HandlerNoObjects,
}

impl CreateV {
    const ALL: [CreateV; 4] = [
        CreateV::Raw,
        CreateV::RawHandlerAttrs,
        CreateV::Handler,
        CreateV::HandlerNoObjects,
    ];

    fn name(self) -> &'static str {
        match self {
            CreateV::Raw => "raw ldap3 add (objectClass user, sAMAccountName) — **baseline**",
            CreateV::RawHandlerAttrs => "raw ldap3 add with the attributes the handler sends",
            CreateV::Handler => "handler Create, one call per user (default Config) — **goal**",
            CreateV::HandlerNoObjects => "handler Create, one call per user, ReturnObjects: false",
        }
    }

    /// sAMAccountName prefix (with the run id and a 3-digit index: at most 10 characters).
    fn prefix(self) -> &'static str {
        match self {
            CreateV::Raw => "br",
            CreateV::RawHandlerAttrs => "ba",
            CreateV::Handler => "bh",
            CreateV::HandlerNoObjects => "bn",
        }
    }

    fn ou(self) -> &'static str {
        match self {
            CreateV::Raw => "c-raw",
            CreateV::RawHandlerAttrs => "c-rawattrs",
            CreateV::Handler => "c-handler",
            CreateV::HandlerNoObjects => "c-handler-noobj",
        }
    }
}

struct CreateBench<'a> {
    raw: &'a mut Ldap,
    handler: &'a ActiveDirectoryHandler,
    ctx: &'a ActionContext,
    domain: String,
}

impl CreateBench<'_> {
    async fn once(&mut self, v: CreateV, sam: &str, ou: &str) {
        let dn = format!("cn={sam},{ou}");
        match v {
            CreateV::Raw => add(self.raw, &dn, raw_user_attrs(sam)).await,
            CreateV::RawHandlerAttrs => {
                add(self.raw, &dn, handler_like_user_attrs(sam, &self.domain)).await
            }
            CreateV::Handler | CreateV::HandlerNoObjects => {
                let cfg = if v == CreateV::Handler {
                    json!({"Action": "Create"})
                } else {
                    json!({"Action": "Create", "ReturnObjects": false})
                };
                let r = self
                    .handler
                    .execute(self.ctx, cfg, json!({"Users": [{"Identity": dn}]}))
                    .await;
                assert_complete(&r, v.name());
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The measurements

/// What the round-trip count needs from the measuring run.
struct Setup {
    run: String,
    root: String,
    user_dn: String,
    sam: String,
}

async fn measure(dc: &Dc, n: Counts) -> Setup {
    let run = run_id();
    let domain = dns_name_from_dn(&dc.base_dn).unwrap_or_else(|| "sandbox.local".into());
    println!("load average at start: {}", load_average());
    println!(
        "ad bench: DC {} ({}), run {run}. Get: {} interleaved rounds (+{} warm-up); Create: {} users per \
         variant (+{} warm-up).",
        dc.url(),
        dc.base_dn,
        n.get,
        n.get_warmup,
        n.create,
        n.create_warmup
    );

    let mut raw = dc.raw().await;
    let pool = DomainPool::connect(dc.settings()).await.expect("pool");
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
    let get_cfg = json!({"Action": "Get", "ReturnObjects": true, "ReturnObjectProperties": true});
    let mut g = GetBench {
        raw,
        pool,
        handler,
        ctx,
        cfg: serde_json::from_value(get_cfg.clone()).unwrap(),
        base_dn: dc.base_dn.clone(),
        sam_filter: format!("(&{user_class}(|(sAMAccountName={sam})(name={sam})))"),
        user_class,
        get_cfg,
        get_cfg_noprops: json!({"Action": "Get", "ReturnObjects": true, "ReturnObjectProperties": false}),
        get_cfg_noobj: json!({"Action": "Get", "ReturnObjects": false}),
        by_dn: json!({"Users": [{"Identity": user_dn}]}),
        by_sam: json!({"Users": [{"Identity": sam}]}),
        user_dn: user_dn.clone(),
    };
    let clock = ThreadClock::open();
    let k = GetV::ALL.len();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n.get); k];
    let mut get_cpu = vec![Cpu::default(); k];
    let t_get = Instant::now();
    for round in 0..n.get_warmup + n.get {
        for j in 0..k {
            let idx = (round + j) % k;
            let c0 = clock.now();
            let t = Instant::now();
            g.once(GetV::ALL[idx]).await;
            let d = t.elapsed();
            let c1 = clock.now();
            if round >= n.get_warmup {
                samples[idx].push(d);
                get_cpu[idx].add(c0, c1);
            }
        }
    }
    eprintln!("ad bench: Get phase {:.1} s", t_get.elapsed().as_secs_f64());
    let get_stats: Vec<Stats> = samples.iter().map(|s| stats(s)).collect();

    // CPU only (no network): what the handler does with the entry after the search.
    let entry: SearchEntry = g
        .pool
        .search(&g.user_dn, Scope::Base, &g.user_class, READ_ATTRS)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let cpu_user_props = cpu(n.get, || {
        std::hint::black_box(objects::user(
            std::hint::black_box(&entry),
            Shape { properties: true },
            None,
        ));
    });
    let cpu_user_noprops = cpu(n.get, || {
        std::hint::black_box(objects::user(
            std::hint::black_box(&entry),
            Shape { properties: false },
            None,
        ));
    });
    let cpu_properties = cpu(n.get, || {
        std::hint::black_box(values::properties(
            std::hint::black_box(&entry.attrs),
            &entry.bin_attrs,
        ));
    });
    let object = objects::user(&entry, Shape { properties: true }, None);
    let cpu_to_value = cpu(n.get, || {
        std::hint::black_box(serde_json::to_value(std::hint::black_box(&object)).unwrap());
    });
    let cpu_parse = cpu(n.get, || {
        let c: AdConfig = serde_json::from_value(g.get_cfg.clone()).unwrap();
        std::hint::black_box(c);
    });
    let n_attrs = entry.attrs.len() + entry.bin_attrs.len();

    // ---- Create: sequential variants, interleaved user by user ------------------------------------
    let GetBench {
        mut raw,
        handler,
        ctx,
        ..
    } = g;
    let warm_ou = format!("ou=warmup,{root}");
    add_ou(&mut raw, &warm_ou).await;
    for v in CreateV::ALL {
        add_ou(&mut raw, &format!("ou={},{root}", v.ou())).await;
    }
    let mut c = CreateBench {
        raw: &mut raw,
        handler: &handler,
        ctx: &ctx,
        domain: domain.clone(),
    };
    let k = CreateV::ALL.len();
    let mut create_samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n.create); k];
    let mut create_cpu = vec![Cpu::default(); k];
    let t_create = Instant::now();
    for i in 0..n.create_warmup + n.create {
        for j in 0..k {
            let idx = (i + j) % k;
            let v = CreateV::ALL[idx];
            let (sam, ou) = if i < n.create_warmup {
                (format!("bw{run}{idx}{i:02}"), warm_ou.clone())
            } else {
                let u = i - n.create_warmup;
                (
                    format!("{}{run}{u:03}", v.prefix()),
                    format!("ou={},{root}", v.ou()),
                )
            };
            let c0 = clock.now();
            let t = Instant::now();
            c.once(v, &sam, &ou).await;
            let d = t.elapsed();
            let c1 = clock.now();
            if i >= n.create_warmup {
                create_samples[idx].push(d);
                create_cpu[idx].add(c0, c1);
            }
        }
    }
    let create_stats: Vec<Stats> = create_samples.iter().map(|s| stats(s)).collect();

    // ---- Create: all users in one handler call, bracketed by raw sequential blocks -----------------
    // One call of N users cannot be interleaved; the raw blocks right before and after it give the
    // reference at the same directory size (their mean).
    async fn raw_block(raw: &mut Ldap, ou: &str, prefix: &str, n: usize) -> Duration {
        add_ou(raw, ou).await;
        let t0 = Instant::now();
        for i in 0..n {
            let sam = format!("{prefix}{i:03}");
            add(raw, &format!("cn={sam},{ou}"), raw_user_attrs(&sam)).await;
        }
        t0.elapsed()
    }
    let warm: Vec<Value> = (0..n.create_warmup)
        .map(|i| json!({"Identity": format!("cn=bx{run}{i:03},{warm_ou}")}))
        .collect();
    assert_complete(
        &handler
            .execute(&ctx, json!({"Action": "Create"}), json!({ "Users": warm }))
            .await,
        "warm-up",
    );
    let block_before = raw_block(
        &mut raw,
        &format!("ou=c-raw-before,{root}"),
        &format!("bb{run}"),
        n.create,
    )
    .await;
    let one_ou = format!("ou=c-handler-one-call,{root}");
    add_ou(&mut raw, &one_ou).await;
    let users: Vec<Value> = (0..n.create)
        .map(|i| json!({"Identity": format!("cn=bc{run}{i:03},{one_ou}")}))
        .collect();
    let t0 = Instant::now();
    let r = handler
        .execute(&ctx, json!({"Action": "Create"}), json!({ "Users": users }))
        .await;
    let one_call = t0.elapsed();
    assert_complete(&r, "create all in one call");
    // Raw, all adds in flight at once over 8 connections (the pool's size): what the server allows.
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(dc.raw().await);
    }
    let conc_ou = format!("ou=c-raw-concurrent,{root}");
    add_ou(&mut raw, &conc_ou).await;
    let futs: Vec<_> = (0..n.create)
        .map(|i| {
            let sam = format!("bk{run}{i:03}");
            let dn = format!("cn={sam},{conc_ou}");
            let mut l = conns[i % conns.len()].clone();
            async move { add(&mut l, &dn, raw_user_attrs(&sam)).await }
        })
        .collect();
    let t0 = Instant::now();
    join_all(futs).await;
    let raw_concurrent = t0.elapsed();
    let block_after = raw_block(
        &mut raw,
        &format!("ou=c-raw-after,{root}"),
        &format!("bs{run}"),
        n.create,
    )
    .await;
    eprintln!(
        "ad bench: Create phase {:.1} s",
        t_create.elapsed().as_secs_f64()
    );

    // ---- Tables --------------------------------------------------------------------------------
    let base = get_stats[0];
    println!(
        "\n### Get user: {} rounds, the {} variants interleaved (after {} warm-up rounds)\n",
        n.get,
        GetV::ALL.len(),
        n.get_warmup
    );
    println!("| variant | p50 | p99 | mean | p50 / raw | mean / raw | client CPU / call |");
    println!("|---|---|---|---|---|---|---|");
    for ((v, s), c) in GetV::ALL.iter().zip(&get_stats).zip(&get_cpu) {
        let cpu_op = c.per_op(n.get, &clock);
        println!(
            "| {} | {} | {} | {} | {:.2}x | {:.2}x | {cpu_op} |",
            v.name(),
            us(s.p50),
            us(s.p99),
            us(s.mean),
            ratio(s.p50, base.p50),
            ratio(s.mean, base.mean),
        );
    }
    println!(
        "\nCPU per call, no network (the user entry has {n_attrs} attributes): `objects::user` with \
         Properties {} (of which `values::properties` {}), without {}; the User object to a JSON Value \
         (execute's exit-data copy) {}; Config parse {}.",
        us(cpu_user_props),
        us(cpu_properties),
        us(cpu_user_noprops),
        us(cpu_to_value),
        us(cpu_parse)
    );

    let raw_seq = create_stats[0];
    println!(
        "\n### Create {} users: sequential variants interleaved user by user, each in its own OU \
         (after {} warm-up creates each)\n",
        n.create, n.create_warmup
    );
    println!(
        "| variant | total (sum of the {} calls) | users/s | per user p50 | per user p99 | total / raw | client CPU / user |",
        n.create
    );
    println!("|---|---|---|---|---|---|---|");
    for ((v, s), c) in CreateV::ALL.iter().zip(&create_stats).zip(&create_cpu) {
        let cpu_op = c.per_op(n.create, &clock);
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.2}x | {cpu_op} |",
            v.name(),
            ms(s.total),
            n.create as f64 / s.total.as_secs_f64(),
            ms(s.p50),
            ms(s.p99),
            ratio(s.total, raw_seq.total),
        );
    }
    let block_ref = (block_before + block_after) / 2;
    println!(
        "\n### Create {} users in one handler call (concurrent inside the handler, pool of 8)\n",
        n.create
    );
    println!("| variant | total | users/s | total / raw |");
    println!("|---|---|---|---|");
    for (name, t) in [
        (
            "raw ldap3 adds, sequential, block just before",
            block_before,
        ),
        ("raw ldap3 adds, sequential, block just after", block_after),
        (
            "handler Create, all users in one call — **goal** (vs the mean of the two raw blocks)",
            one_call,
        ),
        (
            "raw ldap3 adds, all in flight at once over 8 connections",
            raw_concurrent,
        ),
    ] {
        println!(
            "| {name} | {} | {:.0} | {:.2}x |",
            ms(t),
            n.create as f64 / t.as_secs_f64(),
            ratio(t, block_ref)
        );
    }

    // ---- Goals ---------------------------------------------------------------------------------
    let by = |v: GetV| get_stats[GetV::ALL.iter().position(|x| *x == v).unwrap_or(0)];
    println!("\n### Ratios against raw ldap3 (goal <= {GOAL:.1}x; information only)\n");
    println!("| comparison | ratio | goal | |");
    println!("|---|---|---|---|");
    let goal_line = |what: &str, r: f64| {
        println!("| {what} | {r:.2}x | <= {GOAL:.1}x | {} |", verdict(r));
    };
    for (label, v) in [
        ("(ii) LdapPool::search base", GetV::PoolStar),
        ("(iii) handler Get by DN", GetV::Handler),
        ("(iv) handler Get by sAMAccountName", GetV::HandlerBySam),
    ] {
        let s = by(v);
        goal_line(&format!("{label}, p50"), ratio(s.p50, base.p50));
        goal_line(&format!("{label}, mean"), ratio(s.mean, base.mean));
    }
    let h = create_stats[CreateV::ALL
        .iter()
        .position(|x| *x == CreateV::Handler)
        .unwrap_or(0)];
    goal_line(
        "handler Create, one call per user, total",
        ratio(h.total, raw_seq.total),
    );
    goal_line(
        "handler Create, all users in one call, total",
        ratio(one_call, block_ref),
    );

    Setup {
        run,
        root,
        user_dn,
        sam,
    }
}

// ------------------------------------------------------------------------------------------------
// LDAP round trips per handler call: the pool logs one debug event per operation ("LDAP operation ok");
// a scoped subscriber collects them while one handler call runs on this thread.

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
            let line = format!("{} `{}` ({})", v.op, v.target, v.message);
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

/// Runs `fut` with the op counter installed on this thread; returns the LDAP operations the pool did.
/// `Runtime::block_on` polls `fut` on this thread (only the connection drivers run on the workers, and
/// they emit none of the counted events).
fn count_ops<F: Future>(rt: &tokio::runtime::Runtime, fut: F) -> (F::Output, Vec<String>) {
    let log = Arc::new(OpLog::default());
    let out = tracing::subscriber::with_default(OpCounter(log.clone()), || rt.block_on(fut));
    let ops = std::mem::take(&mut *log.ops.lock().unwrap_or_else(|p| p.into_inner()));
    (out, ops)
}

fn count_round_trips(rt: &tokio::runtime::Runtime, dc: &Dc, s: &Setup) {
    println!("\n### LDAP operations per handler call (counted from the pool's debug events)\n");
    let h = ActiveDirectoryHandler::new(vec![dc.settings()]);
    let ctx = ActionContext::standalone("bench-ops");
    let ops_ou = format!("ou=ops,{}", s.root);
    // Opens the pool (the connect is not counted) and makes the OU.
    let r = rt.block_on(h.execute(
        &ctx,
        json!({"Action": "Create"}),
        json!({"OrganizationalUnits": [{"Identity": ops_ou}]}),
    ));
    assert_complete(&r, "ops OU");
    let get = json!({"Action": "Get", "ReturnObjects": true, "ReturnObjectProperties": true});
    let calls: Vec<(&str, Value, Value)> = vec![
        (
            "Get by DN",
            get.clone(),
            json!({"Users": [{"Identity": s.user_dn}]}),
        ),
        (
            "Get by sAMAccountName",
            get,
            json!({"Users": [{"Identity": s.sam}]}),
        ),
        (
            "Create (default Config)",
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": format!("cn=bo{}1,{ops_ou}", s.run)}]}),
        ),
        (
            "Create, ReturnObjects: false",
            json!({"Action": "Create", "ReturnObjects": false}),
            json!({"Users": [{"Identity": format!("cn=bo{}2,{ops_ou}", s.run)}]}),
        ),
    ];
    for (label, cfg, params) in calls {
        let (r, ops) = count_ops(rt, h.execute(&ctx, cfg, params));
        assert_complete(&r, label);
        println!("- {label}: {} LDAP operation(s)", ops.len());
        for o in ops {
            println!("  - {o}");
        }
    }
    println!("\nraw ldap3 equivalents: Get = 1 search; Create = 1 add.");
}
