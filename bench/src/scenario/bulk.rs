//! Bulk transfer, 64 KiB messages, counted where the bytes arrive: client->backend at the
//! sink, backend->client at the client (payload bytes only, frame headers not counted).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Measured, Metric, Setup, Timing, join_all, window};
use crate::client::{BULK_BUFFER, Conn, SMALL_BUFFER};

/// The message size of the bulk scenarios.
const MESSAGE: usize = 64 * 1024;

/// `conns` clients each writing the same 64 KiB message (framed once) as fast as they can.
pub async fn up(setup: &Setup, conns: usize, timing: Timing) -> Result<Measured> {
    let payload = vec![0xA5u8; MESSAGE];
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for _ in 0..conns {
        let mut conn = Conn::open(setup.addr, &setup.proto, SMALL_BUFFER).await?;
        let wire = conn.wire_form(&payload);
        let stop = stop.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return Ok(()),
                    written = conn.write_wire(&wire) => written?,
                }
            }
        });
    }
    let received = setup.backend.received.clone();
    let w = window(
        timing,
        setup.pid(),
        || received.load(Ordering::Relaxed),
        None,
    )
    .await;
    stop.cancel();
    join_all(tasks).await?;
    Ok(rate(&w))
}

/// `conns` clients reading what the source writes as fast as it can.
pub async fn down(setup: &Setup, conns: usize, timing: Timing) -> Result<Measured> {
    let got = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for _ in 0..conns {
        let mut conn = Conn::open(setup.addr, &setup.proto, BULK_BUFFER).await?;
        let (stop, got) = (stop.clone(), got.clone());
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return Ok(()),
                    n = conn.recv_some() => got.fetch_add(n? as u64, Ordering::Relaxed),
                };
            }
        });
    }
    let w = window(timing, setup.pid(), || got.load(Ordering::Relaxed), None).await;
    stop.cancel();
    join_all(tasks).await?;
    Ok(rate(&w))
}

fn rate(w: &super::Window) -> Measured {
    Measured {
        values: vec![(Metric::MegabytesPerSec, w.count as f64 / w.secs / 1e6)],
        cpu: w.cpu,
        work: w.count as f64 / 1e9,
    }
}
