//! The backend seam: every zone and record operation of the DnsHandler goes through [`Backends`], which sends
//! it to the backend that serves the zone. A zone listed by an RFC 2136 server (`Handlers.Dns.Servers`) goes
//! to that server ([`Rfc2136`]); every other zone is AD-integrated ([`AdDns`], the domain's LDAP pool, opened
//! only when an operation needs it). A [`Zone`] carries its backend (`server`), so record operations on it
//! need no second lookup. A zone name both a server and the directory have goes to the server (the AD one is
//! not listed).
//!
//! Zone create/delete exist only AD-integrated: on a zone of an RFC 2136 server they answer NotSupported
//! (zones of a standard server are made in its configuration, not over DNS).

use crate::ad::envelope::AdStatus;
use crate::dns::ad::{AdDns, Added, DnsError, NodeRecord, Zone};
use crate::dns::record::{DnsRecord, RecordData};
use crate::dns::rfc2136::Rfc2136;
use crate::dns::DnsHandler;

/// The backends one request may use.
pub struct Backends<'a> {
    handler: &'a DnsHandler,
    domain: Option<&'a str>,
    ad: tokio::sync::OnceCell<AdDns>,
}

/// The NotSupported answer for zone create/delete on an RFC 2136 server.
pub fn not_supported(zone: &str, server: &str, what: &str) -> DnsError {
    DnsError::Status(
        AdStatus::NotSupported,
        format!(
            "zone {zone} is served by the RFC 2136 server {server}: zones there are not {what} over \
             DNS (change the server's configuration; nothing changed)"
        ),
    )
}

impl<'a> Backends<'a> {
    pub fn new(handler: &'a DnsHandler, domain: Option<&'a str>) -> Self {
        Backends {
            handler,
            domain,
            ad: tokio::sync::OnceCell::new(),
        }
    }

    fn servers(&self) -> &[Rfc2136] {
        &self.handler.servers
    }

    /// The RFC 2136 server that lists `zone` (checked, lower case).
    pub fn server_of(&self, zone: &str) -> Option<&Rfc2136> {
        self.servers().iter().find(|s| s.serves(zone))
    }

    fn server(&self, zone: &Zone) -> Option<&Rfc2136> {
        let name = zone.server.as_deref()?;
        self.servers().iter().find(|s| s.name() == name)
    }

    /// Whether AD-integrated zones are asked for: an AD domain is configured, or nothing else is (then the
    /// AD side's error says what is missing, as before RFC 2136 servers existed).
    fn uses_ad(&self) -> bool {
        !self.handler.domains.is_empty() || self.servers().is_empty()
    }

    async fn ad(&self) -> Result<&AdDns, DnsError> {
        if !self.uses_ad() {
            return Err(DnsError::Status(
                AdStatus::DoesNotExist,
                "no AD domain is configured and no RFC 2136 server lists this zone".into(),
            ));
        }
        self.ad
            .get_or_try_init(|| self.handler.dns(self.domain))
            .await
            .map_err(|(status, m)| DnsError::Status(status, m))
    }

    fn rfc_zones(&self) -> Vec<Zone> {
        self.servers().iter().flat_map(Rfc2136::zones).collect()
    }

    /// The AD zones not shadowed by a server's zone of the same name (the server's wins).
    fn merge(&self, ad: Vec<Zone>) -> Vec<Zone> {
        let mut out = self.rfc_zones();
        out.extend(ad.into_iter().filter(|z| self.server_of(&z.name).is_none()));
        out
    }

    /// Every zone of both backends, by name.
    pub async fn list_zones(&self) -> Result<Vec<Zone>, DnsError> {
        let ad = if self.uses_ad() {
            self.ad().await?.list_zones().await?
        } else {
            Vec::new()
        };
        let mut out = self.merge(ad);
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// [`list_zones`](Self::list_zones) with the AD list briefly kept (record operations).
    pub async fn zones_cached(&self) -> Result<Vec<Zone>, DnsError> {
        let ad = if self.uses_ad() {
            self.ad().await?.zones_cached().await?
        } else {
            Vec::new()
        };
        Ok(self.merge(ad))
    }

    /// The zone named `name`: on its RFC 2136 server when it answers the zone's SOA, else AD-integrated.
    pub async fn find_zone(&self, name: &str) -> Result<Option<Zone>, DnsError> {
        if let Some(s) = self.server_of(name) {
            return Ok(s.soa_serial(name).await?.map(|_| s.zone(name)));
        }
        if !self.uses_ad() {
            return Ok(None);
        }
        self.ad().await?.find_zone(name).await
    }

    pub async fn create_zone(&self, name: &str) -> Result<Option<Zone>, DnsError> {
        if let Some(s) = self.server_of(name) {
            return Err(not_supported(name, s.name(), "created"));
        }
        self.ad().await?.create_zone(name).await
    }

    /// NotAllowed when the zone is one the API never deletes (see [`AdDns::protected_zone`]).
    pub async fn check_delete(&self, zone: &Zone) -> Result<(), DnsError> {
        if zone.server.is_some() {
            return Ok(());
        }
        match self.ad().await?.protected_zone(zone) {
            Some(why) => Err(DnsError::Status(AdStatus::NotAllowed, why)),
            None => Ok(()),
        }
    }

    pub async fn delete_zone(&self, zone: &Zone) -> Result<bool, DnsError> {
        self.check_delete(zone).await?;
        if let Some(s) = zone.server.as_deref() {
            return Err(not_supported(&zone.name, s, "deleted"));
        }
        self.ad().await?.delete_zone(zone).await
    }

    fn gone_server(zone: &Zone) -> DnsError {
        DnsError::Status(
            AdStatus::DoesNotExist,
            format!(
                "zone {}: server {} is no longer configured",
                zone.name,
                zone.server.as_deref().unwrap_or("")
            ),
        )
    }

    pub async fn records(
        &self,
        zone: &Zone,
        node: Option<&str>,
    ) -> Result<Vec<NodeRecord>, DnsError> {
        match &zone.server {
            Some(_) => match self.server(zone) {
                Some(s) => s.records(zone, node).await,
                None => Err(Self::gone_server(zone)),
            },
            None => self.ad().await?.records(zone, node).await,
        }
    }

    pub async fn add_record(
        &self,
        zone: &Zone,
        node: &str,
        data: &RecordData,
        ttl: u32,
        dry_run: bool,
    ) -> Result<Added, DnsError> {
        match &zone.server {
            Some(_) => match self.server(zone) {
                Some(s) => s.add_record(zone, node, data, ttl, dry_run).await,
                None => Err(Self::gone_server(zone)),
            },
            None => {
                self.ad()
                    .await?
                    .add_record(zone, node, data, ttl, dry_run)
                    .await
            }
        }
    }

    pub async fn delete_records(
        &self,
        zone: &Zone,
        node: &str,
        t: u16,
        value: Option<&RecordData>,
        dry_run: bool,
    ) -> Result<Vec<DnsRecord>, DnsError> {
        match &zone.server {
            Some(_) => match self.server(zone) {
                Some(s) => s.delete_records(zone, node, t, value, dry_run).await,
                None => Err(Self::gone_server(zone)),
            },
            None => {
                self.ad()
                    .await?
                    .delete_records(zone, node, t, value, dry_run)
                    .await
            }
        }
    }
}
