//! The wire contract for actions: what crosses a process boundary when a controller sends one resolved action
//! to a node, and what comes back. Everything here is plain serializable data; the parts that only make sense
//! where the handler runs (cancellation, progress, a monotonic deadline) live in
//! [`crate::dispatch::ActionRuntime`].
//!
//! Secrets travel intact: a node needs the password it is asked to set. They are masked only in the explicit
//! redacted view ([`ActionRequest::redacted`]) used for logs, history and audit, never by `Serialize`.

use crate::descriptor::ActionKind;
use crate::handler::ExecuteResult;
use crate::model::{ParameterInfo, SecurityContext};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Wire format version, bumped on incompatible changes (nodes refuse versions they do not know).
pub const WIRE_VERSION: u32 = 1;

/// One resolved action, ready to run anywhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ActionRequest {
    pub version: u32,
    pub plan_name: String,
    pub plan_instance_id: Uuid,
    pub action_instance_id: u64,
    pub action_name: String,
    /// 1 for the first attempt, 2 after one retry, ...
    pub attempt: u32,
    /// Unique per (plan instance, action, attempt); see [`IdempotencyKey`].
    pub idempotency_key: IdempotencyKey,
    /// The handler's type string as the plan wrote it (any accepted spelling).
    pub handler_type: String,
    /// Read or write, from the handler's descriptor (a node never needs the descriptor to decide retries).
    pub kind: ActionKind,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub params: Value,
    /// The effective `RunAs`, password included.
    #[serde(default, with = "run_as_wire", skip_serializing_if = "Option::is_none")]
    pub run_as: Option<SecurityContext>,
    /// The requesting principal (API key name, user), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// When the attempt must have finished (wall clock; each side enforces it with its own timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub parent_exit_data: Value,
    /// Labels the node that runs this action must have (`RunOn` of the action, else of the plan).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub run_on: std::collections::BTreeMap<String, String>,
}

/// The idempotency key of one attempt of one action of one plan instance. A redelivered message carries the
/// same key (so a transport can de-duplicate it); a retry is a new attempt with a new key. On the wire and in
/// text it reads `{plan instance id}/{action instance id}/{attempt}`; in memory it is three numbers (no
/// allocation per attempt).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub plan_instance_id: Uuid,
    pub action_instance_id: u64,
    pub attempt: u32,
}

impl IdempotencyKey {
    pub fn new(plan_instance_id: Uuid, action_instance_id: u64, attempt: u32) -> Self {
        IdempotencyKey {
            plan_instance_id,
            action_instance_id,
            attempt,
        }
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.plan_instance_id, self.action_instance_id, self.attempt
        )
    }
}

impl std::str::FromStr for IdempotencyKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not an idempotency key (instance/action/attempt)");
        let mut parts = s.split('/');
        let (Some(i), Some(a), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(IdempotencyKey {
            plan_instance_id: i.parse().map_err(|_| bad())?,
            action_instance_id: a.parse().map_err(|_| bad())?,
            attempt: n.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for IdempotencyKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl ActionRequest {
    /// A copy safe to log or store: secret-looking keys in Config, Parameters and parent exit data, and the
    /// RunAs password, are replaced by [`crate::MASK`].
    pub fn redacted(&self) -> ActionRequest {
        let mut r = self.clone();
        redact_value(&mut r.config);
        redact_value(&mut r.params);
        redact_value(&mut r.parent_exit_data);
        if let Some(ra) = &mut r.run_as {
            if ra.password.is_some() {
                ra.password = Some(crate::MASK.to_string());
            }
        }
        r
    }
}

/// Texts longer than this are not parsed to look for secrets inside; one that mentions a secret word is
/// masked whole instead.
const MAX_EMBEDDED_TEXT: usize = 1 << 20;

/// The one masking rule ([`crate::is_secret_name`]), in place, at any depth:
///
/// * a value under a secret-looking key (`Password`, `userPassword`, `unicodePwd`, `ApiKey`, ...) is masked
///   (booleans excepted: a flag is not a secret);
/// * in a name/value pair (`{"Name": "password", "Value": ...}`, a plan's `Dynamic: [{Source: password,
///   Default: ...}]`) the value, default and options of a secret-looking name are masked;
/// * a text value holding JSON or YAML (request bodies carry lists and maps as JSON text, e.g.
///   `Properties: '{"userPassword": "..."}'`) is looked into and written back with its secrets masked.
///
/// Used for everything a person reads: plans shown by the API, instance parameters, results, logs and
/// [`ActionRequest::redacted`]. The wire form itself keeps secrets intact.
pub fn redact_value(v: &mut Value) {
    redact(v);
}

/// [`redact_value`]; true when something was masked.
fn redact(v: &mut Value) -> bool {
    match v {
        Value::Object(map) => {
            let mut changed = false;
            let pair_is_secret = map.iter().any(|(k, x)| {
                ["name", "source", "key"]
                    .iter()
                    .any(|n| k.eq_ignore_ascii_case(n))
                    && x.as_str().is_some_and(crate::is_secret_name)
            });
            for (k, x) in map.iter_mut() {
                let pair_value = pair_is_secret
                    && ["value", "values", "default", "options"]
                        .iter()
                        .any(|n| k.eq_ignore_ascii_case(n));
                // A boolean is a flag about a secret (`Token: true` of a parameter's help), never one.
                if (pair_value || crate::is_secret_name(k)) && !x.is_null() && !x.is_boolean() {
                    if x.as_str() != Some(crate::MASK) {
                        *x = Value::String(crate::MASK.to_string());
                        changed = true;
                    }
                } else {
                    changed |= redact(x);
                }
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |c, x| redact(x) | c),
        Value::String(text) => match redact_text(text) {
            Some(masked) => {
                *text = masked;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// A JSON or YAML text with its secrets masked, or None when it holds none (or is not structured text).
fn redact_text(text: &str) -> Option<String> {
    if !crate::mentions_secret(text) {
        return None;
    }
    if text.len() > MAX_EMBEDDED_TEXT {
        return Some(crate::MASK.to_string());
    }
    if !text.trim_start().starts_with(['{', '[']) && !text.contains(':') {
        return None;
    }
    // The nesting bounds of request bodies hold here too: text too deep to parse cheaply is masked whole.
    match crate::nesting::parse_text(text) {
        Err(_) => Some(crate::MASK.to_string()),
        Ok(None) => None,
        Ok(Some(crate::nesting::Parsed::Json(mut v))) => {
            redact(&mut v).then(|| serde_json::to_string(&v).ok())?
        }
        Ok(Some(crate::nesting::Parsed::Yaml(mut v))) => {
            if !(v.is_object() || v.is_array()) || !redact(&mut v) {
                return None;
            }
            serde_yaml::to_string(&v).ok()
        }
    }
}

/// How a dispatch ended, as the executor must know it to retry safely.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum DispatchOutcome {
    /// The handler ran and answered.
    Done(ExecuteResult),
    /// The request provably never reached a handler (no node for it, publish refused): safe to retry.
    NotDelivered { reason: String },
    /// The request may or may not have run (connection lost after delivery, a handler panic, a node that died
    /// mid-action): retried only for actions that read.
    Unknown { reason: String },
}

impl DispatchOutcome {
    /// The outcome as an action result (a transport problem is a Failed action with the reason).
    pub fn into_result(self) -> ExecuteResult {
        match self {
            DispatchOutcome::Done(r) => r,
            DispatchOutcome::NotDelivered { reason } => {
                ExecuteResult::failed(format!("not delivered: {reason}"))
            }
            DispatchOutcome::Unknown { reason } => {
                ExecuteResult::failed(format!("outcome unknown: {reason}"))
            }
        }
    }
}

/// `RunAs` on the wire: every field, the password in clear (the plan model masks it when serialized for
/// output, which is right for output and wrong for a node that must use it).
mod run_as_wire {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct Wire {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        is_inheritable: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_inheritance: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<ParameterInfo>,
    }

    pub fn serialize<S: Serializer>(v: &Option<SecurityContext>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref()
            .map(|c| Wire {
                domain: c.domain.clone(),
                user_name: c.user_name.clone(),
                password: c.password.clone(),
                provider: c.provider.clone(),
                is_inheritable: c.is_inheritable,
                block_inheritance: c.block_inheritance,
                config: c.config.clone(),
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SecurityContext>, D::Error> {
        Ok(Option::<Wire>::deserialize(d)?.map(|w| SecurityContext {
            domain: w.domain,
            user_name: w.user_name,
            password: w.password,
            provider: w.provider,
            is_inheritable: w.is_inheritable,
            block_inheritance: w.block_inheritance,
            config: w.config,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> ActionRequest {
        let id = Uuid::now_v7();
        ActionRequest {
            version: WIRE_VERSION,
            plan_name: "CreateUser".into(),
            plan_instance_id: id,
            action_instance_id: 3,
            action_name: "create".into(),
            attempt: 2,
            idempotency_key: IdempotencyKey::new(id, 3, 2),
            handler_type: "Synapse.Handlers.ActiveDirectory:ActiveDirectoryHandler".into(),
            kind: ActionKind::Write,
            config: json!({"Action": "Create", "Token": "cfg-secret"}),
            params: json!({"Users": [{"Identity": "cn=x,dc=y", "Password": "Hunter2!é\u{0}"}]}),
            run_as: Some(SecurityContext {
                domain: Some("SANDBOX".into()),
                user_name: Some("svc".into()),
                password: Some("p@ss".into()),
                ..SecurityContext::default()
            }),
            principal: Some("helpdesk".into()),
            deadline: Some(chrono::DateTime::from_timestamp(1_780_000_000, 123_456_789).unwrap()),
            dry_run: false,
            parent_exit_data: json!({"ApiKey": "k", "n": 1}),
            run_on: [("site".to_string(), "dc1".to_string())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn a_request_survives_json_byte_for_byte_with_its_secrets() {
        let r = request();
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("Hunter2!"), "{text}");
        assert!(text.contains("p@ss"));
        assert!(!text.contains(crate::MASK));
        let back: ActionRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn an_outcome_survives_json_byte_for_byte() {
        for o in [
            DispatchOutcome::Done(ExecuteResult::complete(
                json!({"Password": "x", "k": [1, 2]}),
            )),
            DispatchOutcome::NotDelivered {
                reason: "no node".into(),
            },
            DispatchOutcome::Unknown {
                reason: "connection lost".into(),
            },
        ] {
            let text = serde_json::to_string(&o).unwrap();
            let back: DispatchOutcome = serde_json::from_str(&text).unwrap();
            assert_eq!(back, o);
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
    }

    #[test]
    fn the_redacted_view_masks_every_secret() {
        let r = request().redacted();
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["Hunter2!", "p@ss", "cfg-secret", "\"k\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(r.params["Users"][0]["Identity"], "cn=x,dc=y");
        assert_eq!(r.parent_exit_data["n"], 1);
    }

    #[test]
    fn redaction_looks_into_attribute_names_pairs_and_json_or_yaml_text() {
        let mut v = json!({
            "Users": [{"Identity": "cn=x", "Properties": {"userPassword": "p1", "unicodePwd": ["p2"],
                "pwdLastSet": 0, "description": "d"}, "PasswordNeverExpires": true}],
            "properties": "{\"userPassword\": \"p3\", \"mail\": \"m\"}",
            "yaml": "client_secret: p4\nname: n\n",
            "Dynamic": [{"Source": "password", "Default": {"Value": "p5"}}, {"Source": "name", "Default": {"Value": "n"}}],
            "pair": {"Name": "ApiKey", "Value": "p6"},
            "plain": "a password is required",
            "line": "password: p8",
            "AccessToken": "p7",
            "Token": true,
        });
        redact_value(&mut v);
        let text = v.to_string();
        for secret in ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"] {
            assert!(
                !text.contains(&format!("{secret}\"")) && !text.contains(&format!(": {secret}")),
                "{secret} leaked: {text}"
            );
        }
        assert_eq!(v["Users"][0]["Properties"]["pwdLastSet"], 0);
        assert_eq!(v["Users"][0]["Properties"]["description"], "d");
        assert_eq!(v["Users"][0]["PasswordNeverExpires"], true);
        assert_eq!(v["Token"], true);
        assert_eq!(v["Dynamic"][1]["Default"]["Value"], "n");
        let props: Value = serde_json::from_str(v["properties"].as_str().unwrap()).unwrap();
        assert_eq!(props, json!({"userPassword": crate::MASK, "mail": "m"}));
        assert!(v["yaml"].as_str().unwrap().contains("name: n"), "{text}");
        // Text that is not a map or list is left alone.
        assert_eq!(v["plain"], "a password is required");
        // Masking twice changes nothing more.
        let once = v.clone();
        redact_value(&mut v);
        assert_eq!(v, once);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(request()).unwrap();
        v["Surprise"] = json!(1);
        assert!(serde_json::from_value::<ActionRequest>(v).is_err());
    }

    #[test]
    fn keys_differ_per_attempt_and_read_back_from_text() {
        let id = Uuid::now_v7();
        assert_ne!(IdempotencyKey::new(id, 1, 1), IdempotencyKey::new(id, 1, 2));
        let k = IdempotencyKey::new(id, 7, 3);
        assert_eq!(k.to_string(), format!("{id}/7/3"));
        assert_eq!(k.to_string().parse::<IdempotencyKey>(), Ok(k));
        for bad in ["", "x/1/1", "{id}/1", "{id}/1/1/1", "{id}/-1/1"] {
            let bad = bad.replace("{id}", &id.to_string());
            assert!(bad.parse::<IdempotencyKey>().is_err(), "{bad}");
        }
    }
}
