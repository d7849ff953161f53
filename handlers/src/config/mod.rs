//! Handler configuration as data: the `Handlers` section of `synapse.yaml`, one optional section per
//! handler type (PascalCase keys, unknown keys rejected), and the building blocks every section uses
//! (`values`: secrets, durations, lists).
//!
//! ```yaml
//! Handlers:
//!   ActiveDirectory:
//!     Domains:
//!     - Name: sandbox.local
//!       Urls: [ldaps://dc1.sandbox.local:636]
//!       BindDn: cn=svc-synapse,ou=Service,dc=sandbox,dc=local
//!       PasswordFile: /run/secrets/synapse-ad
//! ```
//!
//! A section that is absent may come from the handler's environment variables ([`HandlersConfig::with_env`]:
//! `SYNAPSE_AD_*` for the ActiveDirectoryHandler); [`crate::registry`] builds every built-in handler from its
//! section. Handlers without settings (EmptyHandler, EchoHandler) have no section.

pub mod values;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ad::settings::{ActiveDirectoryConfig, DomainSettings};
use crate::dns::settings::DnsSection;
use crate::error::Error;

/// The deprecated top-level `Domains` key of synapse.yaml (now `Handlers: {ActiveDirectory: {Domains: [...]}}`),
/// as the controller reads it: opaque, so the controller needs no AD types ([`HandlersConfig::with_legacy_domains`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct LegacyDomains(Vec<DomainSettings>);

/// The `Handlers` section: one optional section per handler type.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HandlersConfig {
    /// The ActiveDirectoryHandler's domains. Absent: from `SYNAPSE_AD_*`, or no domain.
    #[serde(default)]
    pub active_directory: Option<ActiveDirectoryConfig>,
    /// The DnsHandler's RFC 2136 servers (its AD-integrated zones need no section). Absent: from
    /// `SYNAPSE_DNS_*`, or none.
    #[serde(default)]
    pub dns: Option<DnsSection>,
}

impl HandlersConfig {
    /// Every section from its handler's environment variables (`SYNAPSE_AD_*`), as `synapse plan run` uses
    /// them; a section whose variables are unset stays absent.
    pub fn from_env() -> Result<HandlersConfig, Error> {
        Ok(HandlersConfig {
            active_directory: ActiveDirectoryConfig::from_env()?,
            dns: DnsSection::from_lookup(&|k| std::env::var(k).ok())?,
        })
    }

    /// This configuration with every absent section taken from its handler's variables, read through
    /// `lookup` (a section that is present wins over the variables).
    pub fn with_env(
        mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HandlersConfig, Error> {
        if self.active_directory.is_none() {
            self.active_directory = ActiveDirectoryConfig::from_lookup(lookup)?;
        }
        if self.dns.is_none() {
            self.dns = DnsSection::from_lookup(lookup)?;
        }
        Ok(self)
    }

    /// The ActiveDirectory section from the deprecated top-level `Domains` key (it replaces the section).
    pub fn with_legacy_domains(mut self, domains: LegacyDomains) -> HandlersConfig {
        self.active_directory = Some(ActiveDirectoryConfig { domains: domains.0 });
        self
    }

    /// Names and aliases of the configured AD domains, in order (the AD API tells `/{object}/{domain}/{name}`
    /// from membership routes with them); empty without an ActiveDirectory section.
    pub fn ad_domain_names(&self) -> Vec<String> {
        self.active_directory
            .as_ref()
            .map(ActiveDirectoryConfig::domain_names)
            .unwrap_or_default()
    }

    /// Checks every section (deserialized sections are checked already; this is for sections built in code).
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(ad) = &self.active_directory {
            ad.validate()?;
        }
        if let Some(dns) = &self.dns {
            dns.validate()?;
        }
        Ok(())
    }

    /// Every section as `synapse config print` shows it: YAML keys, absent sections as their defaults,
    /// secrets masked.
    pub fn printable(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "ActiveDirectory".into(),
            self.active_directory
                .clone()
                .unwrap_or_default()
                .printable(),
        );
        m.insert(
            "Dns".into(),
            self.dns.clone().unwrap_or_default().printable(),
        );
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_shape() {
        let c: HandlersConfig = serde_yaml::from_str(
            "ActiveDirectory:\n  Domains:\n  - Urls: ldaps://127.0.0.5\n    BindDn: admin@Sandbox.Local\n    \
             Password: Passw0rd\n    Aliases: [SANDBOX]\n",
        )
        .unwrap();
        let ad = c.active_directory.as_ref().unwrap();
        assert_eq!(ad.domain_names(), vec!["sandbox.local", "SANDBOX"]);
        let printed = c.printable().to_string();
        assert!(!printed.contains("Passw0rd"), "{printed}");
        assert!(
            printed.contains("{\"Name\":\"sandbox.local\",\"Aliases\":[\"SANDBOX\"],\"Urls\":"),
            "{printed}"
        );

        let empty: HandlersConfig = serde_yaml::from_str("{}").unwrap();
        assert!(empty.active_directory.is_none());
        assert_eq!(
            empty.printable(),
            serde_json::json!({"ActiveDirectory": {"Domains": []}, "Dns": {"Servers": []}})
        );

        let err = serde_yaml::from_str::<HandlersConfig>("ActiveDirectry: {}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ActiveDirectry"), "{err}");
        let err = serde_yaml::from_str::<HandlersConfig>("ActiveDirectory: {Domain: []}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Domain"), "{err}");
    }

    #[test]
    fn env_fills_absent_sections_only() {
        let env = |k: &str| match k {
            "SYNAPSE_AD_URL" => Some("ldaps://127.0.0.9".to_string()),
            "SYNAPSE_AD_BIND_DN" => Some("cn=a,dc=env,dc=local".to_string()),
            "SYNAPSE_AD_PASSWORD" => Some("pw".to_string()),
            _ => None,
        };
        let c = HandlersConfig::default().with_env(&env).unwrap();
        assert_eq!(
            c.active_directory.unwrap().domain_names(),
            vec!["env.local"]
        );
        let file = HandlersConfig {
            active_directory: Some(ActiveDirectoryConfig::default()),
            dns: None,
        };
        let c = file.with_env(&env).unwrap();
        assert!(c.active_directory.unwrap().domains.is_empty());
        let none = |_: &str| None;
        let c = HandlersConfig::default().with_env(&none).unwrap();
        assert!(c.active_directory.is_none());
        let bad = |k: &str| (k == "SYNAPSE_AD_URL").then(|| "ldaps://h".to_string());
        let err = HandlersConfig::default().with_env(&bad).unwrap_err();
        assert!(err.to_string().contains("SYNAPSE_AD_BIND_DN"), "{err}");
    }
}
