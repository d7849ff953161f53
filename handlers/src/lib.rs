//! synapse-handlers: the built-in handlers. `core` holds the test workhorses (Empty, Echo), `ad` the
//! ActiveDirectoryHandler; `ldap` is the LDAP layer LDAP handlers share, `config` the `Handlers` section of
//! `synapse.yaml`, `format` the text output formats. Knows nothing of HTTP.
//!
//! Every built-in handler is listed once, in [`BUILTINS`]: its descriptor and how it is built from its section
//! of [`HandlersConfig`]. [`registry`] and [`descriptors`] are the only ways the binary and the controller
//! get handlers.

pub mod ad;
pub mod config;
pub mod core;
pub mod dns;
pub mod error;
pub mod format;
pub mod ldap;

pub use config::{HandlersConfig, LegacyDomains};
pub use error::Error;

use std::sync::Arc;
use synapse_engine::{Handler, HandlerDescriptor, HandlerRegistry};

/// One built-in handler: its descriptor (available without building the handler, for controllers whose
/// handlers run on remote nodes) and how it is built from its section of the configuration.
struct Builtin {
    descriptor: fn() -> Arc<dyn HandlerDescriptor>,
    build: fn(&HandlersConfig, &Shared) -> Arc<dyn Handler>,
}

/// What handlers built together share: the AD domains and their pools (the ActiveDirectoryHandler and the
/// DnsHandler talk to the same DCs over one pool per domain).
struct Shared {
    domains: ad::domains::Domains,
}

/// Every built-in handler. A new handler plugs in here (and gets a section in [`HandlersConfig`] when it
/// has settings).
const BUILTINS: [Builtin; 4] = [
    Builtin {
        descriptor: || core::EmptyHandler.descriptor(),
        build: |_, _| Arc::new(core::EmptyHandler),
    },
    Builtin {
        descriptor: || core::EchoHandler.descriptor(),
        build: |_, _| Arc::new(core::EchoHandler),
    },
    Builtin {
        descriptor: || Arc::new(ad::descriptor::AdDescriptor::default()),
        build: |_, shared| {
            Arc::new(ad::ActiveDirectoryHandler::with_domains(
                shared.domains.clone(),
            ))
        },
    },
    // AD-integrated DNS of the ActiveDirectory section's domains, and the zones of the Dns section's
    // RFC 2136 servers.
    Builtin {
        descriptor: || Arc::new(dns::descriptor::DnsDescriptor),
        build: |cfg, shared| {
            Arc::new(
                dns::DnsHandler::with_domains(shared.domains.clone())
                    .with_servers(cfg.dns.as_ref()),
            )
        },
    },
];

/// A registry with every built-in handler, registered once, each built from its section of `cfg` (an absent
/// section: the handler's defaults, e.g. the ActiveDirectoryHandler without a domain). Errors: a section
/// that does not pass its checks ([`HandlersConfig::validate`]).
pub fn registry(cfg: &HandlersConfig) -> Result<HandlerRegistry, Error> {
    cfg.validate()?;
    Ok(build(cfg))
}

/// [`registry`] with the default configuration (no section): every built-in handler, the
/// ActiveDirectoryHandler without a domain. For validating plans and for tests.
pub fn builtin_registry() -> HandlerRegistry {
    build(&HandlersConfig::default())
}

/// The descriptor of every built-in handler, without building any handler.
pub fn descriptors() -> Vec<Arc<dyn HandlerDescriptor>> {
    BUILTINS.iter().map(|b| (b.descriptor)()).collect()
}

fn build(cfg: &HandlersConfig) -> HandlerRegistry {
    let shared = Shared {
        domains: ad::domains::Domains::new(
            cfg.active_directory
                .as_ref()
                .map(|a| a.domains.clone())
                .unwrap_or_default(),
        ),
    };
    let mut r = HandlerRegistry::new();
    for b in &BUILTINS {
        r.register((b.build)(cfg, &shared));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_registered_once_with_its_descriptor() {
        let r = registry(&HandlersConfig::default()).unwrap();
        let names: Vec<&str> = descriptors().iter().map(|d| d.name()).collect();
        assert_eq!(
            names,
            vec![
                "EmptyHandler",
                "EchoHandler",
                "ActiveDirectoryHandler",
                "DnsHandler"
            ]
        );
        assert_eq!(r.names(), names.as_slice());
        for d in descriptors() {
            let h = r.get(d.name()).unwrap();
            assert_eq!(h.descriptor().name(), d.name());
            for alias in d.aliases() {
                assert_eq!(r.get(alias).unwrap().descriptor().name(), d.name());
            }
        }
    }

    #[test]
    fn sections_are_checked() {
        let bad = ad::settings::DomainSettings::new(
            "x.local",
            vec!["ldap://127.0.0.5".into()],
            "cn=a",
            ldap::Secret::new("pw"),
        );
        let cfg = HandlersConfig {
            active_directory: Some(ad::settings::ActiveDirectoryConfig { domains: vec![bad] }),
            dns: None,
        };
        let err = registry(&cfg).err().unwrap().to_string();
        assert!(err.contains("StartTls"), "{err}");
    }
}
