//! The crate's one error type, and its mapping at the two edges, each in one place: HTTP
//! ([`Error::status`], `IntoResponse`) and gRPC (`From<Error> for tonic::Status`).
//!
//! Every REST error answers with Confluent's envelope
//! `{"errors":[{"status":"404","code":"not_found","detail":"..."}]}`; a gRPC error is a
//! status with the same detail as its message. Details say what to fix; internal errors
//! are logged and answered without their cause; an unreachable cell (503, UNAVAILABLE)
//! says which cell and why, since that is for the operator and the user to see.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or fails validation (400).
    #[error("{0}")]
    InvalidArgument(String),
    /// No, an invalid or an expired bearer token, or wrong credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but the cluster's brokers refused the operation for this API key
    /// (403): a service account's key without the ACL it needs. Only inside the key's own
    /// cluster; another organisation's resources answer [`Error::NotFound`].
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist in the caller's organisation (404). Another
    /// organisation's resources answer this too, never 403.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not for this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The resource already exists: a taken email or name, an existing topic (409,
    /// gRPC ALREADY_EXISTS).
    #[error("{0}")]
    AlreadyExists(String),
    /// The resource is in a state that forbids the change, e.g. an environment that still
    /// holds clusters (409, gRPC FAILED_PRECONDITION).
    #[error("{0}")]
    Conflict(String),
    /// The client sent too many requests (429).
    #[error("{0}")]
    RateLimited(String),
    /// A cell's controller could not be reached or refused the request (503); the
    /// detail names the cell and what each address answered.
    #[error("{0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::AlreadyExists(_) | Error::Conflict(_) => StatusCode::CONFLICT,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Migrate(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable machine-readable code in the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::AlreadyExists(_) | Error::Conflict(_) => "conflict",
            Error::RateLimited(_) => "rate_limited",
            Error::Unavailable(_) => "unavailable",
            Error::Database(_) | Error::Migrate(_) | Error::Internal(_) => "internal",
        }
    }
}

/// The body of every error answer: one entry, saying what went wrong and what to fix.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub errors: Vec<ErrorDetail>,
}

/// One error in the [`ErrorEnvelope`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status code as a string, e.g. `"404"`.
    #[schema(example = "404")]
    pub status: String,
    /// A stable machine-readable code: `invalid_argument`, `unauthenticated`,
    /// `forbidden`, `not_found`, `method_not_allowed`, `conflict`, `rate_limited`, `unavailable`,
    /// `internal`.
    #[schema(example = "not_found")]
    pub code: String,
    /// What went wrong and what to do about it.
    pub detail: String,
}

impl Error {
    /// What the caller is told: the message, or for internal errors (logged here) a
    /// generic one that does not leak their cause.
    fn public_detail(&self) -> String {
        let hide = matches!(
            self,
            Error::Database(_) | Error::Migrate(_) | Error::Internal(_)
        );
        if hide {
            tracing::error!(error = %self, "request failed");
            "internal error; try again later".to_string()
        } else {
            self.to_string()
        }
    }
}

/// The gRPC face's status for each error, with the same detail REST puts in its envelope.
impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        use tonic::Code;
        let code = match &e {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Forbidden(_) => Code::PermissionDenied,
            Error::NotFound(_) => Code::NotFound,
            Error::MethodNotAllowed(_) => Code::Unimplemented,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::Conflict(_) => Code::FailedPrecondition,
            Error::RateLimited(_) => Code::ResourceExhausted,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Database(_) | Error::Migrate(_) | Error::Internal(_) => Code::Internal,
        };
        tonic::Status::new(code, e.public_detail())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = self.public_detail();
        let body = ErrorEnvelope {
            errors: vec![ErrorDetail {
                status: status.as_u16().to_string(),
                code: self.code().to_string(),
                detail,
            }],
        };
        (status, axum::Json(body)).into_response()
    }
}
