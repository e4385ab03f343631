//! Certificates for the wss scenarios, made at run time: a development CA and a server
//! certificate for `localhost` (`wsgate::devcert`), written to a private directory for the
//! gateway's `--tls-cert` and `--tls-key`, and a client configuration trusting that CA.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::client::TLS_NAME;

/// The gateway's certificate files and what the client trusts; the files are removed when
/// this is dropped.
pub struct Tls {
    dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client: Arc<rustls::ClientConfig>,
}

impl Tls {
    pub fn make() -> Result<Self> {
        let certs = wsgate::devcert::generate(&[TLS_NAME.to_string()], &[])
            .context("cannot make the wss certificates")?;
        let dir = std::env::temp_dir().join(format!("wsgate-bench-{}", std::process::id()));
        // A leftover of an earlier process with this PID holds nothing worth keeping.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let tls = Self {
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
            dir,
            client: client_config(&certs.ca_cert)?,
        };
        for (path, body) in [
            (&tls.cert, &certs.server_chain),
            (&tls.key, &certs.server_key),
        ] {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, body.as_bytes()))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(tls)
    }
}

/// TLS as the library's defaults have it (ring), trusting only `ca` (PEM).
fn client_config(ca: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.context("the CA certificate")?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
