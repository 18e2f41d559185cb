//! Authentication on the SASL listener: SASL/PLAIN with a logical cluster's API key as
//! the username and its secret as the password, checked against the credentials in the
//! cell's metadata (which hold only a SHA-256 of each secret).
//!
//! A successful authentication binds the connection to the key's logical cluster for
//! its whole life; the connection re-checks its key whenever metadata changes and closes
//! once the key (or its cluster) is gone. Failures are answered after a delay and
//! counted per source address; an address with too many recent failures is refused at
//! once (`FailureLimiter`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cells::image::CellImage;
use sha2::{Digest, Sha256};

use crate::namespace::TenantId;

/// The SASL mechanisms this broker offers.
pub const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// How long a failed authentication waits before it is answered (Kafka's
/// `connection.failed.authentication.delay.ms`), slowing down guessing.
pub const FAILURE_DELAY: Duration = Duration::from_millis(500);

/// Who a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The API key the connection authenticated with.
    pub api_key: String,
    /// `User:u-...` or `User:sa-...`.
    pub name: String,
    /// Keys owned by a user have full access to their cluster; a service account's keys
    /// only what its ACLs allow.
    pub full_access: bool,
}

/// The outcome of a SASL/PLAIN token.
#[derive(Debug, PartialEq, Eq)]
pub enum PlainOutcome {
    Authenticated(TenantId, Principal),
    /// The token is not `[authzid] NUL user NUL password`.
    Malformed(&'static str),
    /// Unknown key, wrong secret, or a key whose cluster is gone: one answer for all,
    /// so a client cannot tell which keys exist.
    Rejected,
}

/// Check a SASL/PLAIN token (RFC 4616) against `image`'s credentials.
pub fn authenticate_plain(image: &CellImage, token: &[u8]) -> PlainOutcome {
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return PlainOutcome::Malformed("expected authzid NUL username NUL password");
    };
    if !authzid.is_empty() && authzid != user {
        return PlainOutcome::Malformed("the authorization id must be empty or the username");
    }
    let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
    else {
        return PlainOutcome::Malformed("username and password must be UTF-8");
    };
    // Hash even when the key is unknown, so timing does not tell keys apart.
    let hashed = sha256_hex(password.as_bytes());
    let Some(credential) = image.credentials.get(user) else {
        return PlainOutcome::Rejected;
    };
    if !constant_time_eq(hashed.as_bytes(), credential.secret_sha256.as_bytes())
        || !image.clusters.contains_key(&credential.cluster_id)
    {
        return PlainOutcome::Rejected;
    }
    PlainOutcome::Authenticated(
        TenantId::from(credential.cluster_id.as_str()),
        Principal {
            api_key: credential.api_key.clone(),
            name: credential.principal.clone(),
            full_access: credential.owner_is_user,
        },
    )
}

/// Whether `principal` may still use `tenant` under `image` (its key not revoked, its
/// cluster not deleted).
pub fn still_valid(image: &CellImage, tenant: &str, principal: &Principal) -> bool {
    image
        .credentials
        .get(&principal.api_key)
        .is_some_and(|c| c.cluster_id == tenant)
        && image.clusters.contains_key(tenant)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Counts failed authentications per source address over a sliding window.
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    /// Address → (window start, failures in it). Bounded: stale entries are dropped
    /// when it grows past `MAX_TRACKED`.
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const MAX_TRACKED: usize = 10_000;

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `addr` has used up its failures for now.
    pub fn blocked(&self, addr: IpAddr) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&addr)
            .is_some_and(|(start, n)| start.elapsed() < self.window && *n >= self.max_failures)
    }

    pub fn record_failure(&self, addr: IpAddr) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_TRACKED {
            let window = self.window;
            seen.retain(|_, (start, _)| start.elapsed() < window);
        }
        if seen.len() >= MAX_TRACKED {
            // Still full of live entries: forget the oldest rather than grow.
            if let Some(oldest) = seen.iter().min_by_key(|(_, (s, _))| *s).map(|(a, _)| *a) {
                seen.remove(&oldest);
            }
        }
        let entry = seen.entry(addr).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

impl Default for FailureLimiter {
    /// 20 failures per address per minute.
    fn default() -> Self {
        FailureLimiter::new(20, Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{CredentialRecord, LogicalClusterRecord};

    fn image() -> CellImage {
        let mut image = CellImage::default();
        image.clusters.insert(
            "lkc-a".into(),
            LogicalClusterRecord {
                cluster_id: "lkc-a".into(),
                ..Default::default()
            },
        );
        image.credentials.insert(
            "KEY1".into(),
            CredentialRecord {
                api_key: "KEY1".into(),
                cluster_id: "lkc-a".into(),
                principal: "User:sa-1".into(),
                secret_sha256: sha256_hex(b"s3cret"),
                owner_is_user: false,
                scram: vec![],
            },
        );
        image
    }

    #[test]
    fn plain_accepts_the_right_secret_and_binds_the_keys_cluster() {
        match authenticate_plain(&image(), b"\0KEY1\0s3cret") {
            PlainOutcome::Authenticated(tenant, p) => {
                assert_eq!(&*tenant, "lkc-a");
                assert_eq!(p.name, "User:sa-1");
                assert!(!p.full_access);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            authenticate_plain(&image(), b"KEY1\0KEY1\0s3cret"),
            PlainOutcome::Authenticated(..)
        ));
    }

    #[test]
    fn plain_rejects_wrong_secrets_unknown_keys_and_garbage_alike() {
        let image = image();
        assert_eq!(
            authenticate_plain(&image, b"\0KEY1\0wrong"),
            PlainOutcome::Rejected
        );
        assert_eq!(
            authenticate_plain(&image, b"\0KEY2\0s3cret"),
            PlainOutcome::Rejected
        );
        assert!(matches!(
            authenticate_plain(&image, b"KEY1s3cret"),
            PlainOutcome::Malformed(_)
        ));
        assert!(matches!(
            authenticate_plain(&image, b"other\0KEY1\0s3cret"),
            PlainOutcome::Malformed(_)
        ));
        assert!(matches!(
            authenticate_plain(&image, b"\0KEY1\0s3cret\0x"),
            PlainOutcome::Malformed(_)
        ));
    }

    #[test]
    fn a_key_stops_working_when_revoked_or_its_cluster_is_deleted() {
        let mut image = image();
        let PlainOutcome::Authenticated(tenant, p) = authenticate_plain(&image, b"\0KEY1\0s3cret")
        else {
            panic!("should authenticate");
        };
        assert!(still_valid(&image, &tenant, &p));
        image.clusters.clear();
        assert!(!still_valid(&image, &tenant, &p));
        assert_eq!(
            authenticate_plain(&image, b"\0KEY1\0s3cret"),
            PlainOutcome::Rejected
        );
        let mut image = self::image();
        image.credentials.clear();
        assert!(!still_valid(&image, &tenant, &p));
    }

    #[test]
    fn the_limiter_blocks_an_address_after_its_failures() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!limiter.blocked(a));
            limiter.record_failure(a);
        }
        assert!(limiter.blocked(a));
        assert!(!limiter.blocked(b));
    }
}
