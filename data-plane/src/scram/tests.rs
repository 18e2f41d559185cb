//! The SCRAM exchange against a client written from RFC 5802 here (PBKDF2 as the RFC's Hi).

use super::*;
use proto::cell::v1::{CredentialRecord, LogicalClusterRecord};

fn hi(m: Mechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = m.hmac(password.as_bytes(), &block);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = m.hmac(password.as_bytes(), &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

fn verifier(m: Mechanism, password: &str) -> ScramCredential {
    let salt = b"0123456789abcdef".to_vec();
    let salted = hi(m, password, &salt, 4096);
    ScramCredential {
        mechanism: m.name().into(),
        stored_key: m.digest(&m.hmac(&salted, b"Client Key")),
        server_key: m.hmac(&salted, b"Server Key"),
        salt,
        iterations: 4096,
    }
}

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
        "KEY,1".into(),
        CredentialRecord {
            api_key: "KEY,1".into(),
            cluster_id: "lkc-a".into(),
            principal: "User:u-ada".into(),
            secret_sha256: String::new(),
            owner_is_user: true,
            scram: vec![
                verifier(Mechanism::Sha256, "pencil"),
                verifier(Mechanism::Sha512, "pencil"),
            ],
        },
    );
    image
}

/// Run a whole exchange as a client with `password`; returns the last step.
fn exchange(m: Mechanism, image: &CellImage, user: &str, password: &str) -> ScramStep {
    exchange_as(m, image, user, password, false)
}

/// `librdkafka_nonce`: send the client nonce again before the server's, as librdkafka does.
fn exchange_as(
    m: Mechanism,
    image: &CellImage,
    user: &str,
    password: &str,
    librdkafka_nonce: bool,
) -> ScramStep {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut server = ScramServer::new(m);
    let bare = format!("n={},r=clientnonce123", user.replace(',', "=2C"));
    let ScramStep::Continue(first) = server.step(image, format!("n,,{bare}").as_bytes()) else {
        panic!("server-first expected");
    };
    let first = String::from_utf8(first).unwrap();
    let mut nonce = "";
    let mut salt = vec![];
    let mut iterations = 0;
    for attr in first.split(',') {
        match attr.split_once('=').unwrap() {
            ("r", v) => nonce = v,
            ("s", v) => salt = b64.decode(v).unwrap(),
            ("i", v) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(nonce.starts_with("clientnonce123") && nonce.len() > 14);
    let without_proof = if librdkafka_nonce {
        format!("c=biws,r=clientnonce123{nonce}")
    } else {
        format!("c=biws,r={nonce}")
    };
    let auth_message = format!("{bare},{first},{without_proof}");
    let salted = hi(m, password, &salt, iterations);
    let client_key = m.hmac(&salted, b"Client Key");
    let signature = m.hmac(&m.digest(&client_key), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let last = server.step(
        image,
        format!("{without_proof},p={}", b64.encode(proof)).as_bytes(),
    );
    if let ScramStep::Authenticated(final_message, _, _) = &last {
        // The client checks the server knew the verifier too.
        let expected = m.hmac(&m.hmac(&salted, b"Server Key"), auth_message.as_bytes());
        assert_eq!(
            String::from_utf8(final_message.clone()).unwrap(),
            format!("v={}", b64.encode(expected))
        );
    }
    last
}

#[test]
fn the_right_secret_authenticates_with_either_mechanism() {
    let image = image();
    for m in [Mechanism::Sha256, Mechanism::Sha512] {
        match exchange(m, &image, "KEY,1", "pencil") {
            ScramStep::Authenticated(_, tenant, principal) => {
                assert_eq!(&*tenant, "lkc-a");
                assert_eq!(principal.api_key, "KEY,1");
                assert!(principal.full_access);
            }
            other => panic!("{m:?}: {other:?}"),
        }
    }
}

#[test]
fn librdkafkas_repeated_client_nonce_is_accepted_and_nothing_else() {
    let image = image();
    assert!(matches!(
        exchange_as(Mechanism::Sha512, &image, "KEY,1", "pencil", true),
        ScramStep::Authenticated(..)
    ));
    let mut s = ScramServer::new(Mechanism::Sha256);
    let ScramStep::Continue(first) = s.step(&image, b"n,,n=KEY=2C1,r=abc") else {
        panic!("server-first expected");
    };
    let nonce = String::from_utf8(first).unwrap()[2..]
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let other_prefix = format!("c=biws,r=xyz{nonce},p=AAAA");
    assert_eq!(
        s.step(&image, other_prefix.as_bytes()),
        ScramStep::Failed("the client-final message does not match the exchange")
    );
}

#[test]
fn wrong_secrets_and_unknown_keys_fail_alike() {
    let image = image();
    let wrong = exchange(Mechanism::Sha256, &image, "KEY,1", "pen");
    let unknown = exchange(Mechanism::Sha256, &image, "NOPE", "pencil");
    assert_eq!(wrong, ScramStep::Failed("invalid API key or secret"));
    assert_eq!(unknown, wrong);
    // An unknown key gets the same salt every time, so asking twice reveals nothing.
    let first = |user: &str| {
        let mut s = ScramServer::new(Mechanism::Sha256);
        match s.step(&image, format!("n,,n={user},r=abc").as_bytes()) {
            ScramStep::Continue(b) => String::from_utf8(b)
                .unwrap()
                .split(',')
                .nth(1)
                .unwrap()
                .to_string(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(first("NOPE"), first("NOPE"));
    assert_ne!(first("NOPE"), first("OTHER"));
}

#[test]
fn a_revoked_key_fails_even_mid_exchange_and_garbage_is_refused() {
    let mut image = image();
    image.credentials.clear();
    assert!(matches!(
        exchange(Mechanism::Sha512, &image, "KEY,1", "pencil"),
        ScramStep::Failed(_)
    ));
    let image = self::image();
    for bad in [
        &b"p=tls-server-end-point,,n=KEY,r=a"[..],
        b"n,,n=KEY,r=a,tokenauth=true",
        b"n,,r=a",
        b"n,,n=K=ZZ,r=a",
        b"garbage",
        b"\xff\xfe",
    ] {
        let mut s = ScramServer::new(Mechanism::Sha256);
        assert!(
            matches!(s.step(&image, bad), ScramStep::Failed(_)),
            "{bad:?}"
        );
    }
    let mut s = ScramServer::new(Mechanism::Sha256);
    assert!(matches!(
        s.step(&image, &vec![b'n'; MAX_MESSAGE + 1]),
        ScramStep::Failed(_)
    ));
    // A final message with another nonce or channel binding does not pass.
    let mut s = ScramServer::new(Mechanism::Sha256);
    assert!(matches!(
        s.step(&image, b"n,,n=KEY=2C1,r=abc"),
        ScramStep::Continue(_)
    ));
    assert!(matches!(
        s.step(&image, b"c=biws,r=abcX,p=AAAA"),
        ScramStep::Failed(_)
    ));
    assert!(
        matches!(s.step(&image, b"c=biws,r=abc,p=AAAA"), ScramStep::Failed(_)),
        "over"
    );
}

#[test]
fn sasl_names_decode_escapes() {
    assert_eq!(decode_name("a=2Cb=3Dc").unwrap(), "a,b=c");
    assert!(decode_name("a=").is_err());
    assert!(decode_name("a=2").is_err());
}
