//! The AD-integrated backend: zones and records as `dnsZone`/`dnsNode` objects in the domain's application
//! partitions, over the shared LDAP pool (facts §8).
//!
//! - Zones live in `CN=MicrosoftDNS,DC=DomainDnsZones,<base>`, `CN=MicrosoftDNS,DC=ForestDnsZones,<base>` and
//!   the legacy `CN=MicrosoftDNS,CN=System,<base>`; new zones go to DomainDnsZones, made as
//!   `samba-tool dns zonecreate` makes them (the same 7 `dNSProperty` values, an `@` node with SOA and NS).
//! - Every change bumps the zone's SOA serial first, by an optimistic LDAP modify that deletes the old SOA
//!   value (the last one this process saw, else read) and adds the new one in one request: two writers that read the same serial cannot both succeed
//!   (the second gets noSuchAttribute and retries), so serials strictly increase. The new record carries the
//!   new serial, as the DC's own tools write it.
//! - Tombstoned nodes (`dNSTombstoned: TRUE`) and type-0 records are skipped on read; adding to a tombstoned
//!   node replaces its remains.
//! - Every DN and filter is built from checked names through `ldap_dn_value`/`ldap_filter_value`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ldap3::{Mod, Scope, SearchEntry};

use crate::dns::record::{rtype, DnsName, DnsRecord, RecordData};
use crate::error::Error;
use crate::ldap::escape::{ldap_dn_value, ldap_filter_value};
use crate::ldap::LdapPool;

/// The 7 `dNSProperty` values `samba-tool dns zonecreate` writes (measured on Samba 4.17; identical for
/// forward and reverse zones): type primary, secure updates only, no aging (refresh/no-refresh 168 h), ...
const ZONE_PROPERTIES: [&[u8]; 7] = [
    &[
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
    ],
    &[
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0,
    ],
    &[
        8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    &[
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x10, 0, 0, 0, 0xa8, 0, 0, 0, 0, 0, 0, 0,
    ],
    &[
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x20, 0, 0, 0, 0xa8, 0, 0, 0, 0, 0, 0, 0,
    ],
    &[
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    &[
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
];

/// dnsZone objects that are not zones a user manages.
const HIDDEN_ZONES: [&str; 2] = ["RootDNSServers", "..TrustAnchors"];

/// How often a serial bump is retried when other writers win the race.
const SERIAL_RETRIES: usize = 200;

/// How often a record write whose condition failed (a concurrent writer changed the node after it was read)
/// is tried again.
const WRITE_RETRIES: usize = 20;

/// A zone: its name, where it lives, its DN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// DomainDnsZones, ForestDnsZones or System.
    pub partition: &'static str,
    pub dn: String,
    /// The RFC 2136 server serving it (`None`: AD-integrated; `crate::dns::backend`).
    pub server: Option<String>,
}

impl Zone {
    pub fn is_reverse(&self) -> bool {
        self.name.ends_with(".in-addr.arpa") || self.name.ends_with(".ip6.arpa")
    }
}

/// One record as read: the node name (relative, `@` for the apex) and the decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node: String,
    pub record: DnsRecord,
}

/// Outcome of adding a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Written with this SOA serial.
    Added(u32),
    /// The same value is already there: nothing changed.
    Exists,
    /// A CNAME conflict: the message says which.
    CnameConflict(String),
}

/// Errors of the backend: LDAP, or a zone without a usable SOA.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Ldap(#[from] Error),
    #[error("{0}")]
    Zone(String),
    /// An outcome with its status (the RFC 2136 backend: server answers, NotSupported zone operations).
    #[error("{1}")]
    Status(crate::ad::envelope::AdStatus, String),
}

/// The AD-integrated DNS of one domain.
#[derive(Clone)]
pub struct AdDns {
    pool: LdapPool,
    base: String,
    /// The last SOA value this process wrote or read, per zone DN: the first bump attempt modifies from it
    /// without reading (a stale value fails the optimistic modify and is read again).
    soa: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// The zone list, kept [`ZONE_LIST_TTL`] for record operations (which zone holds a name, PTR pairing);
    /// dropped when this process creates or deletes a zone.
    zones: Arc<Mutex<ZoneList>>,
}

/// A zone list and when it was read.
type ZoneList = Option<(tokio::time::Instant, Vec<Zone>)>;

/// How long record operations reuse a zone list (zones made or removed by others show after at most this).
pub const ZONE_LIST_TTL: std::time::Duration = std::time::Duration::from_secs(2);

fn values(entry: &SearchEntry, attr: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, v) in &entry.attrs {
        if k.eq_ignore_ascii_case(attr) {
            out.extend(v.iter().map(|s| s.as_bytes().to_vec()));
        }
    }
    for (k, v) in &entry.bin_attrs {
        if k.eq_ignore_ascii_case(attr) {
            out.extend(v.iter().cloned());
        }
    }
    out
}

fn first_text(entry: &SearchEntry, attr: &str) -> Option<String> {
    values(entry, attr)
        .into_iter()
        .next()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn is_tombstoned(entry: &SearchEntry) -> bool {
    first_text(entry, "dNSTombstoned").is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
}

/// The live records of a node entry (tombstones and undecodable values skipped).
fn live_records(entry: &SearchEntry) -> Vec<(Vec<u8>, DnsRecord)> {
    if is_tombstoned(entry) {
        return Vec::new();
    }
    values(entry, "dnsRecord")
        .into_iter()
        .filter_map(|b| {
            let r = DnsRecord::decode(&b).ok()?;
            (!r.is_tombstone()).then_some((b, r))
        })
        .collect()
}

impl AdDns {
    /// The DNS of the domain whose naming context is `base` (the pool's base DN).
    pub fn new(pool: LdapPool) -> AdDns {
        let base = pool.base_dn().to_string();
        AdDns {
            pool,
            base,
            soa: Arc::default(),
            zones: Arc::default(),
        }
    }

    /// The three zone containers, DomainDnsZones first (where new zones go).
    pub fn containers(&self) -> [(&'static str, String); 3] {
        [
            (
                "DomainDnsZones",
                format!("CN=MicrosoftDNS,DC=DomainDnsZones,{}", self.base),
            ),
            (
                "ForestDnsZones",
                format!("CN=MicrosoftDNS,DC=ForestDnsZones,{}", self.base),
            ),
            ("System", format!("CN=MicrosoftDNS,CN=System,{}", self.base)),
        ]
    }

    /// Every zone in the three containers (a missing container is no zone).
    pub async fn list_zones(&self) -> Result<Vec<Zone>, DnsError> {
        let mut out = Vec::new();
        for (partition, container) in self.containers() {
            let entries = match self
                .pool
                .search(
                    &container,
                    Scope::OneLevel,
                    "(objectClass=dnsZone)",
                    &["name"],
                )
                .await
            {
                Ok(e) => e,
                Err(e) if matches!(e.ldap_code(), Some(32) | Some(10)) => continue,
                Err(e) => return Err(e.into()),
            };
            for e in entries {
                let name = first_text(&e, "name").unwrap_or_default();
                if HIDDEN_ZONES.iter().any(|h| h.eq_ignore_ascii_case(&name)) {
                    continue;
                }
                out.push(Zone {
                    name: name.to_ascii_lowercase(),
                    partition,
                    dn: e.dn,
                    server: None,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// [`list_zones`](Self::list_zones), reused for [`ZONE_LIST_TTL`] (for record operations only: zone
    /// reads and zone writes always ask the directory).
    pub async fn zones_cached(&self) -> Result<Vec<Zone>, DnsError> {
        if let Ok(slot) = self.zones.lock() {
            if let Some((at, z)) = slot.as_ref() {
                if at.elapsed() < ZONE_LIST_TTL {
                    return Ok(z.clone());
                }
            }
        }
        let z = self.list_zones().await?;
        if let Ok(mut slot) = self.zones.lock() {
            *slot = Some((tokio::time::Instant::now(), z.clone()));
        }
        Ok(z)
    }

    fn forget_zones(&self) {
        if let Ok(mut slot) = self.zones.lock() {
            *slot = None;
        }
    }

    /// The zone named `name` (checked, lower case), if any.
    pub async fn find_zone(&self, name: &str) -> Result<Option<Zone>, DnsError> {
        let filter = format!("(&(objectClass=dnsZone)(name={}))", ldap_filter_value(name));
        for (partition, container) in self.containers() {
            match self
                .pool
                .lookup(&container, Scope::OneLevel, &filter, &["name"], 2)
                .await
            {
                Ok(entries) => {
                    if let Some(e) = entries.into_iter().next() {
                        return Ok(Some(Zone {
                            name: name.to_string(),
                            partition,
                            dn: e.dn,
                            server: None,
                        }));
                    }
                }
                Err(e) if matches!(e.ldap_code(), Some(32) | Some(10)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// The SOA and NS the domain's own zone has, as a template for new zones (Samba uses the DC's host
    /// name and `hostmaster.<domain>`).
    async fn template(&self) -> Result<(DnsName, DnsName, Vec<DnsName>), DnsError> {
        let domain = crate::ad::settings::dns_name_from_dn(&self.base)
            .ok_or_else(|| DnsError::Zone(format!("no DNS name in base DN {}", self.base)))?;
        let Some(zone) = self.find_zone(&domain).await? else {
            // The domain's zone is gone (deleted with another tool): the DC itself is the name server.
            let host = first_text(&self.pool.root_dse().await?, "dnsHostName").ok_or_else(|| {
                DnsError::Zone(format!(
                    "the domain's zone {domain} is missing and the rootDSE has no dnsHostName: no name \
                     server to put in the new zone's SOA"
                ))
            })?;
            let mname = DnsName::from_text(&host);
            let rname = DnsName::from_text(&format!("hostmaster.{domain}"));
            return Ok((mname.clone(), rname, vec![mname]));
        };
        let apex = self.read_node(&zone, "@").await?;
        let recs: Vec<DnsRecord> = apex
            .as_ref()
            .map(|e| live_records(e).into_iter().map(|(_, r)| r).collect())
            .unwrap_or_default();
        let mut mname = None;
        let mut rname = None;
        let mut ns = Vec::new();
        for r in recs {
            match r.data {
                RecordData::Soa {
                    mname: m, rname: r, ..
                } => {
                    mname = Some(m);
                    rname = Some(r);
                }
                RecordData::Ns(n) => ns.push(n),
                _ => {}
            }
        }
        let mname = mname.ok_or_else(|| DnsError::Zone(format!("zone {domain} has no SOA")))?;
        if ns.is_empty() {
            ns.push(mname.clone());
        }
        let rname = rname.unwrap_or_else(|| DnsName::from_text(&format!("hostmaster.{domain}")));
        Ok((mname, rname, ns))
    }

    /// Creates a primary zone in DomainDnsZones as Samba does: the dnsZone with its properties, then the
    /// `@` node with SOA (serial 1; refresh 900, retry 600, expire 86400, minimum 3600; TTL 3600) and NS.
    /// `Ok(None)`: the zone exists already (nothing changed).
    pub async fn create_zone(&self, name: &str) -> Result<Option<Zone>, DnsError> {
        if self.find_zone(name).await?.is_some() {
            return Ok(None);
        }
        let (mname, rname, ns) = self.template().await?;
        let (partition, container) = self.containers()[0].clone();
        let dn = format!("DC={},{container}", ldap_dn_value(name));
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (
                b"objectClass".to_vec(),
                [b"top".to_vec(), b"dnsZone".to_vec()].into(),
            ),
            (
                b"dNSProperty".to_vec(),
                ZONE_PROPERTIES.iter().map(|p| p.to_vec()).collect(),
            ),
        ];
        self.forget_zones();
        match self.pool.add_bytes(&dn, attrs).await {
            Ok(()) => {}
            Err(e) if e.ldap_code() == Some(68) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let soa = DnsRecord::new(
            RecordData::Soa {
                serial: 1,
                refresh: 900,
                retry: 600,
                expire: 86400,
                minimum: 3600,
                mname,
                rname,
            },
            3600,
            1,
        );
        let mut recs: HashSet<Vec<u8>> = HashSet::new();
        recs.insert(soa.encode().map_err(|e| DnsError::Zone(e.to_string()))?);
        for n in ns {
            let r = DnsRecord::new(RecordData::Ns(n), 3600, 1);
            recs.insert(r.encode().map_err(|e| DnsError::Zone(e.to_string()))?);
        }
        let apex = format!("DC=@,{dn}");
        let node_attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (
                b"objectClass".to_vec(),
                [b"top".to_vec(), b"dnsNode".to_vec()].into(),
            ),
            (b"dnsRecord".to_vec(), recs),
        ];
        if let Err(e) = self.pool.add_bytes(&apex, node_attrs).await {
            // Do not leave a zone without SOA behind.
            let _ = self.pool.delete(&dn).await;
            return Err(e.into());
        }
        Ok(Some(Zone {
            name: name.to_string(),
            partition,
            dn,
            server: None,
        }))
    }

    /// Why `zone` must not be deleted through the API, if it must not: the domain's own zone and its
    /// `_msdcs` zone hold the DC locator records, and deleting them breaks the domain (an administrator who
    /// means it uses `samba-tool dns zonedelete`).
    pub fn protected_zone(&self, zone: &Zone) -> Option<String> {
        let domain = crate::ad::settings::dns_name_from_dn(&self.base)?;
        let name = zone.name.trim_end_matches('.');
        let msdcs = format!("_msdcs.{domain}");
        (name.eq_ignore_ascii_case(&domain) || name.eq_ignore_ascii_case(&msdcs)).then(|| {
            format!(
                "zone {name} holds the domain's own records (domain controllers, DC locator): deleting it \
                 would break the domain, so the API refuses (samba-tool dns zonedelete does it if you mean \
                 it); nothing changed"
            )
        })
    }

    /// Deletes a zone: its nodes, then the zone object. `false`: no such zone.
    pub async fn delete_zone(&self, zone: &Zone) -> Result<bool, DnsError> {
        let nodes = match self
            .pool
            .search(&zone.dn, Scope::OneLevel, "(objectClass=*)", &["name"])
            .await
        {
            Ok(n) => n,
            Err(e) if e.ldap_code() == Some(32) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        for n in nodes {
            match self.pool.delete(&n.dn).await {
                Ok(()) => {}
                Err(e) if e.ldap_code() == Some(32) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.remember_soa(zone, None);
        self.forget_zones();
        match self.pool.delete(&zone.dn).await {
            Ok(()) => Ok(true),
            Err(e) if e.ldap_code() == Some(32) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn node_dn(zone: &Zone, node: &str) -> String {
        format!("DC={},{}", ldap_dn_value(node), zone.dn)
    }

    async fn read_node(&self, zone: &Zone, node: &str) -> Result<Option<SearchEntry>, DnsError> {
        match self
            .pool
            .lookup(
                &Self::node_dn(zone, node),
                Scope::Base,
                "(objectClass=dnsNode)",
                &["name", "dnsRecord", "dNSTombstoned"],
                1,
            )
            .await
        {
            Ok(e) => Ok(e.into_iter().next()),
            Err(e) if e.ldap_code() == Some(32) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The live records of a zone, or of one node of it.
    pub async fn records(
        &self,
        zone: &Zone,
        node: Option<&str>,
    ) -> Result<Vec<NodeRecord>, DnsError> {
        let entries = match node {
            Some(n) => self.read_node(zone, n).await?.into_iter().collect(),
            None => match self
                .pool
                .search(
                    &zone.dn,
                    Scope::OneLevel,
                    "(objectClass=dnsNode)",
                    &["name", "dnsRecord", "dNSTombstoned"],
                )
                .await
            {
                Ok(e) => e,
                Err(e) if e.ldap_code() == Some(32) => Vec::new(),
                Err(e) => return Err(e.into()),
            },
        };
        let mut out = Vec::new();
        for e in entries {
            let name = first_text(&e, "name").unwrap_or_default();
            for (_, record) in live_records(&e) {
                out.push(NodeRecord {
                    node: name.clone(),
                    record,
                });
            }
        }
        Ok(out)
    }

    fn cached_soa(&self, zone: &Zone) -> Option<(Vec<u8>, DnsRecord)> {
        let cache = self.soa.lock().ok()?;
        let b = cache.get(&zone.dn)?.clone();
        let r = DnsRecord::decode(&b).ok()?;
        Some((b, r))
    }

    fn remember_soa(&self, zone: &Zone, blob: Option<Vec<u8>>) {
        if let Ok(mut cache) = self.soa.lock() {
            match blob {
                Some(b) => cache.insert(zone.dn.clone(), b),
                None => cache.remove(&zone.dn),
            };
        }
    }

    /// Bumps the zone's SOA serial (optimistically: see the module docs) and returns the new serial. The
    /// first attempt starts from the SOA value this process saw last (no read); a stale one fails the modify
    /// like a concurrent writer's change does, and the SOA is read again.
    pub async fn bump_serial(&self, zone: &Zone) -> Result<u32, DnsError> {
        let apex_dn = Self::node_dn(zone, "@");
        let mut cached = self.cached_soa(zone);
        for _ in 0..SERIAL_RETRIES {
            let (old_bytes, old) = match cached.take() {
                Some(c) => c,
                None => {
                    let apex = self.read_node(zone, "@").await?.ok_or_else(|| {
                        DnsError::Zone(format!("zone {} has no @ node", zone.name))
                    })?;
                    let Some(found) = live_records(&apex)
                        .into_iter()
                        .find(|(_, r)| r.data.rtype() == rtype::SOA)
                    else {
                        return Err(DnsError::Zone(format!("zone {} has no SOA", zone.name)));
                    };
                    found
                }
            };
            let mut new = old.clone();
            let next = match &mut new.data {
                RecordData::Soa { serial, .. } => {
                    // RFC 1982 arithmetic; 0 is skipped.
                    *serial = serial.wrapping_add(1).max(1);
                    *serial
                }
                _ => continue,
            };
            new.serial = next;
            let new_bytes = new.encode().map_err(|e| DnsError::Zone(e.to_string()))?;
            let mods = vec![
                Mod::Delete(b"dnsRecord".to_vec(), [old_bytes].into()),
                Mod::Add(b"dnsRecord".to_vec(), [new_bytes.clone()].into()),
            ];
            match self.pool.modify(&apex_dn, mods).await {
                Ok(()) => {
                    self.remember_soa(zone, Some(new_bytes));
                    return Ok(next);
                }
                // Another writer replaced the SOA first (16), or added the same new value (20): read again.
                Err(e) if matches!(e.ldap_code(), Some(16) | Some(20)) => {
                    self.remember_soa(zone, None);
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(e) => {
                    self.remember_soa(zone, None);
                    return Err(e.into());
                }
            }
        }
        Err(DnsError::Zone(format!(
            "the SOA serial of zone {} kept changing under {SERIAL_RETRIES} attempts",
            zone.name
        )))
    }

    /// The CNAME rule (RFC 1034 §3.6.2) for adding `data` beside `existing`.
    fn cname_conflict(
        node: &str,
        existing: &[(Vec<u8>, DnsRecord)],
        data: &RecordData,
    ) -> Option<String> {
        let is_cname = data.rtype() == rtype::CNAME;
        let has_cname = existing.iter().any(|(_, r)| r.data.rtype() == rtype::CNAME);
        let has_other = existing.iter().any(|(_, r)| r.data.rtype() != rtype::CNAME);
        if is_cname && has_other {
            Some(format!(
                "{node} has other records: a CNAME cannot share its name with other data"
            ))
        } else if is_cname && has_cname {
            Some(format!("{node} already has a CNAME (only one is allowed)"))
        } else if !is_cname && has_cname {
            Some(format!(
                "{node} is a CNAME: other data cannot be added beside it"
            ))
        } else {
            None
        }
    }

    /// Adds one value at `node`. An existing identical value (same type and data) changes nothing.
    /// With `dry_run`, only the checks run.
    ///
    /// Every write is conditional on what was read: a new node is an LDAP add (fails if someone created it
    /// meanwhile), a tombstoned node is revived by deleting exactly the values read (fails if they changed),
    /// a live or empty node gains the value with an attribute add. When the condition fails, the node is read
    /// again and the checks run again (at most [`WRITE_RETRIES`] times), so a concurrent writer's change is
    /// neither overwritten nor answered with a misleading error.
    pub async fn add_record(
        &self,
        zone: &Zone,
        node: &str,
        data: &RecordData,
        ttl: u32,
        dry_run: bool,
    ) -> Result<Added, DnsError> {
        let dn = Self::node_dn(zone, node);
        for _ in 0..WRITE_RETRIES {
            let existing = self.read_node(zone, node).await?;
            let live = existing.as_ref().map(live_records).unwrap_or_default();
            if live.iter().any(|(_, r)| &r.data == data) {
                return Ok(Added::Exists);
            }
            if let Some(msg) = Self::cname_conflict(node, &live, data) {
                return Ok(Added::CnameConflict(msg));
            }
            if dry_run {
                return Ok(Added::Added(0));
            }
            let serial = self.bump_serial(zone).await?;
            let blob = DnsRecord::new(data.clone(), ttl, serial)
                .encode()
                .map_err(|e| DnsError::Zone(e.to_string()))?;
            let res = match existing {
                None => {
                    let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
                        (
                            b"objectClass".to_vec(),
                            [b"top".to_vec(), b"dnsNode".to_vec()].into(),
                        ),
                        (b"dnsRecord".to_vec(), [blob].into()),
                    ];
                    self.pool.add_bytes(&dn, attrs).await
                }
                Some(e) if is_tombstoned(&e) => {
                    let remains: HashSet<Vec<u8>> = values(&e, "dnsRecord").into_iter().collect();
                    let mut mods = Vec::new();
                    if !remains.is_empty() {
                        mods.push(Mod::Delete(b"dnsRecord".to_vec(), remains));
                    }
                    mods.push(Mod::Add(b"dnsRecord".to_vec(), [blob].into()));
                    mods.push(Mod::Replace(
                        b"dNSTombstoned".to_vec(),
                        [b"FALSE".to_vec()].into(),
                    ));
                    self.pool.modify(&dn, mods).await
                }
                Some(_) => {
                    self.pool
                        .modify(&dn, vec![Mod::Add(b"dnsRecord".to_vec(), [blob].into())])
                        .await
                }
            };
            match res {
                Ok(()) => return Ok(Added::Added(serial)),
                // The same value was added meanwhile (20): read again, it answers Exists. The node was
                // created (68), deleted (32) or its remains changed (16) meanwhile: read again.
                Err(e) if matches!(e.ldap_code(), Some(16) | Some(20) | Some(32) | Some(68)) => {
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DnsError::Zone(format!(
            "{node}.{} kept changing under {WRITE_RETRIES} attempts to add a value",
            zone.name
        )))
    }

    /// Deletes the values of type `t` at `node` that `keep_if` does not keep (all of them, or the one
    /// matching a value). Returns the removed records.
    ///
    /// Only the values read are deleted, by value, in one modify (it fails if one of them is gone meanwhile:
    /// the node is read again, at most [`WRITE_RETRIES`] times). The node itself is never deleted, even when
    /// its last value goes: LDAP cannot delete an entry only if it is still empty, so deleting the node would
    /// lose a value another writer added after the read. An empty dnsNode answers NXDOMAIN (as a deleted one)
    /// and takes the next add.
    pub async fn delete_records(
        &self,
        zone: &Zone,
        node: &str,
        t: u16,
        value: Option<&RecordData>,
        dry_run: bool,
    ) -> Result<Vec<DnsRecord>, DnsError> {
        let dn = Self::node_dn(zone, node);
        let mut bumped = false;
        for _ in 0..WRITE_RETRIES {
            let Some(entry) = self.read_node(zone, node).await? else {
                return Ok(Vec::new());
            };
            let gone: Vec<(Vec<u8>, DnsRecord)> = live_records(&entry)
                .into_iter()
                .filter(|(_, r)| r.data.rtype() == t && value.is_none_or(|v| &r.data == v))
                .collect();
            if gone.is_empty() || dry_run {
                return Ok(gone.into_iter().map(|(_, r)| r).collect());
            }
            if !bumped {
                self.bump_serial(zone).await?;
                bumped = true;
            }
            let blobs: HashSet<Vec<u8>> = gone.iter().map(|(b, _)| b.clone()).collect();
            match self
                .pool
                .modify(&dn, vec![Mod::Delete(b"dnsRecord".to_vec(), blobs)])
                .await
            {
                Ok(()) => return Ok(gone.into_iter().map(|(_, r)| r).collect()),
                // A value (16) or the whole node (32) went meanwhile: read again.
                Err(e) if matches!(e.ldap_code(), Some(16) | Some(32)) => {
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DnsError::Zone(format!(
            "{node}.{} kept changing under {WRITE_RETRIES} attempts to delete values",
            zone.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    /// Values `samba-tool dns zonecreate`/`dns add` wrote on the fixture DC (Samba 4.17), read back with
    /// ldapsearch: every one decodes and encodes to the same bytes.
    #[test]
    fn what_samba_tool_writes_round_trips() {
        let samples = [
            ("A", "BAABAAXwAAACAAAAAAADhAAAAAAAAAAACggJBw=="),
            ("AAAA", "EAAcAAXwAAAHAAAAAAADhAAAAAAAAAAA/QAAAAAAAAAAAAAAAAAABQ=="),
            ("SOA", "RAAGAAXwAAAHAAAAAAAOEAAAAAAAAAAAAAAABwAAA4QAAAJYAAFRgAAADhASAwJkYwdzYW5kYm94BWxvY2FsABoDCmhvc3RtYXN0ZXIHc2FuZGJveAVsb2NhbAA="),
            ("NS", "FAACAAXwAAABAAAAAAAOEAAAAAAAAAAAEgMCZGMHc2FuZGJveAVsb2NhbAA="),
            ("TXT", "DAAQAAXwAAAEAAAAAAADhAAAAAAAAAAABWhlbGxvBXdvcmxk"),
            ("PTR", "EQAMAAXwAAACAAAAAAADhAAAAAAAAAAADwMCaDEFcHJvYmUEdGVzdAA="),
            ("MX", "FQAPAAXwAAADAAAAAAADhAAAAAAAAAAAAAoRAwRtYWlsBXByb2JlBHRlc3QA"),
            ("CNAME", "EQAFAAXwAAAGAAAAAAADhAAAAAAAAAAADwMCaDEFcHJvYmUEdGVzdAA="),
            ("SRV", "GAAhAAXwAAAFAAAAAAADhAAAAAAAAAAAAAAAZAGFEAMDdGd0BXByb2JlBHRlc3QA"),
        ];
        for (t, s) in samples {
            let bytes = b64(s);
            let r = DnsRecord::decode(&bytes).unwrap();
            assert_eq!(crate::dns::types::type_name(r.data.rtype()), t);
            assert_eq!(r.encode().unwrap(), bytes, "{t}");
            // What we would write for the same value, TTL and serial is the same bytes.
            assert_eq!(
                DnsRecord::new(r.data.clone(), r.ttl, r.serial)
                    .encode()
                    .unwrap(),
                bytes,
                "{t}"
            );
        }
        let mx = DnsRecord::decode(&b64(samples[6].1)).unwrap();
        assert_eq!(mx.data.value_text(), "10 mail.probe.test");
        let srv = DnsRecord::decode(&b64(samples[8].1)).unwrap();
        assert_eq!(srv.data.value_text(), "0 100 389 tgt.probe.test");
        let txt = DnsRecord::decode(&b64(samples[4].1)).unwrap();
        assert_eq!(txt.data.value_text(), "\"hello\" \"world\"");
    }

    #[test]
    fn the_zone_properties_are_samba_s() {
        let measured = [
            "BAAAAAAAAAAAAAAAAQAAAAEAAAABAAAAAAAAAA==",
            "AQAAAAAAAAAAAAAAAQAAAAIAAAACAAAAAA==",
            "CAAAAAAAAAAAAAAAAQAAAAgAAAAAAAAAAAAAAAAAAAA=",
            "BAAAAAAAAAAAAAAAAQAAABAAAACoAAAAAAAAAA==",
            "BAAAAAAAAAAAAAAAAQAAACAAAACoAAAAAAAAAA==",
            "BAAAAAAAAAAAAAAAAQAAAEAAAAAAAAAAAAAAAA==",
            "BAAAAAAAAAAAAAAAAQAAABIAAAAAAAAAAAAAAA==",
        ];
        for (m, p) in measured.iter().zip(ZONE_PROPERTIES) {
            assert_eq!(b64(m), p);
        }
    }
}
