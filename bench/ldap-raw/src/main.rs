//! Raw ldap3 lookup rate and latency against one DC, for bench/http.sh.
//!
//! ```text
//! ldap-raw URL BIND_DN BASE_DN USER_DN SAM SECONDS WARMUP_SECONDS CONNECTIONS [dn-seq|sam-seq|dn-conc|sam-conc]
//! ```
//! The bind password comes from `LDAP_RAW_PASSWORD` (not the command line). Certificates are not verified
//! (the fixture DC's certificate has no IP SAN), as with `SYNAPSE_AD_TLS_INSECURE=true`.
//!
//! Measures, each for SECONDS after WARMUP_SECONDS untimed:
//! - `dn-seq`: one connection, sequential base search of USER_DN with the handler's user class filter and
//!   READ_ATTRS (what `GET /ad/user/{DN}` sends);
//! - `sam-seq`: one connection, sequential subtree search from BASE_DN with the handler's sAMAccountName
//!   filter and READ_ATTRS (what `GET /ad/user/{sAMAccountName}` sends; the handler pages it, this does not);
//! - `dn-conc`: CONNECTIONS connections, each running the `dn-seq` loop at the same time;
//! - `sam-conc`: CONNECTIONS connections, each running the `sam-seq` loop at the same time.
//!
//! With a last argument, only that measurement runs. Prints one
//! `RAW name=... ops=... rps=... p50_us=... p99_us=...` line per measurement on stdout.

use std::time::{Duration, Instant};

use synapse_handlers::ad::envelope::AdObjectType;
use synapse_handlers::ad::identity::{class_filter, READ_ATTRS};
use synapse_handlers::ldap::ldap3::{self, LdapConnAsync, LdapConnSettings, StdStream};
use synapse_handlers::ldap::{Ldap, Scope};

struct Args {
    url: String,
    bind_dn: String,
    password: String,
    base_dn: String,
    user_dn: String,
    sam: String,
    secs: f64,
    warmup: f64,
    conns: usize,
    only: Option<String>,
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("ldap-raw: {msg}");
    std::process::exit(1)
}

fn args() -> Args {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 8 && a.len() != 9 {
        die("usage: ldap-raw URL BIND_DN BASE_DN USER_DN SAM SECONDS WARMUP_SECONDS CONNECTIONS [dn-seq|sam-seq|dn-conc|sam-conc]");
    }
    let only = a.get(8).cloned();
    if let Some(o) = &only {
        if !["dn-seq", "sam-seq", "dn-conc", "sam-conc"].contains(&o.as_str()) {
            die(format!(
                "unknown measurement '{o}' (dn-seq, sam-seq, dn-conc, sam-conc)"
            ));
        }
    }
    let num = |s: &str| {
        s.parse::<f64>()
            .unwrap_or_else(|_| die(format!("'{s}' is not a number")))
    };
    Args {
        url: a[0].clone(),
        bind_dn: a[1].clone(),
        password: std::env::var("LDAP_RAW_PASSWORD")
            .unwrap_or_else(|_| die("LDAP_RAW_PASSWORD is not set")),
        base_dn: a[2].clone(),
        user_dn: a[3].clone(),
        sam: a[4].clone(),
        secs: num(&a[5]),
        warmup: num(&a[6]),
        conns: num(&a[7]) as usize,
        only,
    }
}

/// One bound LDAPS connection on our own socket with TCP_NODELAY (as the handler's pool does).
async fn connect(a: &Args) -> Ldap {
    let hostport = a
        .url
        .split_once("://")
        .map(|(_, r)| r.trim_end_matches('/'))
        .unwrap_or_else(|| die("URL must be ldaps://HOST:PORT"));
    let tcp = tokio::net::TcpStream::connect(hostport)
        .await
        .unwrap_or_else(|e| die(format!("TCP connect {hostport}: {e}")));
    tcp.set_nodelay(true).unwrap_or_else(|e| die(e));
    let std = tcp.into_std().unwrap_or_else(|e| die(e));
    let settings = LdapConnSettings::new()
        .set_std_stream(StdStream::Tcp(std))
        .set_no_tls_verify(true);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &a.url)
        .await
        .unwrap_or_else(|e| die(format!("LDAPS connect: {e}")));
    ldap3::drive!(conn);
    let r = ldap
        .simple_bind(&a.bind_dn, &a.password)
        .await
        .unwrap_or_else(|e| die(format!("bind: {e}")));
    if r.rc != 0 {
        die(format!("bind refused: rc={} {}", r.rc, r.text));
    }
    ldap
}

#[derive(Clone, Copy)]
enum Lookup {
    ByDn,
    BySam,
}

async fn lookup(ldap: &mut Ldap, a: &Args, what: Lookup, sam_filter: &str) {
    let (base, scope, filter) = match what {
        Lookup::ByDn => (
            a.user_dn.as_str(),
            Scope::Base,
            class_filter(AdObjectType::User),
        ),
        Lookup::BySam => (a.base_dn.as_str(), Scope::Subtree, sam_filter),
    };
    let ldap3::SearchResult(entries, res) = ldap
        .search(base, scope, filter, READ_ATTRS)
        .await
        .unwrap_or_else(|e| die(format!("search: {e}")));
    if res.rc != 0 {
        die(format!("search rc={} {}", res.rc, res.text));
    }
    // Subtree searches may also return referrals (SearchEntry::is_ref); the user must be there exactly once.
    let hits = entries.into_iter().filter(|e| !e.is_ref()).count();
    if hits != 1 {
        die(format!("expected one entry, got {hits}"));
    }
}

/// Runs the loop on one connection until `until`, returning the latency samples taken after `measure_from`.
async fn run_loop(
    mut ldap: Ldap,
    a: std::sync::Arc<Args>,
    what: Lookup,
    measure_from: Instant,
    until: Instant,
) -> Vec<Duration> {
    let sam_filter = format!(
        "(&{}(|(sAMAccountName={})(name={})))",
        class_filter(AdObjectType::User),
        a.sam,
        a.sam
    );
    let mut samples = Vec::with_capacity(100_000);
    loop {
        let t = Instant::now();
        if t >= until {
            break;
        }
        lookup(&mut ldap, &a, what, &sam_filter).await;
        if t >= measure_from {
            samples.push(t.elapsed());
        }
    }
    let _ = ldap.unbind().await;
    samples
}

fn report(name: &str, mut samples: Vec<Duration>, secs: f64) {
    samples.sort();
    let n = samples.len();
    let at = |q: f64| {
        samples
            .get(((n as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "RAW name={name} ops={n} rps={:.1} p50_us={:.0} p99_us={:.0}",
        n as f64 / secs,
        at(0.50),
        at(0.99)
    );
}

async fn measure(a: &std::sync::Arc<Args>, name: &str, what: Lookup, conns: usize) {
    if a.only.as_deref().is_some_and(|o| o != name) {
        return;
    }
    let mut ldaps = Vec::with_capacity(conns);
    for _ in 0..conns {
        ldaps.push(connect(a).await);
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let until = measure_from + Duration::from_secs_f64(a.secs);
    let tasks: Vec<_> = ldaps
        .into_iter()
        .map(|l| tokio::spawn(run_loop(l, a.clone(), what, measure_from, until)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_else(|e| die(e)));
    }
    report(name, all, a.secs);
}

fn main() {
    let a = std::sync::Arc::new(args());
    // ldap3 builds its rustls config with `ClientConfig::builder()`, which wants a process default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(e));
    rt.block_on(async {
        measure(&a, "dn-seq", Lookup::ByDn, 1).await;
        measure(&a, "sam-seq", Lookup::BySam, 1).await;
        measure(&a, "dn-conc", Lookup::ByDn, a.conns.max(1)).await;
        measure(&a, "sam-conc", Lookup::BySam, a.conns.max(1)).await;
    });
}
