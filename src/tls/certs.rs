//! Reading certificates and keys from PEM files, and choosing one by server name (SNI).
//! A pair whose key does not match its certificate is refused here, at load time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A certificate chain and its key, checked to belong together.
pub fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, (&'static str, String)> {
    let chain = load_chain(cert).map_err(|e| ("cert", e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        (
            "key",
            format!(
                "{}: no PKCS#8, PKCS#1 or SEC1 private key read ({e})",
                key.display()
            ),
        )
    })?;
    CertifiedKey::from_der(chain, key_der, provider)
        .map(Arc::new)
        .map_err(|e| {
            (
                "key",
                format!("{} does not fit {}: {e}", key.display(), cert.display()),
            )
        })
}

/// Every certificate in a PEM file, in order (leaf first for a chain).
pub fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The leaf certificate's expiry (Unix seconds), for the expiry metric.
pub fn not_after(key: &CertifiedKey) -> Option<i64> {
    let leaf = key.cert.first()?;
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Picks the certificate for the server name the client asked for; the default when it
/// asked for none or for a name no certificate has.
#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored as `example.com`: matches exactly one more label.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    pub fn new(default: Arc<CertifiedKey>) -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        }
    }

    pub fn add(&mut self, name: &str, key: Arc<CertifiedKey>) {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(parent) => self.wildcard.insert(parent.to_string(), key),
            None => self.exact.insert(name, key),
        };
    }

    fn lookup(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.exact.get(&name).or_else(|| {
            let (_, parent) = name.split_once('.')?;
            self.wildcard.get(parent)
        })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|n| self.lookup(n))
            .unwrap_or(&self.default);
        Some(chosen.clone())
    }
}
