//! TLS for the SASL_SSL listener: a rustls server configuration from PEM files (ring
//! crypto provider, TLS 1.2 and 1.3, no client certificates) and the server handshake,
//! bounded in time.
//!
//! It owns only the transport: what runs over the encrypted stream (SASL, requests) is
//! [`crate::connection`]'s, and it must not depend on the broker's state, sessions or
//! handlers. Certificates are read once at start-up; reloading them needs a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{crypto, ServerConfig};
use tokio_rustls::server::TlsStream;
pub use tokio_rustls::TlsAcceptor;

/// An acceptor serving the certificate chain in `cert` (PEM: the broker's certificate
/// first, then any intermediates) with the private key in `key` (PEM: PKCS#8, PKCS#1 or
/// SEC1). Fails if either cannot be read or they do not belong together.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read certificates from {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key from {}", key.display()))?;
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not make a usable pair")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The server side of a TLS handshake on `stream`; `Err` with the reason if it fails or
/// does not finish within `timeout`.
pub async fn handshake<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    timeout: Duration,
) -> Result<TlsStream<S>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err(format!(
            "TLS handshake not finished within {} ms",
            timeout.as_millis()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An acceptor without a certificate: these handshakes never get past the ClientHello.
    fn certless_acceptor() -> TlsAcceptor {
        let provider = Arc::new(crypto::ring::default_provider());
        let resolver = Arc::new(tokio_rustls::rustls::server::ResolvesServerCertUsingSni::new());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        TlsAcceptor::from(Arc::new(config))
    }

    #[test]
    fn unreadable_or_empty_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = acceptor(&missing, &missing).err().expect("no such file");
        assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = acceptor(&empty, &empty).err().expect("an empty file");
        assert!(format!("{err:#}").contains("no PEM certificate"), "{err:#}");
    }

    #[tokio::test]
    async fn a_peer_that_sends_no_handshake_is_cut_off_by_the_timeout() {
        let acceptor = certless_acceptor();
        let (_client, server) = tokio::io::duplex(1024);
        let Err(err) = handshake(&acceptor, server, Duration::from_millis(50)).await else {
            panic!("a handshake without a peer");
        };
        assert!(err.contains("not finished within 50 ms"), "{err}");
    }

    #[tokio::test]
    async fn garbage_instead_of_a_client_hello_fails_the_handshake() {
        use tokio::io::AsyncWriteExt;
        let acceptor = certless_acceptor();
        let (mut client, server) = tokio::io::duplex(1024);
        // A Kafka ApiVersions frame, as a client that forgot TLS would send it.
        client
            .write_all(&[0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0])
            .await
            .unwrap();
        let Err(err) = handshake(&acceptor, server, Duration::from_secs(30)).await else {
            panic!("a handshake with a Kafka frame");
        };
        assert!(err.starts_with("TLS handshake failed"), "{err}");
    }
}
