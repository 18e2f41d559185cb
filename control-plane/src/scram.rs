//! SCRAM verifiers for API keys (RFC 5802, RFC 7677; Kafka's KIP-84): made once, when a
//! key is created and its secret is still known, and pushed to the cell with the key so
//! brokers can check SCRAM-SHA-256 and SCRAM-SHA-512 proofs without ever holding the
//! secret. Pure functions; must never depend on the store or the API.

use base64::Engine;
use hmac::{Hmac, Mac};
use proto::cell::v1::ScramCredential;
use sha2::{Digest, Sha256, Sha512};

/// PBKDF2 rounds; Kafka refuses fewer than 4096 for SCRAM.
pub const ITERATIONS: u32 = 4096;

/// Verifiers of `secret` for both mechanisms, each with its own random salt.
pub fn credentials(secret: &str) -> Vec<ScramCredential> {
    vec![
        credential(Hash::Sha256, secret, &random_salt(), ITERATIONS),
        credential(Hash::Sha512, secret, &random_salt(), ITERATIONS),
    ]
}

fn random_salt() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

/// The two SCRAM hashes Kafka offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha256 => "SCRAM-SHA-256",
            Hash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Hash::Sha256 => mac::<Hmac<Sha256>>(key, data),
            Hash::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }

    fn salted_password(self, secret: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(secret.as_bytes(), salt, iterations)
                    .to_vec()
            }
            Hash::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(secret.as_bytes(), salt, iterations)
                    .to_vec()
            }
        }
    }
}

/// One mechanism's verifier: StoredKey = H(HMAC(SaltedPassword, "Client Key")),
/// ServerKey = HMAC(SaltedPassword, "Server Key"), SaltedPassword = PBKDF2-HMAC(secret).
pub fn credential(hash: Hash, secret: &str, salt: &[u8], iterations: u32) -> ScramCredential {
    let salted = hash.salted_password(secret, salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    ScramCredential {
        mechanism: hash.mechanism().to_string(),
        salt: salt.to_vec(),
        iterations,
        stored_key: hash.digest(&client_key),
        server_key: hash.hmac(&salted, b"Server Key"),
    }
}

/// One verifier as the store keeps it (binary fields in base64).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    mechanism: String,
    salt: String,
    iterations: u32,
    stored_key: String,
    server_key: String,
}

/// `credentials` as the JSON text the store keeps.
pub fn to_json(credentials: &[ScramCredential]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let stored: Vec<Stored> = credentials
        .iter()
        .map(|c| Stored {
            mechanism: c.mechanism.clone(),
            salt: b64.encode(&c.salt),
            iterations: c.iterations,
            stored_key: b64.encode(&c.stored_key),
            server_key: b64.encode(&c.server_key),
        })
        .collect();
    serde_json::to_string(&stored).expect("plain data serializes")
}

/// The verifiers in `json` (empty text: none). Anything unreadable is an error.
pub fn from_json(json: &str) -> Result<Vec<ScramCredential>, String> {
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let stored: Vec<Stored> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    stored
        .into_iter()
        .map(|s| {
            let bytes = |f: &str| b64.decode(f).map_err(|e| e.to_string());
            Ok(ScramCredential {
                mechanism: s.mechanism,
                salt: bytes(&s.salt)?,
                iterations: s.iterations,
                stored_key: bytes(&s.stored_key)?,
                server_key: bytes(&s.server_key)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn matches_the_rfc_7677_example() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let c = credential(Hash::Sha256, "pencil", &salt, 4096);
        // The server signature of the RFC's exchange, from ServerKey and its AuthMessage.
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = Hash::Sha256.hmac(&c.server_key, auth_message.as_bytes());
        assert_eq!(
            b64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // The client's proof checks out against StoredKey alone.
        let proof = b64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let signature = Hash::Sha256.hmac(&c.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        assert_eq!(Hash::Sha256.digest(&client_key), c.stored_key);
    }

    #[test]
    fn verifiers_round_trip_through_the_stores_json() {
        let c = credentials("s3cret");
        assert_eq!(from_json(&to_json(&c)).unwrap(), c);
        assert_eq!(from_json("").unwrap(), vec![]);
        assert!(from_json("[{").is_err());
    }

    #[test]
    fn each_key_gets_both_mechanisms_with_fresh_salts() {
        let a = credentials("s3cret");
        let b = credentials("s3cret");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].mechanism, "SCRAM-SHA-512");
        assert_eq!(a[1].stored_key.len(), 64);
        assert_ne!(a[0].salt, b[0].salt);
        assert_ne!(a[0].stored_key, b[0].stored_key);
    }
}
