//! `~~name~~` tokens: substituted from dynamic parameters into plan-authored strings, escaped for the place
//! they land. The engine offers the mechanism only: each handler declares, per Config/Parameters path, an
//! [`Escaper`] with [`EscapeRule`]s (the LDAP handlers' filter and DN escapers live in the handlers crate,
//! next to the protocol they protect); every other path is [`Verbatim`].
//!
//! Only strings the plan author wrote (Values, after InheritFrom) are scanned. Values that arrive through
//! Dynamic, ParentExitData or ForEach are data and are never scanned for tokens, so a caller cannot smuggle a
//! token into another parameter.

use crate::path::{scalar_text, Seg};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// How a token's value is written into the text around it (an LDAP filter value, a DN, a shell argument, a
/// URL component, a DNS label...). Implemented by handlers for the languages their parameters speak.
pub trait Escaper: Send + Sync + fmt::Debug {
    /// A short name for docs and diagnostics, e.g. `LdapFilter`.
    fn name(&self) -> &'static str;

    /// Escapes `value` for its place. `whole` is true when the token is the entire string (a whole DN, a
    /// whole identity), false when it sits inside other text. `Err(reason)` refuses the value; the reason
    /// reads after the token name: "~~dn~~ {reason}".
    fn escape(&self, value: &str, whole: bool) -> Result<String, String>;
}

/// The value as given: for paths no handler rule covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verbatim;

impl Escaper for Verbatim {
    fn name(&self) -> &'static str {
        "Verbatim"
    }
    fn escape(&self, value: &str, _whole: bool) -> Result<String, String> {
        Ok(value.to_string())
    }
}

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

/// A path pattern with its escaper: `SearchRequests[*]:Filter` -> an LDAP filter escaper.
/// Segments are keys (compared case-insensitively), `*` for any key, `[*]` for any index.
#[derive(Clone, Debug)]
pub struct EscapeRule {
    pattern: Vec<PatternSeg>,
    pub escaper: Arc<dyn Escaper>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PatternSeg {
    Key(String),
    AnyKey,
    AnyIndex,
}

impl EscapeRule {
    /// Builds a rule from a pattern such as `SearchRequests[*]:Filter` or `Users[*]:Identity`.
    pub fn new(pattern: &str, escaper: impl Escaper + 'static) -> Self {
        Self::shared(pattern, Arc::new(escaper))
    }

    /// [`EscapeRule::new`] with an escaper that is already shared.
    pub fn shared(pattern: &str, escaper: Arc<dyn Escaper>) -> Self {
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
            escaper,
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

/// The escaper for the string at `path`: the first matching rule, else verbatim.
pub fn escaper_for<'r>(rules: &'r [EscapeRule], path: &[Seg]) -> &'r dyn Escaper {
    rules
        .iter()
        .find(|r| r.matches(path))
        .map_or(&Verbatim as &dyn Escaper, |r| r.escaper.as_ref())
}

/// A token that could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("missing value for ~~{name}~~")]
    Missing { name: String },
    #[error("~~{name}~~ needs a single value, not a list or mapping")]
    NotScalar { name: String },
    /// The place's escaper refused the value (e.g. not a DN where a whole DN goes).
    #[error("~~{name}~~ {reason}")]
    Rejected { name: String, reason: String },
}

impl TokenError {
    /// The parameter the error is about.
    pub fn name(&self) -> &str {
        match self {
            TokenError::Missing { name }
            | TokenError::NotScalar { name }
            | TokenError::Rejected { name, .. } => name,
        }
    }
}

/// Replaces every token in `text`, escaping each value with `escaper`. Errors name each bad token once.
pub fn substitute_str(
    text: &str,
    escaper: &dyn Escaper,
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
        match escaper.escape(&value, whole) {
            Ok(escaped) => out.push_str(&escaped),
            Err(reason) => push_once(
                &mut errors,
                TokenError::Rejected {
                    name: name.to_string(),
                    reason,
                },
            ),
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
            match substitute_str(s, escaper_for(rules, path), lookup) {
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

    /// A toy escaper: upper-cases inside text, refuses a whole value that is not a number.
    #[derive(Debug)]
    struct Shout;

    impl Escaper for Shout {
        fn name(&self) -> &'static str {
            "Shout"
        }
        fn escape(&self, value: &str, whole: bool) -> Result<String, String> {
            if whole && value.parse::<i64>().is_err() {
                return Err("must be a number".into());
            }
            Ok(value.to_uppercase())
        }
    }

    #[test]
    fn escapers_see_whether_the_token_is_the_whole_string() {
        let l = lookup_from(&[("x", "a*)(b"), ("n", "42")]);
        assert_eq!(
            substitute_str("hi ~~x~~", &Verbatim, &l).unwrap(),
            "hi a*)(b"
        );
        assert_eq!(substitute_str("hi ~~x~~", &Shout, &l).unwrap(), "hi A*)(B");
        assert_eq!(substitute_str("~~n~~", &Shout, &l).unwrap(), "42");
        let err = substitute_str("~~x~~", &Shout, &l).unwrap_err();
        assert_eq!(err[0].to_string(), "~~x~~ must be a number");
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
    fn rules_choose_the_escaper_by_path() {
        let rules = vec![
            EscapeRule::new("SearchRequests[*]:Filter", Shout),
            EscapeRule::new("*:Deep[*]", Shout),
        ];
        let l = lookup_from(&[("x", "ab")]);
        let mut v = json!({"SearchRequests": [{"Filter": "(cn=~~x~~)", "SearchBase": "~~x~~"}],
                           "Other": "~~x~~", "K": {"Deep": ["<~~x~~>"]}});
        substitute_tree(&mut v, &rules, &l).unwrap();
        assert_eq!(
            v,
            json!({"SearchRequests": [{"Filter": "(cn=AB)", "SearchBase": "ab"}],
                   "Other": "ab", "K": {"Deep": ["<AB>"]}})
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
        assert_eq!(substitute_str("~~a~~", &Verbatim, &l).unwrap(), "~~b~~");
    }
}
