//! The scenarios and what they share: the targets (the gateway, raw TCP straight to the
//! backend, the copy proxy, HAProxy in TCP mode), the setup of one measured run (a fresh
//! backend and a fresh middle process), the measuring window, and the figures a run yields,
//! CPU per unit of work among them.

mod bulk;
mod churn;
pub mod echo;
pub mod idle;
pub mod tunnel;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::runtime::Handle;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

use crate::backend::{Backend, Kind};
use crate::child::Middle;
use crate::client::Proto;
use crate::gatewaylog::GatewayLog;
use crate::haproxy::Haproxy;
use crate::procfs::{self, CpuSnap, CpuUse};
use crate::tls::Tls;

/// How long a run may take beyond its planned duration before it is called hung.
const RUN_SLACK: Duration = Duration::from_secs(60);
/// How long the load's tasks may take to stop once told to.
const STOP_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The gateway serving ws://.
    Gateway,
    Raw,
    Proxy,
    /// HAProxy in TCP mode (see [`crate::haproxy`]).
    Haproxy,
    /// The gateway serving wss:// (the wss scenarios only).
    Wss,
    /// `wsgate client` in front of the gateway (the tunnel scenarios only).
    Tunnel,
    /// websocat in front of the gateway (the tunnel scenarios only).
    Websocat,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Gateway => "gateway",
            Target::Raw => "raw TCP",
            Target::Proxy => "copy proxy",
            Target::Haproxy => "HAProxy",
            Target::Wss => "gateway wss",
            Target::Tunnel => "wsgate client chain",
            Target::Websocat => "websocat chain",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Bulk client->backend over this many connections.
    BulkUp(usize),
    /// Bulk backend->client over this many connections.
    BulkDown(usize),
    /// 32-byte echo round trips, closed loop, over this many connections.
    Echo(usize),
    /// This many idle connections, each verified by one echo.
    Idle(usize),
    /// Connect, one echo, close, by this many workers.
    Churn(usize),
    /// [`Scenario::BulkUp`] over wss://.
    WssBulkUp(usize),
    /// [`Scenario::BulkDown`] over wss://.
    WssBulkDown(usize),
    /// [`Scenario::Echo`] over wss://.
    WssEcho(usize),
    /// [`Scenario::Idle`] over wss://.
    WssIdle(usize),
    /// A load through `wsgate client` and the gateway (see [`tunnel`]).
    Tunnel(tunnel::Load, usize),
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::BulkUp(n) => write!(f, "bulk-up-{n}"),
            Scenario::BulkDown(n) => write!(f, "bulk-down-{n}"),
            Scenario::Echo(n) => write!(f, "echo-{n}"),
            Scenario::Idle(n) => write!(f, "idle-{n}"),
            Scenario::Churn(n) => write!(f, "churn-{n}"),
            Scenario::WssBulkUp(n) => write!(f, "wss-bulk-up-{n}"),
            Scenario::WssBulkDown(n) => write!(f, "wss-bulk-down-{n}"),
            Scenario::WssEcho(n) => write!(f, "wss-echo-{n}"),
            Scenario::WssIdle(n) => write!(f, "wss-idle-{n}"),
            Scenario::Tunnel(load, n) => f.write_str(&tunnel::name(*load, *n)),
        }
    }
}

impl Scenario {
    fn backend(self) -> Kind {
        match self {
            Scenario::BulkUp(_) | Scenario::WssBulkUp(_) => Kind::Sink,
            Scenario::BulkDown(_) | Scenario::WssBulkDown(_) => Kind::Source,
            Scenario::Echo(_)
            | Scenario::Idle(_)
            | Scenario::Churn(_)
            | Scenario::WssEcho(_)
            | Scenario::WssIdle(_) => Kind::Echo,
            Scenario::Tunnel(load, _) => tunnel::backend(load),
        }
    }

    /// Whether the gateway is measured serving wss://.
    pub fn tls(self) -> bool {
        matches!(
            self,
            Scenario::WssBulkUp(_)
                | Scenario::WssBulkDown(_)
                | Scenario::WssEcho(_)
                | Scenario::WssIdle(_)
        )
    }

    /// The targets this scenario can measure, in the report's column order: the one
    /// measured first, the others its baselines: wss against ws and raw TCP, otherwise the
    /// gateway against raw TCP, the copy proxy and HAProxy.
    pub fn columns(self) -> &'static [Target] {
        if let Scenario::Tunnel(..) = self {
            &tunnel::COLUMNS
        } else if self.tls() {
            &[Target::Wss, Target::Gateway, Target::Raw]
        } else {
            &[Target::Gateway, Target::Raw, Target::Proxy, Target::Haproxy]
        }
    }

    /// Which targets a run of this scenario measures, of those asked for, in column order:
    /// a wss scenario always measures wss, and of the others the gateway (ws) and raw TCP.
    pub fn targets(self, asked: &[Target]) -> Vec<Target> {
        self.columns()
            .iter()
            .copied()
            .filter(|t| {
                asked.contains(t)
                    || (self.tls() && *t == Target::Wss)
                    || tunnel::always_measured(self, *t)
            })
            .collect()
    }

    /// The unit of work its CPU is counted per, and the factor from CPU seconds per unit
    /// to the figure shown (µs per round trip, cycle or connection; core-seconds per GB).
    pub fn work_unit(self) -> (&'static str, f64) {
        match self {
            Scenario::BulkUp(_)
            | Scenario::BulkDown(_)
            | Scenario::WssBulkUp(_)
            | Scenario::WssBulkDown(_) => ("core-seconds per GB", 1.0),
            Scenario::Echo(_) | Scenario::WssEcho(_) => ("µs per round trip", 1e6),
            Scenario::Churn(_) => ("µs per connect-echo-close cycle", 1e6),
            Scenario::Idle(_) | Scenario::WssIdle(_) => ("µs per connection opened", 1e6),
            Scenario::Tunnel(load, n) => tunnel::plain(load, n).work_unit(),
        }
    }
}

/// Figures a run can yield.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Payload megabytes (10^6 bytes) per second where they arrive.
    MegabytesPerSec,
    P50Micros,
    P99Micros,
    P999Micros,
    MessagesPerSec,
    /// Connections established (connect + upgrade) per second.
    ConnsPerSec,
    /// Middle process RSS growth per idle connection.
    KibPerConn,
    CyclesPerSec,
    /// The middle process's CPU per unit of work ([`Scenario::work_unit`]).
    MiddleCpuPerUnit,
    /// The load generator's CPU per unit of work.
    ClientCpuPerUnit,
    FdsBefore,
    FdsAfter,
    /// Time for the middle process's open files to return to their count before churn.
    FdsBackMillis,
    /// SYNs retransmitted machine-wide during the run: each one is a connect that waited a
    /// second for a full accept queue.
    SynRetransmits,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub values: Vec<(Metric, f64)>,
    /// CPU use while the load ran.
    pub cpu: CpuUse,
    /// Units of work done meanwhile (round trips, cycles, connections opened, GB moved),
    /// which the CPU is divided by.
    pub work: f64,
}

impl Measured {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.values
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, v)| *v)
    }
}

/// Length of the measuring window, after a warm-up the figures leave out.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub window: Duration,
}

/// Where the benchmark finds what it runs.
pub struct Env {
    pub backend_rt: Handle,
    pub gateway: PathBuf,
    /// Extra environment for the gateway (config overrides to try).
    pub gateway_env: Vec<(String, String)>,
    pub self_exe: PathBuf,
    /// Certificates for wss, if a wss scenario is planned.
    pub tls: Option<Tls>,
    /// HAProxy, if it is installed.
    pub haproxy: Option<Haproxy>,
}

/// One measured run's processes: a fresh backend, and unless the target is raw TCP, the
/// middle process in front of it. Both end when this is finished or dropped.
pub struct Setup {
    backend: Backend,
    middle: Option<Middle>,
    pub addr: SocketAddr,
    pub proto: Proto,
}

impl Setup {
    /// A fresh `kind` backend and `target` in front of it; a gateway also gets `extra`
    /// environment (before `--gateway-env`, which has the last word).
    pub async fn start(
        env: &Env,
        target: Target,
        kind: Kind,
        extra: &[(String, String)],
    ) -> Result<Self> {
        let backend = Backend::start(&env.backend_rt, kind).await?;
        let gateway_env: Vec<(String, String)> =
            extra.iter().chain(&env.gateway_env).cloned().collect();
        let (middle, proto) = match target {
            Target::Gateway => {
                let gateway = Middle::gateway(&env.gateway, &gateway_env, None, backend.addr);
                (Some(gateway.await?), Proto::Ws)
            }
            Target::Wss => {
                let tls = env.tls.as_ref().context("no certificates for wss")?;
                let files = Some((tls.cert.as_path(), tls.key.as_path()));
                let gateway = Middle::gateway(&env.gateway, &gateway_env, files, backend.addr);
                (Some(gateway.await?), Proto::Wss(tls.client.clone()))
            }
            Target::Proxy => (
                Some(Middle::proxy(&env.self_exe, backend.addr).await?),
                Proto::Raw,
            ),
            Target::Haproxy => {
                let haproxy = env.haproxy.as_ref().context("HAProxy is not installed")?;
                (
                    Some(Middle::haproxy(haproxy, backend.addr).await?),
                    Proto::Raw,
                )
            }
            Target::Raw => (None, Proto::Raw),
            Target::Tunnel | Target::Websocat => {
                anyhow::bail!("the tunnel chains are started by scenario::tunnel")
            }
        };
        Ok(Self {
            addr: middle.as_ref().map_or(backend.addr, |m| m.addr),
            backend,
            middle,
            proto,
        })
    }

    /// The middle process, whose CPU, memory and files are measured.
    pub fn pid(&self) -> Option<u32> {
        self.middle.as_ref().map(|m| m.pid)
    }

    /// The gateway's admin listener, if it was started with one.
    pub fn admin(&self) -> Option<SocketAddr> {
        self.middle.as_ref().and_then(|m| m.admin)
    }

    /// What the gateway's log has said about sessions (empty for the other targets).
    pub fn gateway_log(&self) -> GatewayLog {
        self.middle
            .as_ref()
            .map(|m| m.log.clone())
            .unwrap_or_default()
    }

    /// Bytes the backend's sinks have received.
    pub fn received(&self) -> Arc<AtomicU64> {
        self.backend.received.clone()
    }

    /// Ends the middle process (its connections close), then the backend.
    pub async fn finish(self) -> Result<()> {
        drop(self.middle); // killed and reaped: its connections close
        self.backend.stop().await
    }
}

/// Runs `scenario` once against `target`, each process fresh, within a time bound.
pub async fn measure(
    env: &Env,
    scenario: Scenario,
    target: Target,
    timing: Timing,
) -> Result<Measured> {
    if let Scenario::Tunnel(load, n) = scenario {
        return tunnel::measure(env, load, n, target, timing).await;
    }
    let retrans_before = procfs::tcp_ext("TCPSynRetrans");
    let setup = Setup::start(env, target, scenario.backend(), &[]).await?;
    let limit = timing.warmup + timing.window + RUN_SLACK;
    let run = async {
        match scenario {
            Scenario::BulkUp(n) | Scenario::WssBulkUp(n) => bulk::up(&setup, n, timing).await,
            Scenario::BulkDown(n) | Scenario::WssBulkDown(n) => bulk::down(&setup, n, timing).await,
            Scenario::Echo(n) | Scenario::WssEcho(n) => echo::run(&setup, n, timing).await,
            Scenario::Idle(n) | Scenario::WssIdle(n) => idle::run(&setup, n).await,
            Scenario::Churn(n) => churn::run(&setup, n, timing).await,
            Scenario::Tunnel(..) => Err(anyhow::anyhow!("measured by scenario::tunnel")),
        }
    };
    let measured = timeout(limit, run).await;
    let finished = setup.finish().await;
    let mut measured =
        measured.with_context(|| format!("{scenario} did not finish within {limit:?}"))??;
    finished?;
    per_unit(scenario, &mut measured);
    if let (Some(before), Some(after)) = (retrans_before, procfs::tcp_ext("TCPSynRetrans")) {
        let retransmits = after.saturating_sub(before) as f64;
        measured.values.push((Metric::SynRetransmits, retransmits));
    }
    Ok(measured)
}

/// Adds the CPU per unit of work of the middle process and of the load generator.
fn per_unit(scenario: Scenario, measured: &mut Measured) {
    if measured.work <= 0.0 {
        return;
    }
    let (_, scale) = scenario.work_unit();
    let cpu = measured.cpu;
    let per_unit = |percent: f64| cpu.seconds(percent) / measured.work * scale;
    if let Some(middle) = cpu.middle {
        measured
            .values
            .push((Metric::MiddleCpuPerUnit, per_unit(middle)));
    }
    let clients = per_unit(cpu.clients);
    measured.values.push((Metric::ClientCpuPerUnit, clients));
}

/// What the measuring window saw.
struct Window {
    cpu: CpuUse,
    secs: f64,
    /// Growth of the gauge over the window.
    count: u64,
}

/// Waits out the warm-up, then measures `gauge` and CPU over the window, during which
/// `measuring` (if given) is set.
async fn window(
    timing: Timing,
    pid: Option<u32>,
    gauge: impl Fn() -> u64,
    measuring: Option<&AtomicBool>,
) -> Window {
    sleep(timing.warmup).await;
    let (before, cpu_before) = (gauge(), CpuSnap::take(pid));
    measuring.inspect(|m| m.store(true, Ordering::Relaxed));
    sleep(timing.window).await;
    measuring.inspect(|m| m.store(false, Ordering::Relaxed));
    let (after, cpu_after) = (gauge(), CpuSnap::take(pid));
    Window {
        cpu: cpu_after.since(&cpu_before),
        secs: cpu_after.at().duration_since(cpu_before.at()).as_secs_f64(),
        count: after.saturating_sub(before),
    }
}

/// Waits for every task of the load (told to stop) and returns their results, or the first
/// error one of them met.
async fn join_all<T: 'static>(mut tasks: JoinSet<Result<T>>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(tasks.len());
    let joined = timeout(STOP_PATIENCE, async {
        while let Some(done) = tasks.join_next().await {
            out.push(done.context("a load task panicked")??);
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    joined.context("the load did not stop in time")??;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wss_scenarios_measure_wss_against_ws_and_raw_tcp() {
        let all = [Target::Gateway, Target::Raw, Target::Proxy, Target::Haproxy];
        assert_eq!(
            Scenario::WssBulkUp(1).targets(&all),
            [Target::Wss, Target::Gateway, Target::Raw]
        );
        assert_eq!(
            Scenario::WssEcho(1).targets(&[Target::Raw]),
            [Target::Wss, Target::Raw]
        );
        assert_eq!(Scenario::BulkUp(1).targets(&all), all);
        assert_eq!(
            Scenario::Echo(1).targets(&[Target::Haproxy, Target::Gateway]),
            [Target::Gateway, Target::Haproxy]
        );
        assert_eq!(Scenario::WssIdle(1000).to_string(), "wss-idle-1000");
        assert_eq!(Scenario::WssBulkDown(1).to_string(), "wss-bulk-down-1");
    }
}
