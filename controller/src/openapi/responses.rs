//! Responses: reusable ones (`components/responses`, referenced as `(status = 404, response = NotFound)`) and
//! the sets several operations share (`responses(AdResponses)`).

use super::ad::AdEnvelope;
use super::schemas::{ErrorBody, PlanInstanceId, PlanResult, StillRunning};
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Object, Ref, SchemaType};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToResponse, ToSchema};

/// A response whose body is the schema `schema` in each of `content_types`.
fn body_response(description: &str, schema: &str, content_types: &[&str]) -> Response {
    let mut b = ResponseBuilder::new().description(description);
    for ct in content_types {
        b = b.content(
            *ct,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        );
    }
    b.build()
}

const JSON: &[&str] = &["application/json"];
/// The AD routes render the envelope per `outputtype` (request errors are always JSON).
const RENDERED: &[&str] = &["application/json", "application/yaml", "application/xml"];

/// Declares reusable responses (`components/responses/<Name>`): `(status = 404, response = NotFound)`.
macro_rules! responses {
    ($($name:ident: $schema:ty, $types:expr, $description:expr;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'s> ToResponse<'s> for $name {
                fn response() -> (&'s str, RefOr<Response>) {
                    (
                        stringify!($name),
                        body_response($description, &<$schema as ToSchema>::name(), $types).into(),
                    )
                }
            }
        )*
    };
}

responses! {
    BadRequest: ErrorBody, JSON, "Malformed request: bad JSON/YAML body (with line and column), unknown or missing \
        dynamic parameters (`Problems` lists every one), bad query values (dryRun, timeoutSeconds, outputtype, \
        limit, before, filter, instance id), a query key given twice; (part) more paths than `PartMaxPaths` or an \
        answer larger than `PartMaxBytes`.";
    Unauthorized: ErrorBody, JSON, "No API key, a malformed `Authorization` header, or an unknown key. Comes with \
        `WWW-Authenticate: Bearer`.";
    Forbidden: ErrorBody, JSON, "The key's roles do not grant the operation's permission (`x-permission`; \
        `read` keys may not start or cancel plans).";
    NotFound: ErrorBody, JSON, "No such plan or instance.";
    Conflict: ErrorBody, JSON, "The plan is not active (`IsActive: false`), or (cancel) the instance is not running.";
    PayloadTooLarge: ErrorBody, JSON, "The request body is larger than the server's `BodyLimit` (default 1 MiB).";
    TooManyRequests: ErrorBody, JSON, "`MaxRunningInstances` plan instances are running already (default 10000); \
        nothing started. Comes with `Retry-After`.";
    UnsupportedMediaType: ErrorBody, JSON, "A non-empty body whose `Content-Type` is not JSON or YAML (e.g. \
        text/plain or a form); the message lists the accepted types.";
    InternalError: ErrorBody, JSON, "The plan file exists but does not validate (with its diagnostics), or a \
        store error.";
    AdOk: AdEnvelope, RENDERED, "Every status is Success (1). JSON by default; YAML or XML with `outputtype` \
        or `Accept`.";
    AdBadRequest: AdEnvelope, RENDERED, "Worst status MissingInput (2), PasswordPolicyNotMet (5), InvalidPath \
        (6), InvalidAttribute (9), InvalidName (11), InvalidContainer (12), MultipleMatches (13) or InvalidInput \
        (14); or a request error wrapped in an envelope (bad body, unknown body key or query flag, missing \
        parameter with `Problems`, bad outputtype/timeoutSeconds/dryRun).";
    AdUnauthorized: AdEnvelope, JSON, "No API key, a malformed `Authorization` header, or an unknown key: an \
        envelope with Status 8 (NotAllowed), Action 0. Comes with `WWW-Authenticate: Bearer`.";
    AdForbidden: AdEnvelope, RENDERED, "Worst status NotAllowed (8), e.g. deleting an OU that has children or \
        a forbidden group nesting; or the key's roles do not grant the operation's permission (`x-permission`; Status 8, Action 0).";
    AdNotFound: AdEnvelope, RENDERED, "Worst status DoesNotExist (4): the object (or a referenced object) does \
        not exist, or is not a member (RemoveFromGroup); or an unknown object type or plan.";
    AdConflict: AdEnvelope, RENDERED, "Worst status AlreadyExists (3): the object exists (Create without \
        upsert) or is already a member (AddToGroup); or the plan is not active (Status 14).";
    AdPayloadTooLarge: AdEnvelope, JSON, "The body is larger than `BodyLimit` (an envelope with Status 14).";
    AdTooManyRequests: AdEnvelope, JSON, "`MaxRunningInstances` plan instances are running already; nothing \
        started. Comes with `Retry-After`.";
    AdUnsupportedMediaType: AdEnvelope, JSON, "A non-empty body whose `Content-Type` is not JSON or YAML (an \
        envelope with Status 14).";
    AdInternalError: AdEnvelope, RENDERED, "Worst status Unknown (0); or the plan ran no action, returned no \
        envelope, or does not validate.";
    AdNotImplemented: AdEnvelope, RENDERED, "Worst status NotSupported (7), e.g. `UserCannotChangePassword: \
        true`.";
    AdUnavailable: AdEnvelope, RENDERED, "Worst status ConnectionError (10): no domain configured, or the \
        domain controllers cannot be reached or bound.";
    AdGatewayTimeout: AdEnvelope, JSON, "The plan did not finish within timeoutSeconds (Status 0). It keeps \
        running; the message names the instance (GET /synapse/execute/{plan}/{id}).";
}

/// The responses of an AD route (200 and every error an AD route can answer).
pub struct AdResponses;

/// The responses of an AD route that reads a body: [`AdResponses`], 413 and 415.
pub struct AdBodyResponses;

fn ad_responses(with_body: bool) -> BTreeMap<String, RefOr<Response>> {
    let mut list = vec![
        ("200", "AdOk"),
        ("400", "AdBadRequest"),
        ("401", "AdUnauthorized"),
        ("403", "AdForbidden"),
        ("404", "AdNotFound"),
        ("409", "AdConflict"),
        ("500", "AdInternalError"),
        ("501", "AdNotImplemented"),
        ("503", "AdUnavailable"),
        ("504", "AdGatewayTimeout"),
        ("429", "AdTooManyRequests"),
    ];
    if with_body {
        list.push(("413", "AdPayloadTooLarge"));
        list.push(("415", "AdUnsupportedMediaType"));
    }
    refs(&list)
}

impl IntoResponses for AdResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ad_responses(false)
    }
}

impl IntoResponses for AdBodyResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ad_responses(true)
    }
}

/// References to reusable responses, by status.
fn refs(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(code, name)| (code.to_string(), RefOr::Ref(Ref::from_response_name(*name))))
        .collect()
}

/// A response with a JSON body of schema `schema`, inline.
fn inline<S: ToSchema>(description: &str) -> RefOr<Response> {
    body_response(description, &S::name(), JSON).into()
}

/// The responses of the start routes: 202 with the instance id, or an error.
pub struct StartResponses;

impl IntoResponses for StartResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut r = refs(&[
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("404", "NotFound"),
            ("409", "Conflict"),
            ("429", "TooManyRequests"),
            ("500", "InternalError"),
        ]);
        r.insert("202".into(), inline::<PlanInstanceId>("Started."));
        r
    }
}

/// The result of a sync start: the whole result tree, or the part `path` selects (any JSON).
#[derive(serde::Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // the enum exists for its schema
pub enum SyncResult {
    Tree(PlanResult),
    Part(serde_json::Value),
}

/// The responses of the sync start routes.
pub struct SyncResponses;

impl IntoResponses for SyncResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut r = refs(&[
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("404", "NotFound"),
            ("409", "Conflict"),
            ("429", "TooManyRequests"),
            ("500", "InternalError"),
        ]);
        let status = HeaderBuilder::new()
            .schema(Some(Ref::from_schema_name("StatusType")))
            .description(Some("The plan's final status (e.g. `Complete`, `Failed`)."))
            .build();
        let mut ok = ResponseBuilder::new()
            .description(
                "Finished, whatever the plan's status (see `Status` and `x-synapse-status`).",
            )
            .header("x-synapse-status", status);
        for ct in RENDERED {
            ok = ok.content(
                *ct,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(SyncResult::name())))
                    .build(),
            );
        }
        r.insert("200".into(), ok.build().into());
        r.insert(
            "202".into(),
            inline::<StillRunning>("Still running after the timeout; it keeps running."),
        );
        r
    }
}

/// The responses of the part routes.
pub struct PartResponses;

impl IntoResponses for PartResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut r = refs(&[
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("404", "NotFound"),
            ("500", "InternalError"),
        ]);
        let ok = ResponseBuilder::new()
            .description("The selected part(s): any JSON (a list for several paths).")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Object::with_type(SchemaType::AnyValue)))
                    .build(),
            )
            .build();
        r.insert("200".into(), ok.into());
        r
    }
}
