//! Action and plan statuses, and the `ExecuteCase` filter that selects children by their parent's status.
//!
//! Numeric values follow upstream Synapse (`StatusType`), so "higher is worse" and the roll-up of a branch is
//! the numeric maximum of the statuses in it.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The status of one action or of a whole plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u16)]
pub enum StatusType {
    /// Nothing happened (yet).
    #[default]
    None = 0,
    New = 1,
    Initializing = 2,
    Running = 4,
    Waiting = 8,
    Cancelling = 16,
    Zombie = 32,
    /// A deferred run waiting for its time (`/start?at=`): not running yet, not terminal.
    Scheduled = 64,
    /// Success; upstream also spells it `Success`.
    Complete = 128,
    /// Partial success; upstream also spells it `SuccessWithErrors`.
    CompletedWithErrors = 256,
    Failed = 512,
    Cancelled = 1024,
    Tombstoned = 2048,
    /// Only meaningful as an `ExecuteCase`: matches every status.
    Any = 16383,
}

impl StatusType {
    /// Every status, in numeric order.
    pub const ALL: [StatusType; 14] = [
        StatusType::None,
        StatusType::New,
        StatusType::Initializing,
        StatusType::Running,
        StatusType::Waiting,
        StatusType::Cancelling,
        StatusType::Zombie,
        StatusType::Scheduled,
        StatusType::Complete,
        StatusType::CompletedWithErrors,
        StatusType::Failed,
        StatusType::Cancelled,
        StatusType::Tombstoned,
        StatusType::Any,
    ];

    /// The canonical name (the one we serialize).
    pub fn name(self) -> &'static str {
        match self {
            StatusType::None => "None",
            StatusType::New => "New",
            StatusType::Initializing => "Initializing",
            StatusType::Running => "Running",
            StatusType::Waiting => "Waiting",
            StatusType::Cancelling => "Cancelling",
            StatusType::Zombie => "Zombie",
            StatusType::Scheduled => "Scheduled",
            StatusType::Complete => "Complete",
            StatusType::CompletedWithErrors => "CompletedWithErrors",
            StatusType::Failed => "Failed",
            StatusType::Cancelled => "Cancelled",
            StatusType::Tombstoned => "Tombstoned",
            StatusType::Any => "Any",
        }
    }

    /// The upstream numeric value.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// Terminal statuses are the ones an action ends in (upstream: `>= 128`).
    pub fn is_terminal(self) -> bool {
        self.code() >= 128 && self != StatusType::Any
    }

    /// The worse of two statuses (numeric max, as upstream).
    pub fn worst(self, other: StatusType) -> StatusType {
        self.max(other)
    }

    fn from_code(code: u64) -> Option<StatusType> {
        StatusType::ALL
            .iter()
            .copied()
            .find(|s| u64::from(s.code()) == code)
    }
}

impl fmt::Display for StatusType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a status name that is not one of [`StatusType::ALL`] (or an alias).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status '{0}' (expected one of: None, New, Initializing, Running, Waiting, Cancelling, Zombie, Scheduled, Complete/Success, CompletedWithErrors/SuccessWithErrors, Failed, Cancelled, Tombstoned, Any)")]
pub struct UnknownStatus(pub String);

impl FromStr for StatusType {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return StatusType::from_code(n).ok_or_else(|| UnknownStatus(s.to_string()));
        }
        let lower = t.to_ascii_lowercase();
        let found = match lower.as_str() {
            "success" => Some(StatusType::Complete),
            "successwitherrors" => Some(StatusType::CompletedWithErrors),
            _ => StatusType::ALL
                .iter()
                .copied()
                .find(|st| st.name().eq_ignore_ascii_case(&lower)),
        };
        found.ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

impl Serialize for StatusType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

struct StatusVisitor;

impl Visitor<'_> for StatusVisitor {
    type Value = StatusType;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status name such as Complete or Failed")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusType, E> {
        v.parse().map_err(|e: UnknownStatus| E::custom(e))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusType, E> {
        StatusType::from_code(v).ok_or_else(|| E::custom(UnknownStatus(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusType, E> {
        u64::try_from(v)
            .ok()
            .and_then(StatusType::from_code)
            .ok_or_else(|| E::custom(UnknownStatus(v.to_string())))
    }
}

impl<'de> Deserialize<'de> for StatusType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusVisitor)
    }
}

/// Which parent statuses let an action run.
///
/// Upstream takes one flags value and compares it exactly, so a combination (`Complete, Failed`) never matched.
/// Here a list (YAML sequence, or a comma-separated string) means "any of".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExecuteCase(Vec<StatusType>);

impl ExecuteCase {
    /// A filter that matches exactly one status.
    pub fn one(status: StatusType) -> Self {
        ExecuteCase(vec![status])
    }

    /// A filter that matches any of the given statuses.
    pub fn any_of(statuses: Vec<StatusType>) -> Self {
        ExecuteCase(statuses)
    }

    /// The statuses listed (empty means `None`).
    pub fn statuses(&self) -> &[StatusType] {
        &self.0
    }

    /// Whether an action with this filter runs when its parent ended with `status`.
    /// `None` (or an empty filter) and `Any` match everything; otherwise the status must equal a member.
    pub fn matches(&self, status: StatusType) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|c| matches!(c, StatusType::None | StatusType::Any) || *c == status)
    }
}

impl Serialize for ExecuteCase {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [] => StatusType::None.serialize(serializer),
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }
}

struct ExecuteCaseVisitor;

impl<'de> Visitor<'de> for ExecuteCaseVisitor {
    type Value = ExecuteCase;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status name or a list of status names")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ExecuteCase, E> {
        let mut out = Vec::new();
        for part in v.split([',', '|']) {
            if part.trim().is_empty() {
                continue;
            }
            out.push(part.parse().map_err(|e: UnknownStatus| E::custom(e))?);
        }
        Ok(ExecuteCase(out))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExecuteCase, E> {
        StatusVisitor.visit_u64(v).map(ExecuteCase::one)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExecuteCase, E> {
        StatusVisitor.visit_i64(v).map(ExecuteCase::one)
    }

    fn visit_unit<E: de::Error>(self) -> Result<ExecuteCase, E> {
        Ok(ExecuteCase::default())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ExecuteCase, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<StatusType>()? {
            out.push(s);
        }
        Ok(ExecuteCase(out))
    }
}

impl<'de> Deserialize<'de> for ExecuteCase {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExecuteCaseVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse() {
        assert_eq!("success".parse::<StatusType>(), Ok(StatusType::Complete));
        assert_eq!("Complete".parse::<StatusType>(), Ok(StatusType::Complete));
        assert_eq!(
            "SuccessWithErrors".parse::<StatusType>(),
            Ok(StatusType::CompletedWithErrors)
        );
        assert_eq!("512".parse::<StatusType>(), Ok(StatusType::Failed));
        assert!("Done".parse::<StatusType>().is_err());
    }

    #[test]
    fn execute_case_semantics() {
        assert!(ExecuteCase::default().matches(StatusType::Failed));
        assert!(ExecuteCase::one(StatusType::Any).matches(StatusType::Complete));
        assert!(ExecuteCase::one(StatusType::Complete).matches(StatusType::Complete));
        assert!(!ExecuteCase::one(StatusType::Complete).matches(StatusType::CompletedWithErrors));
        let list = ExecuteCase::any_of(vec![StatusType::Failed, StatusType::CompletedWithErrors]);
        assert!(list.matches(StatusType::Failed));
        assert!(list.matches(StatusType::CompletedWithErrors));
        assert!(!list.matches(StatusType::Complete));
    }

    #[test]
    fn execute_case_from_yaml_forms() {
        let one: ExecuteCase = serde_yaml::from_str("Failed").unwrap_or_default();
        assert_eq!(one, ExecuteCase::one(StatusType::Failed));
        let list: ExecuteCase =
            serde_yaml::from_str("[Failed, CompletedWithErrors]").unwrap_or_default();
        assert_eq!(list.statuses().len(), 2);
        let combo: ExecuteCase = serde_yaml::from_str("'Complete, Failed'").unwrap_or_default();
        assert_eq!(
            combo.statuses(),
            &[StatusType::Complete, StatusType::Failed]
        );
        assert!(serde_yaml::from_str::<ExecuteCase>("Done").is_err());
    }

    #[test]
    fn roll_up_is_numeric_max() {
        assert_eq!(
            StatusType::Complete.worst(StatusType::Failed),
            StatusType::Failed
        );
        assert_eq!(
            StatusType::Cancelled.worst(StatusType::Failed),
            StatusType::Cancelled
        );
    }
}
