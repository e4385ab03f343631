//! The mixed soak: one gateway under a steady mix of connect-echo-close churn, paced bulk
//! sessions each way and long idle sessions that answer pings, every kind closing and
//! reopening its sessions throughout, for many minutes; its memory and open files are
//! sampled all along, and once more after the load has stopped and every session closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::load::{Failed, Failures, Kind, OpenCount, OpenSession};
use super::series::{Sample, Sampler};
use crate::backend::{self, ROLE_ECHO, ROLE_SINK, ROLE_SOURCE};
use crate::client::{BULK_BUFFER, Conn, SMALL_BUFFER};
use crate::gatewaylog::Ended;
use crate::procfs::{self, FdKinds};
use crate::scenario::echo::message;
use crate::scenario::{Env, Setup, Target};
use crate::scrape::{self, Scraped};

/// How long one churn cycle, or the opening or closing of a longer session, may take
/// before it counts as failed.
const OP_PATIENCE: Duration = Duration::from_secs(30);
/// Pause after a failure before the worker tries again.
const BACKOFF: Duration = Duration::from_secs(1);
/// How long the load may take to stop, and the gateway's files to come back, at the end.
const STOP_PATIENCE: Duration = Duration::from_secs(60);
/// Size of the bulk messages.
const BULK_MESSAGE: usize = 64 * 1024;

/// The mix, all counts bounded.
#[derive(Debug, Clone)]
pub struct Load {
    pub churn_workers: usize,
    /// Cycles per second each churn worker aims at (fewer if the gateway is slower).
    pub churn_rate: f64,
    /// Bulk sessions open at once in each direction.
    pub bulk_each_way: usize,
    /// Payload bytes per second of each bulk session.
    pub bulk_rate: f64,
    /// How long a bulk session lasts before it is closed and another opened.
    pub bulk_life: Duration,
    /// Idle sessions open at once.
    pub idle: usize,
    /// Idle sessions live between these two (spread evenly), then are closed and replaced.
    pub idle_life: (Duration, Duration),
    /// The gateway's `liveness.ping_interval`.
    pub ping_interval: &'static str,
}

impl Load {
    /// A steady load a 2-core machine carries beside its own load generator.
    pub fn full() -> Self {
        Self {
            churn_workers: 4,
            churn_rate: 100.0,
            bulk_each_way: 2,
            bulk_rate: 25e6,
            bulk_life: Duration::from_secs(15),
            idle: 1000,
            idle_life: (Duration::from_secs(30), Duration::from_secs(90)),
            ping_interval: "10s",
        }
    }

    /// How long after the start the load is steady: every idle session has been replaced
    /// once and the bulk sessions have turned over twice, so the allocator has reached
    /// its working size. Growth before this is warm-up.
    pub fn settle(&self) -> Duration {
        self.idle_life.1 + 2 * self.bulk_life
    }

    /// Tiny, for the smoke run.
    pub fn smoke() -> Self {
        Self {
            churn_workers: 2,
            churn_rate: 50.0,
            bulk_each_way: 1,
            bulk_rate: 2e6,
            bulk_life: Duration::from_millis(700),
            idle: 10,
            idle_life: (Duration::from_millis(400), Duration::from_millis(1200)),
            ping_interval: "200ms",
        }
    }
}

/// What a mixed soak did and saw.
pub struct Run {
    pub load: Load,
    pub duration: Duration,
    pub every: Duration,
    pub samples: Vec<Sample>,
    /// The gateway's open files and RSS before the load (after one warm-up session).
    pub fds_before: FdKinds,
    pub rss_before: u64,
    /// The same once the load had stopped and every session had closed.
    pub fds_after: FdKinds,
    pub rss_after: u64,
    pub churn_cycles: u64,
    pub bulk_sessions: u64,
    pub idle_sessions: u64,
    pub pings_answered: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub failures: Vec<Failed>,
    /// The gateway's own counters at the end.
    pub metrics: Option<Scraped>,
    /// The gateway's log: sessions closed by how they ended, first warnings and errors.
    pub ended: Vec<(String, Ended)>,
    pub notable: Vec<String>,
}

/// Counts of what the load did, shared by its workers.
#[derive(Default)]
struct Done {
    churn: AtomicU64,
    bulk: AtomicU64,
    idle: AtomicU64,
    pings: AtomicU64,
    down_bytes: AtomicU64,
}

/// Runs the mix for `duration`, sampling every `every`.
pub async fn run(env: &Env, load: Load, duration: Duration, every: Duration) -> Result<Run> {
    let extra = [
        ("WSGATE_ADMIN__LISTEN", "127.0.0.1:0"),
        ("WSGATE_LIVENESS__PING_INTERVAL", load.ping_interval),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let setup = Setup::start(env, Target::Gateway, backend::Kind::Mixed, &extra).await?;
    let outcome = drive(&setup, load, duration, every).await;
    setup.finish().await?;
    outcome
}

async fn drive(setup: &Setup, load: Load, duration: Duration, every: Duration) -> Result<Run> {
    let pid = setup.pid().context("the gateway has no PID")?;
    // One session first, so that what the first one sets up is part of the baseline.
    churn_cycle(setup, 0).await?;
    let fds_before = wait_fds(pid, None).await?;
    let rss_before = procfs::rss_kib(pid)?;

    let stop = CancellationToken::new();
    let (done, failures, open) = (
        Arc::new(Done::default()),
        Arc::new(Failures::default()),
        OpenCount::default(),
    );
    let mut tasks = JoinSet::new();
    let ctx = Worker {
        addr: setup.addr,
        proto: setup.proto.clone(),
        stop: stop.clone(),
        done: done.clone(),
        failures: failures.clone(),
        open: open.clone(),
        load: load.clone(),
    };
    for w in 0..load.churn_workers {
        tasks.spawn(ctx.clone().churn(w));
    }
    for w in 0..load.bulk_each_way {
        tasks.spawn(ctx.clone().bulk(w, ROLE_SINK));
        tasks.spawn(ctx.clone().bulk(w, ROLE_SOURCE));
    }
    // Idle sessions open over the first tenth of the run (at most 5 s), not all at once.
    let ramp = (duration / 10).min(Duration::from_secs(5));
    for i in 0..load.idle {
        let delay = ramp.mul_f64(i as f64 / load.idle.max(1) as f64);
        tasks.spawn(ctx.clone().idle(i, delay));
    }

    let mut sampler = Sampler::new(pid);
    let end = sampler.start() + duration;
    loop {
        sampler.take(open.get())?;
        if Instant::now() >= end {
            break;
        }
        tokio::select! {
            () = sampler.wait_next(every) => {}
            () = sleep_until(end) => {}
        }
    }
    stop.cancel();
    timeout(STOP_PATIENCE, async {
        while let Some(joined) = tasks.join_next().await {
            joined.context("a load task panicked")?;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("the load did not stop in time")??;

    let fds_after = wait_fds(pid, Some(fds_before)).await?;
    let rss_after = procfs::rss_kib(pid)?;
    let metrics = match setup.admin() {
        Some(admin) => Some(scrape::metrics(admin).await?),
        None => None,
    };
    Ok(Run {
        load,
        duration,
        every,
        samples: sampler.samples,
        fds_before,
        rss_before,
        fds_after,
        rss_after,
        churn_cycles: done.churn.load(Ordering::Relaxed),
        bulk_sessions: done.bulk.load(Ordering::Relaxed),
        idle_sessions: done.idle.load(Ordering::Relaxed),
        pings_answered: done.pings.load(Ordering::Relaxed),
        bytes_up: setup.received().load(Ordering::Relaxed),
        bytes_down: done.down_bytes.load(Ordering::Relaxed),
        failures: failures.snapshot(),
        metrics,
        ended: setup.gateway_log().ended(),
        notable: setup.gateway_log().notable(),
    })
}

/// Waits until the gateway has at most `target`'s sockets and other files open (or,
/// without a target, for its counts to hold still for a moment), within
/// [`STOP_PATIENCE`]; returns the counts then. Pipes are not waited for: the gateway
/// keeps a few spare splice pipes per worker thread once bulk data has moved.
async fn wait_fds(pid: u32, target: Option<FdKinds>) -> Result<FdKinds> {
    let start = Instant::now();
    let mut last = procfs::open_fd_kinds(pid)?;
    loop {
        sleep(Duration::from_millis(100)).await;
        let now = procfs::open_fd_kinds(pid)?;
        let settled = match target {
            Some(t) => now.sockets <= t.sockets && now.other <= t.other,
            None => now == last,
        };
        if settled || start.elapsed() >= STOP_PATIENCE {
            return Ok(now);
        }
        last = now;
    }
}

/// One connect, role, echo, close.
async fn churn_cycle(setup: &Setup, seq: u64) -> Result<()> {
    let mut conn = Conn::open(setup.addr, &setup.proto, SMALL_BUFFER).await?;
    conn.send(&[ROLE_ECHO]).await?;
    conn.echo(&message(seq)).await?;
    conn.close().await
}

/// What every worker of the load shares.
#[derive(Clone)]
struct Worker {
    addr: std::net::SocketAddr,
    proto: crate::client::Proto,
    stop: CancellationToken,
    done: Arc<Done>,
    failures: Arc<Failures>,
    open: OpenCount,
    load: Load,
}

impl Worker {
    /// Opens a session for `role`, counted as open until it is dropped.
    async fn open(&self, role: u8, buffer: usize) -> Result<OpenSession> {
        let mut conn = Conn::open(self.addr, &self.proto, buffer).await?;
        conn.send(&[role]).await?;
        Ok(self.open.track(conn))
    }

    /// Runs `attempt` until stopped, recording its failures as `kind`'s and pausing
    /// after each.
    async fn repeat<F, Fut>(&self, kind: Kind, mut attempt: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        while !self.stop.is_cancelled() {
            if let Err(e) = attempt().await {
                self.failures.record(kind, &e);
                tokio::select! {
                    () = sleep(BACKOFF) => {}
                    () = self.stop.cancelled() => {}
                }
            }
        }
    }

    /// Connect, one echo, close, paced to `churn_rate` cycles a second.
    async fn churn(self, w: usize) {
        let period = Duration::from_secs_f64(1.0 / self.load.churn_rate);
        let mut seq = (w as u64 + 1) << 40;
        let mut next = Instant::now();
        self.repeat(Kind::Churn, || {
            seq += 1;
            // Behind schedule (after a slow cycle), the next starts at once, without
            // a burst to catch up.
            next = (next + period).max(Instant::now());
            let (me, seq, next) = (&self, seq, next);
            async move {
                let cycle = async {
                    let mut s = me.open(ROLE_ECHO, SMALL_BUFFER).await?;
                    s.conn().echo(&message(seq)).await?;
                    s.close().await
                };
                timeout(OP_PATIENCE, cycle)
                    .await
                    .context("a churn cycle hung")??;
                me.done.churn.fetch_add(1, Ordering::Relaxed);
                sleep_until(next).await;
                Ok(())
            }
        })
        .await;
    }

    /// Bulk sessions one after the other, each `bulk_life` long, at `bulk_rate`:
    /// client->backend for [`ROLE_SINK`], backend->client for [`ROLE_SOURCE`].
    async fn bulk(self, w: usize, role: u8) {
        let kind = if role == ROLE_SINK {
            Kind::BulkUp
        } else {
            Kind::BulkDown
        };
        // Staggered, so the sessions of different workers do not turn over together.
        let offset = self
            .load
            .bulk_life
            .mul_f64(w as f64 / self.load.bulk_each_way as f64);
        tokio::select! {
            () = sleep(offset) => {}
            () = self.stop.cancelled() => return,
        }
        self.repeat(kind, || async {
            let limit = self.load.bulk_life + OP_PATIENCE;
            timeout(limit, self.bulk_session(role))
                .await
                .context("a bulk session hung")??;
            self.done.bulk.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .await;
    }

    async fn bulk_session(&self, role: u8) -> Result<()> {
        let buffer = if role == ROLE_SINK {
            SMALL_BUFFER
        } else {
            BULK_BUFFER
        };
        let mut s = self.open(role, buffer).await?;
        let start = Instant::now();
        let end = start + self.load.bulk_life;
        let wire = s.conn().wire_form(&vec![0xA5u8; BULK_MESSAGE]);
        let mut moved = 0u64;
        while Instant::now() < end && !self.stop.is_cancelled() {
            if role == ROLE_SINK {
                s.conn().write_wire(&wire).await?;
                moved += BULK_MESSAGE as u64;
            } else {
                let n = s.conn().recv_some().await? as u64;
                moved += n;
                self.done.down_bytes.fetch_add(n, Ordering::Relaxed);
            }
            // Paced: the next transfer waits until the rate allows it.
            let due = start + Duration::from_secs_f64(moved as f64 / self.load.bulk_rate);
            tokio::select! {
                () = sleep_until(due.min(end)) => {}
                () = self.stop.cancelled() => {}
            }
        }
        s.close().await
    }

    /// One idle session after another, each living its share of `idle_life`: opened,
    /// verified by an echo, held quiet (answering pings), verified again, closed.
    async fn idle(self, i: usize, delay: Duration) {
        tokio::select! {
            () = sleep(delay) => {}
            () = self.stop.cancelled() => return,
        }
        let (short, long) = self.load.idle_life;
        // Spread evenly over the range by a low-discrepancy sequence of the index.
        let frac = (i as f64 * 0.618_033_988_749_895).fract();
        let life = short + (long - short).mul_f64(frac);
        let mut seq = (i as u64 + 1) << 32;
        self.repeat(Kind::Idle, || {
            seq += 2;
            self.idle_session(life, seq)
        })
        .await;
    }

    async fn idle_session(&self, life: Duration, seq: u64) -> Result<()> {
        let mut s = timeout(OP_PATIENCE, async {
            let mut s = self.open(ROLE_ECHO, SMALL_BUFFER).await?;
            s.conn().echo(&message(seq)).await?;
            Ok::<_, anyhow::Error>(s)
        })
        .await
        .context("opening an idle session hung")??;
        let until = Instant::now() + life;
        tokio::select! {
            held = s.conn().hold(sleep_until(until), &self.done.pings) => held?,
            () = self.stop.cancelled() => {}
        };
        timeout(OP_PATIENCE, async {
            s.conn().echo(&message(seq + 1)).await?;
            s.close().await
        })
        .await
        .context("closing an idle session hung")??;
        if self.stop.is_cancelled() {
            return Ok(());
        }
        self.done.idle.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
