//! The RFC 2136 backend: zones on a standard DNS server (BIND), changed with UPDATE messages and read with
//! queries and AXFR, every message signed with TSIG and every answer's signature checked. Messages are built
//! and parsed by hickory-proto (no DNS wire format written here); this module only frames them on TCP (the
//! 2-byte length of RFC 1035 §4.2.2).
//!
//! - Reads: a node is an `ANY` query over TCP (authoritative, so every RRset at the name); a whole zone is
//!   an AXFR (for the TSIG key: `allow-transfer { key ...; }`).
//! - Creates: the node is read first (an identical value reports `Exists`, a CNAME conflict is refused); the
//!   UPDATE then carries a prerequisite so a concurrent writer cannot slip a conflict in between: a CNAME
//!   needs "name not in use" (RFC 2136 §2.4.5), other data "no CNAME RRset at the name" (§2.4.3). A failed
//!   prerequisite (YXDOMAIN/YXRRSET) is a CNAME conflict. The server bumps the SOA serial itself.
//! - Deletes: the values of the type at the node are read, then exactly those are deleted (§2.5.4).
//! - Every exchange is bounded by the server's `Timeout`; a connection that fails before anything was sent
//!   is tried again (at most [`CONNECT_ATTEMPTS`] times), a read that fails after sending once more; a write
//!   whose answer never came is not repeated (its outcome is unknown, the error says so).

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ad::envelope::AdStatus;
use crate::dns::ad::{Added, DnsError, NodeRecord, Zone};
use crate::dns::record::{rtype, DnsName, DnsRecord, RecordData};
use crate::dns::settings::ServerSettings;
use synapse_engine::clock::SharedClock;

/// Connection attempts per exchange (a refused or timed-out connect sent nothing: safe to repeat).
pub const CONNECT_ATTEMPTS: usize = 3;
/// The most messages an AXFR may take (a bound, not a limit anyone meets: BIND packs ~100 records each).
pub const MAX_AXFR_MESSAGES: usize = 100_000;
/// TSIG fudge: the clock difference the server accepts (RFC 8945 recommends 300 s).
const FUDGE: u16 = 300;

/// What the partition field of an RFC 2136 zone says.
pub const PARTITION: &str = "Rfc2136";

/// One configured server.
pub struct Rfc2136 {
    pub settings: ServerSettings,
    signer: Option<TSigner>,
    signer_error: Option<String>,
    clock: SharedClock,
    ids: AtomicU16,
}

fn err(status: AdStatus, msg: impl Into<String>) -> DnsError {
    DnsError::Status(status, msg.into())
}

fn algorithm(name: &str) -> TsigAlgorithm {
    match name {
        "hmac-sha384" => TsigAlgorithm::HmacSha384,
        "hmac-sha512" => TsigAlgorithm::HmacSha512,
        _ => TsigAlgorithm::HmacSha256,
    }
}

/// `node` in `zone` as an absolute name.
fn owner(zone: &str, node: &str) -> Result<Name, DnsError> {
    let text = if node == "@" {
        format!("{zone}.")
    } else {
        format!("{node}.{zone}.")
    };
    Name::from_ascii(&text)
        .map_err(|e| err(AdStatus::InvalidInput, format!("invalid name {text}: {e}")))
}

fn name_of(n: &DnsName) -> Result<Name, DnsError> {
    let text = format!("{n}.");
    Name::from_ascii(&text)
        .map_err(|e| err(AdStatus::InvalidInput, format!("invalid name {text}: {e}")))
}

fn dns_name(n: &Name) -> DnsName {
    DnsName::from_text(&n.to_ascii().to_ascii_lowercase())
}

/// A value as hickory's RData (SOA and unknown types are not written by users).
fn to_rdata(d: &RecordData) -> Result<RData, DnsError> {
    Ok(match d {
        RecordData::A(ip) => RData::A(A(*ip)),
        RecordData::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        RecordData::Ns(n) => RData::NS(NS(name_of(n)?)),
        RecordData::Cname(n) => RData::CNAME(CNAME(name_of(n)?)),
        RecordData::Ptr(n) => RData::PTR(PTR(name_of(n)?)),
        RecordData::Mx {
            preference,
            exchange,
        } => RData::MX(MX::new(*preference, name_of(exchange)?)),
        RecordData::Txt(parts) => {
            RData::TXT(TXT::from_bytes(parts.iter().map(Vec::as_slice).collect()))
        }
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, name_of(target)?)),
        RecordData::Soa { .. } | RecordData::Other { .. } => {
            return Err(err(
                AdStatus::InvalidInput,
                format!("type {} is not written by this backend", d.rtype()),
            ))
        }
    })
}

/// A record read from the server as the handler's value (`None`: a type the handler does not show).
fn from_rdata(r: &RData) -> Option<RecordData> {
    Some(match r {
        RData::A(a) => RecordData::A(a.0),
        RData::AAAA(a) => RecordData::Aaaa(a.0),
        RData::NS(n) => RecordData::Ns(dns_name(&n.0)),
        RData::CNAME(n) => RecordData::Cname(dns_name(&n.0)),
        RData::PTR(n) => RecordData::Ptr(dns_name(&n.0)),
        RData::MX(m) => RecordData::Mx {
            preference: m.preference(),
            exchange: dns_name(m.exchange()),
        },
        RData::TXT(t) => RecordData::Txt(t.txt_data().iter().map(|b| b.to_vec()).collect()),
        RData::SRV(s) => RecordData::Srv {
            priority: s.priority(),
            weight: s.weight(),
            port: s.port(),
            target: dns_name(s.target()),
        },
        RData::SOA(s) => RecordData::Soa {
            serial: s.serial(),
            refresh: s.refresh() as u32,
            retry: s.retry() as u32,
            expire: s.expire() as u32,
            minimum: s.minimum(),
            mname: dns_name(s.mname()),
            rname: dns_name(s.rname()),
        },
        _ => return None,
    })
}

/// The node name of `name` in `zone` (`@` for the apex).
fn node_of(name: &Name, zone: &str) -> String {
    let n = name.to_ascii().to_ascii_lowercase();
    let n = n.trim_end_matches('.');
    if n == zone {
        "@".into()
    } else {
        n.strip_suffix(&format!(".{zone}")).unwrap_or(n).to_string()
    }
}

/// The rcode as RFC 1035/2136 name it (`REFUSED`, `NOTAUTH`, ...).
fn mnemonic(rc: ResponseCode) -> String {
    match rc {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => format!("rcode {}", u16::from(other)),
    }
}

/// Whether `msg` carries a TSIG record with a MAC (an answer the server signed).
fn has_mac(msg: &Message) -> bool {
    msg.signature().iter().any(|r| match r.data() {
        RData::DNSSEC(DNSSECRData::TSIG(t)) => !t.mac().is_empty(),
        _ => false,
    })
}

/// Whether an exchange may be repeated after the request was sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl Rfc2136 {
    pub fn new(settings: ServerSettings, clock: SharedClock) -> Rfc2136 {
        let (signer, signer_error) = match Name::from_ascii(format!("{}.", settings.key_name))
            .map_err(|e| e.to_string())
            .and_then(|n| {
                TSigner::new(settings.key(), algorithm(&settings.algorithm), n, FUDGE)
                    .map_err(|e| e.to_string())
            }) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(format!("TSIG key {}: {e}", settings.key_name))),
        };
        Rfc2136 {
            settings,
            signer,
            signer_error,
            clock,
            ids: AtomicU16::new(1),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Whether this server serves `zone` (checked, lower case).
    pub fn serves(&self, zone: &str) -> bool {
        self.settings.zones.iter().any(|z| z == zone)
    }

    /// The configured zones.
    pub fn zones(&self) -> Vec<Zone> {
        self.settings.zones.iter().map(|z| self.zone(z)).collect()
    }

    pub fn zone(&self, name: &str) -> Zone {
        Zone {
            name: name.to_string(),
            partition: PARTITION,
            dn: String::new(),
            server: Some(self.settings.name.clone()),
        }
    }

    fn what(&self) -> String {
        format!(
            "DNS server {} ({})",
            self.settings.name, self.settings.address
        )
    }

    fn connection_error(&self, msg: impl std::fmt::Display) -> DnsError {
        err(AdStatus::ConnectionError, format!("{}: {msg}", self.what()))
    }

    fn message(&self, op: OpCode) -> Message {
        let mut m = Message::new();
        m.set_id(self.ids.fetch_add(1, Ordering::Relaxed))
            .set_message_type(MessageType::Query)
            .set_op_code(op)
            .set_recursion_desired(false);
        m
    }

    async fn connect(&self) -> Result<TcpStream, DnsError> {
        let t = self.settings.timeout;
        let mut last = String::new();
        for attempt in 0..CONNECT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            }
            match tokio::time::timeout(t, TcpStream::connect(&self.settings.address)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Ok(Err(e)) => last = format!("cannot connect: {e}"),
                Err(_) => last = format!("no connection within {t:?}"),
            }
        }
        Err(self.connection_error(format!("{last} ({CONNECT_ATTEMPTS} attempts)")))
    }

    /// Signs `m`, sends it on a new connection and reads its answers (one for queries and updates; an AXFR's
    /// until the closing SOA), each answer's TSIG verified (an AXFR's as a chain). `Err((sent, e))`: `sent` when
    /// the request may have reached the server (a write's outcome is then unknown).
    async fn exchange_once(
        &self,
        mut m: Message,
        axfr: bool,
    ) -> Result<Vec<Message>, (bool, DnsError)> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            (
                false,
                err(
                    AdStatus::ConnectionError,
                    self.signer_error.clone().unwrap_or_default(),
                ),
            )
        })?;
        let now = self.clock.now().timestamp().clamp(0, i64::from(u32::MAX)) as u32;
        let mut verifier = m
            .finalize(signer, now)
            .map_err(|e| (false, self.connection_error(format!("cannot sign: {e}"))))?
            .ok_or_else(|| (false, self.connection_error("no TSIG verifier")))?;
        let bytes = m.to_vec().map_err(|e| {
            (
                false,
                err(AdStatus::InvalidInput, format!("cannot encode: {e}")),
            )
        })?;
        let len = u16::try_from(bytes.len())
            .map_err(|_| (false, err(AdStatus::InvalidInput, "message too long")))?;
        let mut stream = self.connect().await.map_err(|e| (false, e))?;
        let t = self.settings.timeout;
        let mut frame = Vec::with_capacity(bytes.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&bytes);
        match tokio::time::timeout(t, stream.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((true, self.connection_error(format!("send failed: {e}")))),
            Err(_) => return Err((true, self.connection_error(format!("send took over {t:?}")))),
        }
        let mut out = Vec::new();
        let mut soas = 0usize;
        let deadline = tokio::time::Instant::now() + if axfr { t * 12 } else { t };
        for _ in 0..MAX_AXFR_MESSAGES {
            let read = async {
                let mut l = [0u8; 2];
                stream.read_exact(&mut l).await?;
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(l))];
                stream.read_exact(&mut buf).await?;
                Ok::<_, std::io::Error>(buf)
            };
            let buf = match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    return Err((true, self.connection_error(format!("answer lost: {e}"))))
                }
                Err(_) => {
                    return Err((
                        true,
                        self.connection_error(format!("no answer within {t:?}")),
                    ))
                }
            };
            let msg = Message::from_vec(&buf).map_err(|e| {
                (
                    true,
                    self.connection_error(format!("unreadable answer: {e}")),
                )
            })?;
            if msg.id() != m.id() {
                return Err((true, self.connection_error("answer to another message")));
            }
            // An error answer without a MAC: the server refused our signature (BADSIG, BADKEY, BADTIME: the
            // TSIG record then carries the error and an empty MAC, RFC 8945 §5.3.2).
            if !has_mac(&msg) && msg.response_code() != ResponseCode::NoError {
                return Err((
                    false,
                    err(
                        AdStatus::ConnectionError,
                        format!(
                            "{} refused the TSIG signature of key {} ({}): check TsigKeyName, TsigSecret and \
                             TsigAlgorithm, and that the clocks agree",
                            self.what(),
                            self.settings.key_name,
                            mnemonic(msg.response_code())
                        ),
                    ),
                ));
            }
            verifier(&buf).map_err(|e| {
                (
                    false,
                    err(
                        AdStatus::ConnectionError,
                        format!(
                            "{}: the answer's TSIG signature does not verify with key {}: {e}",
                            self.what(),
                            self.settings.key_name
                        ),
                    ),
                )
            })?;
            if axfr {
                soas += msg
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == RecordType::SOA)
                    .count();
                let failed = msg.response_code() != ResponseCode::NoError;
                out.push(msg);
                if failed || soas >= 2 {
                    return Ok(out);
                }
            } else {
                out.push(msg);
                return Ok(out);
            }
        }
        Err((
            true,
            self.connection_error(format!("AXFR over {MAX_AXFR_MESSAGES} messages")),
        ))
    }

    async fn exchange(&self, m: Message, kind: Kind, axfr: bool) -> Result<Vec<Message>, DnsError> {
        match self.exchange_once(m.clone(), axfr).await {
            Ok(v) => Ok(v),
            // A read whose answer was lost is asked once more (a fresh connection).
            Err((true, _)) if kind == Kind::Read => {
                self.exchange_once(m, axfr).await.map_err(|(_, e)| e)
            }
            Err((sent, e)) if kind == Kind::Write && sent => Err(match e {
                DnsError::Status(s, msg) => DnsError::Status(
                    s,
                    format!("{msg} (the update was sent: it may or may not have been applied)"),
                ),
                other => other,
            }),
            Err((_, e)) => Err(e),
        }
    }

    /// A rcode other than NOERROR as an error naming it.
    fn rcode_error(&self, zone: &str, what: &str, rc: ResponseCode) -> DnsError {
        let (status, hint) = match rc {
            ResponseCode::Refused => (
                AdStatus::NotAllowed,
                format!(
                    "does the server serve zone {zone}, and grant key {} in its allow-query/allow-update/\
                     allow-transfer?",
                    self.settings.key_name
                ),
            ),
            ResponseCode::NotAuth => (
                AdStatus::NotAllowed,
                format!("the server is not authoritative for zone {zone}"),
            ),
            ResponseCode::NotZone => (AdStatus::InvalidInput, "name not in the zone".into()),
            ResponseCode::NXDomain => (AdStatus::DoesNotExist, "no such name".into()),
            ResponseCode::ServFail => (
                AdStatus::ConnectionError,
                format!("the server failed (is zone {zone} loaded?)"),
            ),
            _ => (AdStatus::Unknown, String::new()),
        };
        err(
            status,
            format!(
                "{} answered {} ({}) to {what}{}{hint}",
                self.what(),
                mnemonic(rc),
                rc.to_str(),
                if hint.is_empty() { "" } else { ": " }
            ),
        )
    }

    async fn query(&self, zone: &str, name: Name, t: RecordType) -> Result<Message, DnsError> {
        let mut m = self.message(OpCode::Query);
        let mut q = Query::new();
        q.set_name(name.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(t);
        m.add_query(q);
        let msg = self
            .exchange(m, Kind::Read, false)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| self.connection_error("no answer"))?;
        match msg.response_code() {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            rc => return Err(self.rcode_error(zone, &format!("a query for {name} {t}"), rc)),
        }
        if !msg.authoritative() {
            return Err(err(
                AdStatus::NotAllowed,
                format!(
                    "{} is not authoritative for {name} (is zone {zone} on it?)",
                    self.what()
                ),
            ));
        }
        Ok(msg)
    }

    /// The zone's SOA serial, from a signed query (`None`: the server does not serve the zone).
    pub async fn soa_serial(&self, zone: &str) -> Result<Option<u32>, DnsError> {
        let m = match self.query(zone, owner(zone, "@")?, RecordType::SOA).await {
            Ok(m) => m,
            Err(DnsError::Status(AdStatus::NotAllowed, _)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(m.answers().iter().find_map(|r| match r.data() {
            RData::SOA(s) => Some(s.serial()),
            _ => None,
        }))
    }

    fn node_records(zone: &str, records: &[Record], out: &mut Vec<NodeRecord>) {
        for r in records {
            if r.dns_class() != DNSClass::IN {
                continue;
            }
            if let Some(data) = from_rdata(r.data()) {
                out.push(NodeRecord {
                    node: node_of(r.name(), zone),
                    record: DnsRecord::new(data, r.ttl(), 0),
                });
            }
        }
    }

    /// The records at `node` (an ANY query), or of the whole zone (AXFR, the SOA once).
    pub async fn records(
        &self,
        zone: &Zone,
        node: Option<&str>,
    ) -> Result<Vec<NodeRecord>, DnsError> {
        let mut out = Vec::new();
        match node {
            Some(n) => {
                let m = self
                    .query(&zone.name, owner(&zone.name, n)?, RecordType::ANY)
                    .await?;
                Self::node_records(&zone.name, m.answers(), &mut out);
            }
            None => {
                let mut m = self.message(OpCode::Query);
                let mut q = Query::new();
                q.set_name(owner(&zone.name, "@")?)
                    .set_query_class(DNSClass::IN)
                    .set_query_type(RecordType::AXFR);
                m.add_query(q);
                let msgs = self.exchange(m, Kind::Read, true).await?;
                for msg in &msgs {
                    if msg.response_code() != ResponseCode::NoError {
                        return Err(self.rcode_error(
                            &zone.name,
                            &format!("a zone transfer (AXFR) of {}", zone.name),
                            msg.response_code(),
                        ));
                    }
                    Self::node_records(&zone.name, msg.answers(), &mut out);
                }
                // The transfer ends with the SOA again.
                if out.len() > 1 && out.last().map(|r| r.record.data.rtype()) == Some(rtype::SOA) {
                    out.pop();
                }
            }
        }
        Ok(out)
    }

    fn update(&self, zone: &str) -> Result<Message, DnsError> {
        let mut m = self.message(OpCode::Update);
        let mut q = Query::new();
        q.set_name(owner(zone, "@")?)
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        m.add_zone(q);
        Ok(m)
    }

    async fn send_update(
        &self,
        zone: &str,
        m: Message,
        what: &str,
    ) -> Result<ResponseCode, DnsError> {
        let msg = self
            .exchange(m, Kind::Write, false)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| self.connection_error("no answer"))?;
        match msg.response_code() {
            rc @ (ResponseCode::NoError | ResponseCode::YXDomain | ResponseCode::YXRRSet) => Ok(rc),
            rc => Err(self.rcode_error(zone, what, rc)),
        }
    }

    /// Adds one value at `node` (see the module docs for the checks and prerequisites).
    pub async fn add_record(
        &self,
        zone: &Zone,
        node: &str,
        data: &RecordData,
        ttl: u32,
        dry_run: bool,
    ) -> Result<Added, DnsError> {
        let rdata = to_rdata(data)?;
        let live = self.records(zone, Some(node)).await?;
        if live.iter().any(|r| &r.record.data == data) {
            return Ok(Added::Exists);
        }
        let is_cname = data.rtype() == rtype::CNAME;
        let has_cname = live.iter().any(|r| r.record.data.rtype() == rtype::CNAME);
        if is_cname && has_cname {
            return Ok(Added::CnameConflict(format!(
                "{node} already has a CNAME (only one is allowed)"
            )));
        }
        if is_cname && !live.is_empty() {
            return Ok(Added::CnameConflict(format!(
                "{node} has other records: a CNAME cannot share its name with other data"
            )));
        }
        if has_cname {
            return Ok(Added::CnameConflict(format!(
                "{node} is a CNAME: other data cannot be added beside it"
            )));
        }
        if dry_run {
            return Ok(Added::Added(0));
        }
        let name = owner(&zone.name, node)?;
        let mut m = self.update(&zone.name)?;
        // Prerequisites (RFC 2136 §2.4): CLASS NONE, no data.
        let mut pre = Record::update0(
            name.clone(),
            0,
            if is_cname {
                RecordType::ANY
            } else {
                RecordType::CNAME
            },
        );
        pre.set_dns_class(DNSClass::NONE);
        m.add_pre_requisite(pre);
        m.add_update(Record::from_rdata(name.clone(), ttl, rdata));
        let what = format!(
            "the update adding {} {}",
            name.to_ascii().trim_end_matches('.'),
            data.value_text()
        );
        match self.send_update(&zone.name, m, &what).await? {
            ResponseCode::NoError => Ok(Added::Added(0)),
            ResponseCode::YXDomain => Ok(Added::CnameConflict(format!(
                "{node} is in use: a CNAME cannot share its name with other data"
            ))),
            _ => Ok(Added::CnameConflict(format!(
                "{node} is a CNAME: other data cannot be added beside it"
            ))),
        }
    }

    /// Deletes the values of type `t` at `node` (all, or the one equal to `value`); returns them.
    pub async fn delete_records(
        &self,
        zone: &Zone,
        node: &str,
        t: u16,
        value: Option<&RecordData>,
        dry_run: bool,
    ) -> Result<Vec<DnsRecord>, DnsError> {
        let gone: Vec<DnsRecord> = self
            .records(zone, Some(node))
            .await?
            .into_iter()
            .filter(|r| r.node == node)
            .map(|r| r.record)
            .filter(|r| r.data.rtype() == t && value.is_none_or(|v| &r.data == v))
            .collect();
        if gone.is_empty() || dry_run {
            return Ok(gone);
        }
        let name = owner(&zone.name, node)?;
        let mut m = self.update(&zone.name)?;
        for g in &gone {
            // Delete an RR from an RRset (§2.5.4): CLASS NONE, TTL 0, the data.
            let mut r = Record::from_rdata(name.clone(), 0, to_rdata(&g.data)?);
            r.set_dns_class(DNSClass::NONE);
            m.add_update(r);
        }
        let what = format!(
            "the update deleting {} {}",
            name.to_ascii().trim_end_matches('.'),
            crate::dns::types::type_name(t)
        );
        self.send_update(&zone.name, m, &what).await?;
        Ok(gone)
    }

    /// Readiness: a signed SOA query per zone. `Err`: what failed, per zone.
    pub async fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for z in &self.settings.zones {
            match self.soa_serial(z).await {
                Ok(Some(_)) => {}
                Ok(None) => problems.push(format!("zone {z}: not served (no SOA)")),
                Err(e) => problems.push(format!("zone {z}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_rdata() {
        let vals = [
            RecordData::A("10.1.2.3".parse().unwrap()),
            RecordData::Aaaa("fd00::5".parse().unwrap()),
            RecordData::Cname(DnsName::from_text("h1.example.test")),
            RecordData::Ptr(DnsName::from_text("h1.example.test")),
            RecordData::Mx {
                preference: 5,
                exchange: DnsName::from_text("mail.example.test"),
            },
            RecordData::Txt(vec![b"hello".to_vec(), b"world".to_vec()]),
            RecordData::Srv {
                priority: 0,
                weight: 100,
                port: 389,
                target: DnsName::from_text("dc.example.test"),
            },
        ];
        for v in vals {
            let r = to_rdata(&v).unwrap();
            assert_eq!(from_rdata(&r).unwrap(), v);
        }
        assert!(to_rdata(&RecordData::Other {
            rtype: 99,
            data: vec![]
        })
        .is_err());
    }

    #[test]
    fn node_names() {
        let n = Name::from_ascii("H1.Example.Test.").unwrap();
        assert_eq!(node_of(&n, "example.test"), "h1");
        let apex = Name::from_ascii("example.test.").unwrap();
        assert_eq!(node_of(&apex, "example.test"), "@");
        assert_eq!(
            owner("example.test", "@").unwrap().to_ascii(),
            "example.test."
        );
    }
}
