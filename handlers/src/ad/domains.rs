//! The configured AD domains and their LDAP pools, opened on first use. One [`Domains`] is shared by every
//! handler that talks to the domains (the ActiveDirectoryHandler and the DnsHandler, which `crate::registry`
//! builds together), so a domain has one pool: one set of connections, one readiness check, one set of
//! pool gauges.

use crate::ad::envelope::AdStatus;
use std::sync::Arc;
use tokio::sync::Mutex;

use crate::ad::domain::DomainPool;
use crate::ad::settings::DomainSettings;

/// One configured domain and its pool (opened on first use, then kept).
pub struct Domain {
    settings: DomainSettings,
    pool: Mutex<Option<DomainPool>>,
}

impl Domain {
    /// The domain's settings as configured.
    pub fn settings(&self) -> &DomainSettings {
        &self.settings
    }

    /// The domain's pool, opened (connect and bind) on first use.
    pub async fn pool(&self) -> Result<DomainPool, String> {
        let mut slot = self.pool.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let pool = DomainPool::connect(self.settings.clone())
            .await
            .map_err(|e| format!("Cannot Connect To Domain [{}]: {e}", self.settings.name()))?;
        *slot = Some(pool.clone());
        Ok(pool)
    }

    /// The pool if it is open and not being opened right now (gauges: never waits).
    pub fn opened(&self) -> Option<DomainPool> {
        self.pool.try_lock().ok()?.clone()
    }
}

/// The configured domains, the first being the default. Cheap to clone (clones share the pools).
#[derive(Clone, Default)]
pub struct Domains(Arc<Vec<Arc<Domain>>>);

impl Domains {
    /// These domains, no pool opened yet.
    pub fn new(settings: Vec<DomainSettings>) -> Domains {
        Domains(Arc::new(
            settings
                .into_iter()
                .map(|settings| {
                    Arc::new(Domain {
                        settings,
                        pool: Mutex::new(None),
                    })
                })
                .collect(),
        ))
    }

    /// One domain over a pool that is open already (tests, benches).
    pub fn opened(pool: DomainPool) -> Domains {
        Domains(Arc::new(vec![Arc::new(Domain {
            settings: pool.settings().clone(),
            pool: Mutex::new(Some(pool)),
        })]))
    }

    /// Every domain, the default first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Domain>> {
        self.0.iter()
    }

    /// The domain a request names (by name or alias), or the default one; with its position. A name no
    /// configured domain answers to is the caller's error (InvalidInput, naming the configured ones); no
    /// domain at all is a ConnectionError (nothing to connect to).
    pub fn pick(&self, name: Option<&str>) -> Result<(usize, &Arc<Domain>), (AdStatus, String)> {
        match name {
            Some(name) if !name.trim().is_empty() => self
                .0
                .iter()
                .enumerate()
                .find(|(_, d)| d.settings.matches_domain(name))
                .ok_or_else(|| {
                    let known: Vec<&str> = self.0.iter().map(|d| d.settings.name()).collect();
                    (
                        AdStatus::InvalidInput,
                        format!(
                            "Domain [{name}] Is Not Configured (domain: configured are {}).",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                }),
            _ => self.0.first().map(|d| (0, d)).ok_or_else(|| {
                (
                    AdStatus::ConnectionError,
                    "No Active Directory Domain Is Configured (set SYNAPSE_AD_URL, SYNAPSE_AD_BIND_DN and \
                     SYNAPSE_AD_PASSWORD, or Handlers.ActiveDirectory.Domains)."
                        .to_string(),
                )
            }),
        }
    }

    /// How many domains are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no domain is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
