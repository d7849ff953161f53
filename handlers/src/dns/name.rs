//! Name, address and TTL checks (RFC 1035 §2.3.4, RFC 1123 §2.1, RFC 2181 §11 for `_` in service names):
//! labels of 1..=63 characters from `A-Z a-z 0-9 - _`, not starting or ending with `-`; at most 253
//! characters in all (no trailing dot). Wildcards (`*`), empty labels (`..`), and DN/filter metacharacters
//! are refused before anything reaches LDAP or DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest name in text form (RFC 1035: 255 octets on the wire).
pub const MAX_NAME: usize = 253;
/// The longest label.
pub const MAX_LABEL: usize = 63;
/// The longest TTL (RFC 2181 §8: 2^31 - 1).
pub const MAX_TTL: u64 = 2_147_483_647;

/// Checks a DNS name (absolute or relative; one trailing dot allowed) and returns it lower-cased without
/// the trailing dot. `field` names the input in the error.
pub fn check_name(field: &str, name: &str) -> Result<String, String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if n.len() > MAX_NAME {
        return Err(format!(
            "{field} is {} characters long (at most {MAX_NAME})",
            n.len()
        ));
    }
    for label in n.split('.') {
        check_label(field, label)?;
    }
    Ok(n.to_ascii_lowercase())
}

fn check_label(field: &str, label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err(format!(
            "{field} has an empty label (`..` or a leading dot)"
        ));
    }
    if label.len() > MAX_LABEL {
        return Err(format!(
            "{field} has a label of {} characters (at most {MAX_LABEL})",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{field} contains '{}' (letters, digits, '-' and '_' only)",
            c.escape_default()
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!(
            "{field} has a label starting or ending with '-': {label}"
        ));
    }
    Ok(())
}

/// A record name relative to `zone`: `@` or the zone itself is the apex (`@`); `host.zone` and `host` are
/// `host`. Returns the node name (lower case).
pub fn relative_name(field: &str, name: &str, zone: &str) -> Result<String, String> {
    let t = name.trim();
    if t == "@" {
        return Ok("@".into());
    }
    let n = check_name(field, t)?;
    if n == zone {
        return Ok("@".into());
    }
    if let Some(rel) = n.strip_suffix(&format!(".{zone}")) {
        return Ok(rel.to_string());
    }
    Ok(n)
}

/// A TTL in seconds.
pub fn check_ttl(ttl: i64) -> Result<u32, String> {
    if ttl < 0 || ttl as u64 > MAX_TTL {
        return Err(format!("Ttl {ttl} is out of range (0..={MAX_TTL})"));
    }
    Ok(ttl as u32)
}

/// An IPv4 address (dotted quad only).
pub fn check_ipv4(field: &str, v: &str) -> Result<Ipv4Addr, String> {
    v.trim()
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("{field} is not an IPv4 address: {v}"))
}

/// An IPv6 address.
pub fn check_ipv6(field: &str, v: &str) -> Result<Ipv6Addr, String> {
    v.trim()
        .parse::<Ipv6Addr>()
        .map_err(|_| format!("{field} is not an IPv6 address: {v}"))
}

/// The name of the PTR record for `ip` (`3.2.1.10.in-addr.arpa`, nibbles for IPv6).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut parts: Vec<String> = Vec::with_capacity(34);
            for b in v6.octets().iter().rev() {
                parts.push(format!("{:x}", b & 0xf));
                parts.push(format!("{:x}", b >> 4));
            }
            parts.push("ip6.arpa".into());
            parts.join(".")
        }
    }
}

/// The reverse zone of a network: `10.1.2.0/24` -> `2.1.10.in-addr.arpa` (IPv4 prefixes of 8, 16 or 24
/// bits), `fd00:1::/64` -> the nibble zone (IPv6 prefixes that are a multiple of 4, 4..=124). A network
/// without a prefix takes /24 (IPv4) or /64 (IPv6). Host bits must be zero.
pub fn reverse_zone(network: &str) -> Result<String, String> {
    let (addr, prefix) = match network.trim().split_once('/') {
        Some((a, p)) => (
            a,
            Some(
                p.parse::<u8>()
                    .map_err(|_| format!("Network has an invalid prefix length: {network}"))?,
            ),
        ),
        None => (network.trim(), None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("Network is not an IP network such as 10.1.2.0/24: {network}"))?;
    match ip {
        IpAddr::V4(v4) => {
            let p = prefix.unwrap_or(24);
            if !matches!(p, 8 | 16 | 24) {
                return Err(format!(
                    "Network prefix /{p}: IPv4 reverse zones are /8, /16 or /24"
                ));
            }
            let o = v4.octets();
            let n = (p / 8) as usize;
            if o[n..].iter().any(|b| *b != 0) {
                return Err(format!("Network {network} has host bits set"));
            }
            let mut labels: Vec<String> = o[..n].iter().rev().map(|b| b.to_string()).collect();
            labels.push("in-addr.arpa".into());
            Ok(labels.join("."))
        }
        IpAddr::V6(v6) => {
            let p = prefix.unwrap_or(64);
            if p == 0 || p > 124 || p % 4 != 0 {
                return Err(format!(
                    "Network prefix /{p}: IPv6 reverse zones need a multiple of 4 (4..=124)"
                ));
            }
            let bits = u128::from(v6);
            if bits << p != 0 {
                return Err(format!("Network {network} has host bits set"));
            }
            let full = reverse_name(IpAddr::V6(v6));
            // 32 nibbles + "ip6.arpa"; keep the first p/4 nibbles of the address (the last in the name).
            let nibbles: Vec<&str> = full.split('.').take(32).collect();
            let keep = (p / 4) as usize;
            let mut labels: Vec<&str> = nibbles[32 - keep..].to_vec();
            labels.push("ip6.arpa");
            Ok(labels.join("."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            check_name("Name", "Host-1.Example.").unwrap(),
            "host-1.example"
        );
        assert!(check_name("Name", "_ldap._tcp").is_ok());
        for bad in [
            "*", "a..b", ".a", "-a", "a-", "a b", "a,b", "a=b", "a)", "a*", "", ".",
        ] {
            assert!(check_name("Name", bad).is_err(), "{bad}");
        }
        assert!(check_name("Name", &"a".repeat(64)).is_err());
        assert!(check_name("Name", &"a".repeat(300)).is_err());
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(check_name("Name", &long).is_err());
    }

    #[test]
    fn relative() {
        assert_eq!(
            relative_name("Name", "www.z.test", "z.test").unwrap(),
            "www"
        );
        assert_eq!(relative_name("Name", "z.test.", "z.test").unwrap(), "@");
        assert_eq!(relative_name("Name", "@", "z.test").unwrap(), "@");
        assert_eq!(relative_name("Name", "a.b", "z.test").unwrap(), "a.b");
    }

    #[test]
    fn reverse() {
        assert_eq!(reverse_zone("10.1.2.0/24").unwrap(), "2.1.10.in-addr.arpa");
        assert_eq!(reverse_zone("10.0.0.0/8").unwrap(), "10.in-addr.arpa");
        assert!(reverse_zone("10.1.2.3/24").is_err());
        assert!(reverse_zone("10.1.2.0/23").is_err());
        assert_eq!(
            reverse_zone("fd00:1::/32").unwrap(),
            "1.0.0.0.0.0.d.f.ip6.arpa"
        );
        assert_eq!(
            reverse_name("10.1.2.3".parse().unwrap()),
            "3.2.1.10.in-addr.arpa"
        );
        assert!(reverse_name("::1".parse().unwrap()).starts_with("1.0.0."));
        assert!(check_ttl(-1).is_err());
        assert_eq!(check_ttl(300).unwrap(), 300);
    }
}
