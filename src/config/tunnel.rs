//! `tunnels`: what `wsgate client` runs. Each tunnel is a local TCP listener whose
//! connections are each carried over their own WebSocket session to a gateway URL, with the
//! TLS, credentials, proxy and reconnect settings for that session. Also the parsing of
//! the URLs it names (gateway and proxy), shared by validation and the client itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::route::BackendList;
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

/// A gateway URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets), for TCP, SNI and the proxy.
    pub host: String,
    pub port: u16,
    /// `Host` header value: the authority as written, without a default port.
    pub authority: String,
    /// Path and query for the request line.
    pub path: String,
}

impl GatewayUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let uri: Uri = text
            .parse()
            .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(format!("{text:?} is not a ws:// or wss:// URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{text:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "{text:?}: credentials in the URL are not sent; use token_file or token_env"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let port = authority.port_u16().unwrap_or(default_port);
        let authority = match authority.port_u16() {
            Some(p) if p != default_port => format!("{}:{p}", authority.host()),
            _ => authority.host().to_string(),
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            authority,
            path: if path.is_empty() { "/".into() } else { path },
        })
    }

    /// `host:port` for CONNECT and logs (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// An HTTP proxy for CONNECT, taken apart.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `host:port` to connect to.
    pub address: String,
    /// `user:password`, percent-decoded, for `Proxy-Authorization: Basic`.
    pub credentials: Option<String>,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("address", &self.address)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ProxyUrl {
    /// Parses `http://[user:pass@]host[:port]` (port 80 by default; also without scheme).
    /// Messages never repeat the URL: it may hold a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|_| "is not a proxy URL (http://[user:password@]host:port)".to_string())?;
        if uri.scheme_str() != Some("http") {
            return Err("only http:// proxies are supported (CONNECT over plain HTTP)".into());
        }
        let authority = uri.authority().ok_or("has no host")?;
        let (userinfo, hostport) = match authority.as_str().rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, authority.as_str()),
        };
        let host = authority.host();
        if host.is_empty() {
            return Err("has no host".into());
        }
        let address = match authority.port_u16() {
            Some(_) => hostport.to_string(),
            None => format!("{hostport}:80"),
        };
        let credentials = userinfo.map(|u| {
            percent_encoding::percent_decode_str(u)
                .decode_utf8_lossy()
                .into_owned()
        });
        Ok(Self {
            address,
            credentials,
        })
    }
}

/// Every problem with `tunnels`, keyed `tunnels.<i>.<field>`.
pub(super) fn check_tunnels(bad: &mut ConfigError, tunnels: &[Tunnel]) {
    let mut listens = std::collections::HashSet::new();
    for (i, t) in tunnels.iter().enumerate() {
        let key = |field: &str| format!("tunnels.{i}.{field}");
        if t.listen.parse::<SocketAddr>().is_err() {
            bad.push(
                key("listen"),
                format!("{:?} is not an ip:port address", t.listen),
            );
        } else if !t.listen.ends_with(":0") && !listens.insert(t.listen.as_str()) {
            bad.push(
                key("listen"),
                format!("{:?} is used by an earlier tunnel", t.listen),
            );
        }
        if t.url.0.is_empty() {
            bad.push(key("url"), "no URL given");
        }
        for (j, url) in t.url.0.iter().enumerate() {
            if let Err(why) = GatewayUrl::parse(url) {
                let k = if t.url.0.len() == 1 {
                    key("url")
                } else {
                    key(&format!("url.{j}"))
                };
                bad.push(k, why);
            }
        }
        if t.client_cert.is_some() != t.client_key.is_some() {
            bad.push(
                key("client_cert"),
                "client_cert and client_key go together: set both or neither",
            );
        }
        if t.token_file.is_some() && t.token_env.is_some() {
            bad.push(key("token_env"), "set token_file or token_env, not both");
        }
        if let Some(var) = &t.token_env {
            if var.is_empty() || var.to_ascii_uppercase().starts_with(super::env::PREFIX) {
                bad.push(
                    key("token_env"),
                    format!("{var:?}: name a variable outside WSGATE_* (those are config keys)"),
                );
            }
        }
        for (name, value) in &t.headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                bad.push(
                    key(&format!("headers.{name}")),
                    format!("{name:?} is not a header name"),
                );
            } else if HeaderValue::from_str(value).is_err() {
                bad.push(
                    key(&format!("headers.{name}")),
                    "the value is not a valid header value (control characters?)",
                );
            }
        }
        for (j, p) in t.subprotocols.iter().enumerate() {
            if p.is_empty() || HeaderValue::from_str(p).is_err() || p.contains([',', ' ']) {
                bad.push(
                    key(&format!("subprotocols.{j}")),
                    format!("{p:?} is not a subprotocol token"),
                );
            }
        }
        if let Some(origin) = &t.origin {
            if HeaderValue::from_str(origin).is_err() {
                bad.push(key("origin"), format!("{origin:?} is not a header value"));
            }
        }
        if let Some(proxy) = t.proxy.as_deref().filter(|p| *p != "off") {
            if let Err(why) = ProxyUrl::parse(proxy) {
                bad.push(key("proxy"), why);
            }
        }
        if t.connect_timeout.is_zero() {
            bad.push(
                key("connect_timeout"),
                "0s is not allowed: must be longer than zero",
            );
        }
        let r = &t.reconnect;
        if r.attempts == 0 {
            bad.push(
                key("reconnect.attempts"),
                "0 is not allowed: must be at least 1",
            );
        }
        if r.max_delay < r.initial_delay {
            bad.push(
                key("reconnect.max_delay"),
                format!(
                    "{} is shorter than reconnect.initial_delay ({})",
                    units::format_duration(r.max_delay),
                    units::format_duration(r.initial_delay)
                ),
            );
        }
        if r.max_time.is_zero() {
            bad.push(
                key("reconnect.max_time"),
                "0s is not allowed: must be longer than zero",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_come_apart() {
        let u = GatewayUrl::parse("wss://gw.example.com/redis?x=1").unwrap();
        assert_eq!(
            (
                u.tls,
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.path.as_str()
            ),
            (true, "gw.example.com", 443, "gw.example.com", "/redis?x=1")
        );
        let u = GatewayUrl::parse("ws://[::1]:8080").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8080, "/")
        );
        assert_eq!(u.host_port(), "[::1]:8080");
        assert_eq!(u.authority, "[::1]:8080");
        assert!(GatewayUrl::parse("http://x/").is_err());
        assert!(GatewayUrl::parse("ws://u:p@x/").is_err());
    }

    #[test]
    fn proxy_urls_keep_their_credentials_out_of_sight() {
        let p = ProxyUrl::parse("http://al%40ce:s3cret@proxy.local:3128").unwrap();
        assert_eq!(p.address, "proxy.local:3128");
        assert_eq!(p.credentials.as_deref(), Some("al@ce:s3cret"));
        assert!(!format!("{p:?}").contains("s3cret"));
        assert_eq!(
            ProxyUrl::parse("proxy.local").unwrap().address,
            "proxy.local:80"
        );
        assert!(ProxyUrl::parse("https://proxy.local:443").is_err());
    }
}
