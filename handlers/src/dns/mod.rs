//! DnsHandler: zones and records of AD-integrated DNS over the shared LDAP layer, answering with a result
//! envelope that reads like the AD handler's (`Results[*].Statuses[*].Status` with the same codes, so the API
//! maps it to the same HTTP statuses).
//!
//! - `record`: the `dnsRecord` codec; `name`: name/address/TTL checks and reverse names; `types`: record
//!   types and values from text.
//! - `backend`: the seam: each zone goes to the backend that serves it (`Backends`).
//! - `ad`: the AD-integrated backend (zones in DomainDnsZones, ForestDnsZones and System; SOA serial bumps).
//! - `rfc2136`: standard DNS servers (BIND) over RFC 2136 UPDATE, queries and AXFR, signed with TSIG;
//!   `settings`: their section of the configuration (`Handlers.Dns.Servers`).
//! - `descriptor`: the handler's metadata.
//!
//! With an AD domain configured (`Handlers.ActiveDirectory.Domains`, or `SYNAPSE_AD_*`), its zones are
//! served with no further configuration; `Config.Domain` picks another configured domain. Zones listed by an
//! RFC 2136 server go to that server instead.

pub mod ad;
pub mod backend;
pub mod descriptor;
pub mod name;
pub mod record;
pub mod rfc2136;
pub mod settings;
pub mod types;

use crate::ad::descriptor::worst_status;
use crate::ad::domain::DomainPool;
use crate::ad::domains::Domains;
use crate::ad::envelope::AdStatus;
use crate::ad::model::{lenient_bool, lenient_opt_bool, lenient_opt_string, OutputType};
use crate::ad::settings::{ActiveDirectoryConfig, DomainSettings};
use crate::ldap::LdapPool;
use ad::{AdDns, Added, DnsError, NodeRecord, Zone};
use async_trait::async_trait;
use backend::Backends;
use record::{rtype, RecordData};
use rfc2136::Rfc2136;
use serde::Deserialize;
use serde_json::{json, Value};
use settings::DnsSection;
use std::net::IpAddr;
use std::sync::Arc;
use synapse_engine::{
    ActionContext, ExecuteResult, Handler, HandlerDescriptor, StatusType, TargetHealth,
};

/// Default TTL of a new record (what `samba-tool dns add` writes).
pub const DEFAULT_TTL: u32 = 900;

/// `Config.Action`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DnsAction {
    /// Upstream's form: the `DnsActions` list of the parameters decides.
    #[default]
    Upstream,
    ListZones,
    GetZone,
    ZoneExists,
    CreateZone,
    CreateReverseZone,
    DeleteZone,
    ListRecords,
    GetRecord,
    CreateRecord,
    DeleteRecord,
}

impl DnsAction {
    /// True for the actions that change nothing.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            DnsAction::ListZones
                | DnsAction::GetZone
                | DnsAction::ZoneExists
                | DnsAction::ListRecords
                | DnsAction::GetRecord
        )
    }
}

/// The handler's `Config`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DnsConfig {
    #[serde(default)]
    pub action: DnsAction,
    /// A configured AD domain (name or alias); default the first.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub domain: Option<String>,
    #[serde(default)]
    pub output_type: OutputType,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub pretty_print: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub suppress_output: bool,
}

fn yes() -> bool {
    true
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            action: DnsAction::default(),
            domain: None,
            output_type: OutputType::Json,
            pretty_print: true,
            suppress_output: false,
        }
    }
}

/// One upstream `DnsActions` item (seed: `Synapse.Handlers.DNS:DnsHandler`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpstreamAction {
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub record_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub ip_address: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub dns_zone: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub request_owner: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub note: Option<String>,
}

/// The handler's `Parameters` (dynamic parameters arrive as strings: numbers and booleans are accepted as
/// either).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DnsParameters {
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub zone: Option<String>,
    /// A reverse zone's network (`10.1.2.0/24`, `fd00:1::/64`).
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub network: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub r#type: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub value: Option<String>,
    /// Filter: A/AAAA records with this address (and PTRs pointing at nothing else).
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub ttl: Option<String>,
    /// Pair A/AAAA with PTR (default true).
    #[serde(default, deserialize_with = "lenient_opt_bool")]
    pub create_ptr: Option<bool>,
    /// ListZones: true = reverse zones only, false = forward only, absent = all.
    #[serde(default, deserialize_with = "lenient_opt_bool")]
    pub reverse: Option<bool>,
    #[serde(default)]
    pub dns_actions: Option<Vec<UpstreamAction>>,
}

/// The handler. Cheap to share; the domains' pools are opened on first use and shared with the
/// ActiveDirectoryHandler (`crate::registry`).
pub struct DnsHandler {
    domains: Domains,
    /// Per domain (by position): the DNS view of its pool, with its SOA and zone caches.
    views: std::sync::Mutex<Vec<Option<AdDns>>>,
    /// The RFC 2136 servers (`Handlers.Dns.Servers`) and their zones.
    servers: Vec<Rfc2136>,
}

impl DnsHandler {
    /// A handler for the AD-integrated DNS of these domains (the first is the default).
    pub fn new(domains: Vec<DomainSettings>) -> Self {
        Self::with_domains(Domains::new(domains))
    }

    /// A handler over domains (and pools) shared with other handlers (`crate::registry`).
    pub fn with_domains(domains: Domains) -> Self {
        DnsHandler {
            views: std::sync::Mutex::new(vec![None; domains.len()]),
            domains,
            servers: Vec::new(),
        }
    }

    /// This handler with the RFC 2136 servers of `section` (their zones go to them).
    pub fn with_servers(mut self, section: Option<&DnsSection>) -> Self {
        self.servers = section
            .map(|s| {
                s.servers
                    .iter()
                    .map(|s| Rfc2136::new(s.clone(), synapse_engine::clock::system()))
                    .collect()
            })
            .unwrap_or_default();
        self
    }

    /// The handler for the domains of the ActiveDirectory section: their zones with no further
    /// configuration.
    pub fn from_config(ad: &ActiveDirectoryConfig) -> Self {
        Self::new(ad.domains.clone())
    }

    /// A handler over an open pool (tests, benches).
    pub fn with_pool(settings: DomainSettings, pool: LdapPool) -> Self {
        Self::with_domains(Domains::opened(DomainPool::new(settings, pool)))
    }

    async fn dns(&self, domain: Option<&str>) -> Result<AdDns, (AdStatus, String)> {
        let (i, domain) = self.domains.pick(domain)?;
        let unavailable = |m: String| (AdStatus::ConnectionError, m);
        let pool = domain.pool().await.map_err(unavailable)?;
        let mut views = self
            .views
            .lock()
            .map_err(|_| unavailable("DNS view lock poisoned".to_string()))?;
        let view = views.get_mut(i).ok_or_else(|| {
            unavailable(format!(
                "Domain [{}] has no DNS view",
                domain.settings().name()
            ))
        })?;
        Ok(view
            .get_or_insert_with(|| AdDns::new(pool.pool().clone()))
            .clone())
    }
}

/// One result of the envelope.
#[derive(Debug, Clone)]
struct DnsResult {
    kind: &'static str,
    identity: String,
    statuses: Vec<Value>,
    extra: serde_json::Map<String, Value>,
}

impl DnsResult {
    fn new(kind: &'static str, identity: impl Into<String>) -> Self {
        DnsResult {
            kind,
            identity: identity.into(),
            statuses: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }
    fn push(&mut self, status: AdStatus, action: &str, message: impl Into<String>) {
        self.statuses.push(json!({
            "Status": status.code(), "Message": message.into(), "Action": action
        }));
    }
    fn set(&mut self, key: &str, v: Value) {
        self.extra.insert(key.into(), v);
    }
    fn into_value(self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("Statuses".into(), Value::Array(self.statuses));
        m.insert("Type".into(), Value::String(self.kind.into()));
        m.insert("Identity".into(), Value::String(self.identity));
        m.extend(self.extra);
        Value::Object(m)
    }
}

fn status_of_error(e: &DnsError) -> AdStatus {
    match e {
        DnsError::Ldap(e) if e.is_connection() => AdStatus::ConnectionError,
        DnsError::Ldap(e) => match e.ldap_code() {
            Some(50) => AdStatus::NotAllowed,
            Some(68) | Some(20) => AdStatus::AlreadyExists,
            Some(32) => AdStatus::DoesNotExist,
            _ => AdStatus::Unknown,
        },
        DnsError::Zone(_) => AdStatus::Unknown,
        DnsError::Status(s, _) => *s,
    }
}

fn zone_json(z: &Zone) -> Value {
    match &z.server {
        None => json!({
            "Name": z.name, "Partition": z.partition, "DistinguishedName": z.dn,
            "IsReverse": z.is_reverse(), "Backend": "AdIntegrated", "Server": null,
        }),
        Some(server) => json!({
            "Name": z.name, "Partition": null, "DistinguishedName": null,
            "IsReverse": z.is_reverse(), "Backend": "Rfc2136", "Server": server,
        }),
    }
}

fn fqdn(node: &str, zone: &str) -> String {
    if node == "@" {
        zone.to_string()
    } else {
        format!("{node}.{zone}")
    }
}

fn record_json(zone: &str, r: &NodeRecord) -> Value {
    json!({
        "Name": fqdn(&r.node.to_ascii_lowercase(), zone),
        "Node": r.node,
        "Zone": zone,
        "Type": types::type_name(r.record.data.rtype()),
        "Value": r.record.data.value_text(),
        "Ttl": r.record.ttl,
    })
}

/// What one request is about, checked: every input goes through [`name`] before any LDAP use.
struct Ctx<'a> {
    dns: &'a Backends<'a>,
    dry_run: bool,
}

type Outcome = Result<(), (AdStatus, String)>;

fn bad(status: AdStatus, msg: impl Into<String>) -> (AdStatus, String) {
    (status, msg.into())
}

fn ldap_err(e: DnsError) -> (AdStatus, String) {
    (status_of_error(&e), e.to_string())
}

fn need<'a>(field: &str, v: &'a Option<String>) -> Result<&'a str, (AdStatus, String)> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(bad(AdStatus::MissingInput, format!("{field} is required"))),
    }
}

fn inv(msg: String) -> (AdStatus, String) {
    (AdStatus::InvalidInput, msg)
}

impl Ctx<'_> {
    /// The zone named by `Zone`, or the reverse zone of `Network`.
    fn zone_name(p: &DnsParameters) -> Result<String, (AdStatus, String)> {
        if let Some(net) = p.network.as_deref().filter(|s| !s.trim().is_empty()) {
            if net.contains('/') || net.parse::<IpAddr>().is_ok() {
                return name::reverse_zone(net).map_err(inv);
            }
            return name::check_name("Network", net).map_err(inv);
        }
        name::check_name("Zone", need("Zone", &p.zone)?).map_err(inv)
    }

    async fn zone(&self, zname: &str) -> Result<Zone, (AdStatus, String)> {
        self.dns
            .find_zone(zname)
            .await
            .map_err(ldap_err)?
            .ok_or_else(|| {
                bad(
                    AdStatus::DoesNotExist,
                    format!("zone {zname} does not exist"),
                )
            })
    }

    /// The zone a record operation names: from the (briefly kept) zone list, else asked for.
    async fn record_zone(&self, zname: &str) -> Result<Zone, (AdStatus, String)> {
        let zones = self.dns.zones_cached().await.map_err(ldap_err)?;
        match zones.into_iter().find(|z| z.name == zname) {
            Some(z) => Ok(z),
            None => self.zone(zname).await,
        }
    }

    /// The zone holding `fqdn` (the longest zone name it ends with), from the briefly kept zone list.
    async fn zone_of(&self, fqdn: &str) -> Result<Option<Zone>, (AdStatus, String)> {
        let zones = self.dns.zones_cached().await.map_err(ldap_err)?;
        Ok(zones
            .into_iter()
            .filter(|z| fqdn == z.name || fqdn.ends_with(&format!(".{}", z.name)))
            .max_by_key(|z| z.name.len()))
    }

    async fn list_zones(&self, p: &DnsParameters, r: &mut DnsResult) -> Outcome {
        let zones = self.dns.list_zones().await.map_err(ldap_err)?;
        let zones: Vec<Value> = zones
            .iter()
            .filter(|z| p.reverse.is_none_or(|rev| z.is_reverse() == rev))
            .map(zone_json)
            .collect();
        r.push(AdStatus::Success, "List", format!("{} zones", zones.len()));
        r.set("Zones", Value::Array(zones));
        Ok(())
    }

    async fn get_zone(&self, p: &DnsParameters, r: &mut DnsResult, exists_only: bool) -> Outcome {
        let zname = Self::zone_name(p)?;
        r.identity = zname.clone();
        let found = self.dns.find_zone(&zname).await.map_err(ldap_err)?;
        if exists_only {
            r.set("Exists", Value::Bool(found.is_some()));
            r.push(
                AdStatus::Success,
                "Get",
                format!(
                    "zone {zname} {}",
                    if found.is_some() {
                        "exists"
                    } else {
                        "does not exist"
                    }
                ),
            );
            return Ok(());
        }
        let z = found.ok_or_else(|| {
            bad(
                AdStatus::DoesNotExist,
                format!("zone {zname} does not exist"),
            )
        })?;
        let apex = self.dns.records(&z, Some("@")).await.map_err(ldap_err)?;
        let mut zj = zone_json(&z);
        for rec in &apex {
            match &rec.record.data {
                RecordData::Soa {
                    serial,
                    refresh,
                    retry,
                    expire,
                    minimum,
                    mname,
                    rname,
                } => {
                    zj["Soa"] = json!({
                        "Serial": serial, "Refresh": refresh, "Retry": retry, "Expire": expire,
                        "Minimum": minimum, "PrimaryServer": mname.to_string(),
                        "ResponsiblePerson": rname.to_string(), "Ttl": rec.record.ttl,
                    });
                }
                RecordData::Ns(n) => {
                    if !zj["NameServers"].is_array() {
                        zj["NameServers"] = json!([]);
                    }
                    if let Some(a) = zj["NameServers"].as_array_mut() {
                        a.push(Value::String(n.to_string()));
                    }
                }
                _ => {}
            }
        }
        r.set("Zone", zj);
        r.push(AdStatus::Success, "Get", format!("zone {zname}"));
        Ok(())
    }

    async fn create_zone(&self, p: &DnsParameters, r: &mut DnsResult, reverse: bool) -> Outcome {
        let zname = if reverse {
            name::reverse_zone(need("Network", &p.network)?).map_err(inv)?
        } else {
            name::check_name(
                "Zone",
                need("Zone", &p.zone).or_else(|_| need("Name", &p.name))?,
            )
            .map_err(inv)?
        };
        r.identity = zname.clone();
        if let Some(s) = self.dns.server_of(&zname) {
            return Err(ldap_err(backend::not_supported(
                &zname,
                s.name(),
                "created",
            )));
        }
        if self.dry_run {
            let exists = self.dns.find_zone(&zname).await.map_err(ldap_err)?;
            if exists.is_some() {
                return Err(bad(
                    AdStatus::AlreadyExists,
                    format!("zone {zname} already exists"),
                ));
            }
            r.push(
                AdStatus::Success,
                "Create",
                format!("dry run: would create zone {zname}"),
            );
            return Ok(());
        }
        match self.dns.create_zone(&zname).await.map_err(ldap_err)? {
            Some(z) => {
                r.set("Zone", zone_json(&z));
                r.push(AdStatus::Success, "Create", format!("zone {zname} created"));
                Ok(())
            }
            None => Err(bad(
                AdStatus::AlreadyExists,
                format!("zone {zname} already exists (nothing changed)"),
            )),
        }
    }

    async fn delete_zone(&self, p: &DnsParameters, r: &mut DnsResult) -> Outcome {
        let zname = Self::zone_name(p)?;
        r.identity = zname.clone();
        if let Some(s) = self.dns.server_of(&zname) {
            return Err(ldap_err(backend::not_supported(
                &zname,
                s.name(),
                "deleted",
            )));
        }
        let z = self.zone(&zname).await?;
        if self.dry_run {
            // The real delete checks this itself (Backends::delete_zone); a dry run must refuse alike.
            self.dns.check_delete(&z).await.map_err(ldap_err)?;
            r.push(
                AdStatus::Success,
                "Delete",
                format!("dry run: would delete zone {zname}"),
            );
            return Ok(());
        }
        if !self.dns.delete_zone(&z).await.map_err(ldap_err)? {
            return Err(bad(
                AdStatus::DoesNotExist,
                format!("zone {zname} does not exist"),
            ));
        }
        r.push(AdStatus::Success, "Delete", format!("zone {zname} deleted"));
        Ok(())
    }

    /// The record filters: type, node name (relative to the zone), IP, value.
    async fn list_records(&self, p: &DnsParameters, r: &mut DnsResult, get: bool) -> Outcome {
        let t = match p.r#type.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(t) => Some(types::type_code(t).map_err(inv)?),
            None if get => return Err(bad(AdStatus::MissingInput, "Type is required")),
            None => None,
        };
        let ip = match p.ip.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(ip) => Some(
                ip.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| inv(format!("Ip is not an IP address: {ip}")))?,
            ),
            None => None,
        };
        let value = match (t, p.value.as_deref().filter(|s| !s.trim().is_empty())) {
            (Some(t), Some(v)) => Some(types::parse_value(t, v).map_err(inv)?),
            (None, Some(_)) => {
                return Err(bad(AdStatus::MissingInput, "Type is required with Value"))
            }
            _ => None,
        };
        let name_in = p.name.as_deref().filter(|s| !s.trim().is_empty());
        if get && name_in.is_none() {
            return Err(bad(AdStatus::MissingInput, "Name is required"));
        }
        let zones: Vec<Zone> = match p.zone.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(z) => vec![
                self.record_zone(&name::check_name("Zone", z).map_err(inv)?)
                    .await?,
            ],
            None => match name_in {
                // A name without a zone: the zone it belongs to.
                Some(n) if n != "@" => {
                    let n = name::check_name("Name", n).map_err(inv)?;
                    match self.zone_of(&n).await? {
                        Some(z) => vec![z],
                        None => {
                            return Err(bad(AdStatus::DoesNotExist, format!("no zone holds {n}")))
                        }
                    }
                }
                _ => self.dns.list_zones().await.map_err(ldap_err)?,
            },
        };
        r.identity = match name_in {
            Some(n) => n.to_string(),
            None => zones
                .first()
                .filter(|_| zones.len() == 1)
                .map(|z| z.name.clone())
                .unwrap_or_else(|| "*".into()),
        };
        let mut out = Vec::new();
        for z in &zones {
            let node = match name_in {
                Some(n) => Some(name::relative_name("Name", n, &z.name).map_err(inv)?),
                None => None,
            };
            let recs = self
                .dns
                .records(z, node.as_deref())
                .await
                .map_err(ldap_err)?;
            for rec in recs {
                let d = &rec.record.data;
                if t.is_some_and(|t| d.rtype() != t) {
                    continue;
                }
                if t.is_none() && d.rtype() == rtype::SOA && node.is_none() {
                    // Whole-zone listings without a type leave out the zone's own SOA.
                    continue;
                }
                if value.as_ref().is_some_and(|v| v != d) {
                    continue;
                }
                if let Some(ip) = ip {
                    let hit = match (d, ip) {
                        (RecordData::A(a), IpAddr::V4(b)) => *a == b,
                        (RecordData::Aaaa(a), IpAddr::V6(b)) => *a == b,
                        _ => false,
                    };
                    if !hit {
                        continue;
                    }
                }
                out.push(record_json(&z.name, &rec));
            }
        }
        if get && out.is_empty() {
            return Err(bad(
                AdStatus::DoesNotExist,
                format!("no matching record at {}", r.identity),
            ));
        }
        r.push(
            AdStatus::Success,
            if get { "Get" } else { "List" },
            format!("{} records", out.len()),
        );
        r.set("Records", Value::Array(out));
        Ok(())
    }

    /// The reverse zone and node of `ip`, when such a zone exists.
    async fn ptr_target(&self, ip: IpAddr) -> Result<Option<(Zone, String)>, (AdStatus, String)> {
        let rev = name::reverse_name(ip);
        Ok(self.zone_of(&rev).await?.map(|z| {
            let node = name::relative_name("Name", &rev, &z.name).unwrap_or_else(|_| rev.clone());
            (z, node)
        }))
    }

    async fn create_record(&self, p: &DnsParameters, r: &mut DnsResult) -> Outcome {
        let t = types::type_code(need("Type", &p.r#type)?).map_err(inv)?;
        let name_in = need("Name", &p.name)?;
        let value = types::parse_value(t, need("Value", &p.value)?).map_err(inv)?;
        let ttl = match p.ttl.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => name::check_ttl(
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| inv(format!("Ttl is not a number: {s}")))?,
            )
            .map_err(inv)?,
            None => DEFAULT_TTL,
        };
        let zone = match p.zone.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(z) => {
                self.record_zone(&name::check_name("Zone", z).map_err(inv)?)
                    .await?
            }
            None => {
                let n = name::check_name("Name", name_in).map_err(inv)?;
                self.zone_of(&n)
                    .await?
                    .ok_or_else(|| bad(AdStatus::DoesNotExist, format!("no zone holds {n}")))?
            }
        };
        let node = name::relative_name("Name", name_in, &zone.name).map_err(inv)?;
        let host = fqdn(&node, &zone.name);
        r.identity = format!("{host} {} {}", types::type_name(t), value.value_text());
        match self
            .dns
            .add_record(&zone, &node, &value, ttl, self.dry_run)
            .await
            .map_err(ldap_err)?
        {
            Added::Exists => {
                return Err(bad(
                    AdStatus::AlreadyExists,
                    format!("{} already exists (nothing changed)", r.identity),
                ))
            }
            Added::CnameConflict(msg) => return Err(bad(AdStatus::NotAllowed, msg)),
            Added::Added(serial) => {
                let msg = if self.dry_run {
                    format!("dry run: would create {}", r.identity)
                } else if serial == 0 {
                    // RFC 2136: the server bumps the serial itself.
                    format!("{} created", r.identity)
                } else {
                    format!("{} created (zone serial {serial})", r.identity)
                };
                r.push(AdStatus::Success, "Create", msg);
            }
        }
        let ip = match value {
            RecordData::A(a) => Some(IpAddr::V4(a)),
            RecordData::Aaaa(a) => Some(IpAddr::V6(a)),
            _ => None,
        };
        if let (Some(ip), true) = (ip, p.create_ptr.unwrap_or(true)) {
            self.pair_ptr(ip, &host, ttl, r).await;
        }
        Ok(())
    }

    /// Creates the PTR of a new A/AAAA record when its reverse zone exists (a second Status).
    async fn pair_ptr(&self, ip: IpAddr, host: &str, ttl: u32, r: &mut DnsResult) {
        let target = match self.ptr_target(ip).await {
            Ok(t) => t,
            Err((s, m)) => return r.push(s, "Create", format!("PTR: {m}")),
        };
        let Some((rz, rnode)) = target else {
            return r.push(
                AdStatus::Success,
                "Create",
                format!(
                    "no reverse zone holds {}: no PTR created",
                    name::reverse_name(ip)
                ),
            );
        };
        let ptr = RecordData::Ptr(record::DnsName::from_text(host));
        let rname = fqdn(&rnode, &rz.name);
        match self
            .dns
            .add_record(&rz, &rnode, &ptr, ttl, self.dry_run)
            .await
        {
            Ok(Added::Added(_)) => r.push(
                AdStatus::Success,
                "Create",
                format!("PTR {rname} -> {host} created"),
            ),
            Ok(Added::Exists) => r.push(
                AdStatus::Success,
                "Create",
                format!("PTR {rname} -> {host} already there"),
            ),
            Ok(Added::CnameConflict(m)) => {
                r.push(AdStatus::NotAllowed, "Create", format!("PTR: {m}"))
            }
            Err(e) => r.push(status_of_error(&e), "Create", format!("PTR: {e}")),
        }
    }

    async fn delete_record(&self, p: &DnsParameters, r: &mut DnsResult) -> Outcome {
        let t = types::type_code(need("Type", &p.r#type)?).map_err(inv)?;
        let name_in = need("Name", &p.name)?;
        let value = match p.value.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(v) => Some(types::parse_value(t, v).map_err(inv)?),
            None => None,
        };
        if t == rtype::SOA {
            return Err(inv("the SOA record is deleted with its zone".into()));
        }
        let zone = match p.zone.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(z) => {
                self.record_zone(&name::check_name("Zone", z).map_err(inv)?)
                    .await?
            }
            None => {
                let n = name::check_name("Name", name_in).map_err(inv)?;
                self.zone_of(&n)
                    .await?
                    .ok_or_else(|| bad(AdStatus::DoesNotExist, format!("no zone holds {n}")))?
            }
        };
        let node = name::relative_name("Name", name_in, &zone.name).map_err(inv)?;
        let host = fqdn(&node, &zone.name);
        r.identity = match &value {
            Some(v) => format!("{host} {} {}", types::type_name(t), v.value_text()),
            None => format!("{host} {}", types::type_name(t)),
        };
        let gone = self
            .dns
            .delete_records(&zone, &node, t, value.as_ref(), self.dry_run)
            .await
            .map_err(ldap_err)?;
        if gone.is_empty() {
            return Err(bad(
                AdStatus::DoesNotExist,
                format!("{} does not exist", r.identity),
            ));
        }
        r.push(
            AdStatus::Success,
            "Delete",
            format!(
                "{}{} value(s) of {} deleted",
                if self.dry_run { "dry run: " } else { "" },
                gone.len(),
                r.identity
            ),
        );
        if p.create_ptr.unwrap_or(true) {
            for g in &gone {
                let ip = match g.data {
                    RecordData::A(a) => IpAddr::V4(a),
                    RecordData::Aaaa(a) => IpAddr::V6(a),
                    _ => continue,
                };
                self.unpair_ptr(ip, &host, r).await;
            }
        }
        Ok(())
    }

    async fn unpair_ptr(&self, ip: IpAddr, host: &str, r: &mut DnsResult) {
        let Ok(Some((rz, rnode))) = self.ptr_target(ip).await else {
            return;
        };
        let ptr = RecordData::Ptr(record::DnsName::from_text(host));
        match self
            .dns
            .delete_records(&rz, &rnode, rtype::PTR, Some(&ptr), self.dry_run)
            .await
        {
            Ok(g) if !g.is_empty() => r.push(
                AdStatus::Success,
                "Delete",
                format!("PTR {} -> {host} deleted", fqdn(&rnode, &rz.name)),
            ),
            Ok(_) => {}
            Err(e) => r.push(status_of_error(&e), "Delete", format!("PTR: {e}")),
        }
    }

    /// One upstream `DnsActions` item: `add|delete` of `AType` (with its PTR) or `PtrType`.
    async fn upstream(&self, a: &UpstreamAction, r: &mut DnsResult) -> Outcome {
        let action = need("Action", &a.action)?.to_ascii_lowercase();
        let t = types::type_code(need("RecordType", &a.record_type)?).map_err(inv)?;
        let host = name::check_name("Hostname", need("Hostname", &a.hostname)?).map_err(inv)?;
        let ip: IpAddr = need("IpAddress", &a.ip_address)?.parse().map_err(|_| {
            inv(format!(
                "IpAddress is not an IP address: {:?}",
                a.ip_address
            ))
        })?;
        r.identity = host.clone();
        r.set("Hostname", Value::String(host.clone()));
        r.set("IpAddress", Value::String(ip.to_string()));
        r.set(
            "RecordType",
            Value::String(a.record_type.clone().unwrap_or_default()),
        );
        r.set(
            "RequestOwner",
            a.request_owner
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        r.set(
            "Note",
            a.note.clone().map(Value::String).unwrap_or(Value::Null),
        );
        let p = match t {
            rtype::A | rtype::AAAA => DnsParameters {
                name: Some(host.clone()),
                r#type: Some(if ip.is_ipv4() { "A" } else { "AAAA" }.into()),
                value: Some(ip.to_string()),
                create_ptr: Some(true),
                ..Default::default()
            },
            rtype::PTR => DnsParameters {
                zone: a.dns_zone.clone().filter(|z| !z.trim().is_empty()),
                name: Some(name::reverse_name(ip)),
                r#type: Some("PTR".into()),
                value: Some(host.clone()),
                ..Default::default()
            },
            _ => {
                return Err(inv(format!(
                    "RecordType {:?}: upstream DnsActions know AType and PtrType",
                    a.record_type
                )))
            }
        };
        match action.as_str() {
            "add" => self.create_record(&p, r).await,
            "delete" => self.delete_record(&p, r).await,
            other => Err(inv(format!("Action '{other}' is not add or delete"))),
        }
    }
}

fn action_word(a: DnsAction) -> &'static str {
    match a {
        DnsAction::ListZones | DnsAction::ListRecords => "List",
        DnsAction::GetZone | DnsAction::ZoneExists | DnsAction::GetRecord => "Get",
        DnsAction::CreateZone | DnsAction::CreateReverseZone | DnsAction::CreateRecord => "Create",
        DnsAction::DeleteZone | DnsAction::DeleteRecord => "Delete",
        DnsAction::Upstream => "None",
    }
}

async fn run(ctx: &Ctx<'_>, cfg: &DnsConfig, p: &DnsParameters) -> Vec<DnsResult> {
    let kind = match cfg.action {
        DnsAction::ListZones
        | DnsAction::GetZone
        | DnsAction::ZoneExists
        | DnsAction::CreateZone
        | DnsAction::CreateReverseZone
        | DnsAction::DeleteZone => "Zone",
        _ => "Record",
    };
    if cfg.action == DnsAction::Upstream {
        let Some(actions) = &p.dns_actions else {
            let mut r = DnsResult::new("Record", "");
            r.push(
                AdStatus::MissingInput,
                "None",
                "Config.Action or Parameters.DnsActions is required",
            );
            return vec![r];
        };
        let mut out = Vec::with_capacity(actions.len());
        for a in actions {
            let mut r = DnsResult::new("Record", a.hostname.clone().unwrap_or_default());
            if let Err((s, m)) = ctx.upstream(a, &mut r).await {
                r.push(s, a.action.as_deref().unwrap_or("None"), m);
            }
            out.push(r);
        }
        return out;
    }
    let mut r = DnsResult::new(kind, p.name.clone().or(p.zone.clone()).unwrap_or_default());
    let res = match cfg.action {
        DnsAction::ListZones => ctx.list_zones(p, &mut r).await,
        DnsAction::GetZone => ctx.get_zone(p, &mut r, false).await,
        DnsAction::ZoneExists => ctx.get_zone(p, &mut r, true).await,
        DnsAction::CreateZone => ctx.create_zone(p, &mut r, false).await,
        DnsAction::CreateReverseZone => ctx.create_zone(p, &mut r, true).await,
        DnsAction::DeleteZone => ctx.delete_zone(p, &mut r).await,
        DnsAction::ListRecords => ctx.list_records(p, &mut r, false).await,
        DnsAction::GetRecord => ctx.list_records(p, &mut r, true).await,
        DnsAction::CreateRecord => ctx.create_record(p, &mut r).await,
        DnsAction::DeleteRecord => ctx.delete_record(p, &mut r).await,
        DnsAction::Upstream => Ok(()),
    };
    if let Err((s, m)) = res {
        r.push(s, action_word(cfg.action), m);
    }
    vec![r]
}

fn envelope(results: Vec<DnsResult>) -> Value {
    json!({"Results": results.into_iter().map(DnsResult::into_value).collect::<Vec<_>>()})
}

fn render(env: Value, cfg: &DnsConfig) -> Value {
    match cfg.output_type {
        OutputType::Json => env,
        OutputType::Yaml => serde_yaml::to_string(&env)
            .map(Value::String)
            .unwrap_or(env),
        OutputType::Xml => Value::String(crate::format::xml::to_xml(
            "DnsResults",
            &env,
            cfg.pretty_print,
        )),
    }
}

fn finish(env: Value, cfg: &DnsConfig) -> ExecuteResult {
    let statuses: Vec<AdStatus> = env["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Statuses"].as_array().into_iter().flatten())
        .filter_map(|s| serde_json::from_value::<AdStatus>(s["Status"].clone()).ok())
        .collect();
    let ok = statuses.iter().filter(|s| **s == AdStatus::Success).count();
    let status = if ok == statuses.len() {
        StatusType::Complete
    } else if ok == 0 {
        StatusType::Failed
    } else {
        StatusType::CompletedWithErrors
    };
    let worst = worst_status(&env);
    let message = env["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Statuses"].as_array().into_iter().flatten())
        .find(|s| s["Status"] != json!(1))
        .and_then(|s| s["Message"].as_str().map(str::to_string))
        .map(|m| {
            format!(
                "{ok} of {} steps succeeded; first failure: {m}",
                statuses.len()
            )
        })
        .unwrap_or_else(|| format!("{ok} of {} steps succeeded", statuses.len()));
    ExecuteResult {
        status,
        exit_data: render(env, cfg),
        message,
        exit_code: i32::from(worst.code()),
        ran_on: None,
    }
}

fn failed(cfg: &DnsConfig, status: AdStatus, message: String) -> ExecuteResult {
    let mut r = DnsResult::new("None", "");
    r.push(status, action_word(cfg.action), message);
    finish(envelope(vec![r]), cfg)
}

#[async_trait]
impl Handler for DnsHandler {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        Arc::new(descriptor::DnsDescriptor)
    }

    /// Neither an AD domain (AD-integrated zones) nor an RFC 2136 server is configured: no zone to serve.
    fn unconfigured(&self) -> Option<String> {
        (self.domains.is_empty() && self.servers.is_empty()).then(|| {
            "no DNS is configured: neither an AD domain (`Handlers: ActiveDirectory: Domains`, SYNAPSE_AD_*) \
             for AD-integrated zones nor an RFC 2136 server (`Handlers: Dns: Servers`, SYNAPSE_DNS_*)"
                .to_string()
        })
    }

    /// Each RFC 2136 server: a signed SOA query per zone (AD domains are the ActiveDirectoryHandler's
    /// targets).
    async fn check_targets(&self) -> Vec<TargetHealth> {
        futures::future::join_all(self.servers.iter().map(|s| async move {
            let res = s.check().await;
            TargetHealth {
                target: s.name().to_string(),
                ready: res.is_ok(),
                error: res.err(),
            }
        }))
        .await
    }

    async fn execute(&self, ctx: &ActionContext, config: Value, params: Value) -> ExecuteResult {
        let cfg: DnsConfig = match config {
            Value::Null => DnsConfig::default(),
            v => match serde_json::from_value(v) {
                Ok(c) => c,
                Err(e) => {
                    return failed(
                        &DnsConfig::default(),
                        AdStatus::InvalidInput,
                        format!("Config: {e}"),
                    )
                }
            },
        };
        let params: DnsParameters = match params {
            Value::Null => DnsParameters::default(),
            v => match serde_json::from_value(v) {
                Ok(p) => p,
                Err(e) => return failed(&cfg, AdStatus::InvalidInput, format!("Parameters: {e}")),
            },
        };
        let dns = Backends::new(self, cfg.domain.as_deref());
        let c = Ctx {
            dns: &dns,
            dry_run: ctx.dry_run,
        };
        let results = run(&c, &cfg, &params).await;
        let out = finish(envelope(results), &cfg);
        if !cfg.suppress_output {
            ctx.report(StatusType::Running, out.message.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_domain_or_a_server_the_handler_says_it_is_unconfigured() {
        let h = DnsHandler::new(Vec::new());
        let why = h.unconfigured().expect("nothing configured");
        assert!(
            why.contains("Handlers: Dns: Servers") && why.contains("SYNAPSE_AD_"),
            "{why}"
        );
    }
}
