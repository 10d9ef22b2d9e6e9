//! The one place that turns errors into HTTP answers: RFC 9457 `application/problem+json`
//! with a `type`, a human `title` and `detail`, and for input errors a list of the fields at fault.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kontaktvei_store::{Error as StoreError, FieldError};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// 403 because of what one field asks for: which field, and what to do instead.
    #[error("{}: {}", .0.field, .0.message)]
    ForbiddenField(FieldError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("request body must be JSON")]
    UnsupportedMediaType,
    #[error("too many attempts")]
    TooManyAttempts,
    #[error("Idempotency-Key reused with a different request")]
    IdempotencyMismatch,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// One field was wrong: what, and how to fix it.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(msg) => ApiError::Conflict(msg),
            StoreError::Invalid(errors) => ApiError::Invalid(errors),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<kontaktvei_scheduler::engine::Error> for ApiError {
    fn from(e: kontaktvei_scheduler::engine::Error) -> Self {
        match e {
            kontaktvei_scheduler::engine::Error::Store(e) => e.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The problem document (RFC 9457 §3) plus our `errors` extension.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For input errors, and a 403 for what one field asks: each field at fault and what to do
    /// about it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "/problems/unauthorized",
                "Unauthorized",
            ),
            ApiError::Forbidden(_) | ApiError::ForbiddenField(_) => {
                (StatusCode::FORBIDDEN, "/problems/forbidden", "Forbidden")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "/problems/not-found", "Not found"),
            ApiError::Conflict(_) => (
                StatusCode::CONFLICT,
                "/problems/conflict",
                "Conflict with the current state",
            ),
            ApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "/problems/validation",
                "Invalid input",
            ),
            ApiError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "/problems/bad-request",
                "Bad request",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "/problems/unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::TooManyAttempts => (
                StatusCode::TOO_MANY_REQUESTS,
                "/problems/too-many-attempts",
                "Too many attempts",
            ),
            ApiError::IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "/problems/idempotency-key-reused",
                "Idempotency-Key reused",
            ),
            ApiError::IdempotencyInProgress => (
                StatusCode::CONFLICT,
                "/problems/idempotency-key-in-progress",
                "Request in progress",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "/problems/internal",
                "Internal server error",
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, kind, title) = self.parts();
        let (detail, errors) = match self {
            ApiError::Unauthorized => (
                "send a valid API key as `Authorization: Bearer kv_…`; an operator creates keys with `kontaktvei admin key create`".to_owned(),
                vec![],
            ),
            ApiError::NotFound("route") => ("no such route; see /api/v1/openapi.json for the API".to_owned(), vec![]),
            ApiError::NotFound(what) => (format!("no {what} with this id is visible to your organisation"), vec![]),
            ApiError::Invalid(errors) => {
                let detail = match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    many => format!("{} fields are invalid; see errors", many.len()),
                };
                (detail, errors.clone())
            }
            ApiError::ForbiddenField(e) => (format!("{}: {}", e.field, e.message), vec![e.clone()]),
            ApiError::UnsupportedMediaType => ("send the body as JSON with `Content-Type: application/json`".to_owned(), vec![]),
            ApiError::TooManyAttempts => (
                "too many wrong codes in a short time; wait 15 minutes, or acknowledge on the patient's behalf with an attestation".to_owned(),
                vec![],
            ),
            ApiError::IdempotencyMismatch => (
                "this Idempotency-Key was already used with a different request body; use a new key for a new request".to_owned(),
                vec![FieldError::new("Idempotency-Key", "already used for another request")],
            ),
            ApiError::IdempotencyInProgress => (
                "the first request with this Idempotency-Key has not finished; retry in a moment".to_owned(),
                vec![],
            ),
            ApiError::Internal(_) => (
                "something went wrong on our side; nothing was half-written. Try again, and tell the operator the request id if it persists".to_owned(),
                vec![],
            ),
            ApiError::Forbidden(msg) | ApiError::Conflict(msg) | ApiError::BadRequest(msg) => (msg.clone(), vec![]),
        };
        Problem {
            kind: kind.to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            // The error chain may name tables and constraints, never patient data.
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
