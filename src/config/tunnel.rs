//! `tunnels`: what `wsgate client` runs. Each tunnel is a local TCP listener whose
//! connections are each carried over their own WebSocket session to a gateway URL, with the
//! TLS, credentials, proxy and reconnect settings for that session, and the checks on
//! them. The URLs they name are parsed in `tunnel_url`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::route::BackendList;
use super::tunnel_url::{GatewayUrl, ProxyUrl};
use super::{ConfigError, units};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tunnel {
    /// Name in logs and metrics; the listen address when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Local address to accept TCP connections on, `ip:port`.
    pub listen: String,
    /// `ws://` or `wss://` URL of the gateway route, or a list tried in turn (failover).
    pub url: BackendList,
    /// PEM CA certificates to trust for wss:// instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (with `client_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key for `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// File holding a bearer token, sent as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token (never read as a config key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// More request headers for the upgrade, name to value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Subprotocols offered, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subprotocols: Vec<String>,
    /// `Origin` header, for gateways that require one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `http://[user:pass@]host:port` proxy to reach the gateway through with CONNECT;
    /// `off` for none. When not set, `https_proxy` (wss://) or `http_proxy` (ws://) from
    /// the environment applies, minus the hosts in `no_proxy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Time for one attempt to open a session: TCP, proxy, TLS and the upgrade together.
    #[serde(default = "connect_timeout_default", with = "units::duration")]
    pub connect_timeout: Duration,
    #[serde(default)]
    pub reconnect: Reconnect,
}

fn connect_timeout_default() -> Duration {
    Duration::from_secs(10)
}

/// How a session that fails to open is retried. Open sessions are never re-opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reconnect {
    /// Most attempts to open one session, across all URLs (each attempt tries the next URL).
    pub attempts: u32,
    /// Wait after the first round of URLs failed; doubled after each round, with jitter.
    #[serde(with = "units::duration")]
    pub initial_delay: Duration,
    /// Longest wait between two rounds.
    #[serde(with = "units::duration")]
    pub max_delay: Duration,
    /// Longest time spent opening one session; then the local connection is closed.
    #[serde(with = "units::duration")]
    pub max_time: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            attempts: 8,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_time: Duration::from_secs(30),
        }
    }
}

impl Tunnel {
    /// A tunnel from `listen` to `url` with every other setting at its default.
    pub fn new(listen: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: None,
            listen: listen.into(),
            url: BackendList(vec![url.into()]),
            ca_file: None,
            client_cert: None,
            client_key: None,
            token_file: None,
            token_env: None,
            headers: BTreeMap::new(),
            subprotocols: Vec::new(),
            origin: None,
            proxy: None,
            connect_timeout: connect_timeout_default(),
            reconnect: Reconnect::default(),
        }
    }

    /// The name in logs and metrics.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.listen)
    }
}

/// Every problem with `tunnels`, keyed `tunnels.<i>.<field>`.
pub(super) fn check_tunnels(bad: &mut ConfigError, tunnels: &[Tunnel]) {
    let mut listens = std::collections::HashSet::new();
    for (i, t) in tunnels.iter().enumerate() {
        let mut problem = |field: &str, message: String| {
            bad.push(format!("tunnels.{i}.{field}"), message);
        };
        if t.listen.parse::<SocketAddr>().is_err() {
            problem(
                "listen",
                format!("{:?} is not an ip:port address", t.listen),
            );
        } else if !t.listen.ends_with(":0") && !listens.insert(t.listen.as_str()) {
            problem(
                "listen",
                format!("{:?} is used by an earlier tunnel", t.listen),
            );
        }
        check_urls(t, &mut problem);
        check_credentials(t, &mut problem);
        check_request(t, &mut problem);
        check_timing(t, &mut problem);
    }
}

/// Problems reported as (field under the tunnel, message).
type Report<'a> = dyn FnMut(&str, String) + 'a;

fn check_urls(t: &Tunnel, problem: &mut Report<'_>) {
    if t.url.0.is_empty() {
        problem("url", "no URL given".into());
    }
    for (j, url) in t.url.0.iter().enumerate() {
        if let Err(why) = GatewayUrl::parse(url) {
            let field = if t.url.0.len() == 1 {
                "url".to_string()
            } else {
                format!("url.{j}")
            };
            problem(&field, why);
        }
    }
    if let Some(proxy) = t.proxy.as_deref().filter(|p| *p != "off") {
        if let Err(why) = ProxyUrl::parse(proxy) {
            problem("proxy", why);
        }
    }
}

fn check_credentials(t: &Tunnel, problem: &mut Report<'_>) {
    if t.client_cert.is_some() != t.client_key.is_some() {
        let why = "client_cert and client_key go together: set both or neither";
        problem("client_cert", why.into());
    }
    if t.token_file.is_some() && t.token_env.is_some() {
        problem("token_env", "set token_file or token_env, not both".into());
    }
    if let Some(var) = &t.token_env {
        if var.is_empty() || var.to_ascii_uppercase().starts_with(super::env::PREFIX) {
            let why = format!("{var:?}: name a variable outside WSGATE_* (those are config keys)");
            problem("token_env", why);
        }
    }
}

fn check_request(t: &Tunnel, problem: &mut Report<'_>) {
    for (name, value) in &t.headers {
        let field = format!("headers.{name}");
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            problem(&field, format!("{name:?} is not a header name"));
        } else if HeaderValue::from_str(value).is_err() {
            let why = "the value is not a valid header value (control characters?)";
            problem(&field, why.into());
        }
    }
    for (j, p) in t.subprotocols.iter().enumerate() {
        if p.is_empty() || HeaderValue::from_str(p).is_err() || p.contains([',', ' ']) {
            problem(
                &format!("subprotocols.{j}"),
                format!("{p:?} is not a subprotocol token"),
            );
        }
    }
    if let Some(origin) = &t.origin {
        if HeaderValue::from_str(origin).is_err() {
            problem("origin", format!("{origin:?} is not a header value"));
        }
    }
}

fn check_timing(t: &Tunnel, problem: &mut Report<'_>) {
    const NOT_ZERO: &str = "0s is not allowed: must be longer than zero";
    if t.connect_timeout.is_zero() {
        problem("connect_timeout", NOT_ZERO.into());
    }
    let r = &t.reconnect;
    if r.attempts == 0 {
        problem(
            "reconnect.attempts",
            "0 is not allowed: must be at least 1".into(),
        );
    }
    if r.max_delay < r.initial_delay {
        problem(
            "reconnect.max_delay",
            format!(
                "{} is shorter than reconnect.initial_delay ({})",
                units::format_duration(r.max_delay),
                units::format_duration(r.initial_delay)
            ),
        );
    }
    if r.max_time.is_zero() {
        problem("reconnect.max_time", NOT_ZERO.into());
    }
}
