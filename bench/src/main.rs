//! `wsgate-bench`: the gateway's benchmark. Starts the built gateway binary as its own
//! process in front of in-process backends (sink, source, echo), measures bulk throughput,
//! echo latency, idle connections and connection churn through it (bulk, echo and idle also
//! over wss://, with certificates made at run time), and the same client logic over raw TCP
//! straight to the backend, through a plain TCP copy proxy (this binary's hidden `proxy`
//! mode) and through HAProxy in TCP mode (when installed), interleaved, in the same run;
//! for each, the CPU the middle process and the load generator spend per unit of work.
//! Writes a markdown report, and SVG charts of its medians beside it.
//! The soaks (`--only soak`) run one gateway for many minutes under a steady mixed load, or
//! thousands of idle sessions answering pings, and watch its memory, files, drops and CPU.
//!
//! ```sh
//! cargo build --release && target/release/wsgate-bench --out BENCHMARKS.md   # full run
//! target/release/wsgate-bench --only soak --out BENCHMARKS.md                # soaks, 20 min
//! target/debug/wsgate-bench --smoke --gateway target/debug/wsgate           # CI
//! ```
#![forbid(unsafe_code)]

mod backend;
mod child;
mod client;
mod cpuclock;
mod gatewaylog;
mod haproxy;
mod plan;
mod procfs;
mod proxy;
mod report;
mod results;
mod scenario;
mod scrape;
mod soak;
mod tls;
mod wsclient;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

pub use plan::Plan;
use results::{Outcome, Results};
use scenario::{Env, Scenario};
use soak::Soak;

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

    /// Only the scenarios whose name contains one of these (e.g. `bulk-up,echo-1`); the
    /// soaks (`soak-mixed`, `soak-liveness`) run only when named so (`--only soak`) or in
    /// the smoke run
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Vec<String>,

    /// Length of the mixed soak (churn, bulk and idle sessions), in minutes
    #[arg(long, default_value_t = 10.0, value_name = "MINUTES")]
    soak_minutes: f64,

    /// Length of each of the liveness soak's two holds (pinging, not pinging), in minutes
    #[arg(long, default_value_t = 5.0, value_name = "MINUTES")]
    liveness_minutes: f64,

    /// Idle sessions the liveness soak holds [default: 9500, fewer if the open-file limit
    /// does not allow them]
    #[arg(long, value_name = "N")]
    liveness_sessions: Option<usize>,

    /// Sessions the liveness soak opens per second [default: 64 at a time, as fast as
    /// they open]; its report section is then `soak-liveness-paced`
    #[arg(long, value_name = "PER_SECOND")]
    liveness_open_rate: Option<f64>,

    /// Extra environment for the gateway, e.g. `WSGATE_LIMITS__READ_BUFFER_SIZE=4KiB`
    /// (repeatable; named in the report). Without it the gateway runs its defaults.
    #[arg(long = "gateway-env", value_name = "KEY=VALUE", value_parser = parse_env)]
    gateway_env: Vec<(String, String)>,

    /// Targets to measure [default: gateway,raw,proxy, and haproxy if it is installed]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    targets: Vec<TargetArg>,

    /// Where the SVG charts go [default: docs/bench/ beside the --out file; without --out,
    /// they are drawn but not written]
    #[arg(long, value_name = "DIR")]
    charts: Option<PathBuf>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TargetArg {
    Gateway,
    Raw,
    Proxy,
    Haproxy,
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

/// A soak's outcome, with the context it ran in.
struct SoakDone {
    soak: Soak,
    ctx: report::Context,
    outcome: Result<soak::Outcome, String>,
}

async fn run_soaks(plan: &Plan, env: &Env, gateway: &std::path::Path) -> Vec<SoakDone> {
    let mut done = Vec::new();
    for &soak in &plan.soaks {
        let ctx = report::Context::now(gateway);
        eprintln!("{soak}: started");
        let limit = soak::limit(soak, &plan.soak);
        let outcome = match tokio::time::timeout(limit, soak::run(env, soak, &plan.soak)).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!("did not finish within {limit:?}")),
        };
        match &outcome {
            Ok(o) => eprintln!("{soak}: {}", o.problems().as_deref().unwrap_or("done")),
            Err(e) => eprintln!("{soak}: FAILED: {e}"),
        }
        done.push(SoakDone { soak, ctx, outcome });
    }
    done
}

/// The benchmark; `Ok(false)` if some run failed (the report says which).
fn bench(cli: &Cli) -> Result<bool> {
    let plan = plan::plan(cli)?;
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
        haproxy: plan.haproxy.clone(),
    };
    let before = report::Context::now(&cli.gateway);
    let ran = client_rt.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let everything = async {
            let results = run_all(&plan, &env).await;
            (results, run_soaks(&plan, &env, &cli.gateway).await)
        };
        // Stopping drops the run in progress, and with it (by PID) every child it started.
        tokio::select! {
            ran = everything => Ok(ran),
            _ = interrupt.recv() => Err(anyhow::anyhow!("interrupted")),
            _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
        }
    });
    client_rt.shutdown_timeout(Duration::from_secs(5));
    backend_rt.shutdown_timeout(Duration::from_secs(5));
    let (results, soaks) = ran?;
    if !plan.scenarios.is_empty() {
        // Drawn in every run (the smoke run checks that they draw), written where asked.
        let charts = report::charts::draw(&plan, &results)?;
        let links = report::charts::place(cli.charts.as_deref(), cli.out.as_deref(), &charts)?;
        if let Some(first) = links.first() {
            eprintln!("{} charts written, the first {}", links.len(), first.path);
        }
        let text = report::render(&plan, &results, &before, &links);
        println!("{text}");
        if let Some(out) = &cli.out {
            report::write(out, &text)?;
            eprintln!("report written to {}", out.display());
        }
    }
    let mut failed: Vec<String> = results
        .failures()
        .map(|o| format!("{} {} repeat {}", o.scenario, o.target.name(), o.repeat + 1))
        .collect();
    let runs = results.outcomes.len() + soaks.len();
    for done in &soaks {
        let text = soak::section(done.soak, &done.ctx, &done.outcome, plan.smoke, &plan.notes);
        println!("{text}");
        if let Some(out) = &cli.out {
            report::write_section(out, &soak::section_name(done.soak, &plan.soak), &text)?;
            eprintln!("{} written to {}", done.soak, out.display());
        }
        let problem = match &done.outcome {
            Ok(outcome) => outcome.problems(),
            Err(e) => Some(e.clone()),
        };
        if let Some(problem) = problem {
            failed.push(format!("{} ({problem})", done.soak));
        }
    }
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
