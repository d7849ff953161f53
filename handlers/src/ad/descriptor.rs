//! What the rest of Synapse knows about the ActiveDirectoryHandler without running it: names, `~~token~~`
//! escaping per parameter path, which actions only read, and how its result envelope reads to an API (outcome
//! class from the worst Status, the envelope as the result body, request errors as envelopes).

use crate::ad::envelope::AdStatus;
use crate::ldap::escape::{LdapDn, LdapFilter, LdapIdentity};
use serde_json::{json, Value};
use synapse_engine::model::ParameterInfo;
use synapse_engine::resolve::normalize_exit_data;
use synapse_engine::{
    ActionKind, ActionProblem, EscapeRule, HandlerDescriptor, OutcomeClass, RequestErrorInfo,
    StatusType,
};

/// The ActiveDirectoryHandler's descriptor.
pub struct AdDescriptor {
    parameter_rules: Vec<EscapeRule>,
}

impl Default for AdDescriptor {
    fn default() -> Self {
        let mut rules = vec![
            EscapeRule::new("SearchRequests[*]:Filter", LdapFilter),
            EscapeRule::new("SearchRequests[*]:SearchBase", LdapDn),
        ];
        for kind in ["Users", "Groups", "OrganizationalUnits", "Computers"] {
            for field in ["Identity", "MoveTo", "Manager", "ManagedBy"] {
                rules.push(EscapeRule::new(&format!("{kind}[*]:{field}"), LdapIdentity));
            }
            rules.push(EscapeRule::new(
                &format!("{kind}[*]:MemberOf[*]"),
                LdapIdentity,
            ));
        }
        AdDescriptor {
            parameter_rules: rules,
        }
    }
}

/// The worst Status of an envelope (most severe first, then the higher code), Success when it has none.
pub fn worst_status(envelope: &Value) -> AdStatus {
    envelope["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Statuses"].as_array().into_iter().flatten())
        .filter_map(|s| serde_json::from_value::<AdStatus>(s["Status"].clone()).ok())
        .max_by_key(|s| (s.severity(), s.code()))
        .unwrap_or(AdStatus::Success)
}

/// The API reading of an AD status.
pub fn outcome_class(status: AdStatus) -> OutcomeClass {
    match status {
        AdStatus::Success => OutcomeClass::Success,
        AdStatus::DoesNotExist => OutcomeClass::NotFound,
        AdStatus::AlreadyExists => OutcomeClass::Conflict,
        AdStatus::MissingInput => OutcomeClass::MissingInput,
        AdStatus::InvalidInput
        | AdStatus::InvalidName
        | AdStatus::InvalidAttribute
        | AdStatus::InvalidPath
        | AdStatus::InvalidContainer
        | AdStatus::PasswordPolicyNotMet
        | AdStatus::MultipleMatches => OutcomeClass::InvalidInput,
        AdStatus::NotAllowed => OutcomeClass::Forbidden,
        AdStatus::NotSupported => OutcomeClass::NotSupported,
        AdStatus::ConnectionError => OutcomeClass::Unavailable,
        AdStatus::Unknown => OutcomeClass::Failed,
    }
}

fn status_for(class: OutcomeClass) -> AdStatus {
    match class {
        OutcomeClass::Success => AdStatus::Success,
        OutcomeClass::MissingInput => AdStatus::MissingInput,
        OutcomeClass::InvalidInput => AdStatus::InvalidInput,
        OutcomeClass::NotFound => AdStatus::DoesNotExist,
        OutcomeClass::Conflict => AdStatus::AlreadyExists,
        OutcomeClass::Forbidden => AdStatus::NotAllowed,
        OutcomeClass::NotSupported => AdStatus::NotSupported,
        OutcomeClass::Unavailable => AdStatus::ConnectionError,
        OutcomeClass::Failed => AdStatus::Unknown,
    }
}

impl HandlerDescriptor for AdDescriptor {
    fn name(&self) -> &'static str {
        "ActiveDirectoryHandler"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["Synapse.Handlers.ActiveDirectory:ActiveDirectoryHandler"]
    }

    fn parameter_escaping(&self) -> &[EscapeRule] {
        &self.parameter_rules
    }

    /// `Action: Get` (the default) reads, `Search` searches, everything else writes.
    fn action_kind(&self, config: &Value) -> ActionKind {
        match config.get("Action").and_then(Value::as_str) {
            None => ActionKind::Read,
            Some(a) if a.eq_ignore_ascii_case("Get") => ActionKind::Read,
            Some(a) if a.eq_ignore_ascii_case("Search") => ActionKind::Search,
            Some(_) => ActionKind::Write,
        }
    }

    fn outcome(&self, status: StatusType, exit_data: &Value) -> OutcomeClass {
        // The envelope as exit data (the usual case) is read in place; only text is parsed first.
        if exit_data.get("Results").is_some() {
            return outcome_class(worst_status(exit_data));
        }
        match self.result_body(exit_data) {
            Some(env) => outcome_class(worst_status(&env)),
            None => OutcomeClass::from_status(status),
        }
    }

    /// The envelope, also when a plan handed it on as YAML or XML text (`OutputType`).
    fn result_body(&self, exit_data: &Value) -> Option<Value> {
        let data = normalize_exit_data(exit_data);
        data.get("Results").is_some().then_some(data)
    }

    /// Config and Parameters fields the model has, values it accepts, filters that parse, Dynamic targets
    /// that exist (crate::ad::check).
    fn check_action(
        &self,
        config: Option<&ParameterInfo>,
        parameters: Option<&ParameterInfo>,
    ) -> Vec<ActionProblem> {
        crate::ad::check::check_action(config, parameters)
    }

    fn request_error_body(&self, e: &RequestErrorInfo<'_>) -> Option<Value> {
        Some(json!({"Results": [{
            "Statuses": [{"Status": status_for(e.class).code(), "Message": e.message, "Action": 0}],
            "Type": 0, "Identity": e.subject,
            "User": null, "Group": null, "Computer": null, "OrganizationalUnit": null, "SearchResults": null
        }]}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_action() {
        let d = AdDescriptor::default();
        assert_eq!(d.action_kind(&json!({})), ActionKind::Read);
        assert_eq!(d.action_kind(&json!({"Action": "get"})), ActionKind::Read);
        assert_eq!(
            d.action_kind(&json!({"Action": "Search"})),
            ActionKind::Search
        );
        assert_eq!(
            d.action_kind(&json!({"Action": "Create"})),
            ActionKind::Write
        );
    }

    #[test]
    fn the_worst_status_decides_the_class() {
        let d = AdDescriptor::default();
        let env = json!({"Results": [
            {"Statuses": [{"Status": 1}, {"Status": 4}]},
            {"Statuses": [{"Status": 3}]}
        ]});
        // DoesNotExist and AlreadyExists are equally severe; the higher code wins.
        assert_eq!(
            d.outcome(StatusType::CompletedWithErrors, &env),
            OutcomeClass::NotFound
        );
        let env = json!({"Results": [{"Statuses": [{"Status": 1}, {"Status": 10}]}]});
        assert_eq!(
            d.outcome(StatusType::Failed, &env),
            OutcomeClass::Unavailable
        );
        assert_eq!(
            d.outcome(StatusType::Complete, &json!({"Results": []})),
            OutcomeClass::Success
        );
        assert_eq!(
            d.outcome(StatusType::Failed, &Value::Null),
            OutcomeClass::Failed
        );
    }

    #[test]
    fn request_errors_are_envelopes() {
        let d = AdDescriptor::default();
        let body = d
            .request_error_body(&RequestErrorInfo {
                class: OutcomeClass::MissingInput,
                message: "missing",
                subject: "mfox",
            })
            .unwrap();
        assert_eq!(body["Results"][0]["Statuses"][0]["Status"], 2);
        assert_eq!(body["Results"][0]["Identity"], "mfox");
        assert_eq!(
            d.outcome(StatusType::Failed, &body),
            OutcomeClass::MissingInput
        );
    }
}
