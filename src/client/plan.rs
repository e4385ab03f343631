//! Everything one tunnel needs, built once at startup from its config: the parsed URLs, the
//! rustls client config (roots, client certificate, ALPN), the request extras (bearer
//! token, Origin, headers, subprotocols) and the pump settings. Files are read here, so a
//! missing CA or token file is a config error naming its key before anything binds.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use super::handshake::RequestExtras;
use crate::config::{Config, ConfigError, GatewayUrl, Reconnect, Tunnel};
use crate::metrics::{Metrics, RouteMetrics};
use crate::pump::PumpConfig;
use crate::tls::certs::load_chain;

pub struct TunnelPlan {
    pub name: String,
    pub listen: String,
    pub urls: Vec<GatewayUrl>,
    /// Set when any URL is wss://.
    pub tls: Option<Arc<ClientConfig>>,
    pub extras: RequestExtras,
    pub proxy: Option<String>,
    pub connect_timeout: std::time::Duration,
    pub reconnect: Reconnect,
    pub pump: PumpConfig,
    /// Most bytes left unsent in the kernel towards the gateway (`TCP_NOTSENT_LOWAT`).
    pub max_unsent: u32,
    pub metrics: RouteMetrics,
}

impl TunnelPlan {
    /// The plan for `cfg.tunnels[index]`; problems are keyed `tunnels.<index>.<field>`.
    pub fn build(cfg: &Config, index: usize, metrics: &Metrics) -> Result<Self, ConfigError> {
        let t = &cfg.tunnels[index];
        let key = |field: &str| format!("tunnels.{index}.{field}");
        let mut bad = ConfigError::default();
        let urls: Vec<GatewayUrl> = t
            .url
            .0
            .iter()
            .filter_map(|u| GatewayUrl::parse(u).ok())
            .collect();
        let tls = if urls.iter().any(|u| u.tls) {
            match client_tls(t) {
                Ok(tls) => Some(Arc::new(tls)),
                Err((field, why)) => {
                    bad.push(key(field), why);
                    None
                }
            }
        } else {
            None
        };
        let extras = match request_extras(t) {
            Ok(extras) => extras,
            Err((field, why)) => {
                bad.push(key(field), why);
                RequestExtras::default()
            }
        };
        bad.into_result()?;
        Ok(Self {
            name: t.label().to_string(),
            listen: t.listen.clone(),
            urls,
            tls,
            extras,
            proxy: t.proxy.clone(),
            connect_timeout: t.connect_timeout,
            reconnect: t.reconnect.clone(),
            pump: PumpConfig::client_role(cfg),
            max_unsent: u32::try_from(cfg.limits.max_unsent_to_client.0).unwrap_or(u32::MAX),
            metrics: metrics.route(t.label()),
        })
    }
}

type FieldError = (&'static str, String);

/// rustls for wss://: the CA file's certificates or the system's roots, a client
/// certificate if configured, ALPN http/1.1. SNI comes from each URL's host at connect.
fn client_tls(t: &Tunnel) -> Result<ClientConfig, FieldError> {
    let mut roots = RootCertStore::empty();
    match &t.ca_file {
        Some(path) => {
            for cert in load_chain(path).map_err(|e| ("ca_file", e))? {
                roots
                    .add(cert)
                    .map_err(|e| ("ca_file", format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err((
                    "ca_file",
                    "no system root certificates found (install ca-certificates) and no ca_file set".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("ca_file", e.to_string()))?
        .with_root_certificates(roots);
    let mut tls = match (&t.client_cert, &t.client_key) {
        (Some(cert), Some(key)) => {
            let chain = load_chain(cert).map_err(|e| ("client_cert", e))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                (
                    "client_key",
                    format!(
                        "{}: no PKCS#8, PKCS#1 or SEC1 private key read ({e})",
                        key.display()
                    ),
                )
            })?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                (
                    "client_key",
                    format!("{} does not fit {}: {e}", key.display(), cert.display()),
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// The headers every session's request carries.
fn request_extras(t: &Tunnel) -> Result<RequestExtras, FieldError> {
    let mut headers = Vec::new();
    let token = match (&t.token_file, &t.token_env) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| ("token_file", format!("{}: {e}", path.display())))?
                .trim()
                .to_string(),
        ),
        (None, Some(var)) => Some(
            std::env::var(var)
                .map_err(|_| {
                    (
                        "token_env",
                        format!("environment variable {var} is not set"),
                    )
                })?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    if let Some(token) = token {
        let field = if t.token_file.is_some() {
            "token_file"
        } else {
            "token_env"
        };
        if token.is_empty() || token.contains(|c: char| c.is_control() || c == ' ') {
            return Err((
                field,
                "the token is empty or holds spaces or control characters".into(),
            ));
        }
        headers.push(("Authorization".into(), format!("Bearer {token}")));
    }
    if let Some(origin) = &t.origin {
        headers.push(("Origin".into(), origin.clone()));
    }
    for (name, value) in &t.headers {
        headers.push((name.clone(), value.clone()));
    }
    Ok(RequestExtras {
        headers,
        subprotocols: t.subprotocols.clone(),
    })
}
