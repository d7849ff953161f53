//! How to reach and bind to one directory: server URLs, bind identity and password, TLS (CA file, StartTLS,
//! insecure mode), base DN, pool size and timeouts.
//!
//! Handlers read these keys from their own configuration section ([`LdapFields`]: the YAML keys, PascalCase)
//! or from environment variables under a prefix of their own ([`LdapSettings::read_env`]:
//! `{PREFIX}URL`, `{PREFIX}BIND_DN`, ...). Both paths end in [`LdapSettings::validate_as`], and every error
//! is an [`Error::Config`] naming the offending key or variable.
//!
//! TLS is mandatory: an `ldap://` URL is accepted only together with `StartTls: true`. Active Directory
//! refuses a simple bind over a clear connection (rc=8 `strongerAuthRequired`), and a password must never
//! cross the wire in clear anyway.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::values::{
    parse_bool, parse_duration, resolve_secret, split_list, DurationValue, OneOrMany, Secret,
};
use crate::error::Error;
use crate::ldap::url::{LdapScheme, LdapUrl};

/// Default number of pooled connections per directory.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Default time allowed for TCP connect + TLS + bind.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for one LDAP operation (a paged search counts as one).
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on `PoolSize`: a typo such as 80000 should not open that many sockets to a server.
pub const MAX_POOL_SIZE: usize = 1024;

/// The connection settings of one directory. Build them with [`LdapSettings::new`] plus field updates,
/// from a handler's YAML section ([`LdapFields`]) or from the environment ([`LdapSettings::read_env`]);
/// [`LdapSettings::validate`] checks them (the pool does so on connect).
#[derive(Clone, Debug)]
pub struct LdapSettings {
    /// The directory's name in messages and logs (the AD handler puts the domain's DNS name here).
    pub name: String,
    /// Server URLs, tried in order: `ldaps://host[:636]` or `ldap://host[:389]` with `StartTls: true`.
    pub urls: Vec<String>,
    /// The bind identity: a DN, `user@domain` (UPN) or `DOMAIN\user`.
    pub bind_dn: String,
    /// The bind password (YAML `Password`, or `PasswordFile` whose content is read at load time).
    pub password: Secret,
    /// PEM file with the CA certificate(s) that sign the servers' certificates. Without it (and without
    /// `TlsInsecure`) the platform's trust store is used.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate. For throwaway test servers only: it makes TLS encrypt without
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

/// The settings' keys, for error messages: a YAML key ([`LdapKey::yaml`]) or an environment variable
/// (prefix + [`LdapKey::env_suffix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapKey {
    Name,
    Urls,
    BindDn,
    Password,
    PasswordFile,
    CaCert,
    TlsInsecure,
    StartTls,
    BaseDn,
    PoolSize,
    ConnectTimeout,
    OperationTimeout,
}

impl LdapKey {
    /// Every key [`LdapSettings::read_env`] reads (every key but `Name`, which the handler owns).
    pub const ENV: [LdapKey; 11] = [
        LdapKey::Urls,
        LdapKey::BindDn,
        LdapKey::Password,
        LdapKey::PasswordFile,
        LdapKey::CaCert,
        LdapKey::TlsInsecure,
        LdapKey::StartTls,
        LdapKey::BaseDn,
        LdapKey::PoolSize,
        LdapKey::ConnectTimeout,
        LdapKey::OperationTimeout,
    ];

    /// The YAML key: `Urls`, `BindDn`, ...
    pub fn yaml(self) -> &'static str {
        match self {
            LdapKey::Name => "Name",
            LdapKey::Urls => "Urls",
            LdapKey::BindDn => "BindDn",
            LdapKey::Password => "Password",
            LdapKey::PasswordFile => "PasswordFile",
            LdapKey::CaCert => "CaCert",
            LdapKey::TlsInsecure => "TlsInsecure",
            LdapKey::StartTls => "StartTls",
            LdapKey::BaseDn => "BaseDn",
            LdapKey::PoolSize => "PoolSize",
            LdapKey::ConnectTimeout => "ConnectTimeout",
            LdapKey::OperationTimeout => "OperationTimeout",
        }
    }

    /// The environment variable's name after the handler's prefix: `URL`, `BIND_DN`, ...
    pub fn env_suffix(self) -> &'static str {
        match self {
            LdapKey::Name => "NAME",
            LdapKey::Urls => "URL",
            LdapKey::BindDn => "BIND_DN",
            LdapKey::Password => "PASSWORD",
            LdapKey::PasswordFile => "PASSWORD_FILE",
            LdapKey::CaCert => "CA_CERT",
            LdapKey::TlsInsecure => "TLS_INSECURE",
            LdapKey::StartTls => "STARTTLS",
            LdapKey::BaseDn => "BASE_DN",
            LdapKey::PoolSize => "POOL_SIZE",
            LdapKey::ConnectTimeout => "CONNECT_TIMEOUT",
            LdapKey::OperationTimeout => "OPERATION_TIMEOUT",
        }
    }
}

impl LdapSettings {
    /// Settings with the defaults for everything not given: platform trust store, no StartTLS, base DN from
    /// the rootDSE, pool of 8, 5 s connect and 30 s operation timeouts.
    pub fn new(
        name: impl Into<String>,
        urls: Vec<String>,
        bind_dn: impl Into<String>,
        password: Secret,
    ) -> Self {
        LdapSettings {
            name: name.into(),
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

    /// Reads every key but the name from `{prefix}URL` (required; one URL or a comma-separated list),
    /// `{prefix}BIND_DN` (required), `{prefix}PASSWORD` / `{prefix}PASSWORD_FILE` (exactly one; the file's
    /// trailing newline is dropped), `{prefix}CA_CERT`, `{prefix}TLS_INSECURE` and `{prefix}STARTTLS`
    /// (`true`/`false`), `{prefix}BASE_DN`, `{prefix}POOL_SIZE`, `{prefix}CONNECT_TIMEOUT` and
    /// `{prefix}OPERATION_TIMEOUT` (seconds, or `500ms`, `5s`, `2m`). Empty values count as unset; errors
    /// name the variable.
    ///
    /// The result has an empty `name` and is not validated: the handler sets the name, then calls
    /// [`validate_as`](Self::validate_as) with its variable names.
    pub fn read_env(prefix: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |key: LdapKey| format!("{prefix}{}", key.env_suffix());
        let get = |key: LdapKey| -> Option<String> {
            lookup(&var(key))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let urls = match get(LdapKey::Urls) {
            Some(v) => split_list(&v),
            None => return Err(Error::config(var(LdapKey::Urls), "is not set")),
        };
        let bind_dn = get(LdapKey::BindDn)
            .ok_or_else(|| Error::config(var(LdapKey::BindDn), "is not set"))?;
        // The password is not trimmed: only the file form drops its trailing newline.
        let password_value = lookup(&var(LdapKey::Password)).filter(|v| !v.is_empty());
        let password = resolve_secret(
            password_value.map(Secret::from),
            get(LdapKey::PasswordFile).map(PathBuf::from),
            &var(LdapKey::Password),
            &var(LdapKey::PasswordFile),
        )?;
        let mut s = LdapSettings::new(String::new(), urls, bind_dn, password);
        s.ca_cert = get(LdapKey::CaCert).map(PathBuf::from);
        if let Some(v) = get(LdapKey::TlsInsecure) {
            s.tls_insecure =
                parse_bool(&v).map_err(|m| Error::config(var(LdapKey::TlsInsecure), m))?;
        }
        if let Some(v) = get(LdapKey::StartTls) {
            s.starttls = parse_bool(&v).map_err(|m| Error::config(var(LdapKey::StartTls), m))?;
        }
        s.base_dn = get(LdapKey::BaseDn);
        if let Some(v) = get(LdapKey::PoolSize) {
            s.pool_size = v.parse().map_err(|_| {
                Error::config(
                    var(LdapKey::PoolSize),
                    format!("'{v}' is not a whole number"),
                )
            })?;
        }
        if let Some(v) = get(LdapKey::ConnectTimeout) {
            s.connect_timeout =
                parse_duration(&v).map_err(|m| Error::config(var(LdapKey::ConnectTimeout), m))?;
        }
        if let Some(v) = get(LdapKey::OperationTimeout) {
            s.op_timeout =
                parse_duration(&v).map_err(|m| Error::config(var(LdapKey::OperationTimeout), m))?;
        }
        Ok(s)
    }

    /// Checks the settings; errors name the YAML key (`Urls`, `BindDn`, ...).
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_as(&|k| k.yaml().to_string())
    }

    /// Checks the settings; errors name the key as `key_name` spells it (a YAML key or a variable).
    pub fn validate_as(&self, key_name: &dyn Fn(LdapKey) -> String) -> Result<(), Error> {
        let fail = |key: LdapKey, message: String| Err(Error::config(key_name(key), message));
        if self.name.trim().is_empty() {
            return fail(LdapKey::Name, "is empty".into());
        }
        if self.urls.is_empty() {
            return fail(LdapKey::Urls, "no URL given".into());
        }
        for url in &self.urls {
            let parsed = match LdapUrl::parse(url) {
                Ok(u) => u,
                Err(m) => return fail(LdapKey::Urls, m),
            };
            if parsed.scheme == LdapScheme::Ldap && !self.starttls {
                return fail(
                    LdapKey::Urls,
                    format!(
                        "'{url}' is a clear-text ldap:// URL and {} is off: Active Directory refuses \
                         simple binds without TLS and Synapse never sends a password in clear. \
                         Use ldaps://host:636, or turn StartTLS on",
                        key_name(LdapKey::StartTls)
                    ),
                );
            }
        }
        if self.bind_dn.trim().is_empty() {
            return fail(LdapKey::BindDn, "is empty".into());
        }
        if self.password.is_empty() {
            // An empty password makes a simple bind an *unauthenticated* bind, which servers answer
            // with success: refuse it rather than run anonymously.
            return fail(
                LdapKey::Password,
                "is empty (an empty password would be an unauthenticated bind)".into(),
            );
        }
        if let Some(ca) = &self.ca_cert {
            if ca.as_os_str().is_empty() {
                return fail(LdapKey::CaCert, "is an empty path".into());
            }
        }
        if let Some(base) = &self.base_dn {
            if let Err(e) = crate::ldap::escape::validate_dn(base) {
                return fail(LdapKey::BaseDn, e.to_string());
            }
        }
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return fail(
                LdapKey::PoolSize,
                format!(
                    "must be between 1 and {MAX_POOL_SIZE}, not {}",
                    self.pool_size
                ),
            );
        }
        if self.connect_timeout.is_zero() {
            return fail(LdapKey::ConnectTimeout, "must be greater than zero".into());
        }
        if self.op_timeout.is_zero() {
            return fail(
                LdapKey::OperationTimeout,
                "must be greater than zero".into(),
            );
        }
        Ok(())
    }

    /// The parsed URLs (validated settings always parse).
    pub fn parsed_urls(&self) -> Result<Vec<LdapUrl>, Error> {
        self.urls
            .iter()
            .map(|u| LdapUrl::parse(u).map_err(|m| Error::config(LdapKey::Urls.yaml(), m)))
            .collect()
    }

    /// The settings as `synapse config print` shows them: YAML keys, the password masked.
    pub fn printable(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("Name".into(), self.name.clone().into());
        m.insert("Urls".into(), self.urls.clone().into());
        m.insert("BindDn".into(), self.bind_dn.clone().into());
        m.insert("Password".into(), synapse_engine::MASK.into());
        m.insert(
            "CaCert".into(),
            self.ca_cert
                .as_ref()
                .map(|p| p.display().to_string())
                .into(),
        );
        m.insert("TlsInsecure".into(), self.tls_insecure.into());
        m.insert("StartTls".into(), self.starttls.into());
        m.insert("BaseDn".into(), self.base_dn.clone().into());
        m.insert("PoolSize".into(), self.pool_size.into());
        m.insert(
            "ConnectTimeout".into(),
            synapse_engine::model::DurationSpec(self.connect_timeout)
                .to_string()
                .into(),
        );
        m.insert(
            "OperationTimeout".into(),
            synapse_engine::model::DurationSpec(self.op_timeout)
                .to_string()
                .into(),
        );
        m
    }
}

/// The LDAP keys of a handler's YAML section, as serde read them. A handler's section type declares these
/// fields next to its own (serde cannot combine `flatten` with `deny_unknown_fields`) and converts them with
/// [`LdapFields::into_settings`]:
///
/// ```yaml
/// Urls: [ldaps://dc1.example.com:636]     # or one string, comma-separated
/// BindDn: cn=svc,ou=Service,dc=example,dc=com
/// PasswordFile: /run/secrets/ldap         # or Password: ...
/// CaCert: /etc/ssl/ldap-ca.pem            # or TlsInsecure: true (test servers only)
/// StartTls: false
/// BaseDn: dc=example,dc=com               # default: from the rootDSE
/// PoolSize: 8
/// ConnectTimeout: 5s
/// OperationTimeout: 30s
/// ```
#[derive(Clone, Debug)]
pub struct LdapFields {
    pub urls: OneOrMany,
    pub bind_dn: String,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub tls_insecure: bool,
    pub starttls: bool,
    pub base_dn: Option<String>,
    pub pool_size: Option<usize>,
    pub connect_timeout: Option<DurationValue>,
    pub operation_timeout: Option<DurationValue>,
}

impl LdapFields {
    /// The settings (with an empty `name`, not validated: the handler sets the name, then validates).
    /// Errors: both or neither password forms, an unreadable or empty password file, a bad duration.
    pub fn into_settings(self) -> Result<LdapSettings, Error> {
        let password = resolve_secret(
            self.password,
            self.password_file,
            LdapKey::Password.yaml(),
            LdapKey::PasswordFile.yaml(),
        )?;
        let mut s = LdapSettings::new(String::new(), self.urls.into_list(), self.bind_dn, password);
        s.ca_cert = self.ca_cert;
        s.tls_insecure = self.tls_insecure;
        s.starttls = self.starttls;
        s.base_dn = self.base_dn.filter(|b| !b.trim().is_empty());
        if let Some(n) = self.pool_size {
            s.pool_size = n;
        }
        if let Some(d) = self.connect_timeout {
            s.connect_timeout = d.resolve(LdapKey::ConnectTimeout.yaml())?;
        }
        if let Some(d) = self.operation_timeout {
            s.op_timeout = d.resolve(LdapKey::OperationTimeout.yaml())?;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: Error) -> String {
        match e {
            Error::Config { field, .. } => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn cleartext_error_is_explicit() {
        let mut s = LdapSettings::new(
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
    fn env_with_any_prefix() {
        let vars = |k: &str| match k {
            "X_URL" => Some("ldaps://h1, ldaps://h2".to_string()),
            "X_BIND_DN" => Some("cn=a,dc=x".to_string()),
            "X_PASSWORD" => Some(" pw ".to_string()),
            "X_POOL_SIZE" => Some("lots".to_string()),
            _ => None,
        };
        assert_eq!(
            field_of(LdapSettings::read_env("X_", &vars).unwrap_err()),
            "X_POOL_SIZE"
        );
        let vars = |k: &str| if k == "X_POOL_SIZE" { None } else { vars(k) };
        let mut s = LdapSettings::read_env("X_", &vars).unwrap();
        assert_eq!(s.urls, vec!["ldaps://h1", "ldaps://h2"]);
        assert_eq!(s.password.expose(), " pw ", "passwords are not trimmed");
        let env_name = |k: LdapKey| format!("X_{}", k.env_suffix());
        assert_eq!(field_of(s.validate_as(&env_name).unwrap_err()), "X_NAME");
        s.name = "x".into();
        s.validate_as(&env_name).unwrap();
    }

    #[test]
    fn printable_masks_the_password() {
        let s = LdapSettings::new(
            "x",
            vec!["ldaps://h".into()],
            "cn=a",
            Secret::new("Passw0rd"),
        );
        let p = serde_json::Value::Object(s.printable()).to_string();
        assert!(!p.contains("Passw0rd"), "{p}");
        assert!(p.contains("\"Password\":\"********\""), "{p}");
    }
}
