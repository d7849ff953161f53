//! A pool of bound LDAP connections to one domain, and the operation helpers the AD handler uses.
//!
//! * Connections are TLS only (LDAPS or StartTLS), bound with a simple bind as the configured account,
//!   and opened lazily up to `pool_size`; a [`tokio::sync::Semaphore`] bounds how many are in use.
//!   [`LdapPool::connect`] opens the first one eagerly so a bad URL, certificate or password fails at
//!   start-up, not on the first request.
//! * Sockets get `TCP_NODELAY`: ldap3 does not set it, and Nagle + delayed ACK add ~45 ms to the first
//!   round trip after the TLS handshake (reference/samba-ad-dc-facts.md §2).
//! * The URLs are tried in order, starting with the last one that worked.
//! * The helpers ([`LdapPool::search`], [`LdapPool::add`], ...) apply the operation timeout, replace a
//!   broken connection and retry once where that is safe (see [`LdapPool::search`] for the rules), and
//!   turn non-success results into [`Error::Ldap`] carrying the server's diagnostic text.
//!
//! Nothing here logs a password or an attribute value: log lines carry operation names, DNs, result
//! codes and timings.

use std::collections::HashSet;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::adapters::PagedResults;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, LdapResult, StdStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use super::settings::{DomainSettings, LdapScheme, LdapUrl};
use crate::error::Error;

/// ldap3 itself, for code that works on a checked-out connection ([`LdapPool::get`]) and needs its
/// controls, adapters or result types.
pub use ldap3;
pub use ldap3::{Ldap, Mod, Scope, SearchEntry};

/// Page size of every search ([`LdapPool::search`] always pages). AD's default MaxPageSize is 1000.
pub const PAGE_SIZE: i32 = 500;

/// An idle connection older than this is closed instead of reused: AD drops idle connections after
/// MaxConnIdleTime (900 s by default), and reusing one just before that races the server.
pub const MAX_IDLE: Duration = Duration::from_secs(300);

/// Encodes a password for the `unicodePwd` attribute: the password in double quotes, UTF-16LE.
/// AD accepts writes of it only over an encrypted connection (which is all this pool opens).
pub fn encode_password(pw: &str) -> Vec<u8> {
    format!("\"{pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A pool of bound connections to one domain. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct LdapPool {
    inner: Arc<Inner>,
}

struct Inner {
    settings: DomainSettings,
    base_dn: String,
    urls: Vec<LdapUrl>,
    /// `None`: ldap3's default configuration (the platform trust store).
    tls: Option<Arc<ClientConfig>>,
    idle: Mutex<Vec<IdleConn>>,
    permits: Arc<Semaphore>,
    /// Index into `urls` where the next connect attempt starts (the last one that worked).
    preferred_url: AtomicUsize,
    opened: AtomicU64,
    discarded: AtomicU64,
}

struct IdleConn {
    ldap: Ldap,
    url: usize,
    since: Instant,
}

/// Counters for tests, metrics and `synapse status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections currently idle in the pool.
    pub idle: usize,
    /// Connections currently checked out.
    pub in_use: usize,
    /// Connections opened (and bound) since the pool was created.
    pub opened: u64,
    /// Connections closed because they broke, timed out, sat idle too long or were discarded.
    pub discarded: u64,
}

/// A checked-out connection. Derefs to [`ldap3::Ldap`]; goes back to the pool on drop unless
/// [`PooledLdap::discard`] was called or the connection has closed.
///
/// Request state set through the handle (`with_controls`, `with_timeout`, `with_search_options`)
/// does not leak to the next user: the pool keeps a fresh clone of the handle.
pub struct PooledLdap {
    ldap: Ldap,
    url: usize,
    discard: bool,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl PooledLdap {
    /// Do not return this connection to the pool: it is closed when the guard drops. Call it after a
    /// connection-level error, and after anything that changes the connection's state, such as a bind
    /// as another user (to check that user's password).
    pub fn discard(&mut self) {
        self.discard = true;
    }

    /// The URL this connection is connected to.
    pub fn url(&self) -> String {
        self.pool
            .urls
            .get(self.url)
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

impl Deref for PooledLdap {
    type Target = Ldap;
    fn deref(&self) -> &Ldap {
        &self.ldap
    }
}

impl DerefMut for PooledLdap {
    fn deref_mut(&mut self) -> &mut Ldap {
        &mut self.ldap
    }
}

impl Drop for PooledLdap {
    fn drop(&mut self) {
        // The idle entry is pushed before `_permit` is released (fields drop after this body), so a
        // task woken by the permit finds the connection.
        if self.discard || self.ldap.is_closed() {
            self.pool.discarded.fetch_add(1, Ordering::Relaxed);
            debug!(url = %self.url(), "LDAP connection discarded");
            return;
        }
        let conn = IdleConn {
            // A clone carries no pending controls, timeout or search options.
            ldap: self.ldap.clone(),
            url: self.url,
            since: Instant::now(),
        };
        lock(&self.pool.idle).push(conn);
    }
}

/// Whether an operation may be repeated after a connection failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Read,
    Write,
}

/// A failed attempt, with what is known about whether the server may have applied it.
struct Failure {
    error: Error,
    /// False when the request provably never reached the server, or the server refused it
    /// (busy/unavailable); true when the connection died with the request in flight.
    maybe_applied: bool,
}

impl LdapPool {
    /// Validates the settings, builds the TLS configuration, opens and binds one connection, and
    /// (when `base_dn` is `None`) reads the base DN from the rootDSE's `defaultNamingContext`; the
    /// pool's [`settings`](Self::settings) then carry that base DN.
    ///
    /// Errors: [`Error::Config`] (invalid settings, unreadable CA file, no `defaultNamingContext`),
    /// [`Error::Connection`] (no URL reachable within `connect_timeout`, TLS failure),
    /// [`Error::Bind`] (credentials refused).
    pub async fn connect(settings: DomainSettings) -> Result<LdapPool, Error> {
        let started = Instant::now();
        settings.validate()?;
        let urls = settings.parsed_urls()?;
        let tls = build_tls_config(&settings)?;
        let mut inner = Inner {
            base_dn: settings.base_dn.clone().unwrap_or_default(),
            urls,
            tls,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(settings.pool_size)),
            preferred_url: AtomicUsize::new(0),
            opened: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            settings,
        };
        let (mut ldap, url) = inner.open().await?;
        if inner.settings.base_dn.is_none() {
            let dse = read_root_dse(&mut ldap, inner.settings.op_timeout).await?;
            let base = first_value(&dse, "defaultNamingContext").ok_or_else(|| {
                Error::config(
                    "BaseDn",
                    "not set, and the rootDSE has no defaultNamingContext to default to",
                )
            })?;
            debug!(base_dn = %base, "base DN from the rootDSE");
            inner.base_dn = base.clone();
            inner.settings.base_dn = Some(base);
        }
        lock(&inner.idle).push(IdleConn {
            ldap,
            url,
            since: Instant::now(),
        });
        debug!(
            domain = %inner.settings.name,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "LDAP pool ready"
        );
        Ok(LdapPool {
            inner: Arc::new(inner),
        })
    }

    /// The default naming context (configured, or discovered from the rootDSE).
    pub fn base_dn(&self) -> &str {
        &self.inner.base_dn
    }

    /// The settings the pool runs with (`base_dn` filled in when it was discovered).
    pub fn settings(&self) -> &DomainSettings {
        &self.inner.settings
    }

    pub fn stats(&self) -> PoolStats {
        let idle = lock(&self.inner.idle).len();
        PoolStats {
            idle,
            in_use: self.inner.settings.pool_size - self.inner.permits.available_permits(),
            opened: self.inner.opened.load(Ordering::Relaxed),
            discarded: self.inner.discarded.load(Ordering::Relaxed),
        }
    }

    /// Checks out a connection: an idle one if there is a healthy one, else a new one (when fewer
    /// than `pool_size` are in use; otherwise waits, at most `op_timeout`, then [`Error::Timeout`]).
    ///
    /// Use it for what the helpers do not cover (controls such as tree delete or SD flags). While
    /// holding the guard, do not call the pool's helpers from the same task: with every connection
    /// checked out they wait for one to come back.
    pub async fn get(&self) -> Result<PooledLdap, Error> {
        let permit = self.acquire().await?;
        while let Some(mut idle) = self.inner.take_idle() {
            if idle.ldap.is_closed() || idle.since.elapsed() > MAX_IDLE {
                self.inner.discarded.fetch_add(1, Ordering::Relaxed);
                debug!("dropping a closed or stale idle LDAP connection");
                continue;
            }
            return Ok(self.guard(idle.ldap, idle.url, permit));
        }
        let (ldap, url) = self.inner.open().await?;
        Ok(self.guard(ldap, url, permit))
    }

    /// A brand-new connection, for the retry after a connection failure (idle ones may share the
    /// fate of the broken one, e.g. after a DC restart).
    async fn get_new(&self) -> Result<PooledLdap, Error> {
        let permit = self.acquire().await?;
        let (ldap, url) = self.inner.open().await?;
        Ok(self.guard(ldap, url, permit))
    }

    fn guard(&self, ldap: Ldap, url: usize, permit: OwnedSemaphorePermit) -> PooledLdap {
        PooledLdap {
            ldap,
            url,
            discard: false,
            pool: self.inner.clone(),
            _permit: permit,
        }
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit, Error> {
        let wait = self.inner.settings.op_timeout;
        match tokio::time::timeout(wait, self.inner.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Error::Connection("the LDAP pool is closed".into())),
            Err(_) => Err(Error::Timeout {
                operation: format!(
                    "waiting for a free LDAP connection to {} (all {} in use)",
                    self.inner.settings.name, self.inner.settings.pool_size
                ),
                after: wait,
            }),
        }
    }

    /// Searches; subtree and one-level searches always use the Paged Results control (page size [`PAGE_SIZE`]), base-object searches (at most one entry) do not. Returns every
    /// entry of every page. Search references (continuation referrals to other naming contexts) and
    /// intermediate messages are skipped. `attrs` empty means all user attributes.
    ///
    /// Result codes: 0 gives the entries; anything else is [`Error::Ldap`], including 32
    /// (noSuchObject: the base does not exist; Samba says `acl_read: Error retrieving instanceType
    /// for base`) and 10 (referral: a base outside this domain, on AD), which callers may map to
    /// "not found". A bad filter is [`Error::InvalidRequest`].
    ///
    /// The whole search (all pages) must finish within `op_timeout`, else [`Error::Timeout`] (the
    /// connection is discarded, the search is not repeated). Reads are retried once, on a fresh
    /// connection, after any other connection-class failure (connection lost, server busy or
    /// unavailable).
    pub async fn search<S: AsRef<str>>(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[S],
    ) -> Result<Vec<SearchEntry>, Error> {
        let attrs: Vec<String> = attrs.iter().map(|a| a.as_ref().to_string()).collect();
        let (entries, refs) = self
            .run("search", base, OpKind::Read, |mut ldap: Ldap| {
                let attrs = attrs.clone();
                async move { paged_search(&mut ldap, base, scope, filter, attrs).await }
            })
            .await?;
        debug!(
            base,
            filter,
            entries = entries.len(),
            skipped_references = refs,
            "search done"
        );
        Ok(entries)
    }

    /// A lookup that expects at most `limit` entries: one unpaged search with that size limit (on Samba the
    /// paged-results control costs more than the search itself for one-entry answers). When more entries
    /// match, the server stops at the limit (sizeLimitExceeded) and the entries it sent are returned, so a
    /// caller asking for 2 can tell "several" from "one". Errors and retries as for [`search`](Self::search).
    pub async fn lookup<S: AsRef<str>>(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[S],
        limit: i32,
    ) -> Result<Vec<SearchEntry>, Error> {
        let attrs: Vec<String> = attrs.iter().map(|a| a.as_ref().to_string()).collect();
        let entries = self
            .run("lookup", base, OpKind::Read, |mut ldap: Ldap| {
                let attrs = attrs.clone();
                async move {
                    let ldap3::SearchResult(raw, mut res) = ldap
                        .with_search_options(ldap3::SearchOptions::new().sizelimit(limit))
                        .search(base, scope, filter, attrs)
                        .await?;
                    if res.rc == 4 {
                        // sizeLimitExceeded: more matched than asked for; what came back is the answer.
                        res.rc = 0;
                    }
                    let entries: Vec<SearchEntry> = raw
                        .into_iter()
                        .filter(|e| !e.is_ref() && !e.is_intermediate())
                        .map(SearchEntry::construct)
                        .collect();
                    Ok((entries, res))
                }
            })
            .await?;
        debug!(base, filter, entries = entries.len(), "lookup done");
        Ok(entries)
    }

    /// Reads the rootDSE (all its user attributes). Not paged. Errors as for [`search`](Self::search);
    /// a rootDSE without an entry is [`Error::Ldap`] 32.
    pub async fn root_dse(&self) -> Result<SearchEntry, Error> {
        self.run(
            "rootDSE read",
            "",
            OpKind::Read,
            |mut ldap: Ldap| async move { root_dse_search(&mut ldap).await },
        )
        .await
    }

    /// Adds an entry with string values. Any non-zero result is [`Error::Ldap`]: 68
    /// (entryAlreadyExists, e.g. `00002071: samldb: samAccountName 'x' already in use!`), 32 (parent
    /// missing; Samba leaves matchedDN empty), 19 (constraintViolation, e.g. a weak password), ...
    /// An attribute with no values is [`Error::InvalidRequest`].
    ///
    /// Writes are retried once on a fresh connection only when the request provably did not reach the
    /// server, or the server answered busy (51) or unavailable (52). When the connection breaks while
    /// the add is in flight the result is [`Error::Connection`] and the caller decides (the entry may
    /// exist): a blind retry would turn a success into 68.
    pub async fn add(&self, dn: &str, attrs: Vec<(String, HashSet<String>)>) -> Result<(), Error> {
        debug!(dn, attributes = attrs.len(), "add");
        self.run("add", dn, OpKind::Write, |mut ldap: Ldap| {
            let attrs = attrs.clone();
            async move { ldap.add(dn, attrs).await.map(|r| ((), r)) }
        })
        .await
    }

    /// [`add`](Self::add) with binary values (for `unicodePwd`, `objectSid`, security descriptors,
    /// `dnsRecord`, ...). Same result and retry rules. Values are never logged.
    pub async fn add_bytes(
        &self,
        dn: &str,
        attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)>,
    ) -> Result<(), Error> {
        debug!(dn, attributes = attrs.len(), "add");
        self.run("add", dn, OpKind::Write, |mut ldap: Ldap| {
            let attrs = attrs.clone();
            async move { ldap.add(dn, attrs).await.map(|r| ((), r)) }
        })
        .await
    }

    /// Applies `mods` to `dn` in one Modify request (atomically). Any non-zero result is
    /// [`Error::Ldap`]; callers decide about codes that are fine for them: 68/20 when adding a value
    /// that is already there (Samba answers 68 for an existing `member`), 16 (noSuchAttribute) when
    /// deleting one that is not. Retry rules as for [`add`](Self::add).
    pub async fn modify(&self, dn: &str, mods: Vec<Mod<Vec<u8>>>) -> Result<(), Error> {
        debug!(dn, modifications = mods.len(), "modify");
        self.run("modify", dn, OpKind::Write, |mut ldap: Ldap| {
            let mods = mods.clone();
            async move { ldap.modify(dn, mods).await.map(|r| ((), r)) }
        })
        .await
    }

    /// Deletes a leaf entry. Any non-zero result is [`Error::Ldap`]: 32 when it does not exist
    /// (callers wanting an idempotent delete treat that as success), 66 (notAllowedOnNonLeaf) when it
    /// has children. Retry rules as for [`add`](Self::add).
    pub async fn delete(&self, dn: &str) -> Result<(), Error> {
        debug!(dn, "delete");
        self.run("delete", dn, OpKind::Write, |mut ldap: Ldap| async move {
            ldap.delete(dn).await.map(|r| ((), r))
        })
        .await
    }

    /// Renames `dn` to `new_rdn` (e.g. `OU=New`) and, with `new_superior`, moves it under that parent.
    /// `delete_old` removes the old RDN value (AD requires `true`). Any non-zero result is
    /// [`Error::Ldap`] (68 when the target exists, 32 when `dn` or the new parent does not).
    /// Retry rules as for [`add`](Self::add).
    pub async fn modify_dn(
        &self,
        dn: &str,
        new_rdn: &str,
        delete_old: bool,
        new_superior: Option<&str>,
    ) -> Result<(), Error> {
        debug!(dn, new_rdn, new_superior, "modify DN");
        self.run(
            "modify DN",
            dn,
            OpKind::Write,
            |mut ldap: Ldap| async move {
                ldap.modifydn(dn, new_rdn, delete_old, new_superior)
                    .await
                    .map(|r| ((), r))
            },
        )
        .await
    }

    /// Runs `f` on a pooled connection under `op_timeout`, maps the outcome, and retries once on a
    /// fresh connection when that is safe.
    async fn run<T, F, Fut>(&self, op: &str, target: &str, kind: OpKind, f: F) -> Result<T, Error>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<(T, LdapResult), LdapError>>,
    {
        let started = Instant::now();
        let guard = self.get().await?;
        let failure = match self.attempt(guard, op, target, &f).await {
            Ok(v) => {
                debug!(op, target, elapsed_ms = ms(started), "LDAP operation ok");
                return Ok(v);
            }
            Err(failure) => failure,
        };
        let retry = failure.error.is_connection()
            && !matches!(failure.error, Error::Timeout { .. })
            && (kind == OpKind::Read || !failure.maybe_applied);
        if !retry {
            debug!(op, target, error = %failure.error, elapsed_ms = ms(started), "LDAP operation failed");
            return Err(failure.error);
        }
        debug!(op, target, error = %failure.error, "retrying once on a new connection");
        let guard = self.get_new().await?;
        match self.attempt(guard, op, target, &f).await {
            Ok(v) => {
                debug!(
                    op,
                    target,
                    elapsed_ms = ms(started),
                    "LDAP operation ok after retry"
                );
                Ok(v)
            }
            Err(failure) => {
                debug!(op, target, error = %failure.error, "LDAP operation failed after retry");
                Err(failure.error)
            }
        }
    }

    async fn attempt<T, F, Fut>(
        &self,
        mut guard: PooledLdap,
        op: &str,
        target: &str,
        f: &F,
    ) -> Result<T, Failure>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<(T, LdapResult), LdapError>>,
    {
        let after = self.inner.settings.op_timeout;
        let outcome = tokio::time::timeout(after, f(guard.ldap.clone())).await;
        let failure = match outcome {
            Ok(Ok((value, res))) if res.rc == 0 => return Ok(value),
            Ok(Ok((_, res))) => Failure {
                // The server answered: it did not apply a failed operation.
                maybe_applied: false,
                error: Error::Ldap {
                    code: res.rc,
                    message: res.text,
                    matched_dn: res.matched,
                },
            },
            Ok(Err(e)) => classify(e, op, &guard.url(), after),
            Err(_) => Failure {
                maybe_applied: true,
                error: Error::Timeout {
                    operation: if target.is_empty() {
                        format!("LDAP {op}")
                    } else {
                        format!("LDAP {op} of '{target}'")
                    },
                    after,
                },
            },
        };
        if failure.error.is_connection() {
            guard.discard();
        }
        Err(failure)
    }
}

impl Inner {
    fn take_idle(&self) -> Option<IdleConn> {
        lock(&self.idle).pop()
    }

    /// Opens and binds a connection, trying every URL once (starting with the preferred one), each
    /// within `connect_timeout`.
    async fn open(&self) -> Result<(Ldap, usize), Error> {
        let n = self.urls.len();
        let start = self.preferred_url.load(Ordering::Relaxed) % n.max(1);
        let mut failures = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let Some(url) = self.urls.get(idx) else {
                continue;
            };
            let started = Instant::now();
            let timeout = self.settings.connect_timeout;
            match tokio::time::timeout(timeout, self.open_url(url)).await {
                Ok(Ok(ldap)) => {
                    self.preferred_url.store(idx, Ordering::Relaxed);
                    self.opened.fetch_add(1, Ordering::Relaxed);
                    debug!(url = %url, elapsed_ms = ms(started), "LDAP connection opened and bound");
                    return Ok((ldap, idx));
                }
                // A refused bind or a bad CA file will not get better on another DC.
                Ok(Err(e)) if !e.is_connection() => return Err(e),
                Ok(Err(e)) => {
                    debug!(url = %url, error = %e, "cannot connect");
                    failures.push(match e {
                        Error::Connection(message) => message,
                        other => format!("{url}: {other}"),
                    });
                }
                Err(_) => {
                    debug!(url = %url, ?timeout, "connect timed out");
                    failures.push(format!("{url}: connect timed out after {timeout:?}"));
                }
            }
        }
        Err(Error::Connection(match failures.len() {
            1 => failures.concat(),
            _ => format!(
                "no domain controller of {} reachable: {}",
                self.settings.name,
                failures.join("; ")
            ),
        }))
    }

    async fn open_url(&self, url: &LdapUrl) -> Result<Ldap, Error> {
        let conn_err = |what: &str, e: &dyn std::fmt::Display| {
            Error::Connection(format!("{url}: {what}: {e}"))
        };
        // Our own socket, for TCP_NODELAY (ldap3 does not set it).
        let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| conn_err("TCP connect", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| conn_err("setting TCP_NODELAY", &e))?;
        let tcp = tcp
            .into_std()
            .map_err(|e| conn_err("socket hand-over", &e))?;
        let starttls = url.scheme == LdapScheme::Ldap && self.settings.starttls;
        let mut conn_settings = LdapConnSettings::new()
            .set_std_stream(StdStream::Tcp(tcp))
            .set_starttls(starttls)
            .set_no_tls_verify(self.settings.tls_insecure);
        if let Some(config) = &self.tls {
            conn_settings = conn_settings.set_config(config.clone());
        }
        let what = if starttls { "StartTLS" } else { "TLS" };
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &url.to_string())
            .await
            .map_err(|e| match e {
                LdapError::LdapResult { result } => conn_err(
                    "StartTLS refused",
                    &format!("rc={} {}", result.rc, result.text),
                ),
                e => conn_err(what, &e),
            })?;
        let url_text = url.to_string();
        tokio::spawn(async move {
            match conn.drive().await {
                Ok(()) => debug!(url = %url_text, "LDAP connection closed"),
                Err(e) => {
                    debug!(url = %url_text, error = %e, "LDAP connection ended with an error")
                }
            }
        });
        let res = ldap
            .simple_bind(&self.settings.bind_dn, self.settings.password.expose())
            .await
            .map_err(|e| conn_err("bind", &e))?;
        if res.rc != 0 {
            debug!(url = %url, bind_dn = %self.settings.bind_dn, rc = res.rc, "bind refused");
            return Err(Error::Bind {
                code: res.rc,
                message: res.text,
            });
        }
        Ok(ldap)
    }
}

/// The search behind [`LdapPool::search`]: paged (except base-object searches), references and intermediate messages skipped.
/// Returns the entries and the number of skipped references.
async fn paged_search(
    ldap: &mut Ldap,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: Vec<String>,
) -> Result<((Vec<SearchEntry>, usize), LdapResult), LdapError> {
    // A base-object search returns at most one entry: paging only adds cost (on Samba the paged-results
    // control makes even one-entry searches measurably slower).
    let mut stream = if scope == Scope::Base {
        ldap.streaming_search(base, scope, filter, attrs).await?
    } else {
        ldap.streaming_search_with(PagedResults::new(PAGE_SIZE), base, scope, filter, attrs)
            .await?
    };
    let mut entries = Vec::new();
    let mut refs = 0usize;
    while let Some(entry) = stream.next().await? {
        if entry.is_ref() {
            refs += 1;
        } else if !entry.is_intermediate() {
            entries.push(SearchEntry::construct(entry));
        }
    }
    let res = stream.finish().await;
    Ok(((entries, refs), res))
}

async fn root_dse_search(ldap: &mut Ldap) -> Result<(SearchEntry, LdapResult), LdapError> {
    let ldap3::SearchResult(entries, res) = ldap
        .search("", Scope::Base, "(objectClass=*)", Vec::<&str>::new())
        .await?;
    match entries
        .into_iter()
        .find(|e| !e.is_ref() && !e.is_intermediate())
    {
        Some(e) => Ok((SearchEntry::construct(e), res)),
        None if res.rc != 0 => Ok((empty_entry(), res)),
        None => Ok((
            empty_entry(),
            LdapResult {
                rc: 32,
                matched: String::new(),
                text: "the rootDSE search returned no entry".into(),
                refs: vec![],
                ctrls: vec![],
            },
        )),
    }
}

/// The rootDSE over a connection that is not (yet) in a pool.
async fn read_root_dse(ldap: &mut Ldap, after: Duration) -> Result<SearchEntry, Error> {
    match tokio::time::timeout(after, root_dse_search(ldap)).await {
        Err(_) => Err(Error::Timeout {
            operation: "LDAP rootDSE read".into(),
            after,
        }),
        Ok(Err(e)) => Err(classify(e, "rootDSE read", "", after).error),
        Ok(Ok((entry, res))) if res.rc == 0 => Ok(entry),
        Ok(Ok((_, res))) => Err(Error::Ldap {
            code: res.rc,
            message: res.text,
            matched_dn: res.matched,
        }),
    }
}

fn empty_entry() -> SearchEntry {
    SearchEntry {
        dn: String::new(),
        attrs: Default::default(),
        bin_attrs: Default::default(),
    }
}

fn first_value(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
}

/// Maps an ldap3 error of an operation to our error, with what is known about delivery.
fn classify(e: LdapError, op: &str, url: &str, after: Duration) -> Failure {
    let lost = |maybe_applied: bool, what: String| Failure {
        maybe_applied,
        error: Error::Connection(if url.is_empty() {
            what
        } else {
            format!("{url}: {what}")
        }),
    };
    match e {
        // The connection task was gone before the request could be queued: nothing was sent.
        LdapError::OpSend { .. } => lost(false, format!("connection closed before the {op}")),
        LdapError::ResultRecv { .. } | LdapError::EndOfStream | LdapError::IdScrubSend { .. } => {
            lost(true, format!("connection lost during the {op}"))
        }
        LdapError::Io { source } => lost(true, format!("I/O error during the {op}: {source}")),
        LdapError::Timeout { .. } => Failure {
            maybe_applied: true,
            error: Error::Timeout {
                operation: format!("LDAP {op}"),
                after,
            },
        },
        LdapError::FilterParsing => Failure {
            maybe_applied: false,
            error: Error::InvalidRequest(format!("the {op} filter is not a valid LDAP filter")),
        },
        LdapError::AddNoValues => Failure {
            maybe_applied: false,
            error: Error::InvalidRequest(format!("an attribute of the {op} has no values")),
        },
        LdapError::AdapterInit(m) => Failure {
            maybe_applied: false,
            error: Error::InvalidRequest(m),
        },
        LdapError::LdapResult { result } => Failure {
            maybe_applied: false,
            error: Error::Ldap {
                code: result.rc,
                message: result.text,
                matched_dn: result.matched,
            },
        },
        other => lost(true, format!("{op} failed: {other}")),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the Vec inconsistent; keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

// ------------------------------------------------------------------------------------------------
// TLS

/// The rustls configuration for the domain, always on the aws-lc-rs provider:
/// * `tls_insecure`: any certificate is accepted ([`InsecureAcceptAnyServerCertificate`]);
/// * `ca_cert`: only that PEM file's certificates are trusted, and the host name must match;
/// * neither: `None`, i.e. ldap3's default, the platform trust store (rustls-native-certs).
fn build_tls_config(settings: &DomainSettings) -> Result<Option<Arc<ClientConfig>>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Connection(format!("TLS setup: {e}")))?;
    if settings.tls_insecure {
        warn!(
            domain = %settings.name,
            "TlsInsecure is set: server certificates are NOT verified for this domain"
        );
        if settings.ca_cert.is_some() {
            warn!(domain = %settings.name, "CaCert is ignored because TlsInsecure is set");
        }
        let verifier = InsecureAcceptAnyServerCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        return Ok(Some(Arc::new(config)));
    }
    if let Some(path) = &settings.ca_cert {
        let field = "CaCert";
        let pem = std::fs::read(path)
            .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| {
                Error::config(field, format!("{} is not valid PEM: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                Error::config(
                    field,
                    format!("{}: unusable certificate: {e}", path.display()),
                )
            })?;
        }
        if roots.is_empty() {
            return Err(Error::config(
                field,
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        let config = builder.with_root_certificates(roots).with_no_client_auth();
        return Ok(Some(Arc::new(config)));
    }
    // ldap3 builds its default configuration with `ClientConfig::builder()`, which needs a
    // process-wide provider when more than one is compiled in; make sure there is one.
    if CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: then there is a default.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    Ok(None)
}

/// A certificate verifier that accepts ANY server certificate (handshake signatures are still
/// checked, so the peer must hold the key of the certificate it sent). Reachable only through the
/// explicit `TlsInsecure` setting, for throwaway test DCs whose certificate has no usable name.
#[derive(Debug)]
struct InsecureAcceptAnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for InsecureAcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::settings::Secret;

    #[test]
    fn unicode_pwd_encoding() {
        assert_eq!(
            encode_password("ab"),
            vec![b'"', 0, b'a', 0, b'b', 0, b'"', 0]
        );
        // Non-ASCII: U+00E9 is one UTF-16 unit, U+1F600 two.
        assert_eq!(encode_password("é").len(), 6);
        assert_eq!(encode_password("\u{1F600}").len(), 8);
    }

    #[test]
    fn classify_delivery() {
        let f = classify(LdapError::FilterParsing, "search", "", Duration::ZERO);
        assert!(matches!(f.error, Error::InvalidRequest(_)));
        assert!(!f.maybe_applied);
        let f = classify(
            LdapError::EndOfStream,
            "search",
            "ldaps://h:636",
            Duration::ZERO,
        );
        assert!(f.error.is_connection());
        assert!(f.maybe_applied);
        assert!(f.error.to_string().contains("ldaps://h:636"));
    }

    #[test]
    fn tls_config_modes() {
        let mut s = DomainSettings::new(
            "x.local",
            vec!["ldaps://127.0.0.1".into()],
            "a@x.local",
            Secret::new("pw"),
        );
        assert!(build_tls_config(&s).unwrap().is_none());
        s.tls_insecure = true;
        assert!(build_tls_config(&s).unwrap().is_some());
        s.tls_insecure = false;
        s.ca_cert = Some("/nonexistent/ca.pem".into());
        match build_tls_config(&s) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "CaCert"),
            other => panic!("expected a CaCert error, got {:?}", other.map(|_| ())),
        }
    }

    #[tokio::test]
    async fn unreachable_is_a_connection_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut s = DomainSettings::new(
            "x.local",
            vec![format!("ldaps://127.0.0.1:{port}")],
            "a@x.local",
            Secret::new("pw"),
        );
        s.connect_timeout = Duration::from_secs(2);
        let started = Instant::now();
        let err = LdapPool::connect(s).await.err().unwrap();
        assert!(matches!(err, Error::Connection(_)), "{err:?}");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
