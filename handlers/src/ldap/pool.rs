//! A pool of bound LDAP connections to one directory.
//!
//! * Connections are TLS only (LDAPS or StartTLS), bound with a simple bind as the configured account,
//!   and opened lazily up to `pool_size`; a [`tokio::sync::Semaphore`] bounds how many are in use.
//!   [`LdapPool::connect`] opens the first one eagerly so a bad URL, certificate or password fails at
//!   start-up, not on the first request.
//! * Sockets get `TCP_NODELAY`: ldap3 does not set it, and Nagle + delayed ACK add ~45 ms to the first
//!   round trip after the TLS handshake (reference/samba-ad-dc-facts.md §2).
//! * The URLs are tried in order, starting with the last one that worked.
//! * The operation helpers ([`LdapPool::search`], [`LdapPool::add`], ... in `ops.rs`) apply the operation
//!   timeout, replace a broken connection and retry once where that is safe (the rules are in
//!   [`crate::ldap::error`]), and turn non-success results into [`Error::Ldap`] carrying the server's
//!   diagnostic text.
//!
//! Nothing here logs a password or an attribute value: log lines carry operation names, DNs, result
//! codes and timings.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, StdStream};
use rustls::ClientConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use crate::error::Error;
use crate::ldap::error::{classify, FailedAttempt, OpKind};
use crate::ldap::ops::{first_value, read_root_dse};
use crate::ldap::settings::LdapSettings;
use crate::ldap::tls::build_tls_config;
use crate::ldap::url::{LdapScheme, LdapUrl};

/// An idle connection older than this is closed instead of reused: AD drops idle connections after
/// MaxConnIdleTime (900 s by default), and reusing one just before that races the server.
pub const MAX_IDLE: Duration = Duration::from_secs(300);

/// A pool of bound connections to one directory. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct LdapPool {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LdapSettings,
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
    /// Attempts to open a connection that failed (every URL tried).
    failed: AtomicU64,
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
    /// Attempts to open a connection that failed (every URL tried, or a refused bind).
    pub failed: u64,
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

impl LdapPool {
    /// Validates the settings, builds the TLS configuration, opens and binds one connection, and
    /// (when `base_dn` is `None`) reads the base DN from the rootDSE's `defaultNamingContext`; the
    /// pool's [`settings`](Self::settings) then carry that base DN.
    ///
    /// Errors: [`Error::Config`] (invalid settings, unreadable CA file, no `defaultNamingContext`),
    /// [`Error::Connection`] (no URL reachable within `connect_timeout`, TLS failure),
    /// [`Error::Bind`] (credentials refused).
    pub async fn connect(settings: LdapSettings) -> Result<LdapPool, Error> {
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
            failed: AtomicU64::new(0),
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
            directory = %inner.settings.name,
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
    pub fn settings(&self) -> &LdapSettings {
        &self.inner.settings
    }

    pub fn stats(&self) -> PoolStats {
        let idle = lock(&self.inner.idle).len();
        PoolStats {
            idle,
            in_use: self.inner.settings.pool_size - self.inner.permits.available_permits(),
            opened: self.inner.opened.load(Ordering::Relaxed),
            discarded: self.inner.discarded.load(Ordering::Relaxed),
            failed: self.inner.failed.load(Ordering::Relaxed),
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

    /// Runs `f` on a pooled connection under `op_timeout`, maps the outcome, and retries once on a
    /// fresh connection when that is safe.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        op: &str,
        target: &str,
        kind: OpKind,
        f: F,
    ) -> Result<T, Error>
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
        if !failure.may_retry(kind) {
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
    ) -> Result<T, FailedAttempt>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<(T, LdapResult), LdapError>>,
    {
        let after = self.inner.settings.op_timeout;
        let outcome = tokio::time::timeout(after, f(guard.ldap.clone())).await;
        let failure = match outcome {
            Ok(Ok((value, res))) if res.rc == 0 => return Ok(value),
            Ok(Ok((_, res))) => FailedAttempt {
                // The server answered: it did not apply a failed operation.
                maybe_applied: false,
                error: Error::Ldap {
                    code: res.rc,
                    message: res.text,
                    matched_dn: res.matched,
                },
            },
            Ok(Err(e)) => classify(e, op, &guard.url(), after),
            Err(_) => FailedAttempt {
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
        let r = self.open_any().await;
        if r.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn open_any(&self) -> Result<(Ldap, usize), Error> {
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the Vec inconsistent; keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::Secret;

    #[tokio::test]
    async fn unreachable_is_a_connection_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut s = LdapSettings::new(
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
