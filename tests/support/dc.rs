//! One throwaway Samba AD DC per test process (`tests/fixtures/samba-dc.sh`, see
//! docs/fixture-samba-dc.md).
//!
//! [`dc()`] starts it on first use (tests call it in parallel; `OnceLock` makes the others wait) and
//! returns the same DC to every test. Rust's test harness has no global teardown, so a detached
//! reaper shell (own session, survives Ctrl-C of the test process group) waits for this process to
//! exit and then runs `samba-dc.sh stop`. The DC's `--maximum-runtime` (1800 s) is the last resort.
//!
//! With `SYNAPSE_TEST_DC_ENV=FILE` (KEY=VALUE lines as printed by `samba-dc.sh start`), the tests use
//! that already running DC and leave its lifecycle to whoever started it (e.g. scripts/test.sh).
//!
//! Tests isolate themselves with [`TestDc::unique_ou`]: every test works in its own OU.

use crate::support::fixture;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use synapse_handlers::ad::settings::{dns_name_from_dn, DomainSettings};
use synapse_handlers::ldap::{LdapPool, LdapSettings, Secret};

/// Seconds after which the DC stops itself even if nobody stops it.
const MAX_RUNTIME_SECS: u32 = 1800;
/// Attempts at finding a free loopback IP (`start` exits 3 when another DC grabbed it first).
const START_ATTEMPTS: usize = 5;

/// A running DC.
#[derive(Debug, Clone)]
pub struct TestDc {
    pub ip: String,
    pub dir: PathBuf,
    pub pid: u32,
    pub base_dn: String,
    pub bind_dn: String,
    pub password: String,
    /// The CA of the DC's self-signed certificate (which has no SAN, so verification by IP fails).
    pub ca_cert: Option<PathBuf>,
    pub realm: String,
    /// `ldaps://IP:636`
    pub url: String,
}

static DC: OnceLock<Result<TestDc, String>> = OnceLock::new();

/// The test process's DC, started on first use.
pub fn dc() -> &'static TestDc {
    match DC.get_or_init(start_or_attach) {
        Ok(dc) => dc,
        // Every test that needs the DC fails with the same message; the start is not retried.
        Err(e) => panic!("test DC unavailable: {e}"),
    }
}

impl TestDc {
    /// Settings for this DC as Administrator over LDAPS, certificate verification off (the DC's
    /// certificate has no SAN), base DN given.
    pub fn settings(&self) -> DomainSettings {
        let name = dns_name_from_dn(&self.base_dn).unwrap_or_else(|| "sandbox.local".into());
        let mut s = DomainSettings::new(
            name,
            vec![self.url.clone()],
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

    /// The LDAP part of [`TestDc::settings`] (for the generic pool's tests).
    pub fn ldap_settings(&self) -> LdapSettings {
        self.settings().ldap
    }

    /// A pool on [`TestDc::ldap_settings`].
    pub async fn pool(&self) -> LdapPool {
        LdapPool::connect(self.ldap_settings())
            .await
            .unwrap_or_else(|e| panic!("connecting to the test DC {}: {e}", self.url))
    }

    /// Creates a fresh OU `ou=<prefix>-<random>,<base>` and returns its DN.
    pub async fn unique_ou(&self, prefix: &str) -> String {
        let dn = format!("ou={prefix}-{},{}", random_suffix(), self.base_dn);
        let pool = self.pool().await;
        pool.add(
            &dn,
            vec![(
                "objectClass".to_string(),
                HashSet::from(["organizationalUnit".to_string()]),
            )],
        )
        .await
        .unwrap_or_else(|e| panic!("creating {dn}: {e}"));
        dn
    }
}

/// 12 hex digits, different for every call in every process.
pub fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo_root().join("tests/fixtures/samba-dc.sh")
}

fn start_or_attach() -> Result<TestDc, String> {
    if let Some(file) = std::env::var_os("SYNAPSE_TEST_DC_ENV").filter(|v| !v.is_empty()) {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("SYNAPSE_TEST_DC_ENV={}: {e}", Path::new(&file).display()))?;
        return parse_env(&text);
    }
    ensure_installed()?;
    let mut last_err = String::new();
    for _ in 0..START_ATTEMPTS {
        let ip = run_script(&["free-ip"])?.trim().to_string();
        let dir = make_temp_dir()?;
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .arg(&ip)
            .arg(MAX_RUNTIME_SECS.to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", script().display()))?;
        match out.status.code() {
            Some(0) => {
                let dc = parse_env(&String::from_utf8_lossy(&out.stdout))?;
                spawn_reaper(&dc.dir);
                return Ok(dc);
            }
            Some(3) => {
                // Somebody else took the IP between free-ip and start: pick another.
                let _ = std::fs::remove_dir(&dir);
                last_err = format!("{ip} busy");
            }
            _ => {
                let _ = std::fs::remove_dir(&dir);
                return Err(format!(
                    "samba-dc.sh start {} {ip} failed ({}):\n{}",
                    dir.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    Err(format!(
        "no free IP after {START_ATTEMPTS} attempts (last: {last_err})"
    ))
}

/// `install` needs root and apt; run it only when Samba is missing, and `golden` only when the
/// golden DC is missing (both are idempotent, so this is only about speed).
fn ensure_installed() -> Result<(), String> {
    if !on_path("samba-tool") || !on_path("samba") {
        run_script(&["install"])?;
    }
    let cache = std::env::var_os("SYNAPSE_DC_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/synapse-dc"));
    if !cache.join("golden/.synapse-golden-complete").is_file() {
        run_script(&["golden"])?;
    }
    Ok(())
}

fn on_path(cmd: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(cmd).is_file())
}

fn run_script(args: &[&str]) -> Result<String, String> {
    let out = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", script().display()))?;
    if !out.status.success() {
        return Err(format!(
            "samba-dc.sh {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An empty, fresh directory in /tmp for the DC (`start` wants it absent or empty; `stop` removes it).
fn make_temp_dir() -> Result<PathBuf, String> {
    for _ in 0..10 {
        let dir = std::env::temp_dir().join(format!("synapse-test-dc-{}", random_suffix()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("creating {}: {e}", dir.display())),
        }
    }
    Err("could not create a temporary directory".into())
}

/// Stops the DC once this process is gone (see [`fixture::spawn_reaper`]).
fn spawn_reaper(dir: &Path) {
    if let Err(e) = fixture::spawn_reaper("synapse-dc-reaper", &script(), dir) {
        // The DC still stops itself after MAX_RUNTIME_SECS.
        eprintln!(
            "warning: no reaper for the test DC in {}: {e}",
            dir.display()
        );
    }
}

fn parse_env(text: &str) -> Result<TestDc, String> {
    // Split at the first '=': the password may contain '=' and shell characters.
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v))
        .collect();
    let get = |k: &str| {
        vars.get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("{k} missing in the DC's KEY=VALUE output:\n{text}"))
    };
    let ip = get("DC_IP")?;
    let pid = get("DC_PID")?.parse().map_err(|e| format!("DC_PID: {e}"))?;
    let ca = get("DC_CA_CERT").unwrap_or_default();
    Ok(TestDc {
        url: format!("ldaps://{ip}:636"),
        ip,
        dir: PathBuf::from(get("DC_DIR")?),
        pid,
        base_dn: get("DC_BASE_DN")?,
        bind_dn: get("DC_BIND_DN")?,
        password: get("DC_PASSWORD")?,
        ca_cert: (!ca.is_empty()).then(|| PathBuf::from(ca)),
        realm: get("DC_REALM").unwrap_or_else(|_| "SANDBOX.LOCAL".into()),
    })
}
