//! LDAP server URLs: `ldaps://host[:port][/]` or `ldap://host[:port][/]`.

use std::fmt;

/// The scheme of a server URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapScheme {
    /// `ldap://`: TCP, upgraded with StartTLS (clear text is refused by validation).
    Ldap,
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
}

/// A parsed server URL: `ldaps://host[:port][/]` or `ldap://host[:port][/]`. IPv6 hosts go in brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapUrl {
    pub scheme: LdapScheme,
    /// Host name or IP address, without brackets.
    pub host: String,
    pub port: u16,
}

impl LdapUrl {
    /// Parses `url`; the message of the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<LdapUrl, String> {
        let bad = |why: &str| format!("'{url}' is not a usable LDAP URL: {why}");
        let (scheme, rest) = url
            .trim()
            .split_once("://")
            .ok_or_else(|| bad("expected ldaps://host:636 or ldap://host:389"))?;
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "ldaps" => (LdapScheme::Ldaps, 636),
            "ldap" => (LdapScheme::Ldap, 389),
            other => {
                return Err(bad(&format!(
                    "unsupported scheme '{other}' (use ldaps or ldap)"
                )))
            }
        };
        let authority = match rest.split_once('/') {
            Some((auth, "")) => auth,
            Some(_) => {
                return Err(bad(
                    "a path (base DN, attributes, ...) is not supported in the URL; use BaseDn",
                ))
            }
            None => rest,
        };
        if authority.contains('@') || authority.contains('?') || authority.contains('#') {
            return Err(bad("user info, queries and fragments are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("garbage after ']'"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the host contains whitespace"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad(&format!("bad port '{p}'"))),
            },
        };
        Ok(LdapUrl {
            scheme,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for LdapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            LdapScheme::Ldap => "ldap",
            LdapScheme::Ldaps => "ldaps",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let u = LdapUrl::parse("LDAPS://127.0.0.5").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (LdapScheme::Ldaps, "127.0.0.5", 636)
        );
        let u = LdapUrl::parse("ldap://dc1.sandbox.local:3268/").unwrap();
        assert_eq!((u.scheme, u.port), (LdapScheme::Ldap, 3268));
        let u = LdapUrl::parse("ldaps://[::1]:1636").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1636));
        assert_eq!(u.to_string(), "ldaps://[::1]:1636");
        for bad in [
            "127.0.0.5",
            "http://x",
            "ldaps://",
            "ldaps://h:0",
            "ldaps://h:99999",
            "ldaps://h/dc=x",
            "ldaps://u@h",
        ] {
            assert!(LdapUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
