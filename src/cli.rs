//! The command line: subcommands and the flags that override config keys, and the shell
//! completions and man page generated from those same definitions.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::config::{ConfigError, ConfigFile, LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(name = "wsgate", version, about = "WebSocket-to-TCP gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// YAML config file [default: /etc/wsgate/wsgate.yaml, if it exists]
    #[arg(long, global = true, env = "WSGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on (overrides `listen`)
    #[arg(long, global = true, value_name = "IP:PORT")]
    pub listen: Option<String>,

    /// Single backend: replaces `routes` with one route at `/` to this address
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub backend: Option<String>,

    /// Log format (overrides `log.format`)
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// PEM certificate chain for wss:// (overrides `tls.cert`)
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert (overrides `tls.key`)
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Log filter, e.g. `debug` (overrides `log.level`; RUST_LOG wins over both)
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the gateway (the default)
    Serve,
    /// Validate the configuration and print a summary, without serving
    Check,
    /// Run the gateway on 127.0.0.1:8080 in front of a built-in TCP echo service
    Demo,
    /// Generate a development CA and certificates for wss:// (not for production)
    Cert(CertArgs),
    /// Carry local TCP connections over WebSocket to a gateway: `wsgate client --listen
    /// 127.0.0.1:6380 --url wss://gw.example.com/redis` (or the config's `tunnels`)
    Client(Box<ClientArgs>),
    /// Print a completion script for a shell (e.g. `wsgate completions bash > /etc/bash_completion.d/wsgate`)
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff; e.g. `wsgate man | man -l -`)
    Man {
        /// Instead, write every page (wsgate.1 and one per subcommand) into this directory
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct CertArgs {
    /// Server name or IP address the certificate is for (repeat for more)
    #[arg(long = "host", required = true, value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Also issue a client certificate with this name, for mutual TLS (repeatable)
    #[arg(long = "client", value_name = "NAME")]
    pub clients: Vec<String>,
    /// Directory to write the PEM files into
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
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
    pub fn tunnel(&self, listen: Option<&str>) -> Result<Option<serde_json::Value>, ConfigError> {
        use serde_json::{Map, Value};
        let mut t = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                t.insert(key.into(), v);
            }
        };
        let text = |s: &Option<String>| s.clone().map(Value::from);
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| Value::from(p.display().to_string()));
        put("name", text(&self.name));
        put("ca_file", path(&self.ca_file));
        put("client_cert", path(&self.client_cert));
        put("client_key", path(&self.client_key));
        put("token_file", path(&self.token_file));
        put("token_env", text(&self.token_env));
        put("origin", text(&self.origin));
        put("proxy", text(&self.proxy));
        put("connect_timeout", text(&self.connect_timeout));
        if !self.subprotocols.is_empty() {
            put("subprotocols", Some(Value::from(self.subprotocols.clone())));
        }
        let mut bad = ConfigError::default();
        let mut headers = Map::new();
        for h in &self.headers {
            match h.split_once(':') {
                Some((name, value)) => {
                    headers.insert(name.trim().into(), Value::from(value.trim()));
                }
                None => bad.push("--header", format!("{h:?} is not `Name: value`")),
            }
        }
        if !headers.is_empty() {
            put("headers", Some(Value::Object(headers)));
        }
        let mut reconnect = Map::new();
        if let Some(n) = &self.reconnect_attempts {
            let value = n
                .parse::<u64>()
                .map_or_else(|_| Value::from(n.clone()), Value::from);
            reconnect.insert("attempts".into(), value);
        }
        if let Some(d) = &self.reconnect_max_time {
            reconnect.insert("max_time".into(), Value::from(d.clone()));
        }
        if !reconnect.is_empty() {
            put("reconnect", Some(Value::Object(reconnect)));
        }
        if self.urls.is_empty() {
            if !t.is_empty() {
                bad.push(
                    "--url",
                    "required with the other tunnel flags (or use the config's tunnels)",
                );
            }
            return bad.into_result().map(|()| None);
        }
        match listen {
            Some(listen) => put("listen", Some(Value::from(listen))),
            None => bad.push(
                "--listen",
                "required with --url: the local ip:port to accept on",
            ),
        }
        put("url", Some(Value::from(self.urls.clone())));
        bad.into_result().map(|()| Some(Value::Object(t)))
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

impl Cli {
    pub fn config_file(&self) -> ConfigFile {
        ConfigFile::from_flag(self.config.clone())
    }

    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            backend: self.backend.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tunnel: None,
        }
    }
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: Shell, out: &mut impl Write) -> io::Result<()> {
    // Generated in memory first: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "wsgate", &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes the man page, in roff, to `out`.
pub fn write_man_page(out: &mut impl Write) -> io::Result<()> {
    clap_mangen::Man::new(man_command()).render(out)?;
    out.flush()
}

/// Writes `wsgate.1` and a page per subcommand (the ones `wsgate.1` refers to) into `dir`.
pub fn write_man_pages(dir: &Path) -> io::Result<()> {
    clap_mangen::generate_to(man_command(), dir)
}

/// The command as the man pages describe it: `help` is left out, as it has no page.
fn man_command() -> clap::Command {
    Cli::command().disable_help_subcommand(true)
}
