//! `POST /v1/signup`, `POST /v1/login` and the [`Caller`] extractor (bearer token or
//! Cloud API key). The rules are in [`crate::service::auth`].

use super::extract::ApiJson;
use super::AppState;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::service::auth::{self, Signup};
use crate::store::Principal;
use crate::util::rfc3339_millis;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The user's email (`name@domain.tld`, no spaces), which is also the login;
    /// case-insensitive.
    #[schema(max_length = 254, example = "ada@example.com")]
    email: String,
    /// At least 8 characters, at most 1,024 bytes.
    #[schema(min_length = 8, max_length = 1024, format = Password)]
    password: String,
    /// The new organisation's name (1 to 255 characters).
    #[schema(min_length = 1, max_length = 255, example = "Acme")]
    organization_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    /// The new user (`u-...`).
    user_id: String,
    /// The new organisation (`o-...`).
    organization_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(format = Password)]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token for every other call: `Authorization: Bearer <token>`.
    token: String,
    /// When the token stops working (RFC 3339, UTC).
    #[schema(format = DateTime)]
    expires_at: String,
}

/// `POST /v1/signup`: creates an organisation and its first user.
#[utoipa::path(
    post,
    path = "/v1/signup",
    operation_id = "signup",
    tag = "auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "The organisation and its first user", body = SignupResponse),
        (status = 400, description = "Invalid email, password or organisation name", body = ErrorEnvelope),
        (status = 409, description = "The email is already signed up", body = ErrorEnvelope),
        (status = 429, description = "Too many sign-ups and logins from this address", body = ErrorEnvelope),
    ),
)]
pub async fn signup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>)> {
    let done = auth::signup(
        &state,
        Signup {
            email: req.email,
            password: req.password,
            organization_name: req.organization_name,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user_id: done.user_id,
            organization_id: done.organization_id,
        }),
    ))
}

/// `POST /v1/login`: exchanges email and password for a bearer token.
#[utoipa::path(
    post,
    path = "/v1/login",
    operation_id = "login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A bearer token", body = LoginResponse),
        (status = 400, description = "The body is not a login request", body = ErrorEnvelope),
        (status = 401, description = "Wrong email or password", body = ErrorEnvelope),
        (status = 429, description = "Too many sign-ups and logins from this address", body = ErrorEnvelope),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>> {
    let session = auth::login(&state, &req.email, req.password).await?;
    Ok(Json(LoginResponse {
        token: session.token,
        expires_at: rfc3339_millis(session.expires_at),
    }))
}

/// The `Authorization` header as the service layer takes it: absent, or its text (a
/// value that is not visible ASCII is malformed, passed as empty).
pub(crate) fn authorization(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""))
}

/// The authenticated caller, from `Authorization: Bearer <token>` (a login token) or
/// `Authorization: Basic base64(key:secret)` (a Cloud API key). Rejects with 401.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        auth::authenticate(state, authorization(parts))
            .await
            .map(Caller)
    }
}
