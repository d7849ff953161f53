//! The one place where errors become HTTP responses. Every error body is
//! `{"Error": {"Status": 400, "Message": "...", "Problems": [...]}}` (the request id is in the `x-request-id`
//! header); AD API routes wrap request errors after authentication in the result envelope instead (routes/ad.rs).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use synapse_engine::resolve::{Problem, ResolveError};

/// Errors of the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// Malformed input: bad JSON/YAML (with its position), unknown fields, bad query values.
    #[error("{0}")]
    BadRequest(String),
    /// Missing or invalid dynamic parameters (every problem listed).
    #[error("{0}")]
    Inputs(ResolveError),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The plan file exists but does not validate.
    #[error("{0}")]
    PlanInvalid(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A sync call did not finish in time (the plan keeps running).
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::Inputs(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::PlanInvalid(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The individual problems (missing/invalid parameters), if any.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ApiError::Inputs(e) => e.problems.clone(),
            _ => Vec::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut body = json!({"Status": status.as_u16(), "Message": self.to_string()});
        let problems = self.problems();
        if !problems.is_empty() {
            body["Problems"] = serde_json::to_value(&problems).unwrap_or_default();
        }
        let mut resp = (status, axum::Json(json!({ "Error": body }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(format!("store: {e}"))
    }
}
