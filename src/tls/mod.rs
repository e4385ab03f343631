//! wss://: the rustls server configuration built from `tls` (certificates by SNI, client
//! certificates, TLS 1.2 and 1.3 only), the TLS side of accepting a connection, and the
//! server's TLS stream itself ([`ServerTlsStream`]). The
//! configuration is part of each config generation, so a reload (or a changed certificate
//! file) applies to new connections while open ones keep theirs.

mod accept;
pub(crate) mod certs;
mod stream;

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::ring;
use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, version};

pub use accept::{ClientIdentity, Transport, accept, client_identity};
pub use stream::ServerTlsStream;

use crate::config::{ConfigError, Tls};

/// A rustls configuration ready to accept, and the expiry of each certificate in it.
pub struct TlsSetup {
    pub server: Arc<ServerConfig>,
    /// (server names, expiry as Unix seconds) per certificate.
    pub expiries: Vec<(String, i64)>,
}

/// Builds the TLS setup from `tls` (reading every file it names), or `None` when TLS is
/// off. Each problem names its key.
pub fn build(tls: &Tls, http2: bool) -> Result<Option<TlsSetup>, ConfigError> {
    if !tls.enabled() {
        return Ok(None);
    }
    let provider = Arc::new(ring::default_provider());
    let mut bad = ConfigError::default();
    let mut loaded = Vec::new();
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        match certs::load_pair(cert, key, &provider) {
            Ok(k) => loaded.push(("default".to_string(), None, k)),
            Err((which, why)) => bad.push(format!("tls.{which}"), why),
        }
    }
    for (i, c) in tls.certificates.iter().enumerate() {
        match certs::load_pair(&c.cert, &c.key, &provider) {
            Ok(k) => loaded.push((c.names.join(","), Some(&c.names), k)),
            Err((which, why)) => bad.push(format!("tls.certificates.{i}.{which}"), why),
        }
    }
    let verifier = match &tls.client_ca {
        None => None,
        Some(path) => match client_verifier(path, &provider) {
            Ok(v) => Some(v),
            Err(why) => {
                bad.push("tls.client_ca", why);
                None
            }
        },
    };
    bad.into_result()?;
    // The default certificate: tls.cert, else the first of tls.certificates.
    let Some((_, _, default)) = loaded.first().cloned() else {
        return Err(ConfigError::single("tls", "no certificate loaded"));
    };
    let mut resolver = certs::SniResolver::new(default);
    for (_, names, key) in &loaded {
        for name in names.iter().flat_map(|n| n.iter()) {
            resolver.add(name, key.clone());
        }
    }
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| ConfigError::single("tls", format!("cannot set up TLS: {e}")))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let expiries = loaded
        .iter()
        .filter_map(|(names, _, key)| Some((names.clone(), certs::not_after(key)?)))
        .collect();
    Ok(Some(TlsSetup {
        server: Arc::new(server),
        expiries,
    }))
}

fn client_verifier(
    path: &std::path::Path,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for cert in certs::load_chain(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))
}
