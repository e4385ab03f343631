//! `wsgate client`'s command line: the flags that make one tunnel, turned into the config
//! values they stand for (so they are checked like the config's `tunnels`), and problems in
//! that tunnel named after the flags that set them.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::Client;
use crate::config::{Config, ConfigError, ConfigFile, Overrides};

/// The config `wsgate client` runs: file and environment as for the gateway, with the
/// flags' tunnel (if `--url` is given; it listens on `listen`) replacing `tunnels`, and every
/// tunnel built. Every problem is named by its key, or by the flag that set it.
pub fn load(
    file: &ConfigFile,
    mut overrides: Overrides,
    args: &ClientArgs,
    listen: Option<&str>,
) -> Result<(Config, Client), ConfigError> {
    let gateway_only = [
        ("--backend", overrides.backend.is_some()),
        ("--tls-cert", overrides.tls_cert.is_some()),
        ("--tls-key", overrides.tls_key.is_some()),
    ];
    if let Some((flag, _)) = gateway_only.iter().find(|(_, given)| *given) {
        let why = "is the gateway's; wsgate client does not use it (see --url, --ca-file)";
        return Err(ConfigError::single(*flag, why));
    }
    let tunnel = args.tunnel(listen)?;
    let from_flags = tunnel.is_some();
    // Here --listen is the tunnel's local address, not the gateway's.
    overrides.listen = None;
    overrides.tunnel = tunnel;
    let loaded = Config::load(file, &overrides)
        .map_err(Client::explain)
        .and_then(|cfg| Client::new(&cfg).map(|client| (cfg, client)));
    let (cfg, client) = loaded.map_err(|e| {
        if from_flags {
            ClientArgs::name_flags(e)
        } else {
            e
        }
    })?;
    if let Some(addr) = &args.metrics_listen {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            let why = format!("{addr:?} is not an ip:port address");
            return Err(ConfigError::single("--metrics-listen", why));
        }
    }
    Ok((cfg, client))
}

/// `wsgate client`'s flags. With `--url`, they make one tunnel (listening on `--listen`)
/// that replaces the config's `tunnels`; without, the config's `tunnels` run as written.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// Gateway URL, ws:// or wss:// (repeat for failover: tried in turn)
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// Name of the tunnel in logs and metrics [default: the listen address]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// PEM CA certificates to trust instead of the system's roots
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --client-key)
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key for --client-cert
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// File holding a bearer token, sent as `Authorization: Bearer`
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Extra request header, `Name: value` (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Subprotocol to offer (repeatable, in order of preference)
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// Origin header to send
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// HTTP proxy for CONNECT, `http://[user:pass@]host:port`, or `off` [default: $https_proxy / $http_proxy]
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Time for one attempt to open a session, e.g. `10s`
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Most attempts to open one session
    #[arg(long, value_name = "N")]
    pub reconnect_attempts: Option<String>,
    /// Longest time spent opening one session, e.g. `30s`
    #[arg(long, value_name = "DURATION")]
    pub reconnect_max_time: Option<String>,
    /// Serve Prometheus counters at http://IP:PORT/metrics
    #[arg(long, value_name = "IP:PORT")]
    pub metrics_listen: Option<String>,
}

impl ClientArgs {
    /// The tunnel the flags describe, as config values, listening on `listen`; `None`
    /// without `--url`. A flag that needs `--url`, or a malformed `--header`, is an error
    /// naming the flag.
    pub fn tunnel(&self, listen: Option<&str>) -> Result<Option<Value>, ConfigError> {
        let mut bad = ConfigError::default();
        let mut t = self.fields(&mut bad);
        if self.urls.is_empty() {
            if !t.is_empty() {
                let why = "required with the other tunnel flags (or use the config's tunnels)";
                bad.push("--url", why);
            }
            return bad.into_result().map(|()| None);
        }
        match listen {
            Some(listen) => {
                t.insert("listen".into(), Value::from(listen));
            }
            None => bad.push(
                "--listen",
                "required with --url: the local ip:port to accept on",
            ),
        }
        t.insert("url".into(), Value::from(self.urls.clone()));
        bad.into_result().map(|()| Some(Value::Object(t)))
    }

    /// Every tunnel field a flag set, as the config writes it.
    fn fields(&self, bad: &mut ConfigError) -> Map<String, Value> {
        let mut t = Map::new();
        let text = |s: &Option<String>| s.clone().map(Value::from);
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| Value::from(p.display().to_string()));
        let set = [
            ("name", text(&self.name)),
            ("ca_file", path(&self.ca_file)),
            ("client_cert", path(&self.client_cert)),
            ("client_key", path(&self.client_key)),
            ("token_file", path(&self.token_file)),
            ("token_env", text(&self.token_env)),
            ("origin", text(&self.origin)),
            ("proxy", text(&self.proxy)),
            ("connect_timeout", text(&self.connect_timeout)),
            ("headers", self.headers_value(bad)),
            ("reconnect", self.reconnect_value()),
            (
                "subprotocols",
                (!self.subprotocols.is_empty()).then(|| Value::from(self.subprotocols.clone())),
            ),
        ];
        for (key, value) in set {
            if let Some(v) = value {
                t.insert(key.into(), v);
            }
        }
        t
    }

    /// `--header 'Name: value'`s as a map.
    fn headers_value(&self, bad: &mut ConfigError) -> Option<Value> {
        let mut headers = Map::new();
        for h in &self.headers {
            match h.split_once(':') {
                Some((name, value)) => {
                    headers.insert(name.trim().into(), Value::from(value.trim()));
                }
                None => bad.push("--header", format!("{h:?} is not `Name: value`")),
            }
        }
        (!headers.is_empty()).then_some(Value::Object(headers))
    }

    fn reconnect_value(&self) -> Option<Value> {
        let mut reconnect = Map::new();
        if let Some(n) = &self.reconnect_attempts {
            // A number where it is one; otherwise the text, for the error to show.
            let value = n
                .parse::<u64>()
                .map_or_else(|_| Value::from(n.clone()), Value::from);
            reconnect.insert("attempts".into(), value);
        }
        if let Some(d) = &self.reconnect_max_time {
            reconnect.insert("max_time".into(), Value::from(d.clone()));
        }
        (!reconnect.is_empty()).then_some(Value::Object(reconnect))
    }

    /// Renames the keys of problems in the tunnel the flags made (`tunnels.0.ca_file`)
    /// after the flags that set them (`--ca-file`).
    pub fn name_flags(e: ConfigError) -> ConfigError {
        let problems = e
            .problems
            .into_iter()
            .map(|mut p| {
                if let Some(field) = p.key.strip_prefix("tunnels.0.") {
                    let flag = match field.split('.').next().unwrap_or(field) {
                        "url" => "url".to_string(),
                        "headers" => "header".into(),
                        "subprotocols" => "subprotocol".into(),
                        "reconnect" => {
                            format!("reconnect-{}", field.rsplit('.').next().unwrap_or(field))
                        }
                        other => other.to_string(),
                    };
                    p.key = format!("--{}", flag.replace('_', "-"));
                }
                p
            })
            .collect();
        ConfigError { problems }
    }
}
