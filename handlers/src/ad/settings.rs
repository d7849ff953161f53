//! Settings of one Active Directory domain: its names (DNS name, aliases such as the NetBIOS name) and how
//! to reach its DCs (the generic [`LdapSettings`]: URLs, bind, TLS, pool and timeouts).
//!
//! Sources: the `Handlers: {ActiveDirectory: {Domains: [...]}}` section of `synapse.yaml` (PascalCase keys,
//! unknown keys rejected; the top-level `Domains` key is its deprecated spelling) or the `SYNAPSE_AD_*`
//! environment variables ([`DomainSettings::from_env`]). Both paths end in the same validation, and every
//! error is an [`Error::Config`] naming the offending key or variable.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::values::{split_list, DurationValue, OneOrMany, Secret};
use crate::error::Error;
use crate::ldap::settings::{LdapFields, LdapKey, LdapSettings};

/// The prefix of the AD handler's environment variables (`SYNAPSE_AD_URL`, ...).
pub const ENV_PREFIX: &str = "SYNAPSE_AD_";
/// The variable that names the domain (the generic `{prefix}NAME`).
const ENV_DOMAIN: &str = "SYNAPSE_AD_DOMAIN";
/// Comma-separated aliases.
const ENV_ALIASES: &str = "SYNAPSE_AD_ALIASES";

/// The ActiveDirectoryHandler's section of `Handlers` in `synapse.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ActiveDirectoryConfig {
    /// The domains; the first is the default.
    #[serde(default)]
    pub domains: Vec<DomainSettings>,
}

impl ActiveDirectoryConfig {
    /// The section from `SYNAPSE_AD_*` variables: `None` without `SYNAPSE_AD_URL`, else one domain.
    pub fn from_env() -> Result<Option<Self>, Error> {
        if std::env::var(format!("{ENV_PREFIX}{}", LdapKey::Urls.env_suffix()))
            .map_or(true, |v| v.trim().is_empty())
        {
            return Ok(None);
        }
        Ok(Some(ActiveDirectoryConfig {
            domains: vec![DomainSettings::from_env()?],
        }))
    }

    /// [`from_env`](Self::from_env) over any lookup function.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let url = format!("{ENV_PREFIX}{}", LdapKey::Urls.env_suffix());
        if lookup(&url).is_none_or(|v| v.trim().is_empty()) {
            return Ok(None);
        }
        Ok(Some(ActiveDirectoryConfig {
            domains: vec![DomainSettings::from_lookup(lookup)?],
        }))
    }

    /// Checks every domain (deserialized sections are checked already; this is for sections built in code).
    pub fn validate(&self) -> Result<(), Error> {
        self.domains.iter().try_for_each(DomainSettings::validate)
    }

    /// The names and aliases of every domain, in order.
    pub fn domain_names(&self) -> Vec<String> {
        self.domains
            .iter()
            .flat_map(|d| std::iter::once(d.name().to_string()).chain(d.aliases.iter().cloned()))
            .collect()
    }

    /// The section as `synapse config print` shows it (passwords masked).
    pub fn printable(&self) -> Value {
        let domains = self
            .domains
            .iter()
            .map(|d| Value::Object(d.printable()))
            .collect();
        let mut m = Map::new();
        m.insert("Domains".into(), Value::Array(domains));
        Value::Object(m)
    }
}

/// The settings of one domain. Build it from YAML (serde), from the environment
/// ([`DomainSettings::from_env`]) or with [`DomainSettings::new`] plus field updates; in the last case
/// call [`DomainSettings::validate`] (the handler's builder does).
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawDomainSettings")]
pub struct DomainSettings {
    /// Other names plans and requests may use for this domain, e.g. the NetBIOS name `SANDBOX`.
    pub aliases: Vec<String>,
    /// How to reach the domain's DCs. `ldap.name` is the domain's DNS name, e.g. `sandbox.local`
    /// (derived from `BaseDn` or `BindDn` when not given).
    pub ldap: LdapSettings,
}

impl DomainSettings {
    /// Settings with the defaults for everything not given: no aliases, and the [`LdapSettings::new`]
    /// defaults.
    pub fn new(
        name: impl Into<String>,
        urls: Vec<String>,
        bind_dn: impl Into<String>,
        password: Secret,
    ) -> Self {
        DomainSettings {
            aliases: Vec::new(),
            ldap: LdapSettings::new(name, urls, bind_dn, password),
        }
    }

    /// The domain's DNS name, e.g. `sandbox.local`.
    pub fn name(&self) -> &str {
        &self.ldap.name
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
        let vars = LdapKey::ENV
            .iter()
            .map(|k| env_key(*k))
            .chain([ENV_DOMAIN.to_string(), ENV_ALIASES.to_string()]);
        for var in vars {
            if let Some(v) = std::env::var_os(&var) {
                if v.to_str().is_none() {
                    return Err(Error::config(var, "the value is not valid UTF-8"));
                }
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`DomainSettings::from_env`] over any lookup function (tests pass a map instead of mutating
    /// the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let ldap = LdapSettings::read_env(ENV_PREFIX, &lookup)?;
        let get = |name: &str| -> Option<String> {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut s = DomainSettings {
            aliases: get(ENV_ALIASES).map(|v| split_list(&v)).unwrap_or_default(),
            ldap,
        };
        s.ldap.name = match get(ENV_DOMAIN) {
            Some(name) => name,
            None => s
                .derived_name()
                .ok_or_else(|| Error::config(ENV_DOMAIN, NAME_UNDERIVABLE))?,
        };
        s.validate_named(&env_key, ENV_ALIASES)?;
        Ok(s)
    }

    /// Checks the settings; errors name the YAML key (`Urls`, `BindDn`, ...).
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_named(&|k| k.yaml().to_string(), "Aliases")
    }

    fn validate_named(
        &self,
        key_name: &dyn Fn(LdapKey) -> String,
        aliases_key: &str,
    ) -> Result<(), Error> {
        if self.ldap.name.trim().is_empty() {
            return Err(Error::config(key_name(LdapKey::Name), "is empty"));
        }
        if self.aliases.iter().any(|a| a.trim().is_empty()) {
            return Err(Error::config(aliases_key, "contains an empty name"));
        }
        self.ldap.validate_as(key_name)
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
        eq(&self.ldap.name)
            || self.aliases.iter().any(|a| eq(a))
            || self
                .ldap
                .base_dn
                .as_deref()
                .and_then(dns_name_from_dn)
                .is_some_and(|dns| eq(&dns))
    }

    /// The settings as `synapse config print` shows them (YAML keys, the password masked).
    pub fn printable(&self) -> Map<String, Value> {
        // The LDAP keys, with Aliases after Name.
        let mut m = Map::new();
        for (k, v) in self.ldap.printable() {
            let after_name = k == "Name";
            m.insert(k, v);
            if after_name {
                m.insert("Aliases".into(), self.aliases.clone().into());
            }
        }
        m
    }

    /// The domain name implied by the base DN or the bind identity, if any.
    fn derived_name(&self) -> Option<String> {
        if let Some(dns) = self.ldap.base_dn.as_deref().and_then(dns_name_from_dn) {
            return Some(dns);
        }
        let bind = self.ldap.bind_dn.trim();
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

/// The name of a setting as a `SYNAPSE_AD_*` variable.
fn env_key(k: LdapKey) -> String {
    match k {
        LdapKey::Name => ENV_DOMAIN.to_string(),
        k => format!("{ENV_PREFIX}{}", k.env_suffix()),
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

// ------------------------------------------------------------------------------------------------
// YAML form.

/// The YAML shape of a `Domains` entry: the domain's own keys (`Name`, `Aliases`) and the LDAP keys of
/// [`LdapFields`], flat; converted (and validated) into [`DomainSettings`].
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

impl TryFrom<RawDomainSettings> for DomainSettings {
    type Error = Error;

    fn try_from(raw: RawDomainSettings) -> Result<Self, Error> {
        let ldap = LdapFields {
            urls: raw.urls,
            bind_dn: raw.bind_dn,
            password: raw.password,
            password_file: raw.password_file,
            ca_cert: raw.ca_cert,
            tls_insecure: raw.tls_insecure,
            starttls: raw.starttls,
            base_dn: raw.base_dn,
            pool_size: raw.pool_size,
            connect_timeout: raw.connect_timeout,
            operation_timeout: raw.operation_timeout,
        }
        .into_settings()?;
        let mut s = DomainSettings {
            aliases: raw.aliases,
            ldap,
        };
        s.ldap.name = match raw.name.filter(|n| !n.trim().is_empty()) {
            Some(n) => n,
            None => s
                .derived_name()
                .ok_or_else(|| Error::config("Name", NAME_UNDERIVABLE))?,
        };
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ldap::settings::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_OP_TIMEOUT, DEFAULT_POOL_SIZE};
    use std::collections::HashMap;
    use std::time::Duration;

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
        assert_eq!(s.name(), "sandbox.local");
        assert_eq!(s.ldap.urls, vec!["ldaps://127.0.0.5:636"]);
        assert_eq!(s.ldap.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(s.ldap.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(s.ldap.op_timeout, DEFAULT_OP_TIMEOUT);
        assert!(s.ldap.base_dn.is_none());
        assert!(!s.ldap.tls_insecure);
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
        assert_eq!(s.ldap.password.expose(), "s3cret pass");
        assert_eq!(s.ldap.urls.len(), 2);
        assert_eq!(s.aliases, vec!["SANDBOX", "sbx"]);
        assert_eq!(s.name(), "sandbox.local");
        assert_eq!(s.ldap.pool_size, 3);
        assert_eq!(s.ldap.connect_timeout, Duration::from_millis(500));
        assert_eq!(s.ldap.op_timeout, Duration::from_secs(120));
        assert!(s.ldap.starttls);
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
        assert_eq!(s.ldap.parsed_urls().unwrap()[0].port, 389);
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
        assert_eq!(s.ldap.pool_size, 2);
        assert_eq!(s.ldap.connect_timeout, Duration::from_millis(1500));
        assert_eq!(s.ldap.op_timeout, Duration::from_secs(10));
        assert!(s.ldap.tls_insecure);
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
        assert_eq!(s.name(), "corp.example");
        assert_eq!(s.ldap.urls, vec!["ldaps://h"]);
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
