//! `wsgate-bench`: the gateway's benchmark. Starts the built gateway binary as its own
//! process in front of in-process backends (sink, source, echo), measures bulk throughput,
//! echo latency, idle connections and connection churn through it (bulk and echo also over
//! wss://, with certificates made at run time), and the same client
//! logic over raw TCP straight to the backend and through a plain TCP copy proxy (this
//! binary's hidden `proxy` mode), interleaved, in the same run. Writes a markdown report.
//!
//! ```sh
//! cargo build --release && target/release/wsgate-bench --out BENCHMARKS.md   # full run
//! target/debug/wsgate-bench --smoke --gateway target/debug/wsgate           # CI
//! ```
#![forbid(unsafe_code)]

mod backend;
mod child;
mod client;
mod procfs;
mod proxy;
mod report;
mod results;
mod scenario;
mod tls;
mod wsclient;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

use results::{Outcome, Results};
use scenario::{Env, Scenario, Target, Timing};

#[derive(Debug, Parser)]
#[command(
    name = "wsgate-bench",
    about = "Benchmark of the wsgate gateway against raw TCP and a copy proxy"
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,

    /// The gateway binary to measure (built beforehand: `cargo build --release`)
    #[arg(long, default_value = "target/release/wsgate", value_name = "PATH")]
    gateway: PathBuf,

    /// Write the report to FILE; if FILE has the lines `<!-- bench:begin -->` and
    /// `<!-- bench:end -->`, only what is between them is replaced
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// A few seconds in all, every scenario tiny: checks that each one runs (for CI); the
    /// figures mean nothing
    #[arg(long)]
    smoke: bool,

    /// Repeats of each scenario per target [default: 5; idle and churn 3; smoke 1]
    #[arg(long, value_name = "N")]
    repeats: Option<usize>,

    /// Measuring window of the bulk, echo and churn scenarios, in seconds [default: 1.5]
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<f64>,

    /// Only the scenarios whose name contains one of these (e.g. `bulk-up,echo-1`)
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Vec<String>,

    /// Extra environment for the gateway, e.g. `WSGATE_LIMITS__READ_BUFFER_SIZE=4KiB`
    /// (repeatable; named in the report). Without it the gateway runs its defaults.
    #[arg(long = "gateway-env", value_name = "KEY=VALUE", value_parser = parse_env)]
    gateway_env: Vec<(String, String)>,

    /// Targets to measure
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gateway,raw,proxy",
        value_name = "LIST"
    )]
    targets: Vec<TargetArg>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TargetArg {
    Gateway,
    Raw,
    Proxy,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// The plain TCP copy proxy the benchmark starts as a baseline
    #[command(hide = true)]
    Proxy {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long)]
        backend: SocketAddr,
    },
}

/// What one invocation runs.
pub struct Plan {
    pub smoke: bool,
    pub scenarios: Vec<Scenario>,
    pub targets: Vec<Target>,
    pub timing: Timing,
    /// Repeats of the bulk and echo scenarios, and of idle and churn.
    pub repeats: (usize, usize),
    pub notes: Vec<String>,
}

fn plan(cli: &Cli) -> Result<Plan> {
    let (idle, timing, repeats) = if cli.smoke {
        let timing = Timing {
            warmup: Duration::from_millis(20),
            window: Duration::from_millis(100),
        };
        ([20, 50], timing, (1, 1))
    } else {
        let timing = Timing {
            warmup: Duration::from_millis(300),
            window: Duration::from_millis(1500),
        };
        ([1000, 9500], timing, (5, 3))
    };
    let mut notes: Vec<String> = cli
        .gateway_env
        .iter()
        .map(|(k, v)| format!("gateway run with {k}={v}"))
        .collect();
    let idle = idle.map(|n| fit_open_files(n, &mut notes));
    let all = [
        Scenario::BulkUp(1),
        Scenario::BulkUp(8),
        Scenario::BulkDown(1),
        Scenario::BulkDown(8),
        Scenario::Echo(1),
        Scenario::Echo(64),
        Scenario::Idle(idle[0]),
        Scenario::Idle(idle[1]),
        Scenario::Churn(16),
        Scenario::WssBulkUp(1),
        Scenario::WssBulkDown(1),
        Scenario::WssEcho(1),
    ];
    let scenarios: Vec<Scenario> = all
        .into_iter()
        .filter(|s| {
            cli.only.is_empty() || cli.only.iter().any(|o| s.to_string().contains(o.as_str()))
        })
        .collect();
    ensure!(!scenarios.is_empty(), "--only matches no scenario");
    let targets: Vec<Target> = cli
        .targets
        .iter()
        .map(|t| match t {
            TargetArg::Gateway => Target::Gateway,
            TargetArg::Raw => Target::Raw,
            TargetArg::Proxy => Target::Proxy,
        })
        .collect();
    let window = match cli.seconds {
        Some(s) if s > 0.0 && s <= 600.0 => Duration::from_secs_f64(s),
        Some(s) => anyhow::bail!("--seconds {s}: must be above 0 and at most 600"),
        None => timing.window,
    };
    let repeats = cli
        .repeats
        .map_or(repeats, |n| (n.clamp(1, 50), n.clamp(1, 50)));
    Ok(Plan {
        smoke: cli.smoke,
        scenarios,
        targets,
        timing: Timing { window, ..timing },
        repeats,
        notes,
    })
}

/// Each idle connection takes two files here (client and backend ends): fewer connections
/// than asked if the open-file limit would not allow them.
fn fit_open_files(n: usize, notes: &mut Vec<String>) -> usize {
    let Some(limit) = procfs::open_file_limit() else {
        return n;
    };
    let fits = (limit.saturating_sub(200) / 2) as usize;
    if n <= fits {
        return n;
    }
    notes.push(format!(
        "idle: {n} connections need about {} open files here, the limit is {limit}: measured {fits}",
        2 * n + 200
    ));
    fits
}

async fn run_all(plan: &Plan, env: &Env) -> Results {
    let mut results = Results::default();
    for &scenario in &plan.scenarios {
        let repeats = match scenario {
            Scenario::Idle(_) | Scenario::Churn(_) => plan.repeats.1,
            _ => plan.repeats.0,
        };
        for repeat in 0..repeats {
            for target in scenario.targets(&plan.targets) {
                let result = scenario::measure(env, scenario, target, plan.timing).await;
                let shown = match &result {
                    Ok(m) => m
                        .values
                        .iter()
                        .map(|(k, v)| format!("{k:?} {v:.1}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(e) => format!("FAILED: {e:#}"),
                };
                eprintln!(
                    "{scenario} {}/{repeats} {}: {shown}",
                    repeat + 1,
                    target.name()
                );
                results.outcomes.push(Outcome {
                    scenario,
                    target,
                    repeat,
                    result: result.map_err(|e| format!("{e:#}")),
                });
            }
        }
    }
    results
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.mode {
        Some(Mode::Proxy { listen, backend }) => proxy::run(listen, *backend).map(|()| true),
        None => bench(&cli),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wsgate-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The benchmark; `Ok(false)` if some run failed (the report says which).
fn bench(cli: &Cli) -> Result<bool> {
    let plan = plan(cli)?;
    ensure!(
        cli.gateway.is_file(),
        "no gateway binary at {} (build it first: cargo build --release, or pass --gateway PATH)",
        cli.gateway.display()
    );
    let backend_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name(procfs::BACKEND_THREADS)
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let env = Env {
        backend_rt: backend_rt.handle().clone(),
        gateway: cli.gateway.clone(),
        gateway_env: cli.gateway_env.clone(),
        self_exe: std::env::current_exe().context("cannot find this binary's path")?,
        tls: if plan.scenarios.iter().any(|s| s.tls()) {
            Some(tls::Tls::make()?)
        } else {
            None
        },
    };
    let before = report::Context::now(&cli.gateway);
    let ran = client_rt.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        // Stopping drops the run in progress, and with it (by PID) every child it started.
        tokio::select! {
            results = run_all(&plan, &env) => Ok(results),
            _ = interrupt.recv() => Err(anyhow::anyhow!("interrupted")),
            _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
        }
    });
    client_rt.shutdown_timeout(Duration::from_secs(5));
    backend_rt.shutdown_timeout(Duration::from_secs(5));
    let results = ran?;
    let text = report::render(&plan, &results, &before);
    println!("{text}");
    if let Some(out) = &cli.out {
        report::write(out, &text)?;
        eprintln!("report written to {}", out.display());
    }
    let runs = results.outcomes.len();
    let failed: Vec<String> = results
        .failures()
        .map(|o| format!("{} {} repeat {}", o.scenario, o.target.name(), o.repeat + 1))
        .collect();
    if !failed.is_empty() {
        eprintln!("wsgate-bench: failed: {}", failed.join(", "));
    }
    eprintln!(
        "runs: {} passed, {} failed",
        runs - failed.len(),
        failed.len()
    );
    Ok(failed.is_empty())
}
