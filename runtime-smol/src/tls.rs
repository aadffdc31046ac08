//! The TLS server configuration: a configured PEM chain and key, or a self-signed certificate
//! generated on first start and kept in the storage folder.
//!
//! The certificate can be replaced while the server runs (SIGHUP, see `server.rs`): the one
//! `ServerConfig` asks a resolver for the certificate at each handshake, and a reload swaps
//! what the resolver holds. Established connections keep their sessions; new handshakes get
//! the new certificate; session resumption keeps working across the swap.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use futures_rustls::TlsAcceptor;
use rustls::crypto::{ring, CryptoProvider};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use crate::error::StartError;

/// Builds the acceptor every TLS listener and STARTTLS upgrade uses.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, StartError> {
    reloadable(config).map(|(acceptor, _)| acceptor)
}

/// Builds the acceptor and the handle that reloads its certificate.
pub fn reloadable(config: &Config) -> Result<(TlsAcceptor, CertReloader), StartError> {
    let (cert, key) = match &config.server.tls {
        Some(files) => (
            config.resolve(&files.certificate),
            config.resolve(&files.private_key),
        ),
        None => self_signed(&config.storage_path().join("tls"))?,
    };
    let provider = Arc::new(ring::default_provider());
    let resolver = Arc::new(Resolver {
        current: RwLock::new(Arc::new(load(&cert, &key, &provider)?)),
    });
    // TLS 1.2 and 1.3 only (rustls supports nothing older), ring as the one crypto provider.
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    let reloader = CertReloader {
        resolver,
        provider,
        cert,
        key,
    };
    Ok((TlsAcceptor::from(Arc::new(server)), reloader))
}

/// Reads a PEM chain and key and checks that they belong together.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, StartError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| StartError::Tls(format!("certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "certificate {}: no PEM certificate found",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError::Tls(format!("private key {}: {e}", key.display())))?;
    CertifiedKey::from_der(certs, key_der, provider)
        .map_err(|e| StartError::Tls(format!("certificate and key do not fit: {e}")))
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Re-reads the certificate and key files into the running acceptor.
#[derive(Debug)]
pub struct CertReloader {
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
    cert: PathBuf,
    key: PathBuf,
}

impl CertReloader {
    /// Loads the files again; on any error the certificate in use stays.
    pub fn reload(&self) -> Result<(), StartError> {
        let fresh = load(&self.cert, &self.key, &self.provider)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }
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
