//! The one place where errors become HTTP responses.
//!
//! - [`ApiError`] is the HTTP layer's error: the domain errors of the layers below ([`CatalogError`],
//!   [`StartError`], [`StoreError`], [`AuthError`]) plus what only a request can get wrong (a bad query value, an oversized
//!   body, no such route).
//! - [`ApiError::status`] gives every error its HTTP status; [`outcome_status`] gives every handler
//!   [`OutcomeClass`] its HTTP status. No other module chooses an error status.
//! - Two body shapes ([`ErrorShape`]): `{"Error": {"Status": 400, "Message": "...", "Problems": [...]}}` (the
//!   request id is in the `x-request-id` header), or a handler's own result body for APIs whose clients always
//!   parse that shape (the AD API's envelope, from the ActiveDirectoryHandler's descriptor).
//! - A 401 always carries `WWW-Authenticate: Bearer`.

use crate::auth::AuthError;
use crate::catalog::CatalogError;
use crate::runner::StartError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use synapse_engine::resolve::Problem;
use synapse_engine::{HandlerDescriptor, OutcomeClass, RequestErrorInfo};

/// Errors of the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No such plan, or a plan that does not validate.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The plan did not start: inactive, or missing/invalid inputs (every problem listed).
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Not authenticated (401) or not permitted (403).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No such route, instance or AD object type.
    #[error("{0}")]
    NotFound(String),
    /// Malformed input: bad JSON/YAML (with its position), unknown fields, bad query values.
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The client did not send its request body in time (`BodyReadTimeout`).
    #[error("{0}")]
    RequestTimeout(String),
    /// A request from somewhere the server does not answer (a foreign `Origin` or `Host`: `http::origin`).
    #[error("{0}")]
    ForeignOrigin(String),
    /// A body whose Content-Type is not JSON or YAML (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request conflicts with an instance's state (cancelling one that is not running).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A sync call did not finish in time (the plan keeps running).
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of every error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Catalog(CatalogError::NoSuchPlan { .. }) => StatusCode::NOT_FOUND,
            ApiError::Catalog(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Start(StartError::Inactive { .. }) => StatusCode::CONFLICT,
            ApiError::Start(StartError::Inputs(_)) => StatusCode::BAD_REQUEST,
            ApiError::Start(StartError::Busy { .. }) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Start(StartError::Record(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Start(StartError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Auth(AuthError::Store(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Auth(e) if e.is_unauthenticated() => StatusCode::UNAUTHORIZED,
            ApiError::Auth(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The individual problems (missing/invalid parameters), if any.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ApiError::Start(StartError::Inputs(e)) => &e.problems,
            _ => &[],
        }
    }

    /// How the error reads in a handler's result body: missing inputs, other client errors, unknown plans
    /// and objects, refusals, and everything else (whose HTTP status stays the error's own).
    pub fn class(&self) -> OutcomeClass {
        match self {
            ApiError::Start(StartError::Inputs(e)) => {
                if e.problems
                    .iter()
                    .any(|p| matches!(p, Problem::Missing { .. }))
                {
                    OutcomeClass::MissingInput
                } else {
                    OutcomeClass::InvalidInput
                }
            }
            ApiError::NotFound(_) | ApiError::Catalog(CatalogError::NoSuchPlan { .. }) => {
                OutcomeClass::NotFound
            }
            ApiError::Auth(AuthError::Store(_)) => OutcomeClass::Failed,
            ApiError::Start(StartError::Busy { .. } | StartError::Unavailable(_)) => {
                OutcomeClass::Unavailable
            }
            ApiError::Auth(_) | ApiError::ForeignOrigin(_) => OutcomeClass::Forbidden,
            _ if self.status().is_client_error() => OutcomeClass::InvalidInput,
            _ => OutcomeClass::Failed,
        }
    }

    fn log(&self, status: StatusCode) {
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
    }
}

/// The HTTP status of a handler's outcome class (the AD API answers with the status of its envelope's worst
/// Status through this; docs/decisions.md "HTTP status of AD API responses").
pub fn outcome_status(class: OutcomeClass) -> StatusCode {
    match class {
        OutcomeClass::Success => StatusCode::OK,
        OutcomeClass::NotFound => StatusCode::NOT_FOUND,
        OutcomeClass::Conflict => StatusCode::CONFLICT,
        OutcomeClass::MissingInput | OutcomeClass::InvalidInput => StatusCode::BAD_REQUEST,
        OutcomeClass::Forbidden => StatusCode::FORBIDDEN,
        OutcomeClass::NotSupported => StatusCode::NOT_IMPLEMENTED,
        OutcomeClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        OutcomeClass::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Adds `WWW-Authenticate: Bearer` to 401 answers, and `Retry-After` to 429 (too many running instances).
fn challenge(mut resp: Response) -> Response {
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if resp.status() == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn problems_value(problems: &[Problem]) -> Value {
    serde_json::to_value(problems).unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        self.log(status);
        let mut body = json!({"Status": status.as_u16(), "Message": self.to_string()});
        let problems = self.problems();
        if !problems.is_empty() {
            body["Problems"] = problems_value(problems);
        }
        challenge((status, axum::Json(json!({ "Error": body }))).into_response())
    }
}

/// The body shape of a group of routes' errors.
#[derive(Clone, Default)]
pub enum ErrorShape {
    /// `{"Error": {...}}`.
    #[default]
    Plain,
    /// The handler's own result body ([`HandlerDescriptor::request_error_body`]) with the `Problems` list
    /// beside it; `Plain` when the handler has no such body.
    Handler(Arc<dyn HandlerDescriptor>),
}

impl std::fmt::Debug for ErrorShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorShape::Plain => f.write_str("Plain"),
            ErrorShape::Handler(d) => write!(f, "Handler({})", d.name()),
        }
    }
}

impl ErrorShape {
    /// The answer to `err` in this shape; `subject` is what the request was about (an identity, a plan).
    /// The HTTP status is always the error's own ([`ApiError::status`]).
    pub fn respond(&self, err: ApiError, subject: &str) -> Response {
        let ErrorShape::Handler(descriptor) = self else {
            return err.into_response();
        };
        let status = err.status();
        let message = err.to_string();
        let Some(mut body) = descriptor.request_error_body(&RequestErrorInfo {
            class: err.class(),
            message: &message,
            subject,
        }) else {
            return err.into_response();
        };
        err.log(status);
        let problems = err.problems();
        if !problems.is_empty() {
            if let Some(map) = body.as_object_mut() {
                map.insert("Problems".into(), problems_value(problems));
            }
        }
        challenge((status, axum::Json(body)).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synapse_engine::resolve::ResolveError;

    #[test]
    fn domain_errors_have_their_statuses() {
        let missing = ResolveError {
            problems: vec![Problem::Missing {
                parameter: "name".into(),
            }],
        };
        let cases: Vec<(ApiError, u16, OutcomeClass)> = vec![
            (
                CatalogError::NoSuchPlan { name: "x".into() }.into(),
                404,
                OutcomeClass::NotFound,
            ),
            (
                CatalogError::PlanInvalid {
                    plan: "x".into(),
                    diagnostics: "bad".into(),
                }
                .into(),
                500,
                OutcomeClass::Failed,
            ),
            (
                StartError::Inactive { plan: "x".into() }.into(),
                409,
                OutcomeClass::InvalidInput,
            ),
            (
                StartError::Inputs(missing).into(),
                400,
                OutcomeClass::MissingInput,
            ),
            (
                ApiError::PayloadTooLarge(1),
                413,
                OutcomeClass::InvalidInput,
            ),
            (ApiError::Timeout("t".into()), 504, OutcomeClass::Failed),
            (AuthError::MissingKey.into(), 401, OutcomeClass::Forbidden),
            (
                AuthError::UnknownRole {
                    key: "k".into(),
                    role: "root".into(),
                }
                .into(),
                403,
                OutcomeClass::Forbidden,
            ),
        ];
        for (e, status, class) in cases {
            assert_eq!(e.status().as_u16(), status, "{e}");
            assert_eq!(e.class(), class, "{e}");
        }
    }

    /// A handler with a result body of its own.
    struct Enveloped;

    impl HandlerDescriptor for Enveloped {
        fn name(&self) -> &'static str {
            "Enveloped"
        }
        fn request_error_body(&self, e: &RequestErrorInfo<'_>) -> Option<Value> {
            Some(json!({"Class": format!("{:?}", e.class), "Said": e.message, "About": e.subject}))
        }
    }

    #[test]
    fn both_shapes_keep_the_status_problems_and_challenge() {
        let r = ApiError::from(AuthError::UnknownKey).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let shape = ErrorShape::Handler(Arc::new(Enveloped));
        let r = shape.respond(AuthError::MalformedHeader.into(), "");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let forbidden = AuthError::UnknownRole {
            key: "k".into(),
            role: "root".into(),
        };
        let r = ErrorShape::Plain.respond(forbidden.into(), "x");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn handler_shape_body() {
        use http_body_util::BodyExt;
        let err: ApiError = StartError::Inputs(ResolveError {
            problems: vec![Problem::Missing {
                parameter: "dn".into(),
            }],
        })
        .into();
        let r = ErrorShape::Handler(Arc::new(Enveloped)).respond(err, "GetAllGroups");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["Class"], "MissingInput");
        assert_eq!(v["About"], "GetAllGroups");
        assert_eq!(v["Problems"][0]["Kind"], "Missing");
    }
}
