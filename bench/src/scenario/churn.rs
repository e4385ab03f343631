//! Short sessions back to back: connect, one echo, close, by several workers at once.
//! Cycles per second, and whether the middle process's open files return to their count
//! from before (a leak shows as files that never close).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinSet;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use super::echo::message;
use super::{Measured, Metric, Setup, Timing, join_all, window};
use crate::client::{Conn, SMALL_BUFFER};
use crate::procfs::open_fds;

/// How long the open file count may take to come back before the run reports it as not back.
const FDS_PATIENCE: Duration = Duration::from_secs(10);
/// How often /proc is looked at meanwhile (nothing tells when a process closes a file).
const FDS_POLL: Duration = Duration::from_millis(5);
/// Cycles per worker at most: bounds the loop whatever the rate.
const MAX_CYCLES: u64 = 10_000_000;

pub async fn run(setup: &Setup, workers: usize, timing: Timing) -> Result<Measured> {
    let pid = setup.pid();
    let fds_at_start = pid.map(open_fds).transpose()?;
    one_cycle(setup, 0).await?;
    // The count after one whole session is the baseline: what that session opened is closed.
    let baseline = match (pid, fds_at_start) {
        (Some(pid), Some(start)) => Some(fds_back(pid, start).await?.0),
        _ => None,
    };

    let stop = CancellationToken::new();
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let (stop, done) = (stop.clone(), done.clone());
        let (addr, proto) = (setup.addr, setup.proto.clone());
        tasks.spawn(async move {
            let mut seq = (w as u64 + 1) << 40;
            while !stop.is_cancelled() && seq & 0xFF_FFFF_FFFF < MAX_CYCLES {
                seq += 1;
                let mut conn = Conn::open(addr, &proto, SMALL_BUFFER).await?;
                conn.echo(&message(seq)).await?;
                conn.close().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    let w = window(timing, pid, || done.load(Ordering::Relaxed), None).await;
    stop.cancel();
    join_all(tasks).await?;

    let mut values = vec![(Metric::CyclesPerSec, w.count as f64 / w.secs)];
    if let (Some(pid), Some(baseline)) = (pid, baseline) {
        let (after, took) = fds_back(pid, baseline).await?;
        values.push((Metric::FdsBefore, baseline as f64));
        values.push((Metric::FdsAfter, after as f64));
        values.push((Metric::FdsBackMillis, took.as_secs_f64() * 1000.0));
    }
    Ok(Measured {
        values,
        cpu: w.cpu,
        work: w.count as f64,
    })
}

async fn one_cycle(setup: &Setup, seq: u64) -> Result<()> {
    let mut conn = Conn::open(setup.addr, &setup.proto, SMALL_BUFFER).await?;
    conn.echo(&message(seq)).await?;
    conn.close().await
}

/// Waits until `pid` has at most `target` files open, or the patience runs out; returns
/// the count then and how long it took.
async fn fds_back(pid: u32, target: usize) -> Result<(usize, Duration)> {
    let start = Instant::now();
    loop {
        let open = open_fds(pid)?;
        if open <= target || start.elapsed() >= FDS_PATIENCE {
            return Ok((open, start.elapsed()));
        }
        sleep(FDS_POLL).await;
    }
}
