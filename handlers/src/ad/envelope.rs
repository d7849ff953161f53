//! The result envelope of seed 002: `{"Results":[{"Statuses":[{"Status":n,"Message":"..","Action":n}],
//! "Type":n,"Identity":"..","User":..,"Group":..,"Computer":..,"OrganizationalUnit":..,"SearchResults":..}]}`
//! with the seed's numeric codes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synapse_engine::StatusType;

/// Seed 002 `Status` codes (plus `InvalidInput = 14`, used upstream but missing from the seed's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum AdStatus {
    Unknown = 0,
    Success = 1,
    MissingInput = 2,
    AlreadyExists = 3,
    DoesNotExist = 4,
    PasswordPolicyNotMet = 5,
    InvalidPath = 6,
    NotSupported = 7,
    NotAllowed = 8,
    InvalidAttribute = 9,
    ConnectionError = 10,
    InvalidName = 11,
    InvalidContainer = 12,
    MultipleMatches = 13,
    InvalidInput = 14,
}

impl AdStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The name used in messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            AdStatus::Unknown => "Unknown",
            AdStatus::Success => "Success",
            AdStatus::MissingInput => "MissingInput",
            AdStatus::AlreadyExists => "AlreadyExists",
            AdStatus::DoesNotExist => "DoesNotExist",
            AdStatus::PasswordPolicyNotMet => "PasswordPolicyNotMet",
            AdStatus::InvalidPath => "InvalidPath",
            AdStatus::NotSupported => "NotSupported",
            AdStatus::NotAllowed => "NotAllowed",
            AdStatus::InvalidAttribute => "InvalidAttribute",
            AdStatus::ConnectionError => "ConnectionError",
            AdStatus::InvalidName => "InvalidName",
            AdStatus::InvalidContainer => "InvalidContainer",
            AdStatus::MultipleMatches => "MultipleMatches",
            AdStatus::InvalidInput => "InvalidInput",
        }
    }

    fn from_code(n: u64) -> Option<AdStatus> {
        use AdStatus::*;
        [
            Unknown,
            Success,
            MissingInput,
            AlreadyExists,
            DoesNotExist,
            PasswordPolicyNotMet,
            InvalidPath,
            NotSupported,
            NotAllowed,
            InvalidAttribute,
            ConnectionError,
            InvalidName,
            InvalidContainer,
            MultipleMatches,
            InvalidInput,
        ]
        .into_iter()
        .find(|s| u64::from(s.code()) == n)
    }

    /// How bad a status is when several are rolled up (for the HTTP status and the engine status).
    /// Success < client errors < connection < unknown.
    pub fn severity(self) -> u8 {
        match self {
            AdStatus::Success => 0,
            AdStatus::AlreadyExists | AdStatus::DoesNotExist => 1,
            AdStatus::MissingInput
            | AdStatus::InvalidInput
            | AdStatus::InvalidName
            | AdStatus::InvalidAttribute
            | AdStatus::InvalidPath
            | AdStatus::InvalidContainer
            | AdStatus::PasswordPolicyNotMet
            | AdStatus::MultipleMatches
            | AdStatus::NotSupported => 2,
            AdStatus::NotAllowed => 3,
            AdStatus::ConnectionError => 4,
            AdStatus::Unknown => 5,
        }
    }
}

impl Serialize for AdStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for AdStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        AdStatus::from_code(n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown AD status {n}")))
    }
}

/// Seed 002 `Action` codes (bit flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AdAction {
    None,
    Get,
    Create,
    Modify,
    Delete,
    Move,
    AddToGroup,
    RemoveFromGroup,
    Search,
    AddAccessRule,
    RemoveAccessRule,
    SetAccessRule,
    PurgeAccessRules,
    AddRole,
    RemoveRole,
}

impl AdAction {
    pub fn code(self) -> u16 {
        match self {
            AdAction::None => 0,
            AdAction::Get => 1,
            AdAction::Create => 2,
            AdAction::Modify => 4,
            AdAction::Delete => 8,
            AdAction::Move => 32,
            AdAction::AddToGroup => 64,
            AdAction::RemoveFromGroup => 128,
            AdAction::Search => 256,
            AdAction::AddAccessRule => 512,
            AdAction::RemoveAccessRule => 1024,
            AdAction::SetAccessRule => 2048,
            AdAction::PurgeAccessRules => 4096,
            AdAction::AddRole => 8192,
            AdAction::RemoveRole => 16384,
        }
    }
}

/// Seed 002 `Type` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdObjectType {
    None = 0,
    User = 1,
    Group = 2,
    Computer = 3,
    OrganizationalUnit = 4,
    GroupPolicy = 5,
    SearchResults = 6,
}

impl AdObjectType {
    pub fn name(self) -> &'static str {
        match self {
            AdObjectType::None => "Object",
            AdObjectType::User => "User",
            AdObjectType::Group => "Group",
            AdObjectType::Computer => "Computer",
            AdObjectType::OrganizationalUnit => "OrganizationalUnit",
            AdObjectType::GroupPolicy => "GroupPolicy",
            AdObjectType::SearchResults => "SearchResults",
        }
    }
}

impl Serialize for AdObjectType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

/// One step's outcome inside a result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdStatusEntry {
    pub status: AdStatus,
    pub message: String,
    #[serde(serialize_with = "action_code")]
    pub action: AdAction,
}

fn action_code<S: serde::Serializer>(a: &AdAction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(a.code())
}

/// The result for one requested object (or one search request).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdResult {
    pub statuses: Vec<AdStatusEntry>,
    pub r#type: AdObjectType,
    pub identity: String,
    pub user: Option<Value>,
    pub group: Option<Value>,
    pub computer: Option<Value>,
    pub organizational_unit: Option<Value>,
    pub search_results: Option<Value>,
}

impl AdResult {
    pub fn new(r#type: AdObjectType, identity: impl Into<String>) -> Self {
        AdResult {
            statuses: Vec::new(),
            r#type,
            identity: identity.into(),
            user: None,
            group: None,
            computer: None,
            organizational_unit: None,
            search_results: None,
        }
    }

    pub fn push(&mut self, status: AdStatus, action: AdAction, message: impl Into<String>) {
        self.statuses.push(AdStatusEntry {
            status,
            message: message.into(),
            action,
        });
    }

    /// Puts the returned object in the slot of this result's type.
    pub fn set_object(&mut self, object: Value) {
        match self.r#type {
            AdObjectType::User => self.user = Some(object),
            AdObjectType::Group => self.group = Some(object),
            AdObjectType::Computer => self.computer = Some(object),
            AdObjectType::OrganizationalUnit => self.organizational_unit = Some(object),
            AdObjectType::SearchResults => self.search_results = Some(object),
            AdObjectType::None | AdObjectType::GroupPolicy => {}
        }
    }

    /// Whether every step succeeded.
    pub fn succeeded(&self) -> bool {
        self.statuses.iter().all(|s| s.status == AdStatus::Success)
    }
}

impl AdResult {
    /// The seed's JSON shape, moving the objects instead of copying them.
    pub fn into_value(self) -> Value {
        let mut m = serde_json::Map::with_capacity(8);
        m.insert(
            "Statuses".into(),
            serde_json::to_value(&self.statuses).unwrap_or(Value::Null),
        );
        m.insert("Type".into(), Value::from(self.r#type as u8));
        m.insert("Identity".into(), Value::String(self.identity));
        m.insert("User".into(), self.user.unwrap_or(Value::Null));
        m.insert("Group".into(), self.group.unwrap_or(Value::Null));
        m.insert("Computer".into(), self.computer.unwrap_or(Value::Null));
        m.insert(
            "OrganizationalUnit".into(),
            self.organizational_unit.unwrap_or(Value::Null),
        );
        m.insert(
            "SearchResults".into(),
            self.search_results.unwrap_or(Value::Null),
        );
        Value::Object(m)
    }
}

/// The whole envelope (the handler's exit data).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdEnvelope {
    pub results: Vec<AdResult>,
}

impl AdEnvelope {
    /// The envelope as JSON, moving the objects (no deep copy).
    pub fn into_value(self) -> Value {
        let results: Vec<Value> = self.results.into_iter().map(AdResult::into_value).collect();
        let mut m = serde_json::Map::with_capacity(1);
        m.insert("Results".into(), Value::Array(results));
        Value::Object(m)
    }

    /// The worst status of all results (Success when there are none).
    pub fn worst(&self) -> AdStatus {
        self.results
            .iter()
            .flat_map(|r| r.statuses.iter().map(|s| s.status))
            .max_by_key(|s| (s.severity(), s.code()))
            .unwrap_or(AdStatus::Success)
    }

    /// The engine status: Complete when every step succeeded, CompletedWithErrors when some did, Failed when
    /// none did. (Upstream always said Complete.)
    pub fn engine_status(&self) -> StatusType {
        let all: Vec<AdStatus> = self
            .results
            .iter()
            .flat_map(|r| r.statuses.iter().map(|s| s.status))
            .collect();
        let ok = all.iter().filter(|s| **s == AdStatus::Success).count();
        if ok == all.len() {
            StatusType::Complete
        } else if ok == 0 {
            StatusType::Failed
        } else {
            StatusType::CompletedWithErrors
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn into_value_matches_serialization() {
        let mut r = AdResult::new(AdObjectType::Group, "g");
        r.push(AdStatus::Success, AdAction::Get, "ok");
        r.set_object(json!({"Name": "g"}));
        let env = AdEnvelope { results: vec![r] };
        assert_eq!(
            serde_json::to_value(&env).unwrap(),
            env.clone().into_value()
        );
    }

    #[test]
    fn serializes_with_the_seeds_numbers() {
        let mut r = AdResult::new(AdObjectType::User, "HonestPolitician");
        r.push(
            AdStatus::DoesNotExist,
            AdAction::Get,
            "User [HonestPolitician] Not Found.",
        );
        let env = AdEnvelope { results: vec![r] };
        assert_eq!(
            serde_json::to_value(&env).unwrap(),
            json!({"Results": [{
                "Statuses": [{"Status": 4, "Message": "User [HonestPolitician] Not Found.", "Action": 1}],
                "Type": 1, "Identity": "HonestPolitician",
                "User": null, "Group": null, "Computer": null, "OrganizationalUnit": null, "SearchResults": null
            }]})
        );
        assert_eq!(env.worst(), AdStatus::DoesNotExist);
        assert_eq!(env.engine_status(), StatusType::Failed);
    }
}
