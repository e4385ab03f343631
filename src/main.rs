//! The `wsgate` binary: parse the command line, load and check the config (exit 64 on any
//! problem, before binding), set up logging, bind, and run until a signal.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use wsgate::cli::{Cli, Command};
use wsgate::config::{Config, ConfigError};
use wsgate::lifecycle::Signals;
use wsgate::{demo, logging};

/// sysexits.h EX_USAGE-adjacent EX_CONFIG is 78; 64 (EX_USAGE) is what operators'
/// tooling commonly treats as "fix your input", and is what wsgate documents.
const EXIT_BAD_CONFIG: u8 = 64;
const DEMO_LISTEN: &str = "127.0.0.1:8080";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli),
        Command::Check => check(&cli),
        Command::Demo => run_demo(&cli),
    }
}

fn load(cli: &Cli) -> Result<Config, ExitCode> {
    Config::load(&cli.config_file(), &cli.overrides()).map_err(|e| bad_config(&e))
}

fn bad_config(e: &ConfigError) -> ExitCode {
    eprint!("wsgate: {e}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

fn serve(cli: &Cli) -> ExitCode {
    let cfg = match load(cli) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    logging::init(&cfg.log);
    block_on(async move {
        let signals = install_signals()?;
        let listener = bind(&cfg).await?;
        wsgate::run(cfg, listener, signals.shutdown())
            .await
            .map_err(|e| e.to_string())
    })
}

fn check(cli: &Cli) -> ExitCode {
    let cfg = match load(cli) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    println!("configuration ok: listen {}", cfg.listen);
    for route in &cfg.routes {
        println!("  route {} -> {}", route.path, route.backend.0.join(", "));
    }
    ExitCode::SUCCESS
}

fn run_demo(cli: &Cli) -> ExitCode {
    let listen = cli
        .listen
        .clone()
        .unwrap_or_else(|| DEMO_LISTEN.to_string());
    let mut log = wsgate::config::Log::default();
    if let Some(format) = cli.log_format {
        log.format = format;
    }
    logging::init(&log);
    block_on(async move {
        let signals = install_signals()?;
        let echo = demo::spawn_echo_backend()
            .await
            .map_err(|e| format!("echo backend: {e}"))?;
        let mut cfg = Config::single_route(listen, echo.to_string());
        cfg.log = log;
        let listener = bind(&cfg).await?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        demo::print_banner(addr, echo).map_err(|e| e.to_string())?;
        wsgate::run(cfg, listener, signals.shutdown())
            .await
            .map_err(|e| e.to_string())
    })
}

fn install_signals() -> Result<Signals, String> {
    Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))
}

async fn bind(cfg: &Config) -> Result<TcpListener, String> {
    let addr = cfg.listen_addr().map_err(|e| e.to_string())?;
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
    match runtime.block_on(main_future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsgate: {e}");
            ExitCode::FAILURE
        }
    }
}
