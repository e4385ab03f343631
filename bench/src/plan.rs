//! What one invocation runs, from the command line: the scenarios and targets (HAProxy
//! among them where installed), their timing and repeats, the soaks and their lengths, and
//! the open-file limit they need.

use std::time::Duration;

use anyhow::{Result, bail, ensure};

use crate::haproxy::Haproxy;
use crate::procfs;
use crate::scenario::tunnel::Load;
use crate::scenario::{Scenario, Target, Timing};
use crate::soak::{self, Soak};
use crate::{Cli, TargetArg};

/// What one invocation runs.
pub struct Plan {
    pub smoke: bool,
    pub scenarios: Vec<Scenario>,
    pub targets: Vec<Target>,
    pub timing: Timing,
    /// Repeats of the bulk and echo scenarios, and of idle and churn.
    pub repeats: (usize, usize),
    pub notes: Vec<String>,
    /// The soaks, run after the scenarios.
    pub soaks: Vec<Soak>,
    pub soak: soak::Options,
    /// HAProxy, if installed and among the targets.
    pub haproxy: Option<Haproxy>,
}

/// Sessions the liveness soak holds by default.
const LIVENESS_SESSIONS: usize = 9500;
/// Sample interval of the soaks (the smoke run's is shorter).
const SOAK_SAMPLE: Duration = Duration::from_secs(10);

pub fn plan(cli: &Cli) -> Result<Plan> {
    let (idle, timing, repeats) = if cli.smoke {
        let timing = Timing {
            warmup: Duration::from_millis(20),
            window: Duration::from_millis(100),
        };
        ([20, 50, 20], timing, (1, 1))
    } else {
        let timing = Timing {
            warmup: Duration::from_millis(300),
            window: Duration::from_millis(1500),
        };
        ([1000, 9500, 9500], timing, (5, 3))
    };
    let mut notes: Vec<String> = cli
        .gateway_env
        .iter()
        .map(|(k, v)| format!("gateway run with {k}={v}"))
        .collect();
    raise_open_file_limit(&mut notes);
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
        Scenario::WssIdle(idle[2]),
        Scenario::Tunnel(Load::BulkUp, 1),
        Scenario::Tunnel(Load::BulkDown, 1),
        Scenario::Tunnel(Load::Echo, 1),
        Scenario::Tunnel(Load::Echo, 64),
    ];
    let asked = |name: String| cli.only.iter().any(|o| name.contains(o.as_str()));
    let scenarios: Vec<Scenario> = all
        .into_iter()
        .filter(|s| cli.only.is_empty() || asked(s.to_string()))
        // websocat opens 64 sessions more slowly than the smoke run's window lasts.
        .filter(|s| !cli.smoke || *s != Scenario::Tunnel(Load::Echo, 64))
        .collect();
    // The soaks take minutes: only when named, or tiny in the smoke run.
    let soaks: Vec<Soak> = Soak::ALL
        .into_iter()
        .filter(|s| {
            if cli.only.is_empty() {
                cli.smoke
            } else {
                asked(s.to_string())
            }
        })
        .collect();
    ensure!(
        !scenarios.is_empty() || !soaks.is_empty(),
        "--only matches no scenario"
    );
    let (targets, haproxy) = targets(cli, &mut notes)?;
    let window = match cli.seconds {
        Some(s) if s > 0.0 && s <= 600.0 => Duration::from_secs_f64(s),
        Some(s) => anyhow::bail!("--seconds {s}: must be above 0 and at most 600"),
        None => timing.window,
    };
    let repeats = cli
        .repeats
        .map_or(repeats, |n| (n.clamp(1, 50), n.clamp(1, 50)));
    let soak = soak_options(cli, &soaks, &mut notes)?;
    Ok(Plan {
        smoke: cli.smoke,
        scenarios,
        targets,
        timing: Timing { window, ..timing },
        repeats,
        notes,
        soaks,
        soak,
        haproxy,
    })
}

/// The targets asked for, or by default all of them, HAProxy where it is installed: its
/// absence is noted, and an error if it was asked for, or in CI's smoke run (CI installs
/// it, so missing there it is a broken install, not a choice).
fn targets(cli: &Cli, notes: &mut Vec<String>) -> Result<(Vec<Target>, Option<Haproxy>)> {
    let asked: Vec<TargetArg> = if cli.targets.is_empty() {
        vec![
            TargetArg::Gateway,
            TargetArg::Raw,
            TargetArg::Proxy,
            TargetArg::Haproxy,
        ]
    } else {
        cli.targets.clone()
    };
    let mut haproxy = None;
    if asked.contains(&TargetArg::Haproxy) {
        haproxy = Haproxy::find(&cli.gateway_env, procfs::open_file_limit());
        match &haproxy {
            Some(h) => notes.push(format!(
                "HAProxy: {} ({}), TCP mode, nbthread {} (the gateway's worker count), \
                 maxconn {}, no logging",
                h.bin.display(),
                h.version,
                h.threads,
                h.maxconn
            )),
            None => {
                let ci_smoke = cli.smoke && std::env::var_os("CI").is_some();
                notes.push(haproxy_missing(!cli.targets.is_empty(), ci_smoke)?);
            }
        }
    }
    let targets = asked
        .iter()
        .filter_map(|t| match t {
            TargetArg::Gateway => Some(Target::Gateway),
            TargetArg::Raw => Some(Target::Raw),
            TargetArg::Proxy => Some(Target::Proxy),
            TargetArg::Haproxy => haproxy.is_some().then_some(Target::Haproxy),
        })
        .collect();
    Ok((targets, haproxy))
}

/// What HAProxy's absence means: an error if it was asked for by name or the run is CI's
/// smoke run, otherwise a note for the report.
fn haproxy_missing(asked_by_name: bool, ci_smoke: bool) -> Result<String> {
    if asked_by_name {
        bail!("--targets haproxy: no haproxy binary on PATH or in /usr/sbin");
    }
    if ci_smoke {
        bail!("CI is set but haproxy is not installed (.ci/run installs it)");
    }
    Ok("HAProxy not installed: its column is left out".to_string())
}

/// The soaks' lengths and size: as asked, or a few seconds and tiny in the smoke run.
fn soak_options(cli: &Cli, soaks: &[Soak], notes: &mut Vec<String>) -> Result<soak::Options> {
    let minutes = |m: f64, flag: &str| {
        ensure!(
            m > 0.0 && m <= 24.0 * 60.0,
            "{flag} {m}: must be above 0 and at most 1440"
        );
        Ok(Duration::from_secs_f64(m * 60.0))
    };
    let (mixed, hold) = (
        minutes(cli.soak_minutes, "--soak-minutes")?,
        minutes(cli.liveness_minutes, "--liveness-minutes")?,
    );
    if let Some(rate) = cli.liveness_open_rate {
        ensure!(
            rate > 0.0 && rate.is_finite(),
            "--liveness-open-rate {rate}: must be above 0"
        );
    }
    let opts = if cli.smoke {
        soak::Options {
            smoke: true,
            mixed: Duration::from_secs(3),
            hold: Duration::from_millis(1500),
            sessions: 20,
            open_rate: cli.liveness_open_rate.map(|r| r.max(100.0)),
            every: Duration::from_millis(500),
        }
    } else {
        soak::Options {
            smoke: false,
            mixed,
            hold,
            sessions: cli.liveness_sessions.unwrap_or(LIVENESS_SESSIONS),
            open_rate: cli.liveness_open_rate,
            every: SOAK_SAMPLE,
        }
    };
    let sessions = if soaks.contains(&Soak::Liveness) {
        fit_open_files(opts.sessions, notes)
    } else {
        opts.sessions
    };
    Ok(soak::Options { sessions, ..opts })
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

/// Raises this process's soft open-file limit to its hard limit, so that the idle scenarios
/// and the liveness soak can hold thousands of connections; the gateway, started from
/// here, inherits it. Where that fails the limit stays, and the idle counts fit it.
fn raise_open_file_limit(notes: &mut Vec<String>) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current == now.maximum {
        return;
    }
    let raised = Rlimit {
        current: now.maximum,
        maximum: now.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        notes.push(format!(
            "the open-file limit could not be raised from {:?} to {:?}: {e}",
            now.current, now.maximum
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_haproxy_fails_when_named_or_in_ci_and_is_noted_otherwise() {
        assert!(haproxy_missing(true, false).is_err());
        let ci = haproxy_missing(false, true).unwrap_err().to_string();
        assert!(ci.contains("CI is set"), "{ci}");
        let note = haproxy_missing(false, false).unwrap();
        assert!(note.contains("not installed"), "{note}");
    }
}
