//! The soaks: long runs against one gateway, watched over time rather than measured in a
//! short window. `soak-mixed` holds a steady mix of churn, bulk and idle sessions and
//! samples the gateway's memory and open files, to show whether either grows;
//! `soak-liveness` holds thousands of idle sessions that answer pings, pinged and then
//! not, to show that none is dropped and what liveness costs. Each has its own section of
//! the report. Not part of the default full run (they take minutes), but of `--smoke`.

mod liveness;
mod load;
mod mixed;
mod render;
mod series;
mod sessions;

use std::fmt;
use std::time::Duration;

use anyhow::Result;

use crate::scenario::Env;

pub use render::section;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Soak {
    Mixed,
    Liveness,
}

impl fmt::Display for Soak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Soak::Mixed => "soak-mixed",
            Soak::Liveness => "soak-liveness",
        })
    }
}

impl Soak {
    pub const ALL: [Soak; 2] = [Soak::Mixed, Soak::Liveness];
}

/// How long and how large the soaks are.
#[derive(Debug, Clone)]
pub struct Options {
    pub smoke: bool,
    /// Length of the mixed soak.
    pub mixed: Duration,
    /// Length of each of the liveness soak's two holds.
    pub hold: Duration,
    /// Idle sessions of the liveness soak.
    pub sessions: usize,
    /// Sessions the liveness soak opens per second; `None`: 64 at a time, as fast as
    /// they open.
    pub open_rate: Option<f64>,
    /// Time between samples.
    pub every: Duration,
}

/// What a soak yielded.
pub enum Outcome {
    Mixed(Box<mixed::Run>),
    Liveness(Box<liveness::Run>),
}

impl Outcome {
    /// What went wrong (sessions failed or dropped): the run then counts as failed.
    pub fn problems(&self) -> Option<String> {
        match self {
            Outcome::Mixed(run) => load::describe(&run.failures),
            Outcome::Liveness(run) => (run.lost() > 0).then(|| {
                format!(
                    "{} of {} sessions lost (pinging: {} dropped, {} not answering after; \
                     quiet: {} dropped, {} not answering after); first drop: {}",
                    run.lost(),
                    2 * run.sessions,
                    run.pinging.dropped,
                    run.pinging.opened - run.pinging.dropped - run.pinging.verified,
                    run.quiet.dropped,
                    run.quiet.opened - run.quiet.dropped - run.quiet.verified,
                    [&run.pinging, &run.quiet]
                        .iter()
                        .find_map(|h| h.first_drop.clone())
                        .unwrap_or_else(|| "none".into())
                )
            }),
        }
    }
}

/// How long `soak` may take in all before it is called hung: its planned length plus
/// generous room for opening and closing its sessions on a busy machine.
pub fn limit(soak: Soak, opts: &Options) -> Duration {
    let slack = Duration::from_secs(300);
    match soak {
        Soak::Mixed => opts.mixed + slack,
        Soak::Liveness => {
            let opening = opts.open_rate.map_or(Duration::ZERO, |rate| {
                Duration::from_secs_f64(opts.sessions as f64 / rate)
            });
            2 * (opening + opts.hold + slack)
        }
    }
}

/// The name of `soak`'s section in the report file: the liveness soak with paced opening
/// has its own, beside the one that opens its sessions all at once.
pub fn section_name(soak: Soak, opts: &Options) -> String {
    match (soak, opts.open_rate) {
        (Soak::Liveness, Some(_)) => format!("{soak}-paced"),
        _ => soak.to_string(),
    }
}

/// Runs `soak` against a fresh gateway (two, one after the other, for liveness).
pub async fn run(env: &Env, soak: Soak, opts: &Options) -> Result<Outcome> {
    match soak {
        Soak::Mixed => {
            let load = if opts.smoke {
                mixed::Load::smoke()
            } else {
                mixed::Load::full()
            };
            let run = mixed::run(env, load, opts.mixed, opts.every).await?;
            Ok(Outcome::Mixed(Box::new(run)))
        }
        Soak::Liveness => {
            let pinging = if opts.smoke {
                liveness::SMOKE_PINGING
            } else {
                liveness::PINGING
            };
            let shape = liveness::Shape {
                sessions: opts.sessions,
                hold: opts.hold,
                every: opts.every,
                open_rate: opts.open_rate,
            };
            let pinging = liveness::hold(env, shape, pinging).await?;
            let quiet = liveness::hold(env, shape, liveness::NOT_PINGING).await?;
            Ok(Outcome::Liveness(Box::new(liveness::Run {
                sessions: opts.sessions,
                hold: opts.hold,
                open_rate: opts.open_rate,
                pinging,
                quiet,
            })))
        }
    }
}
