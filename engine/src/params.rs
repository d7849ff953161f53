//! Dynamic parameters: the run-time inputs of a plan (HTTP body/query, CLI `--param`, schedules).

use serde::{Serialize, Serializer};
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

    /// A copy with secret-looking values replaced by a mask, for results, history and logs.
    pub fn masked(&self) -> BTreeMap<String, Value> {
        self.iter()
            .map(|(k, v)| {
                let v = if crate::is_secret_name(k) {
                    Value::String(crate::MASK.to_string())
                } else {
                    v.clone()
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

impl Serialize for DynamicParams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.masked().serialize(serializer)
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
    }
}
