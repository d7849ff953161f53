//! The LDAP pool and its helpers against a real Samba AD DC (tests/support/dc.rs). Each test works in
//! its own OU, so the tests run in parallel on one DC.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use synapse_handlers::ad::domain::DomainPool;
use synapse_handlers::ad::errors::bind_subcode;
use synapse_handlers::ad::fields::encode_password;
use synapse_handlers::error::Error;
use synapse_handlers::ldap::escape::{ldap_dn_value, ldap_filter_value};
use synapse_handlers::ldap::{LdapPool, Mod, Scope, SearchEntry, Secret};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use crate::support::dc::{dc, random_suffix};

fn attr(name: &str, values: &[&str]) -> (String, HashSet<String>) {
    (
        name.to_string(),
        values.iter().map(|v| v.to_string()).collect(),
    )
}

fn battr(name: &str, values: &[&[u8]]) -> (Vec<u8>, HashSet<Vec<u8>>) {
    (
        name.as_bytes().to_vec(),
        values.iter().map(|v| v.to_vec()).collect(),
    )
}

fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
}

fn code(r: Result<impl std::fmt::Debug, Error>) -> u32 {
    match r {
        Err(Error::Ldap { code, .. }) => code,
        other => panic!("expected an LDAP error, got {other:?}"),
    }
}

async fn add_contact(pool: &LdapPool, parent: &str, cn: &str) {
    let dn = format!("cn={},{parent}", ldap_dn_value(cn));
    pool.add(&dn, vec![attr("objectClass", &["contact"])])
        .await
        .unwrap_or_else(|e| panic!("adding {dn}: {e}"));
}

#[tokio::test]
async fn connect_discovers_base_dn_from_root_dse() {
    let dc = dc();
    let mut settings = dc.ldap_settings();
    settings.base_dn = None;
    let pool = LdapPool::connect(settings).await.unwrap();
    assert!(
        pool.base_dn().eq_ignore_ascii_case(&dc.base_dn),
        "{} vs {}",
        pool.base_dn(),
        dc.base_dn
    );
    // The discovered base DN is in the settings, so a domain on this pool matches its DNS form (here the
    // only way to match: the domain's name and aliases are something else).
    assert!(pool.settings().base_dn.is_some());
    let mut other = dc.settings();
    other.ldap.name = "other.invalid".into();
    other.aliases.clear();
    let domain = DomainPool::new(other, pool.clone());
    assert!(domain.settings().matches_domain("Sandbox.Local"));
    assert!(!domain.settings().matches_domain("sandbox"));
    let dse = pool.root_dse().await.unwrap();
    assert!(first(&dse, "dnsHostName").is_some(), "{dse:?}");
    assert!(first(&dse, "defaultNamingContext").is_some(), "{dse:?}");
    let stats = pool.stats();
    assert_eq!((stats.opened, stats.in_use), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn starttls_on_389_works() {
    let dc = dc();
    let mut settings = dc.ldap_settings();
    settings.urls = vec![format!("ldap://{}:389", dc.ip)];
    settings.starttls = true;
    let pool = LdapPool::connect(settings).await.unwrap();
    let found = pool
        .search(
            &dc.base_dn,
            Scope::Subtree,
            "(sAMAccountName=Administrator)",
            &["sAMAccountName"],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn certificate_verification_is_on_unless_tls_insecure() {
    // The fixture DC's certificate has no SAN, so verifying it while connecting by IP must fail:
    // proof that CaCert mode really verifies (host name included).
    let dc = dc();
    let Some(ca) = dc.ca_cert.clone() else {
        return;
    };
    let mut settings = dc.ldap_settings();
    settings.tls_insecure = false;
    settings.ca_cert = Some(ca);
    let err = LdapPool::connect(settings).await.err().unwrap();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn wrong_password_is_a_bind_error() {
    let mut settings = dc().ldap_settings();
    settings.password = Secret::new("not-the-password");
    let err = LdapPool::connect(settings).await.err().unwrap();
    match &err {
        Error::Bind { code, message } => {
            assert_eq!(*code, 49, "{message}");
            assert_eq!(bind_subcode(&err), Some(0x52e), "{message}");
        }
        other => panic!("expected Error::Bind, got {other:?}"),
    }
    assert!(!err.is_connection());
    assert!(!err.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn user_lifecycle_add_read_modify_rename_move_delete() {
    let dc = dc();
    let pool = dc.pool().await;
    let ou = dc.unique_ou("life").await;
    let sub = format!("ou=moved,{ou}");
    pool.add(&sub, vec![attr("objectClass", &["organizationalUnit"])])
        .await
        .unwrap();

    // A user with a password, over LDAPS.
    let sam = format!("u{}", &random_suffix()[..10]);
    let upn = format!("{sam}@sandbox.local");
    let password = format!("Syn-{}-Pw9!", random_suffix());
    let dn = format!("cn=Alice {sam},{ou}");
    pool.add_bytes(
        &dn,
        vec![
            battr(
                "objectClass",
                &[b"top", b"person", b"organizationalPerson", b"user"],
            ),
            battr("sAMAccountName", &[sam.as_bytes()]),
            battr("userPrincipalName", &[upn.as_bytes()]),
            battr("unicodePwd", &[&encode_password(&password)]),
            battr("userAccountControl", &[b"512"]),
        ],
    )
    .await
    .unwrap();

    // Read it back.
    let found = pool
        .search(
            &dn,
            Scope::Base,
            "(objectClass=user)",
            &[
                "sAMAccountName",
                "userAccountControl",
                "pwdLastSet",
                "unicodePwd",
            ],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let user = &found[0];
    assert_eq!(first(user, "sAMAccountName").as_deref(), Some(sam.as_str()));
    assert_eq!(first(user, "userAccountControl").as_deref(), Some("512"));
    assert_ne!(first(user, "pwdLastSet").as_deref(), Some("0"));
    assert!(first(user, "unicodePwd").is_none());

    // The password works: the user can bind.
    let mut as_user = dc.ldap_settings();
    as_user.bind_dn = upn.clone();
    as_user.password = Secret::new(password.clone());
    as_user.pool_size = 1;
    LdapPool::connect(as_user).await.unwrap();

    // Modify: a description, then a weak password (refused with Samba's text).
    pool.modify(
        &dn,
        vec![Mod::Replace(
            b"description".to_vec(),
            HashSet::from([b"made by ldap_pool".to_vec()]),
        )],
    )
    .await
    .unwrap();
    let found = pool
        .search(&dn, Scope::Base, "(objectClass=*)", &["description"])
        .await
        .unwrap();
    assert_eq!(
        first(&found[0], "description").as_deref(),
        Some("made by ldap_pool")
    );
    let weak = pool
        .modify(
            &dn,
            vec![Mod::Replace(
                b"unicodePwd".to_vec(),
                HashSet::from([encode_password("abc")]),
            )],
        )
        .await;
    match &weak {
        Err(Error::Ldap { code, message, .. }) => {
            assert_eq!(*code, 19, "{message}");
            assert!(message.contains("0000052D"), "{message}");
        }
        other => panic!("expected rc=19, got {other:?}"),
    }
    // A duplicate is 68 with the server's text.
    let dup = pool
        .add(
            &format!("cn=dup,{ou}"),
            vec![
                attr("objectClass", &["user"]),
                attr("sAMAccountName", &[&sam]),
            ],
        )
        .await;
    assert_eq!(code(dup), 68);

    // Rename, then move.
    pool.modify_dn(&dn, &format!("cn=Renamed {sam}"), true, None)
        .await
        .unwrap();
    let renamed = format!("cn=Renamed {sam},{ou}");
    assert_eq!(
        code(
            pool.search(&dn, Scope::Base, "(objectClass=*)", &["cn"])
                .await
        ),
        32
    );
    let found = pool
        .search(&renamed, Scope::Base, "(objectClass=*)", &["cn"])
        .await
        .unwrap();
    assert_eq!(
        first(&found[0], "cn").as_deref(),
        Some(format!("Renamed {sam}").as_str())
    );
    pool.modify_dn(&renamed, &format!("cn=Renamed {sam}"), true, Some(&sub))
        .await
        .unwrap();
    let moved = format!("cn=Renamed {sam},{sub}");
    let found = pool
        .search(
            &sub,
            Scope::OneLevel,
            &format!("(sAMAccountName={})", ldap_filter_value(&sam)),
            &["distinguishedName"],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].dn.eq_ignore_ascii_case(&moved), "{}", found[0].dn);

    // Delete; a second delete is 32 (callers wanting idempotence treat it as done).
    pool.delete(&moved).await.unwrap();
    assert_eq!(
        code(
            pool.search(&moved, Scope::Base, "(objectClass=*)", &["cn"])
                .await
        ),
        32
    );
    assert_eq!(code(pool.delete(&moved).await), 32);
    // Deleting a non-empty OU is 66 with the server's text.
    assert_eq!(code(pool.delete(&ou).await), 66);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_search_returns_all_1200_entries() {
    const N: usize = 1200;
    const CONCURRENCY: usize = 8;
    let dc = dc();
    let pool = dc.pool().await;
    let ou = dc.unique_ou("paged").await;

    // Create the entries concurrently through the pool: CONCURRENCY workers share a counter.
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (pool, ou, next) = (pool.clone(), ou.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= N {
                    break;
                }
                add_contact(&pool, &ou, &format!("c{i:05}")).await;
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    let stats = pool.stats();
    assert!(
        stats.opened >= 2 && stats.opened as usize <= pool.settings().pool_size,
        "pooling: {stats:?}"
    );
    assert_eq!(stats.in_use, 0, "{stats:?}");

    let entries = pool
        .search(&ou, Scope::Subtree, "(objectClass=contact)", &["cn"])
        .await
        .unwrap();
    assert_eq!(entries.len(), N);
    let names: HashSet<String> = entries.iter().filter_map(|e| first(e, "cn")).collect();
    assert_eq!(names.len(), N);
    assert!(names.contains("c00000") && names.contains(&format!("c{:05}", N - 1)));
}

#[tokio::test]
async fn subtree_search_from_the_base_skips_references() {
    // Samba returns continuation references (Configuration, DomainDnsZones, ForestDnsZones) for a
    // subtree search from the domain base; they must not show up as entries or errors.
    let dc = dc();
    let pool = dc.pool().await;
    let entries = pool
        .search(
            &dc.base_dn,
            Scope::Subtree,
            "(sAMAccountName=Administrator)",
            &["sAMAccountName"],
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
}

#[tokio::test]
async fn injection_in_a_filter_value_finds_nothing_extra() {
    let dc = dc();
    let pool = dc.pool().await;
    let ou = dc.unique_ou("inj").await;
    for cn in ["alpha", "beta", "gam*ma"] {
        add_contact(&pool, &ou, cn).await;
    }
    let search = |value: String| {
        let (pool, ou) = (pool.clone(), ou.clone());
        async move {
            let filter = format!("(&(objectClass=contact)(cn={value}))");
            pool.search(&ou, Scope::OneLevel, &filter, &["cn"])
                .await
                .unwrap()
                .len()
        }
    };
    // Unescaped, the input rewrites the filter (what upstream got wrong).
    assert_eq!(search("*".to_string()).await, 3);
    // Escaped: the inputs are literal values.
    for input in ["*", "alpha)(cn=*", "*)(|(objectClass=*", "alpha\\", "\0"] {
        assert_eq!(search(ldap_filter_value(input)).await, 0, "{input:?}");
    }
    assert_eq!(search(ldap_filter_value("alpha")).await, 1);
    assert_eq!(search(ldap_filter_value("gam*ma")).await, 1);
    // A filter the parser rejects never reaches the server.
    let bad = pool
        .search(&ou, Scope::OneLevel, "(cn=alpha", &["cn"])
        .await;
    assert!(matches!(bad, Err(Error::InvalidRequest(_))), "{bad:?}");
}

#[tokio::test]
async fn discarded_connection_is_replaced() {
    let dc = dc();
    let mut settings = dc.ldap_settings();
    settings.pool_size = 1;
    let pool = LdapPool::connect(settings).await.unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        let res = conn
            .search("", Scope::Base, "(objectClass=*)", vec!["dnsHostName"])
            .await
            .unwrap();
        assert_eq!(res.1.rc, 0);
        conn.discard();
    }
    let stats = pool.stats();
    assert_eq!((stats.opened, stats.discarded, stats.idle), (1, 1, 0));
    pool.root_dse().await.unwrap();
    let stats = pool.stats();
    assert_eq!((stats.opened, stats.idle), (2, 1), "{stats:?}");
}

#[tokio::test]
async fn connection_dropped_by_the_server_side_is_replaced() {
    let dc = dc();
    let proxy = Proxy::start(&format!("{}:636", dc.ip)).await;
    let mut settings = dc.ldap_settings();
    settings.urls = vec![format!("ldaps://{}", proxy.addr)];
    settings.pool_size = 2;
    let pool = LdapPool::connect(settings).await.unwrap();
    let base = dc.base_dn.clone();
    let probe = || pool.search(&base, Scope::Base, "(objectClass=*)", &["dc"]);
    probe().await.unwrap();

    // Drop every connection and search at once: either the pool sees the closed connection at
    // checkout or the search fails on it and is retried on a new one. Never an error.
    for round in 0..5 {
        proxy.kill();
        probe()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    // Same with a pause, so the connection task has certainly noticed.
    proxy.kill();
    tokio::time::sleep(Duration::from_millis(100)).await;
    probe().await.unwrap();
    let stats = pool.stats();
    assert!(stats.opened >= 7, "{stats:?}");
    assert!(stats.discarded >= 6, "{stats:?}");
}

#[tokio::test]
async fn hung_server_gives_a_timeout_and_the_connection_is_replaced() {
    let dc = dc();
    let proxy = Proxy::start(&format!("{}:636", dc.ip)).await;
    let mut settings = dc.ldap_settings();
    settings.urls = vec![format!("ldaps://{}", proxy.addr)];
    settings.op_timeout = Duration::from_secs(1);
    let pool = LdapPool::connect(settings).await.unwrap();
    let base = dc.base_dn.clone();
    pool.search(&base, Scope::Base, "(objectClass=*)", &["dc"])
        .await
        .unwrap();

    proxy.freeze();
    let started = Instant::now();
    let err = pool
        .search(&base, Scope::Base, "(objectClass=*)", &["dc"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_connection());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The hung connection was discarded; the next search opens a new one (new proxy connections
    // forward again).
    pool.search(&base, Scope::Base, "(objectClass=*)", &["dc"])
        .await
        .unwrap();
    proxy.kill();
}

#[tokio::test]
async fn unreachable_url_is_a_connection_error_within_the_connect_timeout() {
    // A closed port: refused at once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut settings = dc().ldap_settings();
    settings.urls = vec![format!("ldaps://127.0.0.1:{port}")];
    settings.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = LdapPool::connect(settings.clone()).await.err().unwrap();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(err.is_connection());
    assert!(started.elapsed() < Duration::from_secs(2));

    // A listener that never answers the TLS handshake: the connect timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    settings.urls = vec![format!("ldaps://{}", silent.local_addr().unwrap())];
    settings.connect_timeout = Duration::from_millis(700);
    let started = Instant::now();
    let err = LdapPool::connect(settings.clone()).await.err().unwrap();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(elapsed >= Duration::from_millis(650), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");

    // A dead URL first, a good one second: the pool moves on.
    settings.urls = vec![format!("ldaps://127.0.0.1:{port}"), dc().url.clone()];
    let pool = LdapPool::connect(settings).await.unwrap();
    pool.root_dse().await.unwrap();
}

/// Prints connection and operation timings; not an assertion. Run with
/// `cargo test --test integration ldap_pool::pool_timings -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints numbers"]
async fn pool_timings() {
    let dc = dc();
    // The first pool of the process (cold: TLS config, first handshake on this DC process).
    let t = Instant::now();
    let first_pool = dc.pool().await;
    let first_connect = t.elapsed();
    first_pool.root_dse().await.unwrap();
    drop(first_pool);

    let mut connect = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let pool = dc.pool().await;
        connect.push(t.elapsed());
        drop(pool);
    }
    let mut discover = Vec::new();
    for _ in 0..10 {
        let mut s = dc.ldap_settings();
        s.base_dn = None;
        let t = Instant::now();
        LdapPool::connect(s).await.unwrap();
        discover.push(t.elapsed());
    }

    let pool = dc.pool().await;
    let mut base = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        pool.search(&dc.base_dn, Scope::Base, "(objectClass=*)", &["dc"])
            .await
            .unwrap();
        base.push(t.elapsed());
    }
    let mut raw = Vec::with_capacity(1000);
    {
        let mut conn = pool.get().await.unwrap();
        for _ in 0..1000 {
            let t = Instant::now();
            conn.search(&dc.base_dn, Scope::Base, "(objectClass=*)", vec!["dc"])
                .await
                .unwrap();
            raw.push(t.elapsed());
        }
    }

    let ou = dc.unique_ou("bench").await;
    let mut adds = Vec::with_capacity(200);
    let t_all = Instant::now();
    for i in 0..200 {
        let sam = format!("b{}{i:03}", &random_suffix()[..8]);
        let t = Instant::now();
        pool.add(
            &format!("cn={sam},{ou}"),
            vec![
                attr(
                    "objectClass",
                    &["top", "person", "organizationalPerson", "user"],
                ),
                attr("sAMAccountName", &[&sam]),
            ],
        )
        .await
        .unwrap();
        adds.push(t.elapsed());
    }
    let adds_total = t_all.elapsed();
    let mut pw_adds = Vec::with_capacity(50);
    for i in 0..50 {
        let sam = format!("p{}{i:03}", &random_suffix()[..8]);
        let t = Instant::now();
        pool.add_bytes(
            &format!("cn={sam},{ou}"),
            vec![
                battr("objectClass", &[b"user"]),
                battr("sAMAccountName", &[sam.as_bytes()]),
                battr("unicodePwd", &[&encode_password("Syn-Bench-Pw9!x")]),
                battr("userAccountControl", &[b"512"]),
            ],
        )
        .await
        .unwrap();
        pw_adds.push(t.elapsed());
    }

    // A 1,200-entry search: pool.search (paged, 500 per page) against one unpaged ldap3 search.
    // Samba returns everything either way; the difference is the cost of three page round trips.
    let big = dc.unique_ou("bench-big").await;
    for i in 0..1200 {
        add_contact(&pool, &big, &format!("c{i:05}")).await;
    }
    let mut paged = Vec::new();
    let mut unpaged = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = pool
            .search(&big, Scope::Subtree, "(objectClass=contact)", &["cn"])
            .await
            .unwrap()
            .len();
        paged.push(t.elapsed());
        assert_eq!(n, 1200);
        let mut conn = pool.get().await.unwrap();
        let t = Instant::now();
        let res = conn
            .search(&big, Scope::Subtree, "(objectClass=contact)", vec!["cn"])
            .await
            .unwrap();
        unpaged.push(t.elapsed());
        assert_eq!(res.0.len(), 1200);
    }

    fn pct(v: &mut [Duration], p: f64) -> f64 {
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i].as_secs_f64() * 1e3
    }
    println!(
        "first connect of the process:            {:.2} ms",
        first_connect.as_secs_f64() * 1e3
    );
    println!(
        "connect (TCP+TLS+bind), 20 pools:       p50 {:.2} ms  min {:.2}  max {:.2}",
        pct(&mut connect, 0.5),
        pct(&mut connect, 0.0),
        pct(&mut connect, 1.0)
    );
    println!(
        "connect + rootDSE discovery, 10 pools:   p50 {:.2} ms  max {:.2}",
        pct(&mut discover, 0.5),
        pct(&mut discover, 1.0)
    );
    println!(
        "base search via pool.search, 1000 seq:   p50 {:.3} ms  p90 {:.3}  p99 {:.3}",
        pct(&mut base, 0.5),
        pct(&mut base, 0.9),
        pct(&mut base, 0.99)
    );
    println!(
        "base search raw ldap3 (no paging), 1000: p50 {:.3} ms  p90 {:.3}  p99 {:.3}",
        pct(&mut raw, 0.5),
        pct(&mut raw, 0.9),
        pct(&mut raw, 0.99)
    );
    println!(
        "200 sequential user adds (no password):  total {:.0} ms = {:.0}/s, p50 {:.2} ms  p99 {:.2}",
        adds_total.as_secs_f64() * 1e3,
        200.0 / adds_total.as_secs_f64(),
        pct(&mut adds, 0.5),
        pct(&mut adds, 0.99)
    );
    println!(
        "50 sequential user adds with unicodePwd: p50 {:.2} ms  p99 {:.2}",
        pct(&mut pw_adds, 0.5),
        pct(&mut pw_adds, 0.99)
    );
    println!(
        "1200-entry subtree search: paged p50 {:.1} ms, unpaged p50 {:.1} ms",
        pct(&mut paged, 0.5),
        pct(&mut unpaged, 0.5)
    );
    println!("pool stats: {:?}", pool.stats());
}

/// A TCP proxy in front of the DC that can cut (`kill`) or hang (`freeze`) every connection it
/// carries at that moment; connections made afterwards forward normally.
struct Proxy {
    addr: SocketAddr,
    commands: broadcast::Sender<ProxyCmd>,
}

#[derive(Clone, Copy, Debug)]
enum ProxyCmd {
    Kill,
    Freeze,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (commands, _) = broadcast::channel(16);
        let tx = commands.clone();
        let target = target.to_string();
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let mut rx = tx.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut up) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = up.set_nodelay(true);
                    let _ = down.set_nodelay(true);
                    let cmd = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => return,
                        cmd = rx.recv() => cmd,
                    };
                    if let Ok(ProxyCmd::Freeze) = cmd {
                        // Hold both sockets open without forwarding until killed.
                        while let Ok(cmd) = rx.recv().await {
                            if let ProxyCmd::Kill = cmd {
                                break;
                            }
                        }
                    }
                    // Dropping the sockets closes both sides.
                });
            }
        });
        Proxy { addr, commands }
    }

    fn kill(&self) {
        let _ = self.commands.send(ProxyCmd::Kill);
    }

    fn freeze(&self) {
        let _ = self.commands.send(ProxyCmd::Freeze);
    }
}
