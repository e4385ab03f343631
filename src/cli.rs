//! The command line: subcommands and the flags that override config keys, and the shell
//! completions and man page generated from those same definitions.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

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
    /// Carry local TCP connections over WebSocket to a gateway: `wsgate client --listen
    /// 127.0.0.1:6380 --url wss://gw.example.com/redis` (or the config's `tunnels`)
    ///
    /// Each connection accepted on --listen (here the local ip:port) gets its own session
    /// to --url; without --url, the config's `tunnels` run. --backend, --tls-cert and
    /// --tls-key are the gateway's and refused here.
    Client(Box<crate::client::ClientArgs>),
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
