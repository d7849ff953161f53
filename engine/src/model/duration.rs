//! Durations as people write them: a number of seconds, or a string such as `250ms`, `30s`, `5m`, `1h`. The
//! one duration parser of the project: plan `Timeout`/`Retry.Delay`, the API's `timeoutSeconds`, and handler
//! settings (`ConnectTimeout`, ...) all read durations through [`DurationSpec::parse`]. Booleans have their
//! one reader next to it ([`parse_bool`]).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written by a plan author.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    /// Parses `250ms`, `30s`, `1.5s`, `5m`, `1h` or a bare number of seconds.
    pub fn parse(text: &str) -> Result<DurationSpec, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration '{text}' (expected e.g. 500ms, 30s, 5m, 1h)"))?;
        let factor = match unit.trim() {
            "" | "s" | "sec" | "secs" => 1.0,
            "ms" => 0.001,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "invalid duration unit '{other}' in '{text}' (expected ms, s, m or h)"
                ))
            }
        };
        Self::from_secs(value * factor).ok_or_else(|| format!("duration '{text}' is out of range"))
    }

    /// A number of seconds, when it is finite and between 0 and 30 days.
    pub fn from_secs(secs: f64) -> Option<DurationSpec> {
        // Upper bound: 30 days is far beyond any sane action timeout and keeps arithmetic safe.
        if secs.is_finite() && (0.0..=2_592_000.0).contains(&secs) {
            Some(DurationSpec(Duration::from_secs_f64(secs)))
        } else {
            None
        }
    }
}

/// The one reading of a boolean written as text (settings, environment variables, query flags):
/// `true`/`1`/`yes` and `false`/`0`/`no`, in any letter case, surrounding spaces ignored. None for anything
/// else (callers name the setting in their error). Plan values of `DataType: Boolean` are stricter on purpose
/// (upstream's .NET parse: `true`/`false` only).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = DurationSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 30s, 500ms, 5m or a number of seconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationSpec, E> {
        DurationSpec::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationSpec, E> {
        self.visit_f64(v as f64)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationSpec, E> {
        self.visit_f64(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationSpec, E> {
        DurationSpec::from_secs(v).ok_or_else(|| E::custom(format!("duration {v} is out of range")))
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(
            DurationSpec::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            DurationSpec::parse("30s").unwrap().0,
            Duration::from_secs(30)
        );
        assert_eq!(
            DurationSpec::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            DurationSpec::parse("1.5").unwrap().0,
            Duration::from_millis(1500)
        );
        assert!(DurationSpec::parse("5 parsecs").is_err());
        assert!(DurationSpec::parse("-1s").is_err());
        assert!(DurationSpec::parse("").is_err());
        for (t, want) in [
            ("TRUE", true),
            (" yes ", true),
            ("1", true),
            ("No", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(t), Some(want), "{t}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool(""), None);
    }
}
