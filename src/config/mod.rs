//! The typed configuration: its keys and defaults, and how the layers are stacked
//! (defaults < YAML file < `WSGATE_*` environment < command line).
//!
//! Loading never binds a socket; every problem found (unknown key, bad value, inconsistent
//! values) is reported at once with its dotted key, see [`ConfigError`].

mod env;
mod error;
mod extract;
mod peel;
mod redact;
mod route;
mod sections;
mod tls;
mod trust;
mod tunnel;
mod tunnel_url;
pub mod units;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Yaml};
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Problem};
pub(crate) use route::SUBPROTOCOL_PREFIX;
pub use route::{AuthMode, BackendList, JwtAlgorithm, JwtConfig, MessageType, Route, TokenSource};
pub use sections::{
    Admin, ClientIpHeader, Limits, Liveness, Log, LogFormat, Probe, Readiness, Reload, Shutdown,
};
pub use tls::{SniCertificate, Tls};
pub use tunnel::{Reconnect, Tunnel};
pub use tunnel_url::{GatewayUrl, ProxyUrl};
pub use units::{ByteSize, Rate};

/// Where the binary looks for a config file when `--config` is not given; a missing file
/// there is not an error.
pub(crate) const DEFAULT_CONFIG_PATH: &str = "/etc/wsgate/wsgate.yaml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the WebSocket listener binds, `ip:port`.
    pub listen: String,
    /// Default time allowed to connect a backend, for routes that do not set their own.
    #[serde(with = "units::duration")]
    pub connect_timeout: Duration,
    /// Exact-path routes; a request for any other path gets 404.
    pub routes: Vec<Route>,
    /// Allowed `Origin`s: exact (`https://app.example.com`), subdomain wildcard
    /// (`https://*.example.com`) or `*` (any origin except `null`). Routes may override.
    pub origins: Vec<String>,
    /// Whether a request without `Origin` (non-browser clients) is allowed.
    pub allow_missing_origin: bool,
    /// Peers (CIDRs or addresses) whose forwarding header is believed.
    pub trusted_proxies: Vec<String>,
    /// The forwarding header those proxies set: `x-forwarded-for` or `forwarded`.
    pub client_ip_header: ClientIpHeader,
    /// The listener expects a PROXY protocol v1/v2 header on every connection.
    pub proxy_protocol: bool,
    /// Peers (CIDRs or addresses) allowed to send that header; a connection from anyone
    /// else is dropped unread. Required when `proxy_protocol` is on.
    pub proxy_protocol_from: Vec<String>,
    /// wss://: certificates and client certificates; off unless a certificate is set.
    pub tls: Tls,
    /// Also speak HTTP/2 (ALPN h2 over TLS, prior knowledge on plain listeners) and accept
    /// WebSockets over it (RFC 8441 extended CONNECT).
    pub http2: bool,
    pub limits: Limits,
    pub liveness: Liveness,
    pub shutdown: Shutdown,
    pub admin: Admin,
    #[serde(default = "sections::health_default")]
    pub health: Probe,
    #[serde(default = "sections::ready_default")]
    pub ready: Probe,
    pub readiness: Readiness,
    pub reload: Reload,
    pub log: Log,
    /// Local ports `wsgate client` carries over WebSocket to a gateway; the gateway itself
    /// ignores them.
    pub tunnels: Vec<Tunnel>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            connect_timeout: Duration::from_secs(5),
            routes: Vec::new(),
            origins: vec!["*".into()],
            allow_missing_origin: true,
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::default(),
            proxy_protocol: false,
            proxy_protocol_from: Vec::new(),
            tls: Tls::default(),
            http2: false,
            limits: Limits::default(),
            liveness: Liveness::default(),
            shutdown: Shutdown::default(),
            admin: Admin::default(),
            health: sections::health_default(),
            ready: sections::ready_default(),
            readiness: Readiness::default(),
            reload: Reload::default(),
            log: Log::default(),
            tunnels: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    /// `--backend ADDR`: replaces the routes with a single route at `/`.
    pub backend: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `wsgate client --url ...`: replaces `tunnels` with this one (its fields as the
    /// config writes them; the rest at their defaults).
    pub tunnel: Option<serde_json::Value>,
}

/// Which file to read: one the user named (must exist) or the default path (may be absent).
#[derive(Debug, Clone)]
pub enum ConfigFile {
    Explicit(PathBuf),
    Default(PathBuf),
    None,
}

impl ConfigFile {
    /// `--config` if given, else [`DEFAULT_CONFIG_PATH`].
    pub(crate) fn from_flag(flag: Option<PathBuf>) -> Self {
        match flag {
            Some(path) => Self::Explicit(path),
            None => Self::Default(PathBuf::from(DEFAULT_CONFIG_PATH)),
        }
    }
}

impl Config {
    /// Stacks the layers, extracts and validates; every problem is in the error, with the
    /// values of keys that may hold secrets hidden.
    pub fn load(file: &ConfigFile, overrides: &Overrides) -> Result<Self, ConfigError> {
        let figment = Self::figment(file, overrides)?;
        let cfg: Self = figment
            .extract()
            .map_err(|_| extract::every_problem(&figment).redacted(&figment))?;
        cfg.validate().map_err(|e| e.redacted(&figment))?;
        Ok(cfg)
    }

    /// The layered sources, before extraction.
    pub fn figment(file: &ConfigFile, overrides: &Overrides) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            ConfigFile::Explicit(path) => {
                if !path.is_file() {
                    return Err(ConfigError::single(
                        "--config",
                        format!("file {} does not exist or is not a file", path.display()),
                    ));
                }
                figment = figment.merge(Yaml::file_exact(path));
            }
            ConfigFile::Default(path) if path.is_file() => {
                figment = figment.merge(Yaml::file_exact(path));
            }
            ConfigFile::Default(_) | ConfigFile::None => {}
        }
        let env = env::EnvLayer::over(&figment)?;
        figment = figment.merge(env);
        Ok(apply_overrides(figment, overrides))
    }

    /// The connect timeout that applies to `route`.
    pub fn connect_timeout_for(&self, route: &Route) -> Duration {
        route.connect_timeout.unwrap_or(self.connect_timeout)
    }

    /// A config with one route at `/` to `backend`, everything else at its default.
    pub fn single_route(listen: impl Into<String>, backend: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            routes: vec![Route::new("/", backend)],
            ..Self::default()
        }
    }
}

fn apply_overrides(mut figment: Figment, o: &Overrides) -> Figment {
    if let Some(listen) = &o.listen {
        figment = figment.merge(Serialized::default("listen", listen));
    }
    if let Some(backend) = &o.backend {
        figment = figment.merge(Serialized::default(
            "routes",
            vec![Route::new("/", backend)],
        ));
    }
    if let Some(format) = o.log_format {
        figment = figment.merge(Serialized::default("log.format", format));
    }
    if let Some(cert) = &o.tls_cert {
        figment = figment.merge(Serialized::default("tls.cert", cert));
    }
    if let Some(key) = &o.tls_key {
        figment = figment.merge(Serialized::default("tls.key", key));
    }
    if let Some(level) = &o.log_level {
        figment = figment.merge(Serialized::default("log.level", level));
    }
    if let Some(tunnel) = &o.tunnel {
        figment = figment.merge(Serialized::default("tunnels", [tunnel]));
    }
    figment
}
