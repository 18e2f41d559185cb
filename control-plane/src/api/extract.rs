//! Extractors whose rejections are the crate's [`Error`], so malformed JSON, unknown
//! fields and bad query strings answer 400 with the error envelope rather than axum's
//! plain-text rejections.

use crate::error::Error;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `axum::Json` with a 400 envelope on any rejection. Request types should use
/// `#[serde(deny_unknown_fields)]` so typos are reported rather than ignored.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        // Through a `Value` first: serde's derived structs also accept a JSON array of
        // their fields in order, and a request body must be an object.
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => {
                return Err(Error::InvalidArgument(format!(
                    "invalid request body: {}",
                    rejection.body_text()
                )))
            }
        };
        if !value.is_object() {
            return Err(Error::InvalidArgument(
                "invalid request body: send a JSON object (see GET /openapi.json)".into(),
            ));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| Error::InvalidArgument(format!("invalid request body: {e}")))
    }
}

/// `axum::extract::Query` with a 400 envelope on any rejection.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(Error::InvalidArgument(format!(
                "invalid query string: {}",
                rejection.body_text()
            ))),
        }
    }
}
