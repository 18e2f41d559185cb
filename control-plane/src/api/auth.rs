//! Sign-up, login and the [`Caller`] extractor (bearer token or Cloud API key).
//!
//! Passwords are hashed with argon2id (default parameters) on the blocking pool, so a
//! burst of logins cannot stall the async workers, and at most
//! `max_concurrent_password_hashes` at once, so it cannot exhaust memory either. Login answers the same 401 for an
//! unknown email and a wrong password, and verifies against a dummy hash for unknown
//! emails so the timing does not tell them apart either.

use super::extract::ApiJson;
use super::AppState;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::store::Principal;
use crate::util::{constant_time_eq, new_token, now_millis, rfc3339_millis, token_hash};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work one request can ask of the hasher.
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_EMAIL_BYTES: usize = 254;
const MAX_NAME_CHARS: usize = 255;
/// Bounds the Basic credentials decoded (a key and a secret are well under 100 bytes).
const MAX_BASIC_CREDENTIALS: usize = 512;

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

/// Lower-cases and checks the shape `local@domain.tld`: no spaces, one `@`, a dot in
/// the domain, at most 254 bytes.
fn normalize_email(email: &str) -> Result<String> {
    // The limit applies to what was sent, as the OpenAPI document states it.
    let too_long = email.len() > MAX_EMAIL_BYTES;
    let email = email.trim().to_lowercase();
    let bad = || {
        Error::InvalidArgument(format!(
            "email {email:?} is not a valid address; use the form name@example.com"
        ))
    };
    if too_long || email.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    if local.is_empty() || !domain_ok {
        return Err(bad());
    }
    Ok(email)
}

/// Checks a display or organisation name: non-empty after trimming, at most 255 characters.
/// The limit applies to the value as sent (as the OpenAPI document states it); surrounding
/// whitespace is then dropped.
pub(crate) fn validate_name(field: &str, value: &str) -> Result<String> {
    let too_long = value.chars().count() > MAX_NAME_CHARS;
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("{field} must not be empty")));
    }
    if too_long {
        return Err(Error::InvalidArgument(format!(
            "{field} is too long; use at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(value.to_string())
}

async fn hash_password(permits: &Semaphore, password: String) -> Result<String> {
    let _permit = permits
        .acquire()
        .await
        .map_err(|_| Error::Internal("password hashing is shut down".into()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
            .map_err(|e| Error::Internal(format!("salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("hashing task: {e}")))?
}

/// A hash of a password nobody knows, verified against when the email is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
            .expect("16 bytes is a valid salt length");
        Argon2::default()
            .hash_password(uuid::Uuid::new_v4().to_string().as_bytes(), &salt)
            .expect("argon2 with default parameters hashes any input")
            .to_string()
    })
}

async fn verify_password(
    permits: &Semaphore,
    password: String,
    hash: Option<String>,
) -> Result<bool> {
    let _permit = permits
        .acquire()
        .await
        .map_err(|_| Error::Internal("password hashing is shut down".into()))?;
    tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| dummy_hash().to_string());
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| Error::Internal(format!("stored password hash: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| Error::Internal(format!("verify task: {e}")))?
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
    let email = normalize_email(&req.email)?;
    if req.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::InvalidArgument(format!(
            "password is too short; use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if req.password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::InvalidArgument(format!(
            "password is too long; use at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let organization_name = validate_name("organization_name", &req.organization_name)?;
    let hash = hash_password(&state.hash_permits, req.password).await?;
    let (user_id, organization_id) = state
        .store
        .create_user_and_org(&email, &hash, &organization_name)
        .await?;
    tracing::info!(%user_id, %organization_id, "signed up");
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user_id,
            organization_id,
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
    let wrong = || Error::Unauthenticated("wrong email or password".into());
    if req.password.len() > MAX_PASSWORD_BYTES {
        return Err(wrong());
    }
    let email = req.email.trim().to_lowercase();
    let user = state.store.user_by_email(&email).await?;
    let ok = verify_password(
        &state.hash_permits,
        req.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let user = match user {
        Some(user) if ok => user,
        _ => return Err(wrong()),
    };
    let token = new_token();
    let now = now_millis();
    let ttl = i64::try_from(state.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl);
    state
        .store
        .insert_session(&token_hash(&token), &user.id, now, expires_at)
        .await?;
    Ok(Json(LoginResponse {
        token,
        expires_at: rfc3339_millis(expires_at),
    }))
}

/// The authenticated caller, from `Authorization: Bearer <token>` (a login token) or
/// `Authorization: Basic base64(key:secret)` (a Cloud API key). Rejects with 401.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            Error::Unauthenticated(
                "missing Authorization header; send `Authorization: Bearer <token>` with a \
                 token from POST /v1/login, or HTTP Basic with a Cloud API key and secret"
                    .into(),
            )
        })?;
        let (scheme, credentials) = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .map(|(scheme, rest)| (scheme, rest.trim()))
            .filter(|(_, rest)| !rest.is_empty())
            .ok_or_else(malformed)?;
        if scheme.eq_ignore_ascii_case("bearer") {
            bearer(state, credentials).await.map(Caller)
        } else if scheme.eq_ignore_ascii_case("basic") {
            cloud_api_key(state, credentials).await.map(Caller)
        } else {
            Err(malformed())
        }
    }
}

fn malformed() -> Error {
    Error::Unauthenticated(
        "the Authorization header must be `Bearer <token>` or `Basic <base64 of key:secret>`"
            .into(),
    )
}

async fn bearer(state: &AppState, token: &str) -> Result<Principal> {
    state
        .store
        .principal(&token_hash(token), now_millis())
        .await?
        .ok_or_else(|| {
            Error::Unauthenticated(
                "the bearer token is invalid or expired; log in again with POST /v1/login".into(),
            )
        })
}

/// Authenticates `base64(key:secret)` as a Cloud API key. A cluster key with the right
/// secret is refused: it is meant for its cluster's Kafka endpoint only.
async fn cloud_api_key(state: &AppState, encoded: &str) -> Result<Principal> {
    let wrong = || {
        Error::Unauthenticated(
            "invalid API key or secret; use a Cloud API key (one created without \
             spec.resource) and the secret shown when it was created"
                .into(),
        )
    };
    if encoded.len() > MAX_BASIC_CREDENTIALS {
        return Err(wrong());
    }
    let decoded = BASE64.decode(encoded).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| wrong())?;
    let (key, secret) = decoded.split_once(':').ok_or_else(wrong)?;
    let Some(found) = state.store.key_for_auth(key).await? else {
        return Err(wrong());
    };
    if !constant_time_eq(&token_hash(secret), &found.secret_sha256) {
        return Err(wrong());
    }
    if !found.resource_id.is_empty() {
        return Err(Error::Unauthenticated(format!(
            "API key {key} is a cluster API key for {}; it works only with that cluster's \
             Kafka endpoint. Use a Cloud API key or a bearer token for this API",
            found.resource_id
        )));
    }
    Ok(Principal {
        id: found.owner_id,
        organization_id: found.organization_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert_eq!(normalize_email(" A@Example.com ").unwrap(), "a@example.com");
        let long = format!("{}@example.com", "a".repeat(242));
        assert_eq!(normalize_email(&long).unwrap().len(), 254);
        assert!(
            normalize_email(&format!(" {long}")).is_err(),
            "limit is on what was sent"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@.com",
            "a@b.com.",
            "a b@c.com",
            "a@b@c.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_limits_apply_to_what_was_sent() {
        assert_eq!(validate_name("n", "  prod ").unwrap(), "prod");
        assert!(validate_name("n", " ").is_err());
        let max = "x".repeat(MAX_NAME_CHARS);
        assert_eq!(validate_name("n", &max).unwrap(), max);
        assert!(validate_name("n", &format!("{max} ")).is_err());
    }
}
