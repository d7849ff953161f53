//! Escaping for the places a `~~token~~` value can land: LDAP filters (RFC 4515) and DNs (RFC 4514).
//!
//! These are the only sanctioned ways to put untrusted text into a filter or a DN. The LDAP-speaking handlers
//! (AD, and the AD-integrated DNS backend) use them for their own filters and declare them as the
//! [`Escaper`]s of their `~~token~~` paths.

//!
//! Parsers of untrusted text: no indexing or slicing that could panic (denied below).
#![deny(clippy::indexing_slicing)]

use synapse_engine::token::Escaper;

/// `~~token~~` inside an LDAP search filter: RFC 4515 assertion-value escaping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LdapFilter;

impl Escaper for LdapFilter {
    fn name(&self) -> &'static str {
        "LdapFilter"
    }
    fn escape(&self, value: &str, _whole: bool) -> Result<String, String> {
        no_nul(value)?;
        Ok(ldap_filter_value(value))
    }
}

/// `~~token~~` in a distinguished name: RFC 4514 attribute-value escaping inside a DN, or, when the token is
/// the whole string, the value must itself be a syntactically valid DN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LdapDn;

impl Escaper for LdapDn {
    fn name(&self) -> &'static str {
        "LdapDn"
    }
    fn escape(&self, value: &str, whole: bool) -> Result<String, String> {
        no_nul(value)?;
        if whole {
            validate_dn(value)
                .map(|()| value.to_string())
                .map_err(|e| format!("fills a whole DN: {}", e.reason))
        } else {
            Ok(ldap_dn_value(value))
        }
    }
}

/// `~~token~~` as an identity (DN, SID, GUID, UPN, `DOMAIN\name` or name): a token that is the whole string
/// is inserted as is (the handler escapes identities when it looks them up); a token inside a longer string
/// is part of a DN and gets RFC 4514 escaping (`cn=~~name~~,ou=Synapse,...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LdapIdentity;

impl Escaper for LdapIdentity {
    fn name(&self) -> &'static str {
        "LdapIdentity"
    }
    fn escape(&self, value: &str, whole: bool) -> Result<String, String> {
        no_nul(value)?;
        Ok(if whole {
            value.to_string()
        } else {
            ldap_dn_value(value)
        })
    }
}

/// No directory value, name or DN holds a NUL: a token value with one is refused (a 400 naming the
/// parameter) by every LDAP escaper, as the identity routes refuse it, instead of reaching the DC (whose
/// answer to `(distinguishedName=\00)` is an "operations error", a 500).
fn no_nul(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err("contains a NUL character, which no directory value can hold".into());
    }
    Ok(())
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
    let chars: Vec<char> = dn.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut i = 0;
    loop {
        // attribute type
        while at(i) == Some(' ') {
            i += 1;
        }
        let start = i;
        while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            i += 1;
        }
        let attr: String = chars.get(start..i).unwrap_or_default().iter().collect();
        let keyword = attr.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let oid = !attr.is_empty()
            && attr
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !(keyword || oid) {
            return Err(fail("expected an attribute type such as cn, ou or dc"));
        }
        while at(i) == Some(' ') {
            i += 1;
        }
        if at(i) != Some('=') {
            return Err(fail("expected '=' after the attribute type"));
        }
        i += 1;
        // attribute value
        if at(i) == Some('#') {
            i += 1;
            let hs = i;
            while at(i).is_some_and(|c| c.is_ascii_hexdigit()) {
                i += 1;
            }
            if i == hs || (i - hs) % 2 != 0 {
                return Err(fail("a '#' value must be an even number of hex digits"));
            }
        } else {
            while let Some(c) = at(i).filter(|c| *c != ',' && *c != '+') {
                match c {
                    '\\' => {
                        let next = at(i + 1);
                        let hex_pair = next.is_some_and(|c| c.is_ascii_hexdigit())
                            && at(i + 2).is_some_and(|d| d.is_ascii_hexdigit());
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
        if at(i).is_none() {
            return Ok(());
        }
        // separator: ',' or '+'
        i += 1;
        if at(i).is_none() {
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
    fn every_escaper_refuses_nul() {
        let escapers: [&dyn Escaper; 3] = [&LdapFilter, &LdapDn, &LdapIdentity];
        for e in escapers {
            for whole in [true, false] {
                let err = e.escape("cn=a\0b,dc=x", whole).unwrap_err();
                assert!(err.contains("NUL"), "{}: {err}", e.name());
            }
            assert!(e.escape("mfox", false).is_ok(), "{}", e.name());
        }
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

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // test code
mod token_tests {
    //! The escapers through the engine's token substitution, with an independent RFC 4515 reader.
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use serde_json::Value;
    use synapse_engine::token::{
        substitute_str, substitute_tree, EscapeRule, TokenError, Verbatim,
    };

    /// Token values as the engine looks them up (case-insensitive dynamic parameters).
    fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<Value> {
        let params: synapse_engine::DynamicParams = pairs.iter().copied().collect();
        move |name: &str| params.get(name).cloned()
    }

    #[test]
    fn verbatim_filter_and_dn() {
        let l = lookup_from(&[("x", "a*)(b"), ("dn", "cn=Fox\\, M,dc=x"), ("n", "Fox, M")]);
        assert_eq!(
            substitute_str("hi ~~x~~", &Verbatim, &l).unwrap(),
            "hi a*)(b"
        );
        assert_eq!(
            substitute_str("(cn=~~x~~)", &LdapFilter, &l).unwrap(),
            "(cn=a\\2a\\29\\28b)"
        );
        assert_eq!(
            substitute_str("~~dn~~", &LdapDn, &l).unwrap(),
            "cn=Fox\\, M,dc=x"
        );
        assert_eq!(
            substitute_str("cn=~~n~~,dc=x", &LdapDn, &l).unwrap(),
            "cn=Fox\\, M,dc=x"
        );
        let err = substitute_str("~~n~~", &LdapDn, &l).unwrap_err();
        assert!(matches!(err[0], TokenError::Rejected { .. }));
    }

    #[test]
    fn identities_are_verbatim_whole_and_dn_escaped_inside() {
        let l = lookup_from(&[("id", "Fox, M"), ("n", "a,ou=evil")]);
        assert_eq!(
            substitute_str("~~id~~", &LdapIdentity, &l).unwrap(),
            "Fox, M"
        );
        assert_eq!(
            substitute_str("cn=~~n~~,ou=Synapse,dc=x", &LdapIdentity, &l).unwrap(),
            "cn=a\\,ou\\=evil,ou=Synapse,dc=x"
        );
    }

    #[test]
    fn rules_choose_ldap_escaping_by_path() {
        let rules = vec![
            EscapeRule::new("SearchRequests[*]:Filter", LdapFilter),
            EscapeRule::new("SearchRequests[*]:SearchBase", LdapDn),
        ];
        let l = lookup_from(&[("x", "*"), ("base", "ou=a,dc=b")]);
        let mut v = json!({"SearchRequests": [{"Filter": "(cn=~~x~~)", "SearchBase": "~~base~~"}], "Other": "~~x~~"});
        substitute_tree(&mut v, &rules, &l).unwrap();
        assert_eq!(
            v,
            json!({"SearchRequests": [{"Filter": "(cn=\\2a)", "SearchBase": "ou=a,dc=b"}], "Other": "*"})
        );
    }

    /// An independent RFC 4515 reader for one simple item `(attr=value)`: returns (attr, unescaped value bytes)
    /// only if the whole filter is exactly one equality assertion without wildcards.
    fn parse_single_equality(filter: &str) -> Option<(String, Vec<u8>)> {
        let inner = filter.strip_prefix('(')?.strip_suffix(')')?;
        let eq = inner.find('=')?;
        let (attr, raw) = (&inner[..eq], &inner[eq + 1..]);
        if attr.is_empty()
            || !attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        {
            return None;
        }
        if attr.ends_with(['~', '>', '<', ':']) {
            return None;
        }
        let bytes = raw.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                // Unescaped specials mean a second item, a wildcard (substring/presence) or a malformed filter.
                b'*' | b'(' | b')' | 0 => return None,
                b'\\' => {
                    let hex = raw.get(i + 1..i + 3)?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        Some((attr.to_string(), out))
    }

    /// `(cn=~~x~~)` with `input` is exactly one equality assertion holding `input` (a NUL is refused: no
    /// directory value holds one).
    fn one_equality_assertion(input: &str) -> Result<(), TestCaseError> {
        let l = |name: &str| (name == "x").then(|| Value::String(input.to_string()));
        let filter = substitute_str("(cn=~~x~~)", &LdapFilter, &l);
        if input.contains('\0') {
            prop_assert!(filter.is_err());
            return Ok(());
        }
        let filter = filter.unwrap();
        let (attr, value) = parse_single_equality(&filter).expect("a single equality item");
        prop_assert_eq!(attr, "cn");
        prop_assert_eq!(value, input.as_bytes().to_vec());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_input_is_exactly_one_equality_assertion(input in any::<String>()) {
            one_equality_assertion(&input)?;
        }

        #[test]
        fn hostile_ascii_is_exactly_one_equality_assertion(input in "[\\x00-\\x7f*()\\\\]{0,64}") {
            one_equality_assertion(&input)?;
        }

        #[test]
        fn any_value_inside_an_rdn_keeps_the_dn_valid(input in any::<String>()) {
            let l = |name: &str| (name == "n").then(|| Value::String(input.clone()));
            let dn = substitute_str("cn=~~n~~,ou=Synapse,dc=sandbox,dc=local", &LdapDn, &l);
            if input.contains('\0') {
                prop_assert!(dn.is_err());
                return Ok(());
            }
            let dn = dn.unwrap();
            prop_assert!(validate_dn(&dn).is_ok(), "{:?}", dn);
            prop_assert!(dn.ends_with(",ou=Synapse,dc=sandbox,dc=local"));
        }
    }
}
