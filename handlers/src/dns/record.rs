//! The `dnsRecord` codec: MS-DNSP `DNS_RPC_RECORD` as AD and Samba store it in a `dnsNode`'s `dnsRecord`
//! values (layout measured in `../shared/reference/samba-ad-dc-facts.md` §8):
//!
//! ```text
//! DataLength u16 LE | Type u16 LE | Version u8 (5) | Rank u8 (0xF0 zone) | Flags u16 LE | Serial u32 LE
//! | TtlSeconds u32 BIG-endian | Reserved u32 | TimeStamp u32 LE (0 static, else hours since 1601) | Data
//! ```
//!
//! Names in Data are `DNS_COUNT_NAME`s: `[total length incl. the final 0][label count] (len label)* 00`.
//! Decoding is strict (every length must agree, no trailing bytes), so `encode(decode(b)) == b` for every blob
//! that decodes. Type 0 (a tombstone: Data is the FILETIME of the deletion) and unknown types decode to
//! [`RecordData::Other`], kept byte for byte; readers skip tombstones ([`DnsRecord::is_tombstone`]).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Type codes (RFC 1035 and friends) of the records the codec understands.
pub mod rtype {
    pub const TOMBSTONE: u16 = 0;
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
}

/// Rank of a record the zone's primary owns (`DNS_RANK_ZONE`).
pub const RANK_ZONE: u8 = 0xF0;
/// The record layout version every DC writes.
pub const VERSION: u8 = 5;
const HEADER: usize = 24;

/// A decoding failure: what was wrong, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dnsRecord: {0}")]
pub struct DecodeError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// A DNS name as stored: its labels, raw bytes (no trailing dot; the root is no label).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DnsName(pub Vec<Vec<u8>>);

impl DnsName {
    /// Splits dotted text into labels (a trailing dot is dropped). Checking is the caller's
    /// ([`crate::dns::name`]); empty labels are dropped here.
    pub fn from_text(text: &str) -> DnsName {
        DnsName(
            text.trim_end_matches('.')
                .split('.')
                .filter(|l| !l.is_empty())
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        )
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        f.write_str(&parts.join("."))
    }
}

/// The Data part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ns(DnsName),
    Cname(DnsName),
    Ptr(DnsName),
    Mx {
        preference: u16,
        exchange: DnsName,
    },
    /// Character strings, each at most 255 bytes.
    Txt(Vec<Vec<u8>>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: DnsName,
    },
    Soa {
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
        mname: DnsName,
        rname: DnsName,
    },
    /// A tombstone (type 0) or a type this codec does not interpret, byte for byte.
    Other {
        rtype: u16,
        data: Vec<u8>,
    },
}

impl RecordData {
    /// The type code.
    pub fn rtype(&self) -> u16 {
        match self {
            RecordData::A(_) => rtype::A,
            RecordData::Aaaa(_) => rtype::AAAA,
            RecordData::Ns(_) => rtype::NS,
            RecordData::Cname(_) => rtype::CNAME,
            RecordData::Ptr(_) => rtype::PTR,
            RecordData::Mx { .. } => rtype::MX,
            RecordData::Txt(_) => rtype::TXT,
            RecordData::Srv { .. } => rtype::SRV,
            RecordData::Soa { .. } => rtype::SOA,
            RecordData::Other { rtype, .. } => *rtype,
        }
    }

    /// The value as text, the way `dig` shows it (names without the trailing dot; TXT strings quoted when
    /// there are several).
    pub fn value_text(&self) -> String {
        match self {
            RecordData::A(ip) => ip.to_string(),
            RecordData::Aaaa(ip) => ip.to_string(),
            RecordData::Ns(n) | RecordData::Cname(n) | RecordData::Ptr(n) => n.to_string(),
            RecordData::Mx {
                preference,
                exchange,
            } => format!("{preference} {exchange}"),
            RecordData::Txt(parts) => {
                if parts.len() == 1 {
                    String::from_utf8_lossy(&parts[0]).into_owned()
                } else {
                    parts
                        .iter()
                        .map(|p| format!("\"{}\"", String::from_utf8_lossy(p)))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            }
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {target}"),
            RecordData::Soa {
                serial,
                refresh,
                retry,
                expire,
                minimum,
                mname,
                rname,
            } => format!("{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}"),
            RecordData::Other { data, .. } => data.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// One `dnsRecord` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub version: u8,
    pub rank: u8,
    pub flags: u16,
    /// The zone's SOA serial when the record was written.
    pub serial: u32,
    pub ttl: u32,
    pub reserved: u32,
    /// 0: static; else hours since 1601 (aging).
    pub timestamp: u32,
    pub data: RecordData,
}

impl DnsRecord {
    /// A static record as the DC's own tools write it (version 5, rank zone, no flags, no timestamp).
    pub fn new(data: RecordData, ttl: u32, serial: u32) -> DnsRecord {
        DnsRecord {
            version: VERSION,
            rank: RANK_ZONE,
            flags: 0,
            serial,
            ttl,
            reserved: 0,
            timestamp: 0,
            data,
        }
    }

    /// A type-0 record: the remains of a deleted record, to be skipped.
    pub fn is_tombstone(&self) -> bool {
        self.data.rtype() == rtype::TOMBSTONE
    }

    /// Decodes one value (strict: see the module docs).
    pub fn decode(b: &[u8]) -> Result<DnsRecord, DecodeError> {
        if b.len() < HEADER {
            return err(format!(
                "{} bytes, shorter than the 24-byte header",
                b.len()
            ));
        }
        let len = u16::from_le_bytes([b[0], b[1]]) as usize;
        let t = u16::from_le_bytes([b[2], b[3]]);
        let data = &b[HEADER..];
        if data.len() != len {
            return err(format!("DataLength {len} but {} bytes of data", data.len()));
        }
        let rec = DnsRecord {
            version: b[4],
            rank: b[5],
            flags: u16::from_le_bytes([b[6], b[7]]),
            serial: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            ttl: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            reserved: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
            timestamp: u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
            data: decode_data(t, data)?,
        };
        Ok(rec)
    }

    /// Encodes the value. Fails only when a part cannot be represented (a name over 255 bytes, a label
    /// over 63, a TXT string over 255 bytes, data over 65535 bytes).
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let data = encode_data(&self.data)?;
        let len = u16::try_from(data.len())
            .map_err(|_| DecodeError(format!("{} bytes of data", data.len())))?;
        let mut out = Vec::with_capacity(HEADER + data.len());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.data.rtype().to_le_bytes());
        out.push(self.version);
        out.push(self.rank);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        out.extend_from_slice(&self.reserved.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&data);
        Ok(out)
    }
}

/// A cursor over Data.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| DecodeError(format!("data ends before byte {}", self.pos + n)))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16_be(&mut self) -> Result<u16, DecodeError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32_be(&mut self) -> Result<u32, DecodeError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn name(&mut self) -> Result<DnsName, DecodeError> {
        let total = self.u8()? as usize;
        let count = self.u8()? as usize;
        let mut labels = Vec::with_capacity(count);
        let mut used = 0usize;
        for _ in 0..count {
            let l = self.u8()? as usize;
            if l == 0 || l > 63 {
                return err(format!("label length {l}"));
            }
            labels.push(self.take(l)?.to_vec());
            used += 1 + l;
        }
        if self.u8()? != 0 {
            return err("name without its final 0");
        }
        if used + 1 != total {
            return err(format!(
                "name length {total} but {} bytes of labels",
                used + 1
            ));
        }
        Ok(DnsName(labels))
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            err(format!("{} trailing bytes", self.b.len() - self.pos))
        }
    }
}

fn decode_data(t: u16, data: &[u8]) -> Result<RecordData, DecodeError> {
    let mut r = Reader { b: data, pos: 0 };
    let d = match t {
        rtype::A => {
            let s = r.take(4)?;
            RecordData::A(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
        }
        rtype::AAAA => {
            let s = r.take(16)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            RecordData::Aaaa(Ipv6Addr::from(a))
        }
        rtype::NS => RecordData::Ns(r.name()?),
        rtype::CNAME => RecordData::Cname(r.name()?),
        rtype::PTR => RecordData::Ptr(r.name()?),
        rtype::MX => RecordData::Mx {
            preference: r.u16_be()?,
            exchange: r.name()?,
        },
        rtype::TXT => {
            let mut parts = Vec::new();
            while r.pos < data.len() {
                let l = r.u8()? as usize;
                parts.push(r.take(l)?.to_vec());
            }
            if parts.is_empty() {
                return err("TXT without a string");
            }
            RecordData::Txt(parts)
        }
        rtype::SRV => RecordData::Srv {
            priority: r.u16_be()?,
            weight: r.u16_be()?,
            port: r.u16_be()?,
            target: r.name()?,
        },
        rtype::SOA => RecordData::Soa {
            serial: r.u32_be()?,
            refresh: r.u32_be()?,
            retry: r.u32_be()?,
            expire: r.u32_be()?,
            minimum: r.u32_be()?,
            mname: r.name()?,
            rname: r.name()?,
        },
        other => {
            r.pos = data.len();
            RecordData::Other {
                rtype: other,
                data: data.to_vec(),
            }
        }
    };
    r.end()?;
    Ok(d)
}

fn put_name(out: &mut Vec<u8>, n: &DnsName) -> Result<(), DecodeError> {
    let mut total = 1usize;
    for l in &n.0 {
        if l.is_empty() || l.len() > 63 {
            return err(format!("label of {} bytes", l.len()));
        }
        total += 1 + l.len();
    }
    if total > 255 || n.0.len() > 255 {
        return err(format!("name of {total} bytes"));
    }
    out.push(total as u8);
    out.push(n.0.len() as u8);
    for l in &n.0 {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    Ok(())
}

fn encode_data(d: &RecordData) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    match d {
        RecordData::A(ip) => out.extend_from_slice(&ip.octets()),
        RecordData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
        RecordData::Ns(n) | RecordData::Cname(n) | RecordData::Ptr(n) => put_name(&mut out, n)?,
        RecordData::Mx {
            preference,
            exchange,
        } => {
            out.extend_from_slice(&preference.to_be_bytes());
            put_name(&mut out, exchange)?;
        }
        RecordData::Txt(parts) => {
            if parts.is_empty() {
                return err("TXT without a string");
            }
            for p in parts {
                let l = u8::try_from(p.len())
                    .map_err(|_| DecodeError(format!("TXT string of {} bytes", p.len())))?;
                out.push(l);
                out.extend_from_slice(p);
            }
        }
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            out.extend_from_slice(&priority.to_be_bytes());
            out.extend_from_slice(&weight.to_be_bytes());
            out.extend_from_slice(&port.to_be_bytes());
            put_name(&mut out, target)?;
        }
        RecordData::Soa {
            serial,
            refresh,
            retry,
            expire,
            minimum,
            mname,
            rname,
        } => {
            for v in [serial, refresh, retry, expire, minimum] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            put_name(&mut out, mname)?;
            put_name(&mut out, rname)?;
        }
        RecordData::Other { rtype: t, data } => {
            // A known type code with raw data would not decode back to Other.
            if matches!(
                *t,
                rtype::A
                    | rtype::AAAA
                    | rtype::NS
                    | rtype::CNAME
                    | rtype::PTR
                    | rtype::MX
                    | rtype::TXT
                    | rtype::SRV
                    | rtype::SOA
            ) {
                return err(format!("type {t} given as raw data"));
            }
            out.extend_from_slice(data)
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The 28-byte A record `samba-tool dns add ... host1 A 10.1.2.3` wrote (facts §8b).
    const SAMBA_A: [u8; 28] = [
        0x04, 0x00, 0x01, 0x00, 0x05, 0xf0, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
        0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x02, 0x03,
    ];

    #[test]
    fn the_measured_a_record() {
        let r = DnsRecord::decode(&SAMBA_A).unwrap();
        assert_eq!(r.data, RecordData::A(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!((r.ttl, r.serial, r.rank, r.version), (900, 2, 0xF0, 5));
        assert_eq!(r.encode().unwrap(), SAMBA_A);
        assert_eq!(
            DnsRecord::new(r.data.clone(), 900, 2).encode().unwrap(),
            SAMBA_A
        );
    }

    #[test]
    fn the_measured_name_layout() {
        let mut out = Vec::new();
        put_name(&mut out, &DnsName::from_text("dc2.sandbox.local.")).unwrap();
        let mut want = vec![0x13, 0x03, 0x03];
        want.extend_from_slice(b"dc2");
        want.push(7);
        want.extend_from_slice(b"sandbox");
        want.push(5);
        want.extend_from_slice(b"local");
        want.push(0);
        assert_eq!(out, want);
    }

    #[test]
    fn bad_blobs_are_errors() {
        assert!(DnsRecord::decode(&[]).is_err());
        let mut short = SAMBA_A.to_vec();
        short.pop();
        assert!(DnsRecord::decode(&short).is_err());
        let mut long = SAMBA_A.to_vec();
        long.push(0);
        assert!(DnsRecord::decode(&long).is_err());
        let bad_name = [
            3u8, 0, 5, 0, 5, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0,
        ];
        assert!(DnsRecord::decode(&bad_name).is_err());
    }

    #[test]
    fn tombstones_are_kept_and_recognised() {
        let mut b = vec![8u8, 0, 0, 0, 5, 0, 0, 0];
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let r = DnsRecord::decode(&b).unwrap();
        assert!(r.is_tombstone());
        assert_eq!(r.encode().unwrap(), b);
    }

    fn name() -> impl Strategy<Value = DnsName> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..20), 0..6).prop_map(DnsName)
    }

    fn data() -> impl Strategy<Value = RecordData> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| RecordData::A(Ipv4Addr::from(a))),
            any::<[u8; 16]>().prop_map(|a| RecordData::Aaaa(Ipv6Addr::from(a))),
            name().prop_map(RecordData::Ns),
            name().prop_map(RecordData::Cname),
            name().prop_map(RecordData::Ptr),
            (any::<u16>(), name()).prop_map(|(preference, exchange)| RecordData::Mx {
                preference,
                exchange
            }),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..255), 1..4)
                .prop_map(RecordData::Txt),
            (any::<u16>(), any::<u16>(), any::<u16>(), name()).prop_map(
                |(priority, weight, port, target)| RecordData::Srv {
                    priority,
                    weight,
                    port,
                    target
                }
            ),
            (any::<[u32; 5]>(), name(), name()).prop_map(|(v, mname, rname)| RecordData::Soa {
                serial: v[0],
                refresh: v[1],
                retry: v[2],
                expire: v[3],
                minimum: v[4],
                mname,
                rname
            }),
            prop::collection::vec(any::<u8>(), 0..40)
                .prop_map(|data| RecordData::Other { rtype: 0, data }),
        ]
    }

    proptest! {
        #[test]
        fn records_round_trip(d in data(), ttl in any::<u32>(), serial in any::<u32>(),
                              ts in any::<u32>(), flags in any::<u16>()) {
            let mut r = DnsRecord::new(d, ttl, serial);
            r.timestamp = ts;
            r.flags = flags;
            let bytes = r.encode().unwrap();
            let back = DnsRecord::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &r);
            prop_assert_eq!(back.encode().unwrap(), bytes);
        }

        #[test]
        fn what_decodes_encodes_to_the_same_bytes(b in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(r) = DnsRecord::decode(&b) {
                prop_assert_eq!(r.encode().unwrap(), b);
            }
        }
    }
}
