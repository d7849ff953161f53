//! `~~name~~` tokens: substituted from dynamic parameters into plan-authored strings, escaped for the place
//! they land (see [`Escaping`]). Handlers declare which parameter paths are LDAP filters or DNs with
//! [`EscapeRule`]s; everything else is verbatim.
//!
//! Only strings the plan author wrote (Values, after InheritFrom) are scanned. Values that arrive through
//! Dynamic, ParentExitData or ForEach are data and are never scanned for tokens, so a caller cannot smuggle a
//! token into another parameter.

use crate::escape::{ldap_dn_value, ldap_filter_value, validate_dn, Escaping};
use crate::path::{scalar_text, Seg};
use serde_json::Value;

/// One `~~name~~` occurrence: byte range in the text and the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenMatch<'a> {
    pub start: usize,
    pub end: usize,
    pub name: &'a str,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Every `~~name~~` in `text`, left to right: a name starts with a letter or `_` and holds letters, digits,
/// `_`, `.` and `-`. Anything else between `~~` pairs is left alone (so `~null~` and `~~ x ~~` are text).
pub fn tokens(text: &str) -> impl Iterator<Item = TokenMatch<'_>> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while let Some(off) = text.get(pos..).and_then(|t| t.find("~~")) {
            let start = pos + off;
            let name_start = start + 2;
            let mut i = name_start;
            if i < bytes.len() && is_name_start(bytes[i]) {
                while i < bytes.len() && is_name_char(bytes[i]) {
                    i += 1;
                }
                if bytes.get(i..i + 2) == Some(b"~~".as_slice()) {
                    pos = i + 2;
                    return Some(TokenMatch {
                        start,
                        end: i + 2,
                        name: &text[name_start..i],
                    });
                }
            }
            pos = start + 1;
        }
        None
    })
}

/// The token names used in `text`, in order (duplicates kept).
pub fn token_names(text: &str) -> impl Iterator<Item = &str> {
    tokens(text).map(|m| m.name)
}

/// A path pattern with its escaping: `SearchRequests[*]:Filter` -> LdapFilter.
/// Segments are keys (compared case-insensitively), `*` for any key, `[*]` for any index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscapeRule {
    pattern: Vec<PatternSeg>,
    pub escaping: Escaping,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PatternSeg {
    Key(String),
    AnyKey,
    AnyIndex,
}

impl EscapeRule {
    /// Builds a rule from a pattern such as `SearchRequests[*]:Filter` or `Users[*]:Identity`.
    pub fn new(pattern: &str, escaping: Escaping) -> Self {
        let mut segs = Vec::new();
        for part in pattern.split(':') {
            let (key, rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            match key {
                "" => {}
                "*" => segs.push(PatternSeg::AnyKey),
                k => segs.push(PatternSeg::Key(k.to_ascii_lowercase())),
            }
            for _ in rest.matches('[') {
                segs.push(PatternSeg::AnyIndex);
            }
        }
        EscapeRule {
            pattern: segs,
            escaping,
        }
    }

    fn matches(&self, path: &[Seg]) -> bool {
        self.pattern.len() == path.len()
            && self.pattern.iter().zip(path).all(|(p, s)| match (p, s) {
                (PatternSeg::AnyKey, Seg::Key(_)) | (PatternSeg::AnyIndex, Seg::Index(_)) => true,
                (PatternSeg::Key(k), Seg::Key(s)) => k.eq_ignore_ascii_case(s),
                _ => false,
            })
    }
}

/// The escaping for the string at `path`: the first matching rule, else verbatim.
pub fn escaping_for(rules: &[EscapeRule], path: &[Seg]) -> Escaping {
    rules
        .iter()
        .find(|r| r.matches(path))
        .map_or(Escaping::Verbatim, |r| r.escaping)
}

/// A token that could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("missing value for ~~{name}~~")]
    Missing { name: String },
    #[error("~~{name}~~ needs a single value, not a list or mapping")]
    NotScalar { name: String },
    #[error("~~{name}~~ fills a whole DN: {reason}")]
    NotADn { name: String, reason: String },
}

impl TokenError {
    /// The parameter the error is about.
    pub fn name(&self) -> &str {
        match self {
            TokenError::Missing { name }
            | TokenError::NotScalar { name }
            | TokenError::NotADn { name, .. } => name,
        }
    }
}

/// Replaces every token in `text`, escaping each value for `escaping`. Errors name each bad token once.
pub fn substitute_str(
    text: &str,
    escaping: Escaping,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<String, Vec<TokenError>> {
    if !text.contains("~~") {
        return Ok(text.to_string());
    }
    let whole = tokens(text)
        .next()
        .is_some_and(|m| m.start == 0 && m.end == text.len());
    let mut errors: Vec<TokenError> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in tokens(text) {
        out.push_str(&text[last..m.start]);
        last = m.end;
        let name = m.name;
        let value = match lookup(name) {
            None => {
                push_once(
                    &mut errors,
                    TokenError::Missing {
                        name: name.to_string(),
                    },
                );
                continue;
            }
            Some(Value::Array(_) | Value::Object(_)) => {
                push_once(
                    &mut errors,
                    TokenError::NotScalar {
                        name: name.to_string(),
                    },
                );
                continue;
            }
            Some(v) => scalar_text(&v),
        };
        match escaping {
            Escaping::Verbatim => out.push_str(&value),
            Escaping::LdapFilter => out.push_str(&ldap_filter_value(&value)),
            Escaping::LdapDn if whole => match validate_dn(&value) {
                Ok(()) => out.push_str(&value),
                Err(e) => push_once(
                    &mut errors,
                    TokenError::NotADn {
                        name: name.to_string(),
                        reason: e.reason,
                    },
                ),
            },
            Escaping::LdapIdentity if whole => out.push_str(&value),
            Escaping::LdapDn | Escaping::LdapIdentity => out.push_str(&ldap_dn_value(&value)),
        }
    }
    out.push_str(&text[last..]);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn push_once(errors: &mut Vec<TokenError>, e: TokenError) {
    if !errors.contains(&e) {
        errors.push(e);
    }
}

/// Substitutes tokens in every string of `value`, choosing the escaping by path. Collects all errors.
pub fn substitute_tree(
    value: &mut Value,
    rules: &[EscapeRule],
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<(), Vec<TokenError>> {
    let mut errors = Vec::new();
    let mut path = Vec::new();
    walk(value, &mut path, rules, lookup, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn walk(
    value: &mut Value,
    path: &mut Vec<Seg>,
    rules: &[EscapeRule],
    lookup: &dyn Fn(&str) -> Option<Value>,
    errors: &mut Vec<TokenError>,
) {
    match value {
        Value::String(s) if s.contains("~~") => {
            match substitute_str(s, escaping_for(rules, path), lookup) {
                Ok(new) => *s = new,
                Err(es) => es.into_iter().for_each(|e| push_once(errors, e)),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                walk(item, path, rules, lookup, errors);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                path.push(Seg::Key(k.clone()));
                walk(v, path, rules, lookup, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Every token name used in the strings of `value`.
pub fn tokens_in_tree(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.extend(token_names(s).map(str::to_string)),
        Value::Array(items) => items.iter().for_each(|v| tokens_in_tree(v, out)),
        Value::Object(map) => map.values().for_each(|v| tokens_in_tree(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<Value> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| *k == name.to_ascii_lowercase())
                .map(|(_, v)| Value::String(v.clone()))
        }
    }

    #[test]
    fn verbatim_filter_and_dn() {
        let l = lookup_from(&[("x", "a*)(b"), ("dn", "cn=Fox\\, M,dc=x"), ("n", "Fox, M")]);
        assert_eq!(
            substitute_str("hi ~~x~~", Escaping::Verbatim, &l).unwrap(),
            "hi a*)(b"
        );
        assert_eq!(
            substitute_str("(cn=~~x~~)", Escaping::LdapFilter, &l).unwrap(),
            "(cn=a\\2a\\29\\28b)"
        );
        assert_eq!(
            substitute_str("~~dn~~", Escaping::LdapDn, &l).unwrap(),
            "cn=Fox\\, M,dc=x"
        );
        assert_eq!(
            substitute_str("cn=~~n~~,dc=x", Escaping::LdapDn, &l).unwrap(),
            "cn=Fox\\, M,dc=x"
        );
        let err = substitute_str("~~n~~", Escaping::LdapDn, &l).unwrap_err();
        assert!(matches!(err[0], TokenError::NotADn { .. }));
    }

    #[test]
    fn identities_are_verbatim_whole_and_dn_escaped_inside() {
        let l = lookup_from(&[("id", "Fox, M"), ("n", "a,ou=evil")]);
        assert_eq!(
            substitute_str("~~id~~", Escaping::LdapIdentity, &l).unwrap(),
            "Fox, M"
        );
        assert_eq!(
            substitute_str("cn=~~n~~,ou=Synapse,dc=x", Escaping::LdapIdentity, &l).unwrap(),
            "cn=a\\,ou\\=evil,ou=Synapse,dc=x"
        );
    }

    #[test]
    fn all_missing_tokens_are_reported_once() {
        let l = lookup_from(&[]);
        let mut v = json!({"a": "~~one~~ ~~two~~", "b": ["~~one~~"]});
        let errs = substitute_tree(&mut v, &[], &l).unwrap_err();
        let names: Vec<&str> = errs.iter().map(TokenError::name).collect();
        assert_eq!(names, vec!["one", "two"]);
    }

    #[test]
    fn rules_choose_escaping_by_path() {
        let rules = vec![
            EscapeRule::new("SearchRequests[*]:Filter", Escaping::LdapFilter),
            EscapeRule::new("SearchRequests[*]:SearchBase", Escaping::LdapDn),
        ];
        let l = lookup_from(&[("x", "*"), ("base", "ou=a,dc=b")]);
        let mut v = json!({"SearchRequests": [{"Filter": "(cn=~~x~~)", "SearchBase": "~~base~~"}], "Other": "~~x~~"});
        substitute_tree(&mut v, &rules, &l).unwrap();
        assert_eq!(
            v,
            json!({"SearchRequests": [{"Filter": "(cn=\\2a)", "SearchBase": "ou=a,dc=b"}], "Other": "*"})
        );
    }

    #[test]
    fn scanner_finds_only_well_formed_tokens() {
        let names: Vec<&str> =
            token_names("~~a~~ ~~~b~~ ~~ c ~~ ~null~ ~~d.e-f_1~~~~g~~ ~~9x~~").collect();
        assert_eq!(names, vec!["a", "b", "d.e-f_1", "g"]);
    }

    #[test]
    fn substituted_values_are_not_rescanned() {
        let l = lookup_from(&[("a", "~~b~~"), ("b", "secret")]);
        assert_eq!(
            substitute_str("~~a~~", Escaping::Verbatim, &l).unwrap(),
            "~~b~~"
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_input_is_exactly_one_equality_assertion(input in any::<String>()) {
            let l = |name: &str| (name == "x").then(|| Value::String(input.clone()));
            let filter = substitute_str("(cn=~~x~~)", Escaping::LdapFilter, &l).unwrap();
            let (attr, value) = parse_single_equality(&filter).expect("a single equality item");
            prop_assert_eq!(attr, "cn");
            prop_assert_eq!(value, input.as_bytes().to_vec());
        }

        #[test]
        fn hostile_ascii_is_exactly_one_equality_assertion(input in "[\\x00-\\x7f*()\\\\]{0,64}") {
            let l = |name: &str| (name == "x").then(|| Value::String(input.clone()));
            let filter = substitute_str("(cn=~~x~~)", Escaping::LdapFilter, &l).unwrap();
            let (attr, value) = parse_single_equality(&filter).expect("a single equality item");
            prop_assert_eq!(attr, "cn");
            prop_assert_eq!(value, input.as_bytes().to_vec());
        }

        #[test]
        fn any_value_inside_an_rdn_keeps_the_dn_valid(input in any::<String>()) {
            let l = |name: &str| (name == "n").then(|| Value::String(input.clone()));
            let dn = substitute_str("cn=~~n~~,ou=Synapse,dc=sandbox,dc=local", Escaping::LdapDn, &l).unwrap();
            prop_assert!(crate::escape::validate_dn(&dn).is_ok(), "{:?}", dn);
            prop_assert!(dn.ends_with(",ou=Synapse,dc=sandbox,dc=local"));
        }
    }
}
