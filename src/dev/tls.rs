//! `tributary dev`'s local certificate authority: at first start it makes a CA and, signed
//! by it, one certificate for the brokers' SASL_SSL listeners (valid for 127.0.0.1 and
//! localhost), under `DATA_DIR/tls/`; later starts reuse them. Clients trust `ca.pem`.
//!
//! It owns only these files (rcgen, ECDSA P-256, PEM). It must not depend on the rest of
//! the stack: the brokers read the files through `--tls-cert` and `--tls-key`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The names the broker certificate is valid for (the dev stack listens on 127.0.0.1).
const BROKER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];
/// The CA's subject; also what re-signs a broker certificate with a kept CA key.
const CA_NAME: &str = "Tributary dev CA";

/// The certificates' directory under the data dir.
pub const DIR: &str = "tls";
/// The CA certificate's file name in [`DIR`].
const CA_FILE: &str = "ca.pem";

/// The CA certificate clients of the stack in `data_dir` trust.
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR).join(CA_FILE)
}

/// Where the dev stack's certificates are.
pub struct DevCerts {
    /// The CA certificate clients trust (`ssl.ca.location`).
    pub ca: PathBuf,
    /// The brokers' certificate (`--tls-cert`) and its key (`--tls-key`).
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificates under `dir`, made if missing: a kept CA (certificate and key) is
/// reused, and only a missing broker certificate or key is issued again from it.
pub fn ensure(dir: &Path) -> anyhow::Result<DevCerts> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let certs = DevCerts {
        ca: dir.join(CA_FILE),
        cert: dir.join("broker.pem"),
        key: dir.join("broker-key.pem"),
    };
    let ca_key_path = dir.join("ca-key.pem");
    let ca_key = if certs.ca.exists() && ca_key_path.exists() {
        let pem = std::fs::read_to_string(&ca_key_path)
            .with_context(|| format!("cannot read {}", ca_key_path.display()))?;
        KeyPair::from_pem(&pem).with_context(|| {
            format!(
                "{} is not a key; remove {} to make a new CA",
                ca_key_path.display(),
                dir.display()
            )
        })?
    } else {
        let key = KeyPair::generate().context("generating the CA key")?;
        let cert = ca_params().self_signed(&key).context("signing the CA")?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        write_public(&certs.ca, &cert.pem())?;
        // A new CA: any broker certificate left from an older one is useless.
        let _ = std::fs::remove_file(&certs.cert);
        key
    };
    if !(certs.cert.exists() && certs.key.exists()) {
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().context("generating the broker key")?;
        let cert = broker_params()?
            .signed_by(&key, &issuer)
            .context("signing the broker certificate")?;
        write_private(&certs.key, &key.serialize_pem())?;
        write_public(&certs.cert, &cert.pem())?;
    }
    Ok(certs)
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn broker_params() -> anyhow::Result<CertificateParams> {
    let names: Vec<String> = BROKER_NAMES.iter().map(|n| n.to_string()).collect();
    let mut p = CertificateParams::new(names).context("broker certificate names")?;
    p.distinguished_name
        .push(DnType::CommonName, "Tributary dev broker");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// A key: readable by its owner only, written in full or not at all (tmp + rename).
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    write(path, pem, 0o600)
}

fn write_public(path: &Path, pem: &str) -> anyhow::Result<()> {
    write(path, pem, 0o644)
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{crypto, ClientConfig, RootCertStore};

    /// A TLS handshake between the brokers' acceptor (as `--tls-cert`/`--tls-key` build
    /// it) and a client that trusts only `ca.pem` and expects the broker to be `name`.
    async fn handshake(certs: &DevCerts, name: &str) -> Result<(), String> {
        let acceptor = data_plane::tls::acceptor(&certs.cert, &certs.key).unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&certs.ca).unwrap())
            .unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(async move { acceptor.accept(server).await.map(|_| ()) });
        let name = ServerName::try_from(name.to_string()).unwrap();
        let connected = connector.connect(name, client).await.map(|_| ());
        let _ = served.await;
        connected.map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn the_broker_certificate_verifies_against_the_ca_for_the_dev_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let certs = ensure(dir.path()).unwrap();
        for name in BROKER_NAMES {
            handshake(&certs, name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let err = handshake(&certs, "example.com").await.unwrap_err();
        assert!(err.contains("certificate"), "{err}");
        // Reissued from the kept CA key after the broker key was lost: still trusted.
        std::fs::remove_file(&certs.key).unwrap();
        let certs = ensure(dir.path()).unwrap();
        handshake(&certs, "127.0.0.1").await.unwrap();
    }

    #[test]
    fn made_once_then_reused_and_a_lost_broker_key_is_reissued_by_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let first = ensure(&tls).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let (ca, cert, key) = (read(&first.ca), read(&first.cert), read(&first.key));
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        assert!(key.contains("PRIVATE KEY"), "{key}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let again = ensure(&tls).unwrap();
        assert_eq!(
            (read(&again.ca), read(&again.cert), read(&again.key)),
            (ca.clone(), cert.clone(), key.clone())
        );

        std::fs::remove_file(&first.key).unwrap();
        let reissued = ensure(&tls).unwrap();
        assert_eq!(read(&reissued.ca), ca, "the CA clients trust is kept");
        assert_ne!(read(&reissued.key), key);
        assert_ne!(read(&reissued.cert), cert);
    }
}
