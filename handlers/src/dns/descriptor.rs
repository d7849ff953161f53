//! What the rest of Synapse knows about the DnsHandler without running it: names, `~~token~~` escaping (DNS
//! names cannot be escaped, so a token in a name field must be a name: [`DnsNameToken`] refuses anything
//! else), which actions only read, and how its envelope reads to an API (the AD envelope's Status codes, so
//! the same outcome classes and HTTP statuses).

use crate::ad::descriptor::{outcome_class, worst_status};
use crate::dns::name::check_name;
use serde_json::{json, Value};
use synapse_engine::resolve::normalize_exit_data;
use synapse_engine::token::Escaper;
use synapse_engine::{
    ActionKind, EscapeRule, HandlerDescriptor, OutcomeClass, RequestErrorInfo, StatusType,
};

/// `~~token~~` in a DNS name field: the value must be a DNS name (or a run of labels inside a longer name);
/// `@` and the empty string (an optional parameter left out) pass as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DnsNameToken;

impl Escaper for DnsNameToken {
    fn name(&self) -> &'static str {
        "DnsName"
    }
    fn escape(&self, value: &str, whole: bool) -> Result<String, String> {
        if value.is_empty() || (whole && value == "@") {
            return Ok(value.to_string());
        }
        check_name("the value", value)
            .map(|_| value.to_string())
            .map_err(|e| format!("is not a DNS name: {e}"))
    }
}

/// The DnsHandler's descriptor.
pub struct DnsDescriptor;

/// The name fields of the handler's parameters.
const NAME_PATHS: [&str; 4] = [
    "Zone",
    "Name",
    "DnsActions[*]:Hostname",
    "DnsActions[*]:DnsZone",
];

fn rules() -> &'static [EscapeRule] {
    static RULES: std::sync::OnceLock<Vec<EscapeRule>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        NAME_PATHS
            .iter()
            .map(|p| EscapeRule::new(p, DnsNameToken))
            .collect()
    })
}

fn status_for(class: OutcomeClass) -> u8 {
    match class {
        OutcomeClass::Success => 1,
        OutcomeClass::MissingInput => 2,
        OutcomeClass::InvalidInput => 14,
        OutcomeClass::NotFound => 4,
        OutcomeClass::Conflict => 3,
        OutcomeClass::Forbidden => 8,
        OutcomeClass::NotSupported => 7,
        OutcomeClass::Unavailable => 10,
        OutcomeClass::Failed => 0,
    }
}

impl HandlerDescriptor for DnsDescriptor {
    fn name(&self) -> &'static str {
        "DnsHandler"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["Synapse.Handlers.DNS:DnsHandler"]
    }

    fn parameter_escaping(&self) -> &[EscapeRule] {
        rules()
    }

    /// List/Get/Exists actions read; everything else (and upstream's `DnsActions`) writes.
    fn action_kind(&self, config: &Value) -> ActionKind {
        match config.get("Action").and_then(Value::as_str) {
            Some(a)
                if [
                    "ListZones",
                    "GetZone",
                    "ZoneExists",
                    "ListRecords",
                    "GetRecord",
                ]
                .iter()
                .any(|r| r.eq_ignore_ascii_case(a)) =>
            {
                ActionKind::Read
            }
            _ => ActionKind::Write,
        }
    }

    fn outcome(&self, status: StatusType, exit_data: &Value) -> OutcomeClass {
        if exit_data.get("Results").is_some() {
            return outcome_class(worst_status(exit_data));
        }
        match self.result_body(exit_data) {
            Some(env) => outcome_class(worst_status(&env)),
            None => OutcomeClass::from_status(status),
        }
    }

    fn result_body(&self, exit_data: &Value) -> Option<Value> {
        let data = normalize_exit_data(exit_data);
        data.get("Results").is_some().then_some(data)
    }

    fn request_error_body(&self, e: &RequestErrorInfo<'_>) -> Option<Value> {
        Some(json!({"Results": [{
            "Statuses": [{"Status": status_for(e.class), "Message": e.message, "Action": "None"}],
            "Type": "None", "Identity": e.subject,
        }]}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kinds_and_outcomes() {
        let d = DnsDescriptor;
        assert_eq!(
            d.action_kind(&json!({"Action": "ListRecords"})),
            ActionKind::Read
        );
        assert_eq!(
            d.action_kind(&json!({"Action": "CreateRecord"})),
            ActionKind::Write
        );
        assert_eq!(d.action_kind(&json!({})), ActionKind::Write);
        let env = json!({"Results": [{"Statuses": [{"Status": 1}, {"Status": 3}]}]});
        assert_eq!(d.outcome(StatusType::Failed, &env), OutcomeClass::Conflict);
        let body = d
            .request_error_body(&RequestErrorInfo {
                class: OutcomeClass::NotFound,
                message: "m",
                subject: "z",
            })
            .unwrap();
        assert_eq!(d.outcome(StatusType::Failed, &body), OutcomeClass::NotFound);
    }

    #[test]
    fn name_tokens() {
        let e = DnsNameToken;
        assert_eq!(e.escape("host-1", false).unwrap(), "host-1");
        assert_eq!(e.escape("@", true).unwrap(), "@");
        for bad in ["*", "a,b", "a)(x=*", "a..b", "x\\00", &"a".repeat(300)] {
            assert!(e.escape(bad, true).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Whatever passes the escaper holds no DN or filter metacharacter.
        #[test]
        fn accepted_tokens_are_plain(s in ".{0,80}") {
            if let Ok(v) = DnsNameToken.escape(&s, false) {
                prop_assert!(!v.chars().any(|c| ",+\"\\<>;=()*\0 #/".contains(c)));
            }
        }
    }
}
