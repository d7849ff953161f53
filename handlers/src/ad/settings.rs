//! Settings of one Active Directory domain: where its DCs are, how to bind, pool and timeout knobs.
//!
//! Sources: the `Domains` entries of `synapse.yaml` (PascalCase keys, unknown keys rejected) or the
//! `SYNAPSE_AD_*` environment variables ([`DomainSettings::from_env`]). Both paths end in the same
//! validation, and every error is an [`Error::Config`] naming the offending key or variable.
//!
//! TLS is mandatory: an `ldap://` URL is accepted only together with `StartTls: true`. AD refuses a
//! simple bind over a clear connection (rc=8 `strongerAuthRequired`), and a password must never cross
//! the wire in clear anyway.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// Default number of pooled connections per domain.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Default time allowed for TCP connect + TLS + bind.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for one LDAP operation (a paged search counts as one).
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on `PoolSize`: a typo such as 80000 should not open that many sockets to a DC.
pub const MAX_POOL_SIZE: usize = 1024;

/// A secret string (a bind password). `Debug` and `Display` print `********`; only
/// [`Secret::expose`] gives the value, so it cannot end up in a log line or an error by accident.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call this only where the value is handed to the wire (the bind).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// The settings of one domain. Build it from YAML (serde), from the environment
/// ([`DomainSettings::from_env`]) or with [`DomainSettings::new`] plus field updates; in the last case
/// call [`DomainSettings::validate`] (the pool does so on connect).
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawDomainSettings")]
pub struct DomainSettings {
    /// The domain's DNS name, e.g. `sandbox.local`. Derived from `BaseDn` or `BindDn` when not given.
    pub name: String,
    /// Other names plans and requests may use for this domain, e.g. the NetBIOS name `SANDBOX`.
    pub aliases: Vec<String>,
    /// DC URLs, tried in order: `ldaps://host[:636]` or `ldap://host[:389]` with `StartTls: true`.
    pub urls: Vec<String>,
    /// The bind identity: a DN, `user@domain` (UPN) or `DOMAIN\user`.
    pub bind_dn: String,
    /// The bind password (YAML `Password`, or `PasswordFile` whose content is read at load time).
    pub password: Secret,
    /// PEM file with the CA certificate(s) that sign the DCs' certificates. Without it (and without
    /// `TlsInsecure`) the platform's trust store is used.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate. For throwaway test DCs only: it makes TLS encrypt without
    /// authenticating the server.
    pub tls_insecure: bool,
    /// Use StartTLS on `ldap://` URLs (no effect on `ldaps://` URLs).
    pub starttls: bool,
    /// The default naming context. When `None`, the pool reads `defaultNamingContext` from the rootDSE.
    pub base_dn: Option<String>,
    /// Maximum number of pooled connections (default 8).
    pub pool_size: usize,
    /// Time allowed for TCP connect + TLS + bind, per URL (default 5 s).
    pub connect_timeout: Duration,
    /// Time allowed for one LDAP operation (default 30 s).
    pub op_timeout: Duration,
}

impl DomainSettings {
    /// Settings with the defaults for everything not given: no aliases, platform trust store,
    /// no StartTLS, base DN from the rootDSE, pool of 8, 5 s connect and 30 s operation timeouts.
    pub fn new(
        name: impl Into<String>,
        urls: Vec<String>,
        bind_dn: impl Into<String>,
        password: Secret,
    ) -> Self {
        DomainSettings {
            name: name.into(),
            aliases: Vec::new(),
            urls,
            bind_dn: bind_dn.into(),
            password,
            ca_cert: None,
            tls_insecure: false,
            starttls: false,
            base_dn: None,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            op_timeout: DEFAULT_OP_TIMEOUT,
        }
    }

    /// Reads the `SYNAPSE_AD_*` environment variables:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `SYNAPSE_AD_URL` | required; one URL or a comma-separated list |
    /// | `SYNAPSE_AD_BIND_DN` | required |
    /// | `SYNAPSE_AD_PASSWORD` / `SYNAPSE_AD_PASSWORD_FILE` | exactly one; the file's trailing newline is dropped |
    /// | `SYNAPSE_AD_CA_CERT` | PEM file |
    /// | `SYNAPSE_AD_TLS_INSECURE` | `true`/`false` (default false) |
    /// | `SYNAPSE_AD_STARTTLS` | `true`/`false` (default false) |
    /// | `SYNAPSE_AD_BASE_DN` | default: the rootDSE's `defaultNamingContext` |
    /// | `SYNAPSE_AD_DOMAIN` | the domain name; default derived from the base DN or bind DN |
    /// | `SYNAPSE_AD_ALIASES` | comma-separated |
    /// | `SYNAPSE_AD_POOL_SIZE` | default 8 |
    /// | `SYNAPSE_AD_CONNECT_TIMEOUT`, `SYNAPSE_AD_OPERATION_TIMEOUT` | seconds, or `500ms`, `5s`, `2m` |
    ///
    /// Empty values count as unset. Errors name the variable.
    pub fn from_env() -> Result<Self, Error> {
        // Non-UTF-8 values are reported rather than silently ignored.
        for var in EnvVar::ALL {
            if let Some(v) = std::env::var_os(var.name()) {
                if v.to_str().is_none() {
                    return Err(Error::config(var.name(), "the value is not valid UTF-8"));
                }
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`DomainSettings::from_env`] over any lookup function (tests pass a map instead of mutating
    /// the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |var: EnvVar| -> Option<String> {
            lookup(var.name())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let urls = match get(EnvVar::Url) {
            Some(v) => split_list(&v),
            None => return Err(Error::config(EnvVar::Url.name(), "is not set")),
        };
        let bind_dn = get(EnvVar::BindDn)
            .ok_or_else(|| Error::config(EnvVar::BindDn.name(), "is not set"))?;
        // The password is not trimmed: only the file form drops its trailing newline.
        let password_value = lookup(EnvVar::Password.name()).filter(|v| !v.is_empty());
        let password = resolve_password(
            password_value.map(Secret::from),
            get(EnvVar::PasswordFile).map(PathBuf::from),
            EnvVar::Password.name(),
            EnvVar::PasswordFile.name(),
        )?;
        let mut s = DomainSettings::new(String::new(), urls, bind_dn, password);
        s.ca_cert = get(EnvVar::CaCert).map(PathBuf::from);
        if let Some(v) = get(EnvVar::TlsInsecure) {
            s.tls_insecure =
                parse_bool(&v).map_err(|m| Error::config(EnvVar::TlsInsecure.name(), m))?;
        }
        if let Some(v) = get(EnvVar::StartTls) {
            s.starttls = parse_bool(&v).map_err(|m| Error::config(EnvVar::StartTls.name(), m))?;
        }
        s.base_dn = get(EnvVar::BaseDn);
        if let Some(v) = get(EnvVar::Aliases) {
            s.aliases = split_list(&v);
        }
        if let Some(v) = get(EnvVar::PoolSize) {
            s.pool_size = v.parse().map_err(|_| {
                Error::config(
                    EnvVar::PoolSize.name(),
                    format!("'{v}' is not a whole number"),
                )
            })?;
        }
        if let Some(v) = get(EnvVar::ConnectTimeout) {
            s.connect_timeout =
                parse_duration(&v).map_err(|m| Error::config(EnvVar::ConnectTimeout.name(), m))?;
        }
        if let Some(v) = get(EnvVar::OperationTimeout) {
            s.op_timeout = parse_duration(&v)
                .map_err(|m| Error::config(EnvVar::OperationTimeout.name(), m))?;
        }
        s.name = match get(EnvVar::Domain) {
            Some(name) => name,
            None => s
                .derived_name()
                .ok_or_else(|| Error::config(EnvVar::Domain.name(), NAME_UNDERIVABLE))?,
        };
        s.validate_named(Field::env_name)?;
        Ok(s)
    }

    /// Checks the settings; errors name the YAML key (`Urls`, `BindDn`, ...).
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_named(Field::yaml_name)
    }

    fn validate_named(&self, name: fn(Field) -> &'static str) -> Result<(), Error> {
        let fail = |field: Field, message: String| Err(Error::config(name(field), message));
        if self.name.trim().is_empty() {
            return fail(Field::Name, "is empty".into());
        }
        if self.aliases.iter().any(|a| a.trim().is_empty()) {
            return fail(Field::Aliases, "contains an empty name".into());
        }
        if self.urls.is_empty() {
            return fail(Field::Urls, "no URL given".into());
        }
        for url in &self.urls {
            let parsed = match LdapUrl::parse(url) {
                Ok(u) => u,
                Err(m) => return fail(Field::Urls, m),
            };
            if parsed.scheme == LdapScheme::Ldap && !self.starttls {
                return fail(
                    Field::Urls,
                    format!(
                        "'{url}' is a clear-text ldap:// URL and {} is off: Active Directory refuses \
                         simple binds without TLS and Synapse never sends a password in clear. \
                         Use ldaps://host:636, or turn StartTLS on",
                        name(Field::StartTls)
                    ),
                );
            }
        }
        if self.bind_dn.trim().is_empty() {
            return fail(Field::BindDn, "is empty".into());
        }
        if self.password.is_empty() {
            // An empty password makes a simple bind an *unauthenticated* bind, which servers answer
            // with success: refuse it rather than run anonymously.
            return fail(
                Field::Password,
                "is empty (an empty password would be an unauthenticated bind)".into(),
            );
        }
        if let Some(ca) = &self.ca_cert {
            if ca.as_os_str().is_empty() {
                return fail(Field::CaCert, "is an empty path".into());
            }
        }
        if let Some(base) = &self.base_dn {
            if let Err(e) = crate::ldap::escape::validate_dn(base) {
                return fail(Field::BaseDn, e.to_string());
            }
        }
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return fail(
                Field::PoolSize,
                format!(
                    "must be between 1 and {MAX_POOL_SIZE}, not {}",
                    self.pool_size
                ),
            );
        }
        if self.connect_timeout.is_zero() {
            return fail(Field::ConnectTimeout, "must be greater than zero".into());
        }
        if self.op_timeout.is_zero() {
            return fail(Field::OperationTimeout, "must be greater than zero".into());
        }
        Ok(())
    }

    /// True when `name` designates this domain: compared case-insensitively (a trailing dot ignored)
    /// with [`name`](Self::name), the aliases, and the DNS form of the base DN
    /// (`DC=sandbox,DC=local` → `sandbox.local`).
    pub fn matches_domain(&self, name: &str) -> bool {
        let wanted = name.trim().trim_end_matches('.');
        if wanted.is_empty() {
            return false;
        }
        let eq = |candidate: &str| {
            candidate
                .trim()
                .trim_end_matches('.')
                .eq_ignore_ascii_case(wanted)
        };
        eq(&self.name)
            || self.aliases.iter().any(|a| eq(a))
            || self
                .base_dn
                .as_deref()
                .and_then(dns_name_from_dn)
                .is_some_and(|dns| eq(&dns))
    }

    /// The parsed URLs (validated settings always parse).
    pub fn parsed_urls(&self) -> Result<Vec<LdapUrl>, Error> {
        self.urls
            .iter()
            .map(|u| LdapUrl::parse(u).map_err(|m| Error::config(Field::Urls.yaml_name(), m)))
            .collect()
    }

    /// The domain name implied by the base DN or the bind identity, if any.
    fn derived_name(&self) -> Option<String> {
        if let Some(dns) = self.base_dn.as_deref().and_then(dns_name_from_dn) {
            return Some(dns);
        }
        let bind = self.bind_dn.trim();
        if let Some(dns) = dns_name_from_dn(bind) {
            return Some(dns);
        }
        if !bind.contains('=') {
            if let Some((_, domain)) = bind.rsplit_once('@') {
                if !domain.is_empty() {
                    return Some(domain.to_ascii_lowercase());
                }
            }
            if let Some((domain, _)) = bind.split_once('\\') {
                if !domain.is_empty() {
                    return Some(domain.to_string());
                }
            }
        }
        None
    }
}

const NAME_UNDERIVABLE: &str =
    "is not set and cannot be derived from the base DN or the bind DN (no DC= components, no user@domain)";

/// The DNS form of a DN's `DC=` components: `CN=x,DC=sandbox,DC=local` → `sandbox.local`.
/// `None` when the DN has no `DC=` component.
pub fn dns_name_from_dn(dn: &str) -> Option<String> {
    let labels: Vec<String> = split_dn(dn)
        .into_iter()
        .filter_map(|rdn| {
            let (attr, value) = rdn.split_once('=')?;
            attr.trim()
                .eq_ignore_ascii_case("dc")
                .then(|| value.trim().to_ascii_lowercase())
        })
        .filter(|v| !v.is_empty())
        .collect();
    (!labels.is_empty()).then(|| labels.join("."))
}

/// Splits a DN at its unescaped commas.
fn split_dn(dn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

/// The scheme of a DC URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapScheme {
    /// `ldap://`: TCP, upgraded with StartTLS (clear text is refused by validation).
    Ldap,
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
}

/// A parsed DC URL: `ldaps://host[:port][/]` or `ldap://host[:port][/]`. IPv6 hosts go in brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapUrl {
    pub scheme: LdapScheme,
    /// Host name or IP address, without brackets.
    pub host: String,
    pub port: u16,
}

impl LdapUrl {
    /// Parses `url`; the message of the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<LdapUrl, String> {
        let bad = |why: &str| format!("'{url}' is not a usable LDAP URL: {why}");
        let (scheme, rest) = url
            .trim()
            .split_once("://")
            .ok_or_else(|| bad("expected ldaps://host:636 or ldap://host:389"))?;
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "ldaps" => (LdapScheme::Ldaps, 636),
            "ldap" => (LdapScheme::Ldap, 389),
            other => {
                return Err(bad(&format!(
                    "unsupported scheme '{other}' (use ldaps or ldap)"
                )))
            }
        };
        let authority = match rest.split_once('/') {
            Some((auth, "")) => auth,
            Some(_) => {
                return Err(bad(
                    "a path (base DN, attributes, ...) is not supported in the URL; use BaseDn",
                ))
            }
            None => rest,
        };
        if authority.contains('@') || authority.contains('?') || authority.contains('#') {
            return Err(bad("user info, queries and fragments are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("garbage after ']'"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the host contains whitespace"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad(&format!("bad port '{p}'"))),
            },
        };
        Ok(LdapUrl {
            scheme,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for LdapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            LdapScheme::Ldap => "ldap",
            LdapScheme::Ldaps => "ldaps",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Field names in error messages: YAML keys or environment variables.

#[derive(Clone, Copy, Debug)]
enum Field {
    Name,
    Aliases,
    Urls,
    BindDn,
    Password,
    CaCert,
    StartTls,
    BaseDn,
    PoolSize,
    ConnectTimeout,
    OperationTimeout,
}

impl Field {
    fn yaml_name(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::Aliases => "Aliases",
            Field::Urls => "Urls",
            Field::BindDn => "BindDn",
            Field::Password => "Password",
            Field::CaCert => "CaCert",
            Field::StartTls => "StartTls",
            Field::BaseDn => "BaseDn",
            Field::PoolSize => "PoolSize",
            Field::ConnectTimeout => "ConnectTimeout",
            Field::OperationTimeout => "OperationTimeout",
        }
    }

    fn env_name(self) -> &'static str {
        match self {
            Field::Name => EnvVar::Domain.name(),
            Field::Aliases => EnvVar::Aliases.name(),
            Field::Urls => EnvVar::Url.name(),
            Field::BindDn => EnvVar::BindDn.name(),
            Field::Password => EnvVar::Password.name(),
            Field::CaCert => EnvVar::CaCert.name(),
            Field::StartTls => EnvVar::StartTls.name(),
            Field::BaseDn => EnvVar::BaseDn.name(),
            Field::PoolSize => EnvVar::PoolSize.name(),
            Field::ConnectTimeout => EnvVar::ConnectTimeout.name(),
            Field::OperationTimeout => EnvVar::OperationTimeout.name(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum EnvVar {
    Url,
    BindDn,
    Password,
    PasswordFile,
    CaCert,
    TlsInsecure,
    StartTls,
    BaseDn,
    Domain,
    Aliases,
    PoolSize,
    ConnectTimeout,
    OperationTimeout,
}

impl EnvVar {
    const ALL: [EnvVar; 13] = [
        EnvVar::Url,
        EnvVar::BindDn,
        EnvVar::Password,
        EnvVar::PasswordFile,
        EnvVar::CaCert,
        EnvVar::TlsInsecure,
        EnvVar::StartTls,
        EnvVar::BaseDn,
        EnvVar::Domain,
        EnvVar::Aliases,
        EnvVar::PoolSize,
        EnvVar::ConnectTimeout,
        EnvVar::OperationTimeout,
    ];

    fn name(self) -> &'static str {
        match self {
            EnvVar::Url => "SYNAPSE_AD_URL",
            EnvVar::BindDn => "SYNAPSE_AD_BIND_DN",
            EnvVar::Password => "SYNAPSE_AD_PASSWORD",
            EnvVar::PasswordFile => "SYNAPSE_AD_PASSWORD_FILE",
            EnvVar::CaCert => "SYNAPSE_AD_CA_CERT",
            EnvVar::TlsInsecure => "SYNAPSE_AD_TLS_INSECURE",
            EnvVar::StartTls => "SYNAPSE_AD_STARTTLS",
            EnvVar::BaseDn => "SYNAPSE_AD_BASE_DN",
            EnvVar::Domain => "SYNAPSE_AD_DOMAIN",
            EnvVar::Aliases => "SYNAPSE_AD_ALIASES",
            EnvVar::PoolSize => "SYNAPSE_AD_POOL_SIZE",
            EnvVar::ConnectTimeout => "SYNAPSE_AD_CONNECT_TIMEOUT",
            EnvVar::OperationTimeout => "SYNAPSE_AD_OPERATION_TIMEOUT",
        }
    }
}

// ------------------------------------------------------------------------------------------------
// YAML form.

/// The YAML shape; converted (and validated) into [`DomainSettings`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawDomainSettings {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    urls: OneOrMany,
    bind_dn: String,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    ca_cert: Option<PathBuf>,
    #[serde(default)]
    tls_insecure: bool,
    #[serde(default, rename = "StartTls")]
    starttls: bool,
    #[serde(default)]
    base_dn: Option<String>,
    #[serde(default)]
    pool_size: Option<usize>,
    #[serde(default)]
    connect_timeout: Option<DurationValue>,
    #[serde(default)]
    operation_timeout: Option<DurationValue>,
}

/// `Urls: ldaps://dc1` or `Urls: [ldaps://dc1, ldaps://dc2]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A duration in YAML: a number of seconds (`5`, `0.5`) or a string (`"500ms"`, `"5s"`, `"2m"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(f64),
    Text(String),
}

impl DurationValue {
    fn resolve(self, field: &str) -> Result<Duration, Error> {
        match self {
            DurationValue::Seconds(s) => seconds(s).map_err(|m| Error::config(field, m)),
            DurationValue::Text(t) => parse_duration(&t).map_err(|m| Error::config(field, m)),
        }
    }
}

impl TryFrom<RawDomainSettings> for DomainSettings {
    type Error = Error;

    fn try_from(raw: RawDomainSettings) -> Result<Self, Error> {
        let urls = match raw.urls {
            OneOrMany::One(u) => split_list(&u),
            OneOrMany::Many(v) => v.into_iter().map(|u| u.trim().to_string()).collect(),
        };
        let password =
            resolve_password(raw.password, raw.password_file, "Password", "PasswordFile")?;
        let mut s = DomainSettings::new(String::new(), urls, raw.bind_dn, password);
        s.aliases = raw.aliases;
        s.ca_cert = raw.ca_cert;
        s.tls_insecure = raw.tls_insecure;
        s.starttls = raw.starttls;
        s.base_dn = raw.base_dn.filter(|b| !b.trim().is_empty());
        if let Some(n) = raw.pool_size {
            s.pool_size = n;
        }
        if let Some(d) = raw.connect_timeout {
            s.connect_timeout = d.resolve("ConnectTimeout")?;
        }
        if let Some(d) = raw.operation_timeout {
            s.op_timeout = d.resolve("OperationTimeout")?;
        }
        s.name = match raw.name.filter(|n| !n.trim().is_empty()) {
            Some(n) => n,
            None => s
                .derived_name()
                .ok_or_else(|| Error::config("Name", NAME_UNDERIVABLE))?,
        };
        s.validate()?;
        Ok(s)
    }
}

// ------------------------------------------------------------------------------------------------
// Small parsers.

fn resolve_password(
    value: Option<Secret>,
    file: Option<PathBuf>,
    value_field: &str,
    file_field: &str,
) -> Result<Secret, Error> {
    match (value, file) {
        (Some(_), Some(_)) => Err(Error::config(
            value_field,
            format!("set either {value_field} or {file_field}, not both"),
        )),
        (Some(v), None) => Ok(v),
        (None, Some(path)) => read_password_file(&path, file_field),
        (None, None) => Err(Error::config(
            value_field,
            format!("is not set (set {value_field} or {file_field})"),
        )),
    }
}

/// Reads a password file; drops the trailing line ending (`\n` or `\r\n`) that editors and
/// `echo` add, and nothing else.
fn read_password_file(path: &Path, field: &str) -> Result<Secret, Error> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(Error::config(field, format!("{} is empty", path.display())));
    }
    Ok(Secret(text))
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

fn seconds(s: f64) -> Result<Duration, String> {
    if !s.is_finite() || s <= 0.0 || s > 86_400.0 * 365.0 {
        return Err(format!("{s} is not a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// `5` (seconds), `0.5`, `500ms`, `5s`, `2m`, `1h`.
fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{v}' is not a duration (examples: 5, 500ms, 5s, 2m)"))?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{v}' (use ms, s, m or h)"
            ))
        }
    };
    seconds(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Config { field, .. } => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn secret_is_masked() {
        let s = Secret::new("Passw0rd!");
        assert_eq!(format!("{s}"), "********");
        assert_eq!(format!("{s:?}"), "********");
        assert_eq!(s.expose(), "Passw0rd!");
        let settings = DomainSettings::new("x.local", vec![], "cn=a", s);
        assert!(!format!("{settings:?}").contains("Passw0rd"));
    }

    #[test]
    fn env_minimal_derives_name_from_bind_dn() {
        let s = DomainSettings::from_lookup(lookup(&[
            ("SYNAPSE_AD_URL", "ldaps://127.0.0.5:636"),
            (
                "SYNAPSE_AD_BIND_DN",
                "cn=Administrator,cn=Users,dc=sandbox,dc=local",
            ),
            ("SYNAPSE_AD_PASSWORD", "Passw0rd!Passw0rd"),
        ]))
        .unwrap();
        assert_eq!(s.name, "sandbox.local");
        assert_eq!(s.urls, vec!["ldaps://127.0.0.5:636"]);
        assert_eq!(s.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(s.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(s.op_timeout, DEFAULT_OP_TIMEOUT);
        assert!(s.base_dn.is_none());
        assert!(!s.tls_insecure);
    }

    #[test]
    fn env_full() {
        let dir = std::env::temp_dir().join(format!("synapse-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret pass\n").unwrap();
        let s = DomainSettings::from_lookup(lookup(&[
            (
                "SYNAPSE_AD_URL",
                "ldaps://dc1.sandbox.local, ldap://dc2.sandbox.local:389",
            ),
            ("SYNAPSE_AD_BIND_DN", "Administrator@Sandbox.Local"),
            ("SYNAPSE_AD_PASSWORD_FILE", pw.to_str().unwrap()),
            ("SYNAPSE_AD_CA_CERT", "/etc/ca.pem"),
            ("SYNAPSE_AD_TLS_INSECURE", "false"),
            ("SYNAPSE_AD_STARTTLS", "true"),
            ("SYNAPSE_AD_BASE_DN", "DC=sandbox,DC=local"),
            ("SYNAPSE_AD_ALIASES", "SANDBOX, sbx"),
            ("SYNAPSE_AD_POOL_SIZE", "3"),
            ("SYNAPSE_AD_CONNECT_TIMEOUT", "500ms"),
            ("SYNAPSE_AD_OPERATION_TIMEOUT", "2m"),
        ]))
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s.password.expose(), "s3cret pass");
        assert_eq!(s.urls.len(), 2);
        assert_eq!(s.aliases, vec!["SANDBOX", "sbx"]);
        assert_eq!(s.name, "sandbox.local");
        assert_eq!(s.pool_size, 3);
        assert_eq!(s.connect_timeout, Duration::from_millis(500));
        assert_eq!(s.op_timeout, Duration::from_secs(120));
        assert!(s.starttls);
        assert!(s.matches_domain("SANDBOX"));
        assert!(s.matches_domain("Sandbox.Local."));
        assert!(s.matches_domain("sbx"));
        assert!(!s.matches_domain("other.local"));
        assert!(!s.matches_domain(""));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let base = [
            ("SYNAPSE_AD_URL", "ldaps://127.0.0.5"),
            ("SYNAPSE_AD_BIND_DN", "cn=a,dc=x,dc=y"),
            ("SYNAPSE_AD_PASSWORD", "pw"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v: Vec<(&str, &str)> = base
                .iter()
                .filter(|(k, _)| !extra.iter().any(|(ek, _)| ek == k))
                .copied()
                .collect();
            v.extend(extra.iter().filter(|(_, val)| !val.is_empty()));
            DomainSettings::from_lookup(lookup(&v))
        };
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_URL", "")]).unwrap_err()),
            "SYNAPSE_AD_URL"
        );
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_URL", "ldap://127.0.0.5")]).unwrap_err()),
            "SYNAPSE_AD_URL"
        );
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_PASSWORD", "")]).unwrap_err()),
            "SYNAPSE_AD_PASSWORD"
        );
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_PASSWORD_FILE", "/nonexistent/pw")]).unwrap_err()),
            "SYNAPSE_AD_PASSWORD",
            "both forms set"
        );
        assert_eq!(
            field_of(
                with(&[
                    ("SYNAPSE_AD_PASSWORD", ""),
                    ("SYNAPSE_AD_PASSWORD_FILE", "/nonexistent/pw")
                ])
                .unwrap_err()
            ),
            "SYNAPSE_AD_PASSWORD_FILE"
        );
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_TLS_INSECURE", "maybe")]).unwrap_err()),
            "SYNAPSE_AD_TLS_INSECURE"
        );
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_POOL_SIZE", "0")]).unwrap_err()),
            "SYNAPSE_AD_POOL_SIZE"
        );
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_BASE_DN", "not a dn")]).unwrap_err()),
            "SYNAPSE_AD_BASE_DN"
        );
        assert_eq!(
            field_of(with(&[("SYNAPSE_AD_BIND_DN", "Administrator")]).unwrap_err()),
            "SYNAPSE_AD_DOMAIN"
        );
        // StartTLS makes ldap:// acceptable.
        let s = with(&[
            ("SYNAPSE_AD_URL", "ldap://127.0.0.5"),
            ("SYNAPSE_AD_STARTTLS", "true"),
        ])
        .unwrap();
        assert_eq!(s.parsed_urls().unwrap()[0].port, 389);
    }

    #[test]
    fn cleartext_error_is_explicit() {
        let mut s = DomainSettings::new(
            "sandbox.local",
            vec!["ldap://127.0.0.5:389".into()],
            "cn=a,dc=sandbox,dc=local",
            Secret::new("pw"),
        );
        let msg = s.validate().unwrap_err().to_string();
        assert!(msg.contains("Urls"), "{msg}");
        assert!(msg.contains("StartTls"), "{msg}");
        assert!(msg.contains("ldaps://"), "{msg}");
        s.starttls = true;
        s.validate().unwrap();
    }

    #[test]
    fn url_parsing() {
        let u = LdapUrl::parse("LDAPS://127.0.0.5").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (LdapScheme::Ldaps, "127.0.0.5", 636)
        );
        let u = LdapUrl::parse("ldap://dc1.sandbox.local:3268/").unwrap();
        assert_eq!((u.scheme, u.port), (LdapScheme::Ldap, 3268));
        let u = LdapUrl::parse("ldaps://[::1]:1636").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1636));
        assert_eq!(u.to_string(), "ldaps://[::1]:1636");
        for bad in [
            "127.0.0.5",
            "http://x",
            "ldaps://",
            "ldaps://h:0",
            "ldaps://h:99999",
            "ldaps://h/dc=x",
            "ldaps://u@h",
        ] {
            assert!(LdapUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn yaml_like_deserialize() {
        let json = serde_json::json!({
            "Name": "sandbox.local",
            "Aliases": ["SANDBOX"],
            "Urls": ["ldaps://127.0.0.5:636"],
            "BindDn": "SANDBOX\\Administrator",
            "Password": "pw",
            "TlsInsecure": true,
            "PoolSize": 2,
            "ConnectTimeout": 1.5,
            "OperationTimeout": "10s"
        });
        let s: DomainSettings = serde_json::from_value(json).unwrap();
        assert_eq!(s.pool_size, 2);
        assert_eq!(s.connect_timeout, Duration::from_millis(1500));
        assert_eq!(s.op_timeout, Duration::from_secs(10));
        assert!(s.tls_insecure);
        assert!(s.matches_domain("sandbox"));

        // Unknown field.
        let err = serde_json::from_value::<DomainSettings>(serde_json::json!({
            "Urls": "ldaps://h", "BindDn": "a@b.c", "Password": "pw", "Pasword": "typo"
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("Pasword"), "{err}");

        // Both password forms.
        let err = serde_json::from_value::<DomainSettings>(serde_json::json!({
            "Urls": "ldaps://h", "BindDn": "a@b.c", "Password": "pw", "PasswordFile": "/x"
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("not both"), "{err}");

        // Name derived from the UPN; a single URL string is accepted.
        let s: DomainSettings = serde_json::from_value(serde_json::json!({
            "Urls": "ldaps://h", "BindDn": "admin@Corp.Example", "Password": "pw"
        }))
        .unwrap();
        assert_eq!(s.name, "corp.example");
        assert_eq!(s.urls, vec!["ldaps://h"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("750ms").unwrap(), Duration::from_millis(750));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn dns_from_dn() {
        assert_eq!(
            dns_name_from_dn("CN=Users,DC=Sandbox,DC=local").as_deref(),
            Some("sandbox.local")
        );
        assert_eq!(dns_name_from_dn("cn=a\\,dc=x,ou=y"), None);
        assert_eq!(dns_name_from_dn("a@b.c"), None);
    }
}
