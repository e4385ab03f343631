//! One route: the path clients ask for, the backend it leads to, and the per-route rules
//! (framing, subprotocols, origins, authentication).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units;

/// Prefix of a `Sec-WebSocket-Protocol` entry that carries a credential (browsers cannot
/// set headers on a WebSocket); such an entry is never a route's subprotocol.
pub(crate) const SUBPROTOCOL_PREFIX: &str = "bearer.";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Request path, matched exactly (the query string is ignored).
    pub path: String,
    /// One `host:port` or a list, tried in order until one connects.
    pub backend: BackendList,
    /// How backend bytes are framed towards the client.
    #[serde(default)]
    pub message_type: MessageType,
    /// Whether client text messages are forwarded (true) or refused with close 1003.
    #[serde(default = "accept_text_default")]
    pub accept_text: bool,
    /// WebSocket subprotocols this route speaks (noVNC asks for `binary`). When the list is
    /// not empty, a client must offer one of them (else 400) and the first it offers that
    /// is listed is echoed in the 101. When empty, offers are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subprotocols: Vec<String>,
    /// Allowed origins for this route; when set, replaces the top-level `origins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origins: Option<Vec<String>>,
    /// Send a PROXY protocol v2 header carrying the client's address to the backend first.
    #[serde(default)]
    pub backend_proxy_protocol: bool,
    /// Client certificate names (subject CN or DNS SANs) allowed on this route; needs
    /// `tls.client_ca`. Empty: any certificate the CA signed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_names: Vec<String>,
    /// Who may open a session on this route.
    #[serde(default)]
    pub auth: AuthMode,
    /// Query parameter that may carry the credential (for browsers, which cannot set
    /// `Authorization` on a WebSocket).
    #[serde(default = "auth_query_param_default")]
    pub auth_query_param: String,
    /// Accepted tokens, for `auth: token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSource>,
    /// JWT verification settings, for `auth: jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// Overrides the top-level `connect_timeout` for this route.
    #[serde(
        default,
        with = "units::optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
}

fn accept_text_default() -> bool {
    true
}

fn auth_query_param_default() -> String {
    "token".into()
}

impl Route {
    /// A binary route at `path` to one backend, with every other setting at its default.
    pub fn new(path: impl Into<String>, backend: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            backend: BackendList(vec![backend.into()]),
            message_type: MessageType::default(),
            accept_text: accept_text_default(),
            subprotocols: Vec::new(),
            origins: None,
            backend_proxy_protocol: false,
            client_names: Vec::new(),
            auth: AuthMode::None,
            auth_query_param: auth_query_param_default(),
            tokens: None,
            jwt: None,
            connect_timeout: None,
        }
    }
}

/// One backend address or several, written as a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendList(pub Vec<String>);

impl<'de> Deserialize<'de> for BackendList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a \"host:port\" address or a list of them")]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(one) => Self(vec![one]),
            OneOrMany::Many(many) => Self(many),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    /// Backend bytes go to the client as binary messages.
    #[default]
    Binary,
    /// Backend bytes go to the client as text messages, split on UTF-8 character boundaries;
    /// invalid UTF-8 from the backend closes the session with 1011.
    Text,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anyone who passes the other checks.
    #[default]
    None,
    /// A bearer token from a fixed set (`tokens`).
    Token,
    /// A signed JWT (`jwt`).
    Jwt,
}

/// Where accepted tokens come from: a file (one per line, `#` comments) and/or an
/// environment variable (comma-separated). Both are re-read when the config is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    /// The HMAC secret (HS256) or the PEM public key (RS256, ES256).
    pub key_file: PathBuf,
    /// Required `aud` claim, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Required `iss` claim, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "jwt_leeway_default", with = "units::duration")]
    pub leeway: Duration,
}

fn jwt_leeway_default() -> Duration {
    Duration::from_secs(30)
}
