//! Building blocks of handler settings, shared by every handler's configuration section: secrets (inline or
//! from a file), durations, lists and booleans as YAML and environment variables write them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use synapse_engine::model::DurationSpec;

use serde::Deserialize;

use crate::error::Error;

/// A secret string (a bind password, a key). `Debug` and `Display` print `********`; only
/// [`Secret::expose`] gives the value, so it cannot end up in a log line or an error by accident.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call this only where the value is handed to the wire (the bind).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(synapse_engine::MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(synapse_engine::MASK)
    }
}

/// `Urls: ldaps://dc1` or `Urls: [ldaps://dc1, ldaps://dc2]`: one string (comma-separated) or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The entries, trimmed; a single string is split at commas (empty entries dropped).
    pub fn into_list(self) -> Vec<String> {
        match self {
            OneOrMany::One(u) => split_list(&u),
            OneOrMany::Many(v) => v.into_iter().map(|u| u.trim().to_string()).collect(),
        }
    }
}

/// A duration in YAML: a number of seconds (`5`, `0.5`) or a string (`"500ms"`, `"5s"`, `"2m"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    Seconds(f64),
    Text(String),
}

impl DurationValue {
    /// The duration; errors name `field`.
    pub fn resolve(self, field: &str) -> Result<Duration, Error> {
        match self {
            DurationValue::Seconds(s) => seconds(s).map_err(|m| Error::config(field, m)),
            DurationValue::Text(t) => parse_duration(&t).map_err(|m| Error::config(field, m)),
        }
    }
}

/// A secret given inline (`value`) or as a file (`file`): exactly one of them. Errors name `value_field` or
/// `file_field`.
pub fn resolve_secret(
    value: Option<Secret>,
    file: Option<PathBuf>,
    value_field: &str,
    file_field: &str,
) -> Result<Secret, Error> {
    match (value, file) {
        (Some(_), Some(_)) => Err(Error::config(
            value_field,
            format!("set either {value_field} or {file_field}, not both"),
        )),
        (Some(v), None) => Ok(v),
        (None, Some(path)) => read_secret_file(&path, file_field),
        (None, None) => Err(Error::config(
            value_field,
            format!("is not set (set {value_field} or {file_field})"),
        )),
    }
}

/// Reads a secret file; drops the trailing line ending (`\n` or `\r\n`) that editors and `echo` add, and
/// nothing else.
pub fn read_secret_file(path: &Path, field: &str) -> Result<Secret, Error> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(Error::config(field, format!("{} is empty", path.display())));
    }
    Ok(Secret(text))
}

/// `a, b,,c` -> `[a, b, c]`.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `true`/`1`/`yes` or `false`/`0`/`no`, any case: the engine's one boolean reader, with an error text.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    synapse_engine::model::parse_bool(v).ok_or_else(|| format!("'{v}' is not true or false"))
}

/// A positive number of seconds (at most 30 days, the engine's bound for durations).
pub fn seconds(s: f64) -> Result<Duration, String> {
    match DurationSpec::from_secs(s) {
        Some(DurationSpec(d)) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "{s} is not a positive number of seconds (at most 30 days)"
        )),
    }
}

/// `5` (seconds), `0.5`, `500ms`, `5s`, `2m`, `1h`: the engine's one duration parser, and not zero.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    match DurationSpec::parse(v) {
        Ok(DurationSpec(d)) if d.is_zero() => {
            Err(format!("'{}' is not a positive duration", v.trim()))
        }
        Ok(DurationSpec(d)) => Ok(d),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_masked() {
        let s = Secret::new("Passw0rd!");
        assert_eq!(format!("{s}"), "********");
        assert_eq!(format!("{s:?}"), "********");
        assert_eq!(s.expose(), "Passw0rd!");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("750ms").unwrap(), Duration::from_millis(750));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn lists_and_bools() {
        assert_eq!(split_list(" a, b,,c "), vec!["a", "b", "c"]);
        assert_eq!(
            OneOrMany::One("x, y".into()).into_list(),
            vec!["x".to_string(), "y".to_string()]
        );
        assert!(parse_bool("YES").unwrap());
        assert!(!parse_bool("0").unwrap());
        assert!(parse_bool("maybe").is_err());
    }
}
