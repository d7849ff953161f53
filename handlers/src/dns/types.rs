//! Record types by name, and record values from text (checked: names by RFC 1035/1123, addresses, numbers).
//!
//! | Type | Value text |
//! |---|---|
//! | A, AAAA | an address |
//! | CNAME, PTR, NS | a host name (absolute; a trailing dot is optional) |
//! | MX | `preference exchange` (`10 mail.example.com`); `exchange` alone takes preference 10 |
//! | SRV | `priority weight port target` (`0 100 389 dc.example.com`) |
//! | TXT | the text (split into 255-byte strings) |

use crate::dns::name::{check_ipv4, check_ipv6, check_name};
use crate::dns::record::{rtype, DnsName, RecordData};

/// The record types the handler creates and lists.
pub const TYPES: [(&str, u16); 9] = [
    ("A", rtype::A),
    ("AAAA", rtype::AAAA),
    ("CNAME", rtype::CNAME),
    ("PTR", rtype::PTR),
    ("NS", rtype::NS),
    ("MX", rtype::MX),
    ("TXT", rtype::TXT),
    ("SRV", rtype::SRV),
    ("SOA", rtype::SOA),
];

/// A type code's name (`TYPE<n>` for others).
pub fn type_name(t: u16) -> String {
    TYPES
        .iter()
        .find(|(_, c)| *c == t)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("TYPE{t}"))
}

/// A type name (case-insensitive; upstream's `AType`/`PtrType` too) to its code.
pub fn type_code(name: &str) -> Result<u16, String> {
    let n = name.trim().to_ascii_uppercase();
    let n = n
        .strip_suffix("TYPE")
        .filter(|s| !s.is_empty())
        .unwrap_or(&n);
    TYPES
        .iter()
        .find(|(t, _)| *t == n)
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            format!("Type '{name}' is not one of A, AAAA, CNAME, PTR, NS, MX, TXT, SRV, SOA")
        })
}

fn host(field: &str, v: &str) -> Result<DnsName, String> {
    Ok(DnsName::from_text(&check_name(field, v.trim())?))
}

fn number<T: std::str::FromStr>(field: &str, what: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{field}: {what} '{v}' is not a valid number"))
}

/// Parses a value of type `t` from text. SOA values are not created by users.
pub fn parse_value(t: u16, v: &str) -> Result<RecordData, String> {
    const F: &str = "Value";
    let parts: Vec<&str> = v.split_whitespace().collect();
    match t {
        rtype::A => Ok(RecordData::A(check_ipv4(F, v)?)),
        rtype::AAAA => Ok(RecordData::Aaaa(check_ipv6(F, v)?)),
        rtype::CNAME => Ok(RecordData::Cname(host(F, v)?)),
        rtype::PTR => Ok(RecordData::Ptr(host(F, v)?)),
        rtype::NS => Ok(RecordData::Ns(host(F, v)?)),
        rtype::MX => match parts.as_slice() {
            [name] => Ok(RecordData::Mx {
                preference: 10,
                exchange: host(F, name)?,
            }),
            [p, name] => Ok(RecordData::Mx {
                preference: number(F, "MX preference", p)?,
                exchange: host(F, name)?,
            }),
            _ => Err(format!(
                "Value '{v}' is not an MX value such as '10 mail.example.com'"
            )),
        },
        rtype::SRV => match parts.as_slice() {
            [p, w, port, target] => Ok(RecordData::Srv {
                priority: number(F, "SRV priority", p)?,
                weight: number(F, "SRV weight", w)?,
                port: number(F, "SRV port", port)?,
                target: host(F, target)?,
            }),
            _ => Err(format!(
                "Value '{v}' is not an SRV value such as '0 100 389 dc.example.com'"
            )),
        },
        rtype::TXT => {
            if v.is_empty() {
                return Err("Value is empty (a TXT record needs text)".into());
            }
            if v.len() > 4000 {
                return Err(format!("Value is {} bytes long (at most 4000)", v.len()));
            }
            Ok(RecordData::Txt(
                v.as_bytes().chunks(255).map(<[u8]>::to_vec).collect(),
            ))
        }
        rtype::SOA => Err("SOA records are managed by the zone, not created".into()),
        other => Err(format!("type {other} is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_values() {
        assert_eq!(type_code("atype").unwrap(), rtype::A);
        assert_eq!(type_code("PTRType").unwrap(), rtype::PTR);
        assert_eq!(type_code("aaaa").unwrap(), rtype::AAAA);
        assert!(type_code("type").is_err());
        assert!(type_code("X").is_err());
        assert_eq!(
            parse_value(rtype::MX, "5 Mail.Example.com.")
                .unwrap()
                .value_text(),
            "5 mail.example.com"
        );
        assert_eq!(
            parse_value(rtype::SRV, "0 100 389 dc.x")
                .unwrap()
                .value_text(),
            "0 100 389 dc.x"
        );
        assert!(parse_value(rtype::A, "10.1.2").is_err());
        assert!(parse_value(rtype::CNAME, "a*b").is_err());
        assert!(parse_value(rtype::SRV, "1 2 70000 x").is_err());
        assert!(parse_value(rtype::SOA, "x").is_err());
    }
}
