//! Sign-up, login and authentication of every other call (a bearer token from login, or a
//! Cloud API key as HTTP Basic), for both faces: REST passes its `Authorization` header,
//! gRPC its `authorization` metadata, to [`authenticate`].
//!
//! Passwords are hashed with argon2id (default parameters) on the blocking pool, so a
//! burst of logins cannot stall the async workers, and at most
//! `max_concurrent_password_hashes` at once, so it cannot exhaust memory either. Login
//! answers the same error for an unknown email and a wrong password, and verifies against
//! a dummy hash for unknown emails so the timing does not tell them apart either.

use super::AppState;
use crate::error::{Error, Result};
use crate::store::Principal;
use crate::util::{constant_time_eq, new_token, now_millis, token_hash};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::net::IpAddr;
use std::sync::OnceLock;
use tokio::sync::Semaphore;

const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work one request can ask of the hasher.
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_EMAIL_BYTES: usize = 254;
const MAX_NAME_CHARS: usize = 255;
/// Bounds the Basic credentials decoded (a key and a secret are well under 100 bytes).
const MAX_BASIC_CREDENTIALS: usize = 512;

/// A sign-up as asked.
pub struct Signup {
    pub email: String,
    pub password: String,
    pub organization_name: String,
}

/// Who signed up.
pub struct SignedUp {
    pub user_id: String,
    pub organization_id: String,
}

/// A login session: the bearer token and when it expires (Unix milliseconds).
pub struct Session {
    pub token: String,
    pub expires_at: i64,
}

/// Takes a token from the client's sign-up and login budget (one table for REST and gRPC);
/// [`Error::RateLimited`] when it is empty.
pub fn check_auth_rate(state: &AppState, ip: IpAddr) -> Result<()> {
    if state.auth_limiter.check(ip) {
        Ok(())
    } else {
        Err(crate::ratelimit::refused(ip))
    }
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

/// Checks an optional free-text description: at most 1,024 characters.
pub(crate) fn validate_description(value: Option<&str>) -> Result<String> {
    const MAX: usize = 1024;
    let value = value.unwrap_or("");
    // The limit applies to what was sent, as the OpenAPI document states it.
    if value.chars().count() > MAX {
        return Err(Error::InvalidArgument(format!(
            "description is too long; use at most {MAX} characters"
        )));
    }
    Ok(value.trim().to_string())
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

/// Creates an organisation and its first user; an email already signed up is
/// [`Error::AlreadyExists`].
pub async fn signup(state: &AppState, req: Signup) -> Result<SignedUp> {
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
    Ok(SignedUp {
        user_id,
        organization_id,
    })
}

/// Exchanges email and password for a bearer token.
pub async fn login(state: &AppState, email: &str, password: String) -> Result<Session> {
    let wrong = || Error::Unauthenticated("wrong email or password".into());
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(wrong());
    }
    let email = email.trim().to_lowercase();
    let user = state.store.user_by_email(&email).await?;
    let ok = verify_password(
        &state.hash_permits,
        password,
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
    Ok(Session { token, expires_at })
}

/// The credentials of an `Authorization` value (REST header or gRPC metadata).
pub(crate) enum Credentials<'a> {
    Bearer(&'a str),
    /// `key:secret`, decoded.
    Basic {
        key: String,
        secret: String,
    },
}

fn malformed() -> Error {
    Error::Unauthenticated(
        "the Authorization header must be `Bearer <token>` or `Basic <base64 of key:secret>`"
            .into(),
    )
}

fn missing() -> Error {
    Error::Unauthenticated(
        "missing Authorization header; send `Authorization: Bearer <token>` with a \
         token from POST /v1/login, or HTTP Basic with a Cloud API key and secret"
            .into(),
    )
}

fn wrong_key() -> Error {
    Error::Unauthenticated(
        "invalid API key or secret; use a Cloud API key (one created without \
         spec.resource) and the secret shown when it was created"
            .into(),
    )
}

/// Splits an `Authorization` value into its scheme and credentials. `None` is a missing
/// value; a value that is not visible ASCII should be passed as `Some("")`.
pub(crate) fn parse_authorization(value: Option<&str>) -> Result<Credentials<'_>> {
    let value = value.ok_or_else(missing)?;
    let (scheme, credentials) = value
        .split_once(' ')
        .map(|(scheme, rest)| (scheme, rest.trim()))
        .filter(|(_, rest)| !rest.is_empty())
        .ok_or_else(malformed)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(credentials))
    } else if scheme.eq_ignore_ascii_case("basic") {
        if credentials.len() > MAX_BASIC_CREDENTIALS {
            return Err(wrong_key());
        }
        let decoded = BASE64.decode(credentials).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| wrong_key())?;
        let (key, secret) = decoded.split_once(':').ok_or_else(wrong_key)?;
        Ok(Credentials::Basic {
            key: key.to_string(),
            secret: secret.to_string(),
        })
    } else {
        Err(malformed())
    }
}

/// Authenticates a call of the Cloud API from its `Authorization` value: a bearer token
/// from login, or a Cloud API key as HTTP Basic (cluster keys are refused: they are for
/// their cluster's Kafka endpoint and Kafka REST only). Fails with
/// [`Error::Unauthenticated`], saying what to send.
pub async fn authenticate(state: &AppState, authorization: Option<&str>) -> Result<Principal> {
    match parse_authorization(authorization)? {
        Credentials::Bearer(token) => bearer(state, token).await,
        Credentials::Basic { key, secret } => cloud_api_key(state, &key, &secret).await,
    }
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

/// An active API key whose secret matches, or [`Error::Unauthenticated`].
pub(crate) async fn verified_key(
    state: &AppState,
    key: &str,
    secret: &str,
) -> Result<crate::store::CloudKeyAuth> {
    let Some(found) = state.store.key_for_auth(key).await? else {
        return Err(wrong_key());
    };
    if !constant_time_eq(&token_hash(secret), &found.secret_sha256) {
        return Err(wrong_key());
    }
    Ok(found)
}

/// Authenticates `key:secret` as a Cloud API key. A cluster key with the right secret is
/// refused: it is meant for its cluster only.
async fn cloud_api_key(state: &AppState, key: &str, secret: &str) -> Result<Principal> {
    let found = verified_key(state, key, secret).await?;
    if !found.resource_id.is_empty() {
        return Err(Error::Unauthenticated(format!(
            "API key {key} is a cluster API key for {}; it works only with that cluster's \
             Kafka endpoint and Kafka REST API. Use a Cloud API key or a bearer token for \
             this API",
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

    #[test]
    fn authorization_values() {
        assert!(matches!(
            parse_authorization(Some("Bearer abc")),
            Ok(Credentials::Bearer("abc"))
        ));
        let basic = format!("basic {}", BASE64.encode("K:S:x"));
        match parse_authorization(Some(&basic)) {
            Ok(Credentials::Basic { key, secret }) => {
                assert_eq!((key.as_str(), secret.as_str()), ("K", "S:x"))
            }
            _ => panic!("basic"),
        }
        for bad in [
            None,
            Some(""),
            Some("Bearer "),
            Some("Token x"),
            Some("Basic !!"),
        ] {
            assert!(
                matches!(parse_authorization(bad), Err(Error::Unauthenticated(_))),
                "{bad:?}"
            );
        }
    }
}
