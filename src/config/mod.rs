//! The typed configuration: its keys and defaults, and how the layers are stacked
//! (defaults < YAML file < `WSGATE_*` environment < command line).
//!
//! Loading never binds a socket; every problem found (unknown key, bad value, inconsistent
//! values) is reported at once with its dotted key, see [`ConfigError`].

mod env;
mod error;
mod extract;
pub mod units;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Yaml};
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Problem};
pub use units::ByteSize;

/// Where the binary looks for a config file when `--config` is not given; a missing file
/// there is not an error.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/wsgate/wsgate.yaml";

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
    pub limits: Limits,
    pub liveness: Liveness,
    pub shutdown: Shutdown,
    pub log: Log,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            connect_timeout: Duration::from_secs(5),
            routes: Vec::new(),
            limits: Limits::default(),
            liveness: Liveness::default(),
            shutdown: Shutdown::default(),
            log: Log::default(),
        }
    }
}

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

impl Route {
    /// A binary route at `path` to one backend, with every other setting at its default.
    pub fn new(path: impl Into<String>, backend: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            backend: BackendList(vec![backend.into()]),
            message_type: MessageType::default(),
            accept_text: accept_text_default(),
            subprotocols: Vec::new(),
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest client message (all fragments together); larger closes with 1009.
    pub max_message_size: ByteSize,
    /// Largest single client frame payload; larger closes with 1009.
    pub max_frame_size: ByteSize,
    /// Bytes the WebSocket reader asks the client socket for at a time (its buffer size).
    pub read_buffer_size: ByteSize,
    /// Most bytes read from the backend at once, so the largest message sent to the client.
    pub backend_read_size: ByteSize,
    /// Time a client has to send complete request headers.
    #[serde(with = "units::duration")]
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: ByteSize::mib(1),
            max_frame_size: ByteSize::mib(1),
            read_buffer_size: ByteSize::kib(8),
            backend_read_size: ByteSize::kib(64),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Liveness {
    /// How often the gateway pings each client.
    #[serde(with = "units::duration")]
    pub ping_interval: Duration,
    /// How long a client may stay silent after a ping before it is dropped.
    #[serde(with = "units::duration")]
    pub pong_timeout: Duration,
    /// Close sessions with no data either way for this long (close 1000 "idle"); off by default.
    #[serde(with = "units::optional_duration")]
    pub idle_timeout: Option<Duration>,
    /// How long the close handshake may take before the TCP connection is dropped.
    #[serde(with = "units::duration")]
    pub close_timeout: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// How long open sessions get to close after a shutdown signal before they are dropped.
    #[serde(with = "units::duration")]
    pub grace: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `wsgate=debug,hyper=warn`. `RUST_LOG` wins if set.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Values given on the command line; each one set wins over every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    /// `--backend ADDR`: replaces the routes with a single route at `/`.
    pub backend: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
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
    pub fn from_flag(flag: Option<PathBuf>) -> Self {
        match flag {
            Some(path) => Self::Explicit(path),
            None => Self::Default(PathBuf::from(DEFAULT_CONFIG_PATH)),
        }
    }
}

impl Config {
    /// Stacks the layers, extracts and validates; every problem is in the error.
    pub fn load(file: &ConfigFile, overrides: &Overrides) -> Result<Self, ConfigError> {
        let figment = Self::figment(file, overrides)?;
        let cfg: Self = figment
            .extract()
            .map_err(|_| extract::every_problem(&figment))?;
        cfg.validate()?;
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

    /// The listen address, parsed (validation has checked it).
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::single("listen", format!("{:?} is not host:port", self.listen))
        })
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
    if let Some(level) = &o.log_level {
        figment = figment.merge(Serialized::default("log.level", level));
    }
    figment
}
