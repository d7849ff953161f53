//! The LDAP layer shared by every handler that speaks LDAP (the ActiveDirectoryHandler, and the
//! AD-integrated backend of the DnsHandler: AD-integrated DNS zones are LDAP objects).
//!
//! - `settings`: how to reach and bind to a directory ([`LdapSettings`]: URLs, bind DN and password,
//!   TLS/CA/StartTLS/insecure, base DN, pool size, timeouts), from a YAML section or environment variables;
//!   `url`: server URLs.
//! - `pool`: [`LdapPool`], bound TLS connections (TCP_NODELAY, lazy, bounded, URL failover);
//!   `ops`: its operations (paged search, lookup, rootDSE, add, modify, delete, modify DN);
//!   `tls`: the rustls configuration.
//! - `error`: what a failure means (connection class, result codes) and the retry rules.
//! - `escape`: RFC 4515/4514 escaping of filters and DNs, and the `Escaper`s handlers declare.
//!
//! Nothing here knows about a particular directory's schema or naming: handlers bring those.

pub mod error;
pub mod escape;
pub mod ops;
pub mod pool;
pub mod settings;
mod tls;
pub mod url;

/// ldap3 itself, for code that works on a checked-out connection ([`LdapPool::get`]) and needs its
/// controls, adapters or result types.
pub use ldap3;
pub use ldap3::{Ldap, Mod, Scope, SearchEntry};

pub use crate::config::values::Secret;
pub use ops::PAGE_SIZE;
pub use pool::{LdapPool, PoolStats, PooledLdap, MAX_IDLE};
pub use settings::{LdapFields, LdapKey, LdapSettings};
pub use url::{LdapScheme, LdapUrl};
