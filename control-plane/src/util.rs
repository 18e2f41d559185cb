//! Small helpers: ids, clocks, token hashing, RFC 3339 formatting.

use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A Confluent-style short id such as `u-k3x9qa` or `env-0p2m7d`: the prefix, a dash and
/// six random base-36 characters (about 31 bits). A collision fails the insert on the
/// primary key, and the store retries with a new id.
pub fn short_id(prefix: &str) -> String {
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut id = String::with_capacity(prefix.len() + 7);
    id.push_str(prefix);
    id.push('-');
    for _ in 0..6 {
        id.push(ALPHABET[(n % 36) as usize] as char);
        n /= 36;
    }
    id
}

/// A new bearer token: `trb_` and 64 hex characters from two v4 UUIDs (244 random bits
/// from the OS generator).
pub fn new_token() -> String {
    format!(
        "trb_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The hex SHA-256 of a bearer token: what the store keeps instead of the token. A fast
/// hash is enough because tokens are long and random (no dictionary to attack).
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new API key id (the SASL/PLAIN user name): 16 characters of `A-Z0-9`, about 82
/// random bits, as Confluent's keys look. Not secret; collisions fail the insert and the
/// store retries.
pub fn new_api_key_id() -> String {
    let mut n = uuid::Uuid::new_v4().as_u128();
    (0..16)
        .map(|_| {
            let c = ALPHABET[(n % 36) as usize].to_ascii_uppercase() as char;
            n /= 36;
            c
        })
        .collect()
}

/// A new API key secret: 64 hex characters from two v4 UUIDs (244 random bits). Shown
/// once; only its [`token_hash`] is kept.
pub fn new_api_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares two strings in time that depends only on their lengths (for secret hashes).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A uniformly random index below `n` (`n` > 0), from the OS generator via a v4 UUID.
pub fn random_below(n: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % n.max(1) as u128) as usize
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds, e.g.
/// `2026-11-22T00:17:10.123Z` (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339_millis(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_001), "2000-02-29T00:00:00.001Z");
        assert_eq!(
            rfc3339_millis(1_795_306_630_123),
            "2026-11-22T00:17:10.123Z"
        );
    }

    #[test]
    fn ids_have_prefix_and_length() {
        let id = short_id("env");
        assert!(id.starts_with("env-") && id.len() == 10, "{id}");
        assert!(id[4..].bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(short_id("u"), short_id("u"));
    }

    #[test]
    fn token_hash_is_hex_sha256() {
        let h = token_hash("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(new_token().starts_with("trb_"));
        assert_eq!(new_token().len(), 68);
    }

    #[test]
    fn api_key_ids_and_secrets() {
        let id = new_api_key_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{id}"
        );
        assert_ne!(new_api_key_id(), id);
        let secret = new_api_secret();
        assert_eq!(secret.len(), 64);
        assert!(constant_time_eq(&token_hash(&secret), &token_hash(&secret)));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!((0..100).all(|_| random_below(3) < 3));
    }
}
