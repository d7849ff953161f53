//! Escaping for the places a `~~token~~` value can land: LDAP filters (RFC 4515) and DNs (RFC 4514).
//!
//! These are the only sanctioned ways to put untrusted text into a filter or a DN. Handlers use them too.

/// Where a string value is going, which decides how an inserted value is escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Escaping {
    /// Inserted as is.
    Verbatim,
    /// Inside an LDAP search filter: RFC 4515 assertion-value escaping.
    LdapFilter,
    /// Inside a distinguished name: RFC 4514 attribute-value escaping, or, when the token is the whole
    /// string, the value must itself be a syntactically valid DN.
    LdapDn,
    /// An identity (DN, SID, GUID, UPN, `DOMAIN\name` or name): a token that is the whole string is inserted
    /// as is (the handler escapes identities when it looks them up); a token inside a longer string is part
    /// of a DN and gets RFC 4514 escaping (`cn=~~name~~,ou=Synapse,...`).
    LdapIdentity,
}

/// Escapes `value` for use as an assertion value in an LDAP filter (RFC 4515 §3).
///
/// `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`. Everything else (including UTF-8) stays.
pub fn ldap_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `value` for use as an attribute value inside an RDN (RFC 4514 §2.4).
pub fn ldap_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Why a string is not a distinguished name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{dn}' is not a valid distinguished name: {reason}")]
pub struct DnError {
    pub dn: String,
    pub reason: String,
}

/// Checks RFC 4514 syntax: `attr=value(+attr=value)*(,attr=value...)*`, attribute types being keywords
/// (`cn`, `ou`, `dc`, ...) or OIDs, values escaped. The empty string (the root DSE) is not accepted.
pub fn validate_dn(dn: &str) -> Result<(), DnError> {
    let fail = |reason: &str| DnError {
        dn: dn.to_string(),
        reason: reason.to_string(),
    };
    if dn.trim().is_empty() {
        return Err(fail("it is empty"));
    }
    let bytes: Vec<char> = dn.chars().collect();
    let mut i = 0;
    loop {
        // attribute type
        while i < bytes.len() && bytes[i] == ' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '-' || bytes[i] == '.')
        {
            i += 1;
        }
        let attr: String = bytes[start..i].iter().collect();
        let keyword = attr.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let oid = !attr.is_empty()
            && attr
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !(keyword || oid) {
            return Err(fail("expected an attribute type such as cn, ou or dc"));
        }
        while i < bytes.len() && bytes[i] == ' ' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != '=' {
            return Err(fail("expected '=' after the attribute type"));
        }
        i += 1;
        // attribute value
        if i < bytes.len() && bytes[i] == '#' {
            i += 1;
            let hs = i;
            while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i == hs || (i - hs) % 2 != 0 {
                return Err(fail("a '#' value must be an even number of hex digits"));
            }
        } else {
            while i < bytes.len() && bytes[i] != ',' && bytes[i] != '+' {
                match bytes[i] {
                    '\\' => {
                        let next = bytes.get(i + 1).copied();
                        let hex_pair = next.is_some_and(|c| c.is_ascii_hexdigit())
                            && bytes.get(i + 2).is_some_and(|d| d.is_ascii_hexdigit());
                        match next {
                            Some(c) if " \"#+,;<=>\\".contains(c) => i += 2,
                            _ if hex_pair => i += 3,
                            _ => return Err(fail(
                                "'\\' must be followed by a special character or two hex digits",
                            )),
                        }
                    }
                    '"' | ';' | '<' | '>' | '=' | '\0' => {
                        return Err(fail("an unescaped special character in a value"))
                    }
                    _ => i += 1,
                }
            }
        }
        if i >= bytes.len() {
            return Ok(());
        }
        // separator: ',' or '+'
        i += 1;
        if i >= bytes.len() {
            return Err(fail("it ends with a separator"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_escapes() {
        assert_eq!(
            ldap_filter_value("*)(objectClass=*"),
            "\\2a\\29\\28objectClass=\\2a"
        );
        assert_eq!(ldap_filter_value("a\\2a"), "a\\5c2a");
        assert_eq!(ldap_filter_value("nul\0"), "nul\\00");
        assert_eq!(ldap_filter_value("Müller"), "Müller");
    }

    #[test]
    fn dn_value_escapes() {
        assert_eq!(ldap_dn_value("Fox, Michael J."), "Fox\\, Michael J.");
        assert_eq!(ldap_dn_value(" #lead trail "), "\\ #lead trail\\ ");
        assert_eq!(ldap_dn_value("#x"), "\\#x");
        assert_eq!(ldap_dn_value("a+b=c"), "a\\+b\\=c");
    }

    #[test]
    fn validates_dns() {
        for ok in [
            "cn=TestUser001,ou=Synapse,dc=sandbox,dc=local",
            "CN=Fox\\, Michael,OU=Users,DC=x",
            "cn=a+sn=b,dc=x",
            "1.2.3=#0401,dc=x",
            "cn=\\2a,dc=x",
        ] {
            assert!(validate_dn(ok).is_ok(), "{ok}");
        }
        for bad in ["", "mfox", "cn=a,", "=x", "cn=a;b", "cn=\\zz", "cn=a\0"] {
            assert!(validate_dn(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escaped_values_make_valid_dns() {
        for v in ["a,b", " x ", "#h", "q\"<>;=+\\", "\0", "\n"] {
            let dn = format!("cn={},dc=x", ldap_dn_value(v));
            assert!(validate_dn(&dn).is_ok(), "{dn:?}");
        }
    }
}
