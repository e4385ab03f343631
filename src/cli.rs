//! The command line: subcommands and the flags that override config keys.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{ConfigFile, LogFormat, Overrides};

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
        }
    }
}
