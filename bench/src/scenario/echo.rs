//! Round trips of a 32-byte message through the echo backend, each connection in a closed
//! loop (send, wait for the echo, send again): latency percentiles and messages per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Measured, Metric, Setup, Timing, join_all, window};
use crate::client::{Conn, SMALL_BUFFER};

pub const MESSAGE: usize = 32;
/// Latency samples kept per connection: bounds memory and the loop.
const MAX_SAMPLES: usize = 4_000_000;

/// A 32-byte message carrying `seq`, so that a stale or misplaced echo is noticed.
pub fn message(seq: u64) -> [u8; MESSAGE] {
    let mut m = [0x3Cu8; MESSAGE];
    m[..8].copy_from_slice(&seq.to_be_bytes());
    m[24..].copy_from_slice(&seq.wrapping_mul(31).to_le_bytes());
    m
}

pub async fn run(setup: &Setup, conns: usize, timing: Timing) -> Result<Measured> {
    let stop = CancellationToken::new();
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(Conn::open(setup.addr, &setup.proto, SMALL_BUFFER).await?);
    }
    let mut tasks = JoinSet::new();
    for (i, mut conn) in opened.into_iter().enumerate() {
        let (stop, measuring, done) = (stop.clone(), measuring.clone(), done.clone());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut seq = (i as u64) << 40;
            while !stop.is_cancelled() && samples.len() < MAX_SAMPLES {
                seq += 1;
                let msg = message(seq);
                let t0 = Instant::now();
                conn.echo(&msg).await?;
                let took = t0.elapsed();
                if measuring.load(Ordering::Relaxed) {
                    samples.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(samples)
        });
    }
    let gauge = || done.load(Ordering::Relaxed);
    let w = window(timing, setup.pid(), gauge, Some(&measuring)).await;
    stop.cancel();
    let mut samples: Vec<u64> = join_all(tasks).await?.into_iter().flatten().collect();
    anyhow::ensure!(!samples.is_empty(), "no round trip completed in the window");
    samples.sort_unstable();
    let micros = |q: f64| percentile(&samples, q) as f64 / 1000.0;
    Ok(Measured {
        values: vec![
            (Metric::P50Micros, micros(0.50)),
            (Metric::P99Micros, micros(0.99)),
            (Metric::P999Micros, micros(0.999)),
            (Metric::MessagesPerSec, w.count as f64 / w.secs),
        ],
        cpu: w.cpu,
        work: w.count as f64,
    })
}

/// Nearest-rank percentile of sorted, non-empty `samples`.
fn percentile(samples: &[u64], q: f64) -> u64 {
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&s, 0.5), 500);
        assert_eq!(percentile(&s, 0.99), 990);
        assert_eq!(percentile(&s, 0.999), 999);
        assert_eq!(percentile(&[7], 0.999), 7);
    }
}
