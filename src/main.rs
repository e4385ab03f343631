//! The `wsgate` binary: parse the command line, load and check the config (exit 64 on any
//! problem, before binding), set up logging, bind, and run until a signal; SIGHUP reloads.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use wsgate::cli::{self, CertArgs, Cli, Command};
use wsgate::client::{self, Client, ClientArgs};
use wsgate::config::{Config, ConfigError, Log, Problem};
use wsgate::lifecycle::{ReloadSignal, Signals};
use wsgate::reload::{self, ConfigSource};
use wsgate::{Listeners, Server, demo, devcert, logging};

/// Exit status for an invalid configuration (EX_USAGE), documented in the README.
const EXIT_BAD_CONFIG: u8 = 64;
const DEMO_LISTEN: &str = "127.0.0.1:8080";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        None | Some(Command::Serve) => serve(&cli),
        Some(Command::Check) => check(&cli),
        Some(Command::Demo) => run_demo(&cli),
        Some(Command::Cert(args)) => cert(args),
        Some(Command::Client(args)) => client(&cli, args),
        Some(Command::Completions { shell }) => {
            print_or_fail(|out| cli::write_completions(*shell, out))
        }
        Some(Command::Man { out: None }) => print_or_fail(cli::write_man_page),
        Some(Command::Man { out: Some(dir) }) => match cli::write_man_pages(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wsgate man: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
    }
}

/// Runs `write` on stdout; a failed write (a closed pipe) is reported and exits 1.
fn print_or_fail(write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>) -> ExitCode {
    match write(&mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsgate: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn source(cli: &Cli) -> ConfigSource {
    ConfigSource {
        file: cli.config_file(),
        overrides: cli.overrides(),
    }
}

fn bad_config(e: &ConfigError) -> ExitCode {
    eprint!("wsgate: {e}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

/// Loads and fully checks the config (files it names are read), or says why not.
fn prepare(source: &ConfigSource) -> Result<(Config, Server), ExitCode> {
    let cfg = source.load().map_err(|e| bad_config(&e))?;
    let server = Server::new(cfg.clone()).map_err(|e| bad_config(&e))?;
    Ok((cfg, server))
}

fn serve(cli: &Cli) -> ExitCode {
    let source = source(cli);
    let (cfg, server) = match prepare(&source) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    if cfg.routes.is_empty() {
        return bad_config(&ConfigError {
            problems: vec![Problem {
                key: "routes".into(),
                message: "no routes: this config only has tunnels, which `wsgate client` runs"
                    .into(),
            }],
        });
    }
    logging::init(&cfg.log);
    block_on(async move {
        let (signals, hup) = install_signals()?;
        let listeners = bind(&cfg).await?;
        tokio::spawn(reload::run(server.handle(), source, hup));
        server
            .serve(listeners, signals.shutdown())
            .await
            .map_err(|e| e.to_string())
    })
}

fn check(cli: &Cli) -> ExitCode {
    let (cfg, _) = match prepare(&source(cli)) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let tunnels = if cfg.tunnels.is_empty() {
        Vec::new()
    } else {
        match Client::new(&cfg) {
            Ok(client) => client.summary(),
            Err(e) => return bad_config(&e),
        }
    };
    if cfg.routes.is_empty() {
        println!("configuration ok (tunnels only: run with `wsgate client`)");
    } else {
        println!("configuration ok: listen {}", cfg.listen);
    }
    for route in &cfg.routes {
        println!("  route {} -> {}", route.path, route.backend.0.join(", "));
    }
    for tunnel in tunnels {
        println!("  {tunnel}");
    }
    for w in cfg.warnings() {
        eprintln!("wsgate: warning: {}: {}", w.key, w.message);
    }
    ExitCode::SUCCESS
}

/// `wsgate client`: the flags' tunnel (or the config's tunnels), checked like any config.
fn client(cli: &Cli, args: &ClientArgs) -> ExitCode {
    let loaded = client::load(
        &cli.config_file(),
        cli.overrides(),
        args,
        cli.listen.as_deref(),
    );
    let (cfg, client) = match loaded {
        Ok(ready) => ready,
        Err(e) => return bad_config(&e),
    };
    logging::init(&cfg.log);
    let metrics_listen = args.metrics_listen.clone();
    block_on(async move {
        let (signals, _hup) = install_signals()?;
        let listeners = client.bind()?;
        let metrics = match &metrics_listen {
            Some(addr) => Some(listen_on(addr).await?),
            None => None,
        };
        client.serve(listeners, metrics, signals.shutdown()).await;
        Ok(())
    })
}

fn cert(args: &CertArgs) -> ExitCode {
    let written = devcert::generate(&args.hosts, &args.clients)
        .map_err(|e| e.to_string())
        .and_then(|certs| {
            certs
                .write(&args.out)
                .map_err(|e| format!("{}: {e}", args.out.display()))
        });
    match written {
        Ok(files) => {
            println!("development certificates (not for production) written:");
            for f in files {
                println!("  {f}");
            }
            println!(
                "serve with: wsgate --tls-cert {0}/server.pem --tls-key {0}/server-key.pem",
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsgate cert: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_demo(cli: &Cli) -> ExitCode {
    let listen = cli
        .listen
        .clone()
        .unwrap_or_else(|| DEMO_LISTEN.to_string());
    let mut log = Log::default();
    if let Some(format) = cli.log_format {
        log.format = format;
    }
    logging::init(&log);
    block_on(async move {
        let (signals, _hup) = install_signals()?;
        let echo = demo::spawn_echo_backend()
            .await
            .map_err(|e| format!("echo backend: {e}"))?;
        let mut cfg = Config::single_route(listen, echo.to_string());
        cfg.log = log;
        cfg.admin.listen = None;
        cfg.shutdown.delay = std::time::Duration::ZERO;
        let listeners = bind(&cfg).await?;
        let addr = listeners.main.local_addr().map_err(|e| e.to_string())?;
        demo::print_banner(addr, echo).map_err(|e| e.to_string())?;
        let server = Server::demo(cfg).map_err(|e| e.to_string())?;
        server
            .serve(listeners, signals.shutdown())
            .await
            .map_err(|e| e.to_string())
    })
}

fn install_signals() -> Result<(Signals, ReloadSignal), String> {
    Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))
}

async fn bind(cfg: &Config) -> Result<Listeners, String> {
    let main = wsgate::listener::bind(&cfg.listen, cfg.limits.listen_backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let admin = match &cfg.admin.listen {
        Some(addr) => Some(listen_on(addr).await.map_err(|e| format!("admin {e}"))?),
        None => None,
    };
    Ok(Listeners { main, admin })
}

async fn listen_on(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Runs `main_future` on a multi-threaded runtime; an error is printed and exits 1.
fn block_on(main_future: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(main_future);
    logging::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsgate: {e}");
            ExitCode::FAILURE
        }
    }
}
