//! The liveness soak: thousands of idle sessions whose clients answer pings, held for
//! minutes by a gateway that pings each one every few seconds, then the same by a fresh
//! gateway whose pings are effectively off (an interval far longer than the hold). Says
//! whether any session was dropped, and what liveness costs the gateway in CPU per 1,000
//! idle sessions: the difference between the two holds.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::{Instant, sleep_until};

use super::series::{Sample, Sampler};
use super::sessions::{Sessions, verify};
use crate::backend::Kind;
use crate::client::{Conn, SMALL_BUFFER};
use crate::gatewaylog::Ended;
use crate::procfs::{CpuSnap, CpuUse};
use crate::scenario::echo::message;
use crate::scenario::{Env, Setup, Target};
use crate::scrape::{self, Scraped};

/// The gateway's liveness settings for one hold.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub ping_interval: &'static str,
    pub pong_timeout: &'static str,
}

/// Pings every 5 s, a client silent for 5 s after one is dropped.
pub const PINGING: Liveness = Liveness {
    ping_interval: "5s",
    pong_timeout: "5s",
};
/// No ping within any hold this tool makes.
pub const NOT_PINGING: Liveness = Liveness {
    ping_interval: "24h",
    pong_timeout: "5s",
};
/// The smoke run's pings: each session answers one early in its short hold. The pong
/// timeout stays long, since the smoke run checks no timing (the gateway sends its next
/// ping only once the pong timeout of the last has passed, so there is no second one).
pub const SMOKE_PINGING: Liveness = Liveness {
    ping_interval: "200ms",
    pong_timeout: "5s",
};

/// One hold: what was opened, what survived, what it cost.
pub struct Hold {
    pub liveness: Liveness,
    pub opened: usize,
    /// Sessions the gateway ended during the hold, and the first one's error.
    pub dropped: usize,
    pub first_drop: Option<String>,
    /// Sessions that, after the hold, still carried an echo, and the first error of one
    /// that did not.
    pub verified: usize,
    pub first_unverified: Option<String>,
    pub hold_secs: f64,
    /// CPU use over the hold (the opening and verifying phases left out).
    pub cpu: CpuUse,
    /// Pings the clients answered during the hold (whether their session lasted or not).
    pub pongs: u64,
    /// The gateway's counters at the start and end of the hold, and after verifying.
    pub metrics: Option<[Scraped; 3]>,
    pub samples: Vec<Sample>,
    /// Machine-wide over the hold: packets dropped at a full input backlog, and TCP
    /// connections ended by the kernel for unanswered probes or retransmissions.
    pub backlog_drops: Option<u64>,
    pub timed_out: Option<u64>,
    /// The gateway's log: sessions closed by how they ended, first warnings and errors.
    pub ended: Vec<(String, Ended)>,
    pub notable: Vec<String>,
}

impl Hold {
    /// Pings the gateway sent during the hold, by its own count (else the clients').
    pub fn pings_sent(&self) -> f64 {
        match &self.metrics {
            Some([start, end, _]) => {
                end.get("wsgate_pings_sent_total") - start.get("wsgate_pings_sent_total")
            }
            None => self.pongs as f64,
        }
    }
}

/// How one hold is run.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub sessions: usize,
    pub hold: Duration,
    pub every: Duration,
    /// Sessions opened per second; `None`: 64 at a time, as fast as they open.
    pub open_rate: Option<f64>,
}

/// Sessions held as `shape` says with `liveness`, by a fresh gateway.
pub async fn hold(env: &Env, shape: Shape, liveness: Liveness) -> Result<Hold> {
    let extra = [
        ("WSGATE_ADMIN__LISTEN", "127.0.0.1:0"),
        ("WSGATE_LIVENESS__PING_INTERVAL", liveness.ping_interval),
        ("WSGATE_LIVENESS__PONG_TIMEOUT", liveness.pong_timeout),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let setup = Setup::start(env, Target::Gateway, Kind::Echo, &extra).await?;
    let outcome = hold_on(&setup, shape, liveness).await;
    setup.finish().await?;
    outcome
}

async fn hold_on(setup: &Setup, shape: Shape, liveness: Liveness) -> Result<Hold> {
    let pid = setup.pid().context("the gateway has no PID")?;
    let mut warm = Conn::open(setup.addr, &setup.proto, SMALL_BUFFER).await?;
    warm.echo(&message(0)).await?;
    warm.close().await?;
    let n = shape.sessions;
    let sessions = Sessions::open(setup, n, shape.open_rate);
    sessions.opened().await?;
    let scrape = || async {
        match setup.admin() {
            Some(admin) => scrape::metrics(admin).await.map(Some),
            None => Ok(None),
        }
    };

    let metrics_start = scrape().await?;
    let pongs_before = sessions.pongs();
    let mut sampler = Sampler::new(pid);
    let cpu_start = CpuSnap::take(Some(pid));
    let until = sampler.start() + shape.hold;
    sessions.hold_until(until);
    loop {
        sampler.take(sessions.holding())?;
        if Instant::now() >= until {
            break;
        }
        tokio::select! {
            () = sampler.wait_next(shape.every) => {}
            () = sleep_until(until) => {}
        }
    }
    let cpu = CpuSnap::take(Some(pid)).since(&cpu_start);
    let hold_secs = sampler.start().elapsed().as_secs_f64();
    let (backlog_drops, timed_out) = sampler.totals();
    let metrics_end = scrape().await?;

    let pongs = sessions.pongs();
    let (held, first_drop) = sessions.finish().await?;
    let pongs = pongs - pongs_before;
    let dropped = n - held.len();
    let (verified, first_unverified, still_open) = verify(held).await?;
    // Scraped while the verified sessions are still open, so the gateway counts them.
    let metrics_after = scrape().await?;
    // Read before the sessions close, so their closing is not part of it.
    let log = setup.gateway_log();
    let (ended, notable) = (log.ended(), log.notable());
    drop(still_open);
    Ok(Hold {
        liveness,
        opened: n,
        dropped,
        first_drop,
        verified,
        first_unverified,
        hold_secs,
        cpu,
        pongs,
        metrics: match (metrics_start, metrics_end, metrics_after) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            _ => None,
        },
        samples: sampler.samples,
        backlog_drops,
        timed_out,
        ended,
        notable,
    })
}

/// Both holds of one liveness soak, pinging first.
pub struct Run {
    pub sessions: usize,
    pub hold: Duration,
    pub open_rate: Option<f64>,
    pub pinging: Hold,
    pub quiet: Hold,
}

impl Run {
    /// The gateway's extra CPU while pinging, in percent of one core.
    pub fn extra_cpu(&self) -> Option<f64> {
        Some(self.pinging.cpu.middle? - self.quiet.cpu.middle?)
    }

    /// That, per 1,000 idle sessions.
    pub fn extra_cpu_per_thousand(&self) -> Option<f64> {
        Some(self.extra_cpu()? / (self.sessions.max(1) as f64 / 1000.0))
    }

    /// Pings the gateway sent per second of the pinging hold.
    pub fn pings_per_sec(&self) -> f64 {
        self.pinging.pings_sent() / self.pinging.hold_secs.max(1e-9)
    }

    /// That extra CPU in microseconds per ping sent.
    pub fn micros_per_ping(&self) -> Option<f64> {
        let rate = self.pings_per_sec();
        (rate > 0.0).then(|| self.extra_cpu().map(|cpu| cpu / 100.0 * 1e6 / rate))?
    }

    /// Sessions lost in either hold.
    pub fn lost(&self) -> usize {
        [&self.pinging, &self.quiet]
            .iter()
            .map(|h| h.opened - h.verified)
            .sum()
    }
}
