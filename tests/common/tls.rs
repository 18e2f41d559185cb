//! Certificates for the SASL_SSL tests, made with rcgen in a temporary directory: a CA and,
//! signed by it, a broker certificate for 127.0.0.1 and localhost (what `tributary dev`
//! makes for itself); a second, unrelated CA stands for a client that trusts someone else.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// A CA and the broker certificate it signed, as PEM files.
pub struct TestCa {
    /// The CA certificate: what clients trust (`ssl.ca.location`).
    pub ca: PathBuf,
    /// The broker's certificate and key (`--tls-cert`, `--tls-key`).
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// A fresh CA named `name`, with a broker certificate for 127.0.0.1 and localhost.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("names");
        params
            .distinguished_name
            .push(DnType::CommonName, "tributary test broker");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("broker key");
        let cert = params.signed_by(&key, &issuer).expect("broker certificate");

        let write = |file: &str, pem: String| -> PathBuf {
            let path = dir.path().join(file);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        TestCa {
            ca: write("ca.pem", ca_cert.pem()),
            cert: write("broker.pem", cert.pem()),
            key: write("broker-key.pem", key.serialize_pem()),
            _dir: dir,
        }
    }

    pub fn ca_path(&self) -> &Path {
        &self.ca
    }
}

/// A TLS handshake with the listener at `addr` by a client that trusts only the CA in
/// `ca` and expects the server to be `name` (rustls; 30 s at most).
pub async fn handshake(addr: &str, ca: &Path, name: &str) -> Result<(), String> {
    use std::sync::Arc;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{crypto, ClientConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(ca).map_err(|e| format!("CA file: {e}"))?;
    roots.add(ca).map_err(|e| format!("CA: {e}"))?;
    let config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        connector
            .connect(name, tcp)
            .await
            .map(|_| ())
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), attempt)
        .await
        .map_err(|_| format!("TLS handshake with {addr} took over 30 s"))?
}
