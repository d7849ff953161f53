//! Identities: DN, SID string, GUID, UPN, `DOMAIN\name`, sAMAccountName or name, each turned into an escaped
//! filter (never string-built from raw input) and resolved to exactly one entry.

use crate::ad::domain::DomainPool;
use crate::ad::envelope::{AdObjectType, AdStatus};
use crate::ad::errors::{map_error, Failure};
use crate::ad::{sid, values};
use crate::ldap::escape::{ldap_filter_value, validate_dn};
use crate::ldap::LdapPool;
use ldap3::{Scope, SearchEntry};

/// How an identity string is to be looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    Dn(String),
    Sid(Vec<u8>),
    Guid([u8; 16]),
    Upn(String),
    /// `DOMAIN\name`. A `/` is part of a name (`Sales/Marketing`); the AD API's two-segment paths
    /// (`/ad/user/{domain}/{name}`) become `domain\name` in the controller.
    Qualified {
        domain: String,
        name: String,
    },
    /// sAMAccountName or name.
    Name(String),
}

/// Looks like a DN: `attr=value` with a known-ish attribute type first, and valid RFC 4514 syntax.
fn looks_like_dn(id: &str) -> bool {
    let t = id.trim();
    t.find('=').is_some_and(|i| {
        let attr = t[..i].trim();
        !attr.is_empty()
            && attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    }) && validate_dn(t).is_ok()
}

/// Classifies an identity string.
pub fn classify(identity: &str) -> Identity {
    let id = identity.trim();
    let id = id.strip_prefix("LDAP://").unwrap_or(id);
    if looks_like_dn(id) {
        return Identity::Dn(id.to_string());
    }
    if let Some(b) = sid::parse(id) {
        return Identity::Sid(b);
    }
    if let Some(g) = values::guid_bytes(id) {
        return Identity::Guid(g);
    }
    if let Some((d, n)) = id.split_once('\\') {
        if !d.is_empty() && !n.is_empty() {
            return Identity::Qualified {
                domain: d.to_string(),
                name: n.to_string(),
            };
        }
    }
    if id.contains('@') {
        return Identity::Upn(id.to_string());
    }
    Identity::Name(id.to_string())
}

/// Escapes raw bytes for a filter assertion value (`\xx` per byte).
pub fn escape_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The objectClass part of a lookup filter.
pub fn class_filter(t: AdObjectType) -> &'static str {
    match t {
        AdObjectType::User => "(&(objectCategory=person)(objectClass=user))",
        AdObjectType::Group => "(objectClass=group)",
        AdObjectType::Computer => "(objectClass=computer)",
        AdObjectType::OrganizationalUnit => "(objectClass=organizationalUnit)",
        // Any principal or container that can be a member, an owner or a move target.
        _ => "(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit)(objectClass=container))",
    }
}

/// The attributes read for every object.
pub const READ_ATTRS: &[&str] = &["*", "objectGUID", "objectSid"];

/// The entry an identity names, with `attrs`. Zero hits: DoesNotExist; several: MultipleMatches.
pub async fn resolve(
    pool: &DomainPool,
    t: AdObjectType,
    identity: &str,
    attrs: &[&str],
) -> Result<SearchEntry, Failure> {
    if identity.trim().is_empty() {
        return Err(Failure::new(
            AdStatus::MissingInput,
            "Identity Is Required.",
        ));
    }
    if identity.len() > 4096 || identity.contains('\0') {
        return Err(Failure::new(
            AdStatus::InvalidInput,
            format!("Identity Is Not Valid For {}.", t.name()),
        ));
    }
    let class = class_filter(t);
    let (base, scope, filter) = match classify(identity) {
        Identity::Dn(dn) => (dn, Scope::Base, class.to_string()),
        Identity::Sid(b) => (
            pool.base_dn().to_string(),
            Scope::Subtree,
            format!("(&{class}(objectSid={}))", escape_bytes(&b)),
        ),
        Identity::Guid(g) => (
            pool.base_dn().to_string(),
            Scope::Subtree,
            format!("(&{class}(objectGUID={}))", escape_bytes(&g)),
        ),
        Identity::Upn(u) => (
            pool.base_dn().to_string(),
            Scope::Subtree,
            format!("(&{class}(userPrincipalName={}))", ldap_filter_value(&u)),
        ),
        Identity::Qualified { domain, name } => {
            if !pool.settings().matches_domain(&domain) {
                return Err(Failure::new(
                    AdStatus::DoesNotExist,
                    format!(
                        "Domain [{domain}] Is Not Configured; {} [{identity}] Was Not Found.",
                        t.name()
                    ),
                ));
            }
            let n = ldap_filter_value(&name);
            (
                pool.base_dn().to_string(),
                Scope::Subtree,
                format!("(&{class}(|(sAMAccountName={n})(sAMAccountName={n}$)))"),
            )
        }
        Identity::Name(name) => {
            let n = ldap_filter_value(&name);
            let computer = if t == AdObjectType::Computer {
                format!("(sAMAccountName={n}$)")
            } else {
                String::new()
            };
            (
                pool.base_dn().to_string(),
                Scope::Subtree,
                format!("(&{class}(|(sAMAccountName={n})(name={n}){computer}))"),
            )
        }
    };
    // At most two entries are needed to tell one from several.
    let entries = match pool.lookup(&base, scope, &filter, attrs, 2).await {
        Ok(e) => e,
        // A DN that does not exist (or a base outside the domain: referral).
        Err(e) if matches!(e.ldap_code(), Some(32) | Some(10)) => Vec::new(),
        Err(e) => return Err(map_error(&e, t.name(), identity)),
    };
    match entries.len() {
        0 => Err(Failure::new(
            AdStatus::DoesNotExist,
            format!("{} [{identity}] Not Found.", t.name()),
        )),
        1 => entries
            .into_iter()
            .next()
            .ok_or_else(|| Failure::new(AdStatus::Unknown, "no entry")),
        n => Err(Failure::new(
            AdStatus::MultipleMatches,
            format!("Multiple Objects ({n}) Found With Identity [{identity}]."),
        )),
    }
}

/// Whether an entry with this DN exists (any class).
pub async fn dn_exists(pool: &LdapPool, dn: &str) -> Result<bool, Failure> {
    match pool
        .search(dn, Scope::Base, "(objectClass=*)", &["1.1"])
        .await
    {
        Ok(e) => Ok(!e.is_empty()),
        Err(e) if matches!(e.ldap_code(), Some(32) | Some(10)) => Ok(false),
        Err(e) => Err(map_error(&e, "Object", dn)),
    }
}

/// Resolves any principal (user, group, computer) or a well-known SID to a DN (or `<SID=...>` for
/// well-known principals, which have no entry in the domain partition).
pub async fn principal_dn(pool: &DomainPool, identity: &str) -> Result<String, Failure> {
    if let Some((_, sid)) = sid::well_known(identity) {
        return Ok(format!("<SID={sid}>"));
    }
    let e = resolve(pool, AdObjectType::None, identity, &["1.1"]).await?;
    Ok(e.dn)
}

/// Splits `cn=x,ou=y,dc=z` into (`cn`, `x` unescaped-as-written, `ou=y,dc=z`).
pub fn split_rdn(dn: &str) -> Option<(String, String, String)> {
    let bytes = dn.as_bytes();
    let mut i = 0;
    let mut comma = None;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => {
                comma = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let (rdn, parent) = match comma {
        Some(c) => (&dn[..c], dn[c + 1..].trim()),
        None => (dn, ""),
    };
    let (attr, value) = rdn.split_once('=')?;
    Some((
        attr.trim().to_string(),
        value.trim().to_string(),
        parent.to_string(),
    ))
}

/// Undoes RFC 4514 escaping of an RDN value (`Fox\, M` -> `Fox, M`, `\2a` -> `*`).
pub fn unescape_rdn_value(v: &str) -> String {
    let b = v.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(x) => {
                    out.push(x);
                    i += 3;
                }
                None => {
                    out.push(b[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `dc=sandbox,dc=local` -> `sandbox.local`.
pub fn dns_domain(base_dn: &str) -> String {
    base_dn
        .split(',')
        .filter_map(|p| p.trim().split_once('='))
        .filter(|(a, _)| a.trim().eq_ignore_ascii_case("dc"))
        .map(|(_, v)| v.trim().to_string())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_form() {
        assert!(matches!(
            classify("cn=mfox,ou=Synapse,dc=sandbox,dc=local"),
            Identity::Dn(_)
        ));
        assert!(matches!(classify("CN=Fox\\, M,DC=x"), Identity::Dn(_)));
        assert!(matches!(classify("S-1-5-21-1-2-3-1105"), Identity::Sid(_)));
        assert!(matches!(
            classify("1722b838-57e1-4058-a394-338882af9e2f"),
            Identity::Guid(_)
        ));
        assert!(matches!(classify("mfox@sandbox.local"), Identity::Upn(_)));
        assert_eq!(
            classify("SANDBOX\\mfox"),
            Identity::Qualified {
                domain: "SANDBOX".into(),
                name: "mfox".into()
            }
        );
        assert_eq!(classify("mfox"), Identity::Name("mfox".into()));
        // A slash is part of the name (an encoded `%2F` in one path segment arrives like this).
        assert_eq!(
            classify("Sales/Marketing"),
            Identity::Name("Sales/Marketing".into())
        );
        assert_eq!(
            classify("*)(objectClass=*"),
            Identity::Name("*)(objectClass=*".into())
        );
        assert_eq!(classify("a=b=c(("), Identity::Name("a=b=c((".into()));
    }

    #[test]
    fn rdn_helpers() {
        assert_eq!(
            split_rdn("cn=Fox\\, M,ou=Synapse,dc=x").unwrap(),
            ("cn".into(), "Fox\\, M".into(), "ou=Synapse,dc=x".into())
        );
        assert_eq!(unescape_rdn_value("Fox\\, M\\2a"), "Fox, M*");
        assert_eq!(dns_domain("DC=sandbox,DC=local"), "sandbox.local");
        assert_eq!(escape_bytes(&[0x01, 0xff]), "\\01\\ff");
    }
}
