//! Many idle connections: how fast they are established, and what each one costs the middle
//! process in resident memory once it has carried one echo and gone quiet.

use anyhow::{Context, Result};
use tokio::task::JoinSet;

use super::echo::message;
use super::{Measured, Metric, Setup};
use crate::client::{Conn, SMALL_BUFFER};
use crate::procfs::{CpuSnap, rss_kib};

/// Connections opened (and later verified) at once.
pub const PARALLEL: usize = 64;

pub async fn run(setup: &Setup, n: usize) -> Result<Measured> {
    // One session first, so that state made on first use is part of the baseline.
    let mut warm = Conn::open(setup.addr, &setup.proto, SMALL_BUFFER).await?;
    warm.echo(&message(0)).await?;
    warm.close().await?;
    let pid = setup.pid();
    let rss_before = pid.map(rss_kib).transpose()?;

    let cpu_before = CpuSnap::take(pid);
    let conns = open_all(setup, n).await?;
    let cpu_after = CpuSnap::take(pid);
    let secs = cpu_after.at().duration_since(cpu_before.at()).as_secs_f64();
    let conns = echo_all(conns).await?;
    let rss_after = pid.map(rss_kib).transpose()?;

    let mut values = vec![(Metric::ConnsPerSec, n as f64 / secs)];
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        values.push((
            Metric::KibPerConn,
            after.saturating_sub(before) as f64 / n as f64,
        ));
    }
    drop(conns);
    Ok(Measured {
        values,
        cpu: cpu_after.since(&cpu_before),
        work: n as f64,
    })
}

/// Opens `n` connections, `PARALLEL` at a time.
pub async fn open_all(setup: &Setup, n: usize) -> Result<Vec<Conn>> {
    let mut tasks = JoinSet::new();
    for worker in 0..PARALLEL {
        let share = n / PARALLEL + usize::from(worker < n % PARALLEL);
        let (addr, proto) = (setup.addr, setup.proto.clone());
        tasks.spawn(async move {
            let mut conns = Vec::with_capacity(share);
            for _ in 0..share {
                conns.push(Conn::open(addr, &proto, SMALL_BUFFER).await?);
            }
            Ok(conns)
        });
    }
    let conns: Vec<Conn> = join_until_done(tasks)
        .await?
        .into_iter()
        .flatten()
        .collect();
    anyhow::ensure!(
        conns.len() == n,
        "opened {} of {n} connections",
        conns.len()
    );
    Ok(conns)
}

/// One echo on every connection, `PARALLEL` connections at a time; returns them still open.
pub async fn echo_all(conns: Vec<Conn>) -> Result<Vec<Conn>> {
    let mut groups: Vec<Vec<Conn>> = (0..PARALLEL).map(|_| Vec::new()).collect();
    for (i, conn) in conns.into_iter().enumerate() {
        groups[i % PARALLEL].push(conn);
    }
    let mut tasks = JoinSet::new();
    for (g, mut group) in groups.into_iter().enumerate() {
        tasks.spawn(async move {
            for (i, conn) in group.iter_mut().enumerate() {
                let seq = ((g as u64) << 32) | i as u64;
                conn.echo(&message(seq))
                    .await
                    .with_context(|| format!("verifying idle connection {i} of group {g}"))?;
            }
            Ok(group)
        });
    }
    Ok(join_until_done(tasks)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// Waits for tasks that finish by themselves (bounded by the run's own time limit).
async fn join_until_done<T: 'static>(mut tasks: JoinSet<Result<T>>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(done) = tasks.join_next().await {
        out.push(done.context("a load task panicked")??);
    }
    Ok(out)
}
