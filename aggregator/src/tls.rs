//! HTTPS: the rustls server configuration built from `[tls]`.
//!
//! rustls runs on the `ring` crypto provider, passed explicitly rather than
//! installed process-wide, so nothing depends on which provider another crate
//! might have installed (and aws-lc-rs, heavy to build, is never needed).
//! ALPN offers `h2` then `http/1.1`, so browsers and clients get HTTP/2 when
//! they can. [`Config::load`](crate::config::Config::load) calls
//! [`server_config`] too, so `check-config` reports a missing, unreadable or
//! mismatched certificate or key with the key that names it. The syslog
//! listener's TLS ([`syslog_server_config`]) is built the same way.

use crate::config::{SyslogTlsConfig, TlsConfig};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why `[tls]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("cannot use the certificate file {}: {reason}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("cannot use the private key file {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The client CA file is missing, unreadable or holds no usable CA.
    #[error("cannot use the client CA file {}: {reason}", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("the certificate and key cannot be used together: {0}")]
    Pair(#[source] rustls::Error),
}

impl TlsError {
    /// The configuration key the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Cert { .. } => "tls.cert",
            TlsError::Key { .. } | TlsError::Pair(_) => "tls.key",
            TlsError::ClientCa { .. } => "tls.client_ca",
        }
    }
}

/// Reads the PEM files of `tls` and builds the server configuration
/// (ring provider, TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`).
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&tls.cert)?;
    let key = read_key(&tls.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Pair)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The syslog listener's TLS (RFC 5425): no ALPN; with `client_ca`, only
/// clients presenting a certificate that CA signed complete the handshake.
pub fn syslog_server_config(tls: &SyslogTlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&tls.cert)?;
    let key = read_key(&tls.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Pair)?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let ca_error = |reason: String| TlsError::ClientCa {
                path: path.clone(),
                reason,
            };
            let mut roots = rustls::RootCertStore::empty();
            let cas = read_certs(path).map_err(|err| ca_error(err.to_string()))?;
            for ca in cas {
                roots.add(ca).map_err(|err| ca_error(err.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| ca_error(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(TlsError::Pair)?;
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|err| cert_error(err.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| cert_error(format!("not a PEM certificate file: {err}")))?;
    if certs.is_empty() {
        return Err(cert_error("holds no `BEGIN CERTIFICATE` block".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key_error = |reason: String| TlsError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|err| key_error(err.to_string()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| key_error(format!("holds no usable PEM private key: {err}")))
}
