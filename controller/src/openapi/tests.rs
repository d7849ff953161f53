//! The document is clean (refs resolve; nothing that stops a client generator; path parameters declared),
//! and the schemas that describe bodies built elsewhere match real values of those types (struct literals:
//! a new field on the engine or store types fails to compile here, which points at the schema to update).
//! That the router serves exactly the documented routes is probed against the real router in tests/api.rs.

use super::check::{check_value, lint, operations};
use super::document;
use crate::http::error::ApiError;
use crate::runner::StartError;
use axum::response::IntoResponse;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use synapse_engine::resolve::{Problem, ResolveError};
use synapse_engine::{ActionResult, PlanResult, ProgressEvent, StatusType};
use uuid::Uuid;

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Asserts that `value` has the shape of the schema `name`.
fn conforms(doc: &Value, name: &str, value: &Value) {
    let errors = check_value(doc, &schema(name), value);
    assert!(
        errors.is_empty(),
        "{name} does not describe {value}:\n{}",
        errors.join("\n")
    );
}

#[test]
fn document_is_clean() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let problems = lint(&doc);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(doc["security"], json!([{"bearerAuth": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let ops = operations(&doc);
    assert!(ops.len() > 30, "{} operations", ops.len());
    for (path, method, op) in ops {
        let open = [
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/docs/swagger-ui.css",
            "/docs/swagger-ui-bundle.js",
        ]
        .contains(&path);
        assert_eq!(
            op.get("security") == Some(&json!([])),
            open,
            "{method} {path}: only the open routes waive the bearer key"
        );
        assert!(op["tags"].is_array(), "{method} {path} has a tag");
        for resp in op["responses"].as_object().into_iter().flatten() {
            let (code, r) = resp;
            assert!(
                r.get("$ref").is_some() || r["headers"].get("x-request-id").is_some(),
                "{method} {path} {code}: x-request-id"
            );
        }
    }
    let about = doc["info"]["description"].as_str().unwrap_or_default();
    assert!(about.contains("/myriad"), "the /myriad alias is described");
    // The two failures of the hand-written document with openapi-python-client.
    let outputtype = &doc["components"]["schemas"]["OutputType"];
    assert_eq!(outputtype["enum"], json!(["json", "yaml", "xml"]));
    let props = &doc["components"]["schemas"]["AdSearchResult"]["properties"]["Properties"];
    assert!(
        props.to_string().contains("\"items\""),
        "search properties are lists with items: {props}"
    );
}

#[test]
fn statuses_come_from_the_engine() {
    let doc = document();
    let names: Vec<&str> = StatusType::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        doc["components"]["schemas"]["StatusType"]["enum"],
        json!(names)
    );
}

#[test]
fn the_checker_reports_what_does_not_fit() {
    let doc = document();
    let ok = json!({"PlanInstanceId": "01a2076d-7e0b-7332-8fe9-3abc3d9cd6d2"});
    conforms(&doc, "PlanInstanceId", &ok);
    let cases = [
        (json!({}), "required property PlanInstanceId"),
        (json!({"PlanInstanceId": 1}), "not of type"),
        (json!({"PlanInstanceId": "nope"}), "not a uuid"),
        (
            json!({"PlanInstanceId": "01a2076d-7e0b-7332-8fe9-3abc3d9cd6d2", "Extra": 1}),
            "property not in the schema",
        ),
    ];
    for (value, want) in cases {
        let errors = check_value(&doc, &schema("PlanInstanceId"), &value).join("\n");
        assert!(errors.contains(want), "{value}: {errors}");
    }
    let errors = check_value(&doc, &schema("StatusType"), &json!("Done")).join("\n");
    assert!(errors.contains("is not one of"), "{errors}");
}

async fn body_of(err: ApiError) -> Value {
    let resp = err.into_response();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn error_bodies_conform() {
    let doc = document();
    let inputs = ApiError::from(StartError::Inputs(ResolveError {
        problems: vec![
            Problem::Missing {
                parameter: "name".into(),
            },
            Problem::Invalid {
                parameter: "count".into(),
                reason: "not a number".into(),
            },
            Problem::Resolve {
                reason: "ForEach: no list".into(),
            },
        ],
    }));
    let v = body_of(inputs).await;
    assert_eq!(v["Error"]["Problems"][0]["Parameter"], "name");
    conforms(&doc, "Error", &v);
    conforms(
        &doc,
        "Error",
        &body_of(ApiError::NotFound("no plan".into())).await,
    );
}

fn time(s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, s)
        .single()
        .unwrap_or_default()
}

fn action(name: &str, children: Vec<ActionResult>) -> ActionResult {
    ActionResult {
        name: name.into(),
        instance_id: 1,
        handler: "Echo".into(),
        status: StatusType::Complete,
        branch_status: StatusType::Failed,
        message: "done".into(),
        exit_data: json!({"Results": [1, 2]}),
        exit_code: 0,
        attempts: 2,
        node: None,
        delivery: None,
        late: false,
        for_each_index: Some(0),
        started_at: time(0),
        finished_at: time(1),
        duration_ms: 12.5,
        action_group: children.clone(),
        actions: children,
    }
}

fn plan_result() -> PlanResult {
    let bare = ActionResult {
        handler: String::new(),
        message: String::new(),
        exit_data: Value::Null,
        for_each_index: None,
        ..action("bare", Vec::new())
    };
    PlanResult {
        plan_name: "hello".into(),
        instance_id: Uuid::now_v7(),
        status: StatusType::CompletedWithErrors,
        dry_run: true,
        message: "one failed".into(),
        started_at: time(0),
        finished_at: time(2),
        duration_ms: 2000.0,
        actions: vec![action("outer", vec![bare])],
    }
}

#[test]
fn results_and_instances_conform() {
    let doc = document();
    let result = plan_result();
    conforms(&doc, "PlanResult", &serde_json::to_value(&result).unwrap());
    conforms(&doc, "SyncResult", &serde_json::to_value(&result).unwrap());
    let record = crate::store::InstanceRecord {
        id: result.instance_id,
        plan: "hello".into(),
        requester: Some("ci".into()),
        requester_kind: Some(crate::store::RequesterKind::ApiKey),
        started_at: time(0),
        finished_at: Some(time(2)),
        status: StatusType::Complete,
        dry_run: false,
        parameters: BTreeMap::from([("name".to_string(), json!("Bob"))]),
        message: Some("ok".into()),
        result: Some(result),
    };
    conforms(
        &doc,
        "InstanceRecord",
        &serde_json::to_value(&record).unwrap(),
    );
    let summary = crate::store::InstanceSummary::from(&record);
    conforms(
        &doc,
        "InstanceSummary",
        &serde_json::to_value(&summary).unwrap(),
    );
    let running = crate::store::InstanceRecord {
        finished_at: None,
        status: StatusType::Running,
        result: None,
        requester: None,
        requester_kind: None,
        message: None,
        ..record
    };
    conforms(
        &doc,
        "InstanceRecord",
        &serde_json::to_value(&running).unwrap(),
    );
    let event = ProgressEvent::at(
        Uuid::now_v7(),
        Some(3),
        "wait",
        StatusType::Running,
        "waiting".into(),
        synapse_engine::Clock::now(&synapse_engine::SystemClock),
    );
    conforms(
        &doc,
        "ProgressEvent",
        &serde_json::to_value(&event).unwrap(),
    );
}

#[test]
fn plan_help_conforms() {
    let doc = document();
    let help = synapse_engine::help::ParamHelp {
        name: "loud".into(),
        description: Some("shout".into()),
        required: false,
        default: Some(json!(false)),
        options: vec![synapse_engine::help::OptionHelp {
            key: "yes".into(),
            value: "true".into(),
            description: Some("shout".into()),
        }],
        restrict_to_options: true,
        data_type: Some("Boolean".into()),
        validation: Some("^(true|false)$".into()),
        token: true,
        used_by: vec!["say".into()],
    };
    conforms(&doc, "ParamHelp", &serde_json::to_value(&help).unwrap());
    let bare = synapse_engine::help::ParamHelp {
        description: None,
        default: None,
        options: Vec::new(),
        data_type: None,
        validation: None,
        ..help
    };
    conforms(&doc, "ParamHelp", &serde_json::to_value(&bare).unwrap());
}
