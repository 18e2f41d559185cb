//! The server side of SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677, Kafka's
//! KIP-84) on the SASL listener: the client proves it knows its API key's secret against the
//! verifiers the control plane pushed with the key (`CredentialRecord.scram`); the broker
//! never sees the secret. Two SaslAuthenticate rounds: client-first -> server-first (nonce,
//! salt, iterations), client-final (proof) -> server-final (the server's signature).
//!
//! Unknown keys get a salt derived from a per-process secret, so a client cannot tell which
//! keys exist from the first round; every failure is the same answer. Channel binding and
//! delegation tokens are refused. Pure logic over the image; the connection drives it.

use std::sync::OnceLock;

use base64::Engine;
use cells::image::CellImage;
use hmac::{Hmac, Mac};
use proto::cell::v1::ScramCredential;
use sha2::{Digest, Sha256, Sha512};

use crate::auth::{constant_time_eq, Principal};
use crate::namespace::TenantId;

/// Longest SCRAM message accepted (they are a few hundred bytes).
const MAX_MESSAGE: usize = 4096;
/// Iterations claimed for unknown keys (what real verifiers use).
const FAKE_ITERATIONS: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
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
            Mechanism::Sha256 => mac::<Hmac<Sha256>>(key, data),
            Mechanism::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }
}

/// What one step of the exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send these bytes; the client's next message comes in the next SaslAuthenticate.
    Continue(Vec<u8>),
    /// The proof is right: send the server-final message and bind the connection.
    Authenticated(Vec<u8>, TenantId, Principal),
    /// Malformed, unknown key, wrong proof: one answer for all.
    Failed(&'static str),
}

/// One connection's SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: Mechanism,
    state: State,
}

#[derive(Debug)]
enum State {
    First,
    Final(Box<Pending>),
    Over,
}

#[derive(Debug)]
struct Pending {
    api_key: String,
    /// The verifier, `None` for an unknown key (the proof then always fails).
    credential: Option<ScramCredential>,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    /// The whole nonce of the server-first message: the client's, then ours.
    nonce: String,
    client_nonce_len: usize,
}

/// The client-final nonce must be the server-first one. librdkafka (every version through
/// at least 2.x) sends its own nonce again in front of it; Kafka accepts that by checking
/// only the end, and so do we, as long as what comes before is the client's nonce.
fn nonce_matches(sent: &str, p: &Pending) -> bool {
    let client_nonce = &p.nonce[..p.client_nonce_len];
    sent == p.nonce || sent.strip_prefix(client_nonce) == Some(p.nonce.as_str())
}

impl ScramServer {
    pub fn new(mechanism: Mechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::First,
        }
    }

    /// Take the client's next message.
    pub fn step(&mut self, image: &CellImage, message: &[u8]) -> ScramStep {
        if message.len() > MAX_MESSAGE {
            self.state = State::Over;
            return ScramStep::Failed("SCRAM message too long");
        }
        let Ok(message) = std::str::from_utf8(message) else {
            self.state = State::Over;
            return ScramStep::Failed("SCRAM messages must be UTF-8");
        };
        match std::mem::replace(&mut self.state, State::Over) {
            State::First => match self.first(image, message) {
                Ok((pending, reply)) => {
                    self.state = State::Final(Box::new(pending));
                    ScramStep::Continue(reply.into_bytes())
                }
                Err(why) => ScramStep::Failed(why),
            },
            State::Final(pending) => self.finish(image, *pending, message),
            State::Over => ScramStep::Failed("the SCRAM exchange is over"),
        }
    }

    fn first(&self, image: &CellImage, message: &str) -> Result<(Pending, String), &'static str> {
        // gs2-header: "n,," (or "y,,"), optionally with "a=authzid"; "p=" is channel binding.
        let (flag, rest) = message
            .split_once(',')
            .ok_or("malformed client-first message")?;
        if flag != "n" && flag != "y" {
            return Err("channel binding is not supported");
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or("malformed client-first message")?;
        let gs2_header = format!("{flag},{authzid},");
        let mut user = None;
        let mut client_nonce = None;
        for attr in bare.split(',') {
            match attr.split_once('=') {
                Some(("n", v)) => user = Some(decode_name(v)?),
                Some(("r", v)) if !v.is_empty() => client_nonce = Some(v.to_string()),
                Some(("m", _)) => return Err("mandatory SCRAM extensions are not supported"),
                Some(("tokenauth", "true")) => return Err("delegation tokens are not supported"),
                _ => {}
            }
        }
        let (Some(user), Some(client_nonce)) = (user, client_nonce) else {
            return Err("the client-first message needs n= and r=");
        };
        if let Some(a) = authzid.strip_prefix("a=") {
            if decode_name(a)? != user {
                return Err("the authorization id must be the username");
            }
        }
        let credential = image.credentials.get(&user).and_then(|c| {
            c.scram
                .iter()
                .find(|s| s.mechanism == self.mechanism.name())
                .cloned()
        });
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (self.fake_salt(&user), FAKE_ITERATIONS),
        };
        let client_nonce_len = client_nonce.len();
        let nonce = format!("{client_nonce}{}", uuid::Uuid::new_v4().simple());
        let b64 = base64::engine::general_purpose::STANDARD;
        let server_first = format!("r={nonce},s={},i={iterations}", b64.encode(salt));
        let pending = Pending {
            api_key: user,
            credential,
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
            client_nonce_len,
        };
        Ok((pending, server_first))
    }

    fn finish(&self, image: &CellImage, p: Pending, message: &str) -> ScramStep {
        let b64 = base64::engine::general_purpose::STANDARD;
        let Some((without_proof, proof)) = message.rsplit_once(",p=") else {
            return ScramStep::Failed("the client-final message has no proof");
        };
        let mut binding = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            match attr.split_once('=') {
                Some(("c", v)) => binding = Some(v),
                Some(("r", v)) => nonce = Some(v),
                _ => {}
            }
        }
        let binding_ok = binding
            .and_then(|c| b64.decode(c).ok())
            .is_some_and(|c| c == p.gs2_header.as_bytes());
        if !binding_ok || !nonce.is_some_and(|r| nonce_matches(r, &p)) {
            return ScramStep::Failed("the client-final message does not match the exchange");
        }
        let Ok(proof) = b64.decode(proof) else {
            return ScramStep::Failed("the proof is not base64");
        };
        let auth_message = format!(
            "{},{},{}",
            p.client_first_bare, p.server_first, without_proof
        );
        let Some(credential) = p.credential else {
            return ScramStep::Failed("invalid API key or secret");
        };
        let m = self.mechanism;
        let signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return ScramStep::Failed("invalid API key or secret");
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if !constant_time_eq(&m.digest(&client_key), &credential.stored_key) {
            return ScramStep::Failed("invalid API key or secret");
        }
        // The key may have been revoked between the two rounds: check it again.
        let Some(record) = image.credentials.get(&p.api_key) else {
            return ScramStep::Failed("invalid API key or secret");
        };
        if !image.clusters.contains_key(&record.cluster_id) {
            return ScramStep::Failed("invalid API key or secret");
        }
        let server_signature = m.hmac(&credential.server_key, auth_message.as_bytes());
        let server_final = format!("v={}", b64.encode(server_signature));
        ScramStep::Authenticated(
            server_final.into_bytes(),
            TenantId::from(record.cluster_id.as_str()),
            Principal {
                api_key: record.api_key.clone(),
                name: record.principal.clone(),
                full_access: record.owner_is_user,
            },
        )
    }

    /// A stable salt for a key that does not exist, unpredictable without this process's
    /// secret.
    fn fake_salt(&self, user: &str) -> Vec<u8> {
        static SECRET: OnceLock<[u8; 16]> = OnceLock::new();
        let secret = SECRET.get_or_init(|| *uuid::Uuid::new_v4().as_bytes());
        self.mechanism.hmac(secret, user.as_bytes())[..16].to_vec()
    }
}

/// A SCRAM `saslname`: `=2C` is ',' and `=3D` is '='; any other '=' is malformed.
fn decode_name(v: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err("malformed username"),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
