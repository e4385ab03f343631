//! The liveness soak's sessions, one task each: opened (64 at a time as fast as they go,
//! or at a steady rate), verified by an echo, then held answering pings from the moment
//! they are open (a session opened early must not go silent while the others open) until
//! the hold ends; and, after it, verified by one more echo.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};

use crate::client::{Conn, SMALL_BUFFER};
use crate::scenario::Setup;
use crate::scenario::echo::message;
use crate::scenario::idle::PARALLEL;

/// How long one opening (connect, upgrade, echo) or one verifying echo may take, and the
/// holding tasks to hand their connections back after the hold.
const PATIENCE: Duration = Duration::from_secs(60);

/// Counts shared by the sessions' tasks.
#[derive(Default)]
struct Counts {
    opened: AtomicU64,
    failed_to_open: AtomicU64,
    first_open_error: Mutex<Option<String>>,
    /// Sessions opened and not ended by the gateway.
    holding: AtomicU64,
    pongs: AtomicU64,
    changed: Notify,
}

/// The sessions, opening or held.
pub struct Sessions {
    n: usize,
    tasks: JoinSet<Result<Conn>>,
    counts: Arc<Counts>,
    hold_until: watch::Sender<Option<Instant>>,
}

impl Sessions {
    /// Starts opening `n` sessions through `setup`, at `rate` a second or 64 at a time.
    pub fn open(setup: &Setup, n: usize, rate: Option<f64>) -> Self {
        let counts = Arc::new(Counts::default());
        let (hold_until, until) = watch::channel(None);
        let parallel = Arc::new(Semaphore::new(PARALLEL));
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for i in 0..n {
            let (addr, proto) = (setup.addr, setup.proto.clone());
            let (counts, until, parallel) = (counts.clone(), until.clone(), parallel.clone());
            let due = rate.map(|r| start + Duration::from_secs_f64(i as f64 / r));
            tasks.spawn(async move {
                if let Some(due) = due {
                    sleep_until(due).await;
                }
                let turn = parallel.acquire().await;
                let opening = async {
                    let mut conn = Conn::open(addr, &proto, SMALL_BUFFER).await?;
                    conn.echo(&message(i as u64)).await?;
                    Ok::<_, anyhow::Error>(conn)
                };
                let opened = timeout(PATIENCE, opening).await;
                drop(turn);
                let mut conn = match opened {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return counts.failed_open(e),
                    Err(_) => return counts.failed_open(anyhow::anyhow!("opening hung")),
                };
                counts.holding.fetch_add(1, Ordering::Relaxed);
                counts.opened.fetch_add(1, Ordering::Relaxed);
                counts.changed.notify_one();
                let held = conn.hold(hold_end(until), &counts.pongs).await;
                if held.is_err() {
                    counts.holding.fetch_sub(1, Ordering::Relaxed);
                }
                held.map(|()| conn)
            });
        }
        Self {
            n,
            tasks,
            counts,
            hold_until,
        }
    }

    /// Waits until every session is open (and answering pings); fails if one could not be
    /// opened.
    pub async fn opened(&self) -> Result<()> {
        loop {
            let notified = self.counts.changed.notified();
            let failed = self.counts.failed_to_open.load(Ordering::Relaxed);
            if failed > 0 {
                let first = self
                    .counts
                    .first_open_error
                    .lock()
                    .ok()
                    .and_then(|e| e.clone());
                bail!(
                    "{failed} of {} sessions could not be opened; the first: {}",
                    self.n,
                    first.unwrap_or_default()
                );
            }
            if self.counts.opened.load(Ordering::Relaxed) >= self.n as u64 {
                return Ok(());
            }
            // Woken by each opening; the timeout only bounds a missed wake-up.
            let _ = timeout(Duration::from_secs(1), notified).await;
        }
    }

    /// Sessions opened and not (yet) ended by the gateway.
    pub fn holding(&self) -> u64 {
        self.counts.holding.load(Ordering::Relaxed)
    }

    /// Pings the sessions have answered so far (counted as they are answered).
    pub fn pongs(&self) -> u64 {
        self.counts.pongs.load(Ordering::Relaxed)
    }

    /// Tells every session to stop holding at `until`.
    pub fn hold_until(&self, until: Instant) {
        let _ = self.hold_until.send(Some(until));
    }

    /// After the hold: the sessions still open, and the first error of one that was not.
    pub async fn finish(mut self) -> Result<(Vec<Conn>, Option<String>)> {
        let (mut held, mut first_drop) = (Vec::with_capacity(self.n), None);
        timeout(PATIENCE, async {
            while let Some(joined) = self.tasks.join_next().await {
                match joined.context("a session's task panicked")? {
                    Ok(conn) => held.push(conn),
                    Err(e) => {
                        first_drop.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        })
        .await
        .context("the sessions did not end after the hold")??;
        Ok((held, first_drop))
    }
}

impl Counts {
    fn failed_open(&self, e: anyhow::Error) -> Result<Conn> {
        if let Ok(mut first) = self.first_open_error.lock() {
            first.get_or_insert_with(|| format!("{e:#}"));
        }
        self.failed_to_open.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
        Err(e.context("opening"))
    }
}

/// Resolves at the end of the hold, once that is known.
async fn hold_end(mut until: watch::Receiver<Option<Instant>>) {
    let until = loop {
        if let Some(until) = *until.borrow_and_update() {
            break until;
        }
        if until.changed().await.is_err() {
            // The soak gave up before the hold began: hold no longer.
            return;
        }
    };
    sleep_until(until).await;
}

/// One more echo on each connection, [`PARALLEL`] at a time: how many carried it, the
/// first error of one that did not, and the connections, still open.
pub async fn verify(conns: Vec<Conn>) -> Result<(usize, Option<String>, Vec<Conn>)> {
    let mut groups: Vec<Vec<Conn>> = (0..PARALLEL).map(|_| Vec::new()).collect();
    for (i, conn) in conns.into_iter().enumerate() {
        groups[i % PARALLEL].push(conn);
    }
    let mut tasks = JoinSet::new();
    for (g, mut group) in groups.into_iter().enumerate() {
        tasks.spawn(async move {
            let (mut ok, mut first_error) = (0, None);
            for (i, conn) in group.iter_mut().enumerate() {
                let seq = (1 << 63) | ((g as u64) << 32) | i as u64;
                match timeout(PATIENCE, conn.echo(&message(seq))).await {
                    Ok(Ok(())) => ok += 1,
                    Ok(Err(e)) => {
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                    Err(_) => {
                        first_error.get_or_insert_with(|| format!("no echo within {PATIENCE:?}"));
                    }
                }
            }
            (ok, first_error, group)
        });
    }
    let (mut verified, mut first_error, mut conns) = (0, None, Vec::new());
    while let Some(joined) = tasks.join_next().await {
        let (ok, error, group) = joined.context("a verifying task panicked")?;
        verified += ok;
        first_error = first_error.or(error);
        conns.extend(group);
    }
    Ok((verified, first_error, conns))
}
