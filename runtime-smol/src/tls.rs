//! The TLS server configuration: a configured PEM chain and key, or a self-signed certificate
//! generated on first start and kept in the storage folder.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::TlsAcceptor;
use rustls::crypto::ring;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use crate::error::StartError;

/// Builds the acceptor every TLS listener and STARTTLS upgrade uses.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, StartError> {
    let (cert, key) = match &config.server.tls {
        Some(files) => (
            config.resolve(&files.certificate),
            config.resolve(&files.private_key),
        ),
        None => self_signed(&config.storage_path().join("tls"))?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| StartError::Tls(format!("certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "certificate {}: no PEM certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| StartError::Tls(format!("private key {}: {e}", key.display())))?;
    // TLS 1.2 and 1.3 only (rustls supports nothing older), ring as the one crypto provider.
    let server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(format!("certificate and key do not fit: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Paths of the generated certificate, creating it when missing.
fn self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), StartError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| StartError::Io { what, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("cannot create folder", dir))?;
    let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| StartError::Tls(format!("cannot generate a certificate: {e}")))?;
    write_private_file(&key, generated.key_pair.serialize_pem().as_bytes())
        .map_err(io("cannot write", &key))?;
    std::fs::write(&cert, generated.cert.pem()).map_err(io("cannot write", &cert))?;
    tracing::info!(path = %cert.display(), "generated a self-signed certificate");
    Ok((cert, key))
}

/// Writes a file only its owner can read (the key must not be world-readable).
pub fn write_private_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}
