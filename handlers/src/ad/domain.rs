//! One domain's connection: the generic [`LdapPool`] together with the domain's names, so identity lookups
//! can tell whether `DOMAIN\name` means this domain.

use std::ops::Deref;
use std::sync::Arc;

use crate::ad::settings::DomainSettings;
use crate::error::Error;
use crate::ldap::LdapPool;

/// A pool of bound connections to one domain's DCs. Derefs to [`LdapPool`] for the LDAP operations;
/// [`DomainPool::settings`] are the domain's settings with the base DN filled in when the pool discovered
/// it. Cheap to clone.
#[derive(Clone)]
pub struct DomainPool {
    pool: LdapPool,
    settings: Arc<DomainSettings>,
}

impl DomainPool {
    /// Opens the domain's pool ([`LdapPool::connect`]: settings checked, one connection opened and bound,
    /// base DN from the rootDSE when not configured).
    pub async fn connect(settings: DomainSettings) -> Result<DomainPool, Error> {
        let pool = LdapPool::connect(settings.ldap.clone()).await?;
        Ok(DomainPool::new(settings, pool))
    }

    /// A domain over an open pool (the pool's settings, with their discovered base DN, replace
    /// `settings.ldap`).
    pub fn new(mut settings: DomainSettings, pool: LdapPool) -> DomainPool {
        settings.ldap = pool.settings().clone();
        DomainPool {
            pool,
            settings: Arc::new(settings),
        }
    }

    /// The domain's settings (names, aliases, and the LDAP settings the pool runs with).
    pub fn settings(&self) -> &DomainSettings {
        &self.settings
    }

    /// The LDAP pool.
    pub fn pool(&self) -> &LdapPool {
        &self.pool
    }
}

impl Deref for DomainPool {
    type Target = LdapPool;
    fn deref(&self) -> &LdapPool {
        &self.pool
    }
}
