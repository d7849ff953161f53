//! Dynamic parameters: the run-time inputs of a plan (HTTP body/query, CLI `--param`, schedules).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// Case-insensitive name -> value map. A null or blank value counts as "not given" (as upstream).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DynamicParams {
    map: BTreeMap<String, (String, Value)>,
}

impl DynamicParams {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` (case-insensitively replacing an earlier value).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        self.map
            .insert(name.to_ascii_lowercase(), (name, value.into()));
    }

    /// The value of `name`, if given and not blank.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map
            .get(&name.to_ascii_lowercase())
            .map(|(_, v)| v)
            .filter(|v| !is_blank(v))
    }

    /// Every (name as given, value) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.map.values().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The redacted view: a copy with secrets masked by the one masking rule ([`crate::wire::redact_value`]:
    /// secret-looking names, and secrets inside values such as a `Properties` map sent as JSON text), for
    /// results, history and logs.
    pub fn masked(&self) -> BTreeMap<String, Value> {
        self.iter()
            .map(|(k, v)| {
                let v = if crate::is_secret_name(k) {
                    Value::String(crate::MASK.to_string())
                } else {
                    let mut v = v.clone();
                    crate::wire::redact_value(&mut v);
                    v
                };
                (k.to_string(), v)
            })
            .collect()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for DynamicParams {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut p = DynamicParams::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

/// The wire form: every name as given with its value, secrets intact (a node or a schedule needs them).
/// Use [`DynamicParams::masked`] for anything a person reads (results, history, logs).
impl Serialize for DynamicParams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for DynamicParams {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        Ok(map.into_iter().collect())
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_insensitive_and_blank_is_missing() {
        let p: DynamicParams = [("DistinguishedName", json!("cn=x")), ("empty", json!("  "))]
            .into_iter()
            .collect();
        assert_eq!(p.get("distinguishedname"), Some(&json!("cn=x")));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("absent"), None);
    }

    #[test]
    fn secrets_are_masked() {
        let p: DynamicParams = [("Password", "hunter2"), ("name", "x")]
            .into_iter()
            .collect();
        let m = p.masked();
        assert_eq!(m["Password"], json!("********"));
        assert_eq!(m["name"], json!("x"));
        let p: DynamicParams = [
            ("properties", r#"{"userPassword": "hunter2", "mail": "m"}"#),
            ("passwordneverexpires", "true"),
        ]
        .into_iter()
        .collect();
        let m = p.masked();
        assert!(!m["properties"].to_string().contains("hunter2"), "{m:?}");
        assert!(m["properties"].to_string().contains("mail"), "{m:?}");
        assert_eq!(m["passwordneverexpires"], json!("true"));
    }

    #[test]
    fn the_wire_form_keeps_secrets_and_round_trips() {
        let p: DynamicParams = [("Password", json!("hunter2")), ("Name", json!("x"))]
            .into_iter()
            .collect();
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("hunter2"));
        let back: DynamicParams = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
