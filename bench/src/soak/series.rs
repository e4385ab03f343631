//! The soaks' time series: the gateway's resident memory, open files and CPU, the
//! machine's steal and load, sampled at a fixed interval; and the least-squares growth per
//! minute of a series, with its uncertainty, to say whether it is flat.

use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

use crate::procfs::{self, CpuSnap, CpuUse};

/// One look at the gateway and the machine.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the series started.
    pub secs: f64,
    /// The gateway's VmRSS.
    pub rss_kib: u64,
    /// The gateway's entries in /proc/<pid>/fd.
    pub fds: usize,
    /// Sessions the load generator had open (as it counts them).
    pub sessions: u64,
    /// CPU use since the previous sample (or since the start).
    pub cpu: CpuUse,
    /// The machine's 1-minute load average.
    pub load1: f64,
    /// Machine-wide, since the previous sample: packets dropped at a full input backlog
    /// (loopback's included), and TCP connections the kernel ended because probes or
    /// retransmissions went unanswered (`TCPAbortOnTimeout`, keepalive's included).
    pub backlog_drops: Option<u64>,
    pub timed_out: Option<u64>,
}

/// Machine-wide counters at one instant, for [`Sample`]'s differences.
#[derive(Debug, Clone, Copy)]
struct Counters {
    backlog_drops: Option<u64>,
    timed_out: Option<u64>,
}

impl Counters {
    fn now() -> Self {
        Self {
            backlog_drops: procfs::backlog_drops(),
            timed_out: procfs::tcp_ext("TCPAbortOnTimeout"),
        }
    }
}

fn since(now: Option<u64>, then: Option<u64>) -> Option<u64> {
    Some(now?.saturating_sub(then?))
}

/// Takes samples of one gateway process.
pub struct Sampler {
    pid: u32,
    start: Instant,
    last: CpuSnap,
    last_counters: Counters,
    first_counters: Counters,
    pub samples: Vec<Sample>,
}

impl Sampler {
    /// Starts the series now; CPU is counted from here.
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            start: Instant::now(),
            last: CpuSnap::take(Some(pid)),
            last_counters: Counters::now(),
            first_counters: Counters::now(),
            samples: Vec::new(),
        }
    }

    /// Machine-wide backlog drops and timed-out connections since the series started.
    pub fn totals(&self) -> (Option<u64>, Option<u64>) {
        let now = self.last_counters;
        (
            since(now.backlog_drops, self.first_counters.backlog_drops),
            since(now.timed_out, self.first_counters.timed_out),
        )
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records one sample, `sessions` being what the load generator has open.
    pub fn take(&mut self, sessions: u64) -> Result<&Sample> {
        let (rss_kib, fds) = (procfs::rss_kib(self.pid)?, procfs::open_fds(self.pid)?);
        let now = CpuSnap::take(Some(self.pid));
        let cpu = now.since(&self.last);
        self.last = now;
        let counters = Counters::now();
        let last = std::mem::replace(&mut self.last_counters, counters);
        self.samples.push(Sample {
            secs: self.start.elapsed().as_secs_f64(),
            rss_kib,
            fds,
            sessions,
            cpu,
            load1: load1(),
            backlog_drops: since(counters.backlog_drops, last.backlog_drops),
            timed_out: since(counters.timed_out, last.timed_out),
        });
        Ok(self.samples.last().expect("just pushed"))
    }

    /// Sleeps until the next multiple of `every` since the start (so samples do not drift).
    pub async fn wait_next(&self, every: Duration) {
        let n = self.samples.len() as u32;
        tokio::time::sleep_until(self.start + every * n).await;
    }
}

/// The machine's 1-minute load average, 0 if unknown.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A least-squares line through a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Growth per minute.
    pub per_minute: f64,
    /// Two standard errors of that slope: a slope this far from zero could be noise.
    pub plus_minus: f64,
    pub points: usize,
}

/// The least-squares slope of `(seconds, value)` points, per minute; `None` with fewer
/// than three points or no spread in time.
pub fn trend(points: &[(f64, f64)]) -> Option<Trend> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let stt: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    if stt <= 0.0 {
        return None;
    }
    let stv: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_v)).sum();
    let slope = stv / stt; // per second
    let residuals: f64 = points
        .iter()
        .map(|p| (p.1 - mean_v - slope * (p.0 - mean_t)).powi(2))
        .sum();
    let standard_error = (residuals / (nf - 2.0) / stt).sqrt();
    Some(Trend {
        per_minute: slope * 60.0,
        plus_minus: 2.0 * standard_error * 60.0,
        points: n,
    })
}

/// First, lowest, highest and last value of a series.
pub fn span(values: impl Iterator<Item = f64>) -> Option<[f64; 4]> {
    values.fold(None, |acc, v| match acc {
        None => Some([v, v, v, v]),
        Some([first, lo, hi, _]) => Some([first, lo.min(v), hi.max(v), v]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_has_its_slope_and_no_uncertainty() {
        // 120 KiB per minute: 2 KiB a second.
        let points: Vec<(f64, f64)> = (0..30)
            .map(|i| (i as f64 * 10.0, 1000.0 + 20.0 * i as f64))
            .collect();
        let t = trend(&points).unwrap();
        assert!((t.per_minute - 120.0).abs() < 1e-9, "{t:?}");
        assert!(t.plus_minus.abs() < 1e-9);
        assert_eq!(t.points, 30);
    }

    #[test]
    fn noise_around_a_level_is_flat_within_its_uncertainty() {
        let points: Vec<(f64, f64)> = (0..60)
            .map(|i| (i as f64 * 10.0, 500.0 + if i % 2 == 0 { 8.0 } else { -8.0 }))
            .collect();
        let t = trend(&points).unwrap();
        assert!(t.per_minute.abs() <= t.plus_minus, "{t:?}");
        assert!(t.plus_minus < 1.0, "{t:?}");
    }

    #[test]
    fn too_few_points_have_no_trend() {
        assert_eq!(trend(&[(0.0, 1.0), (10.0, 2.0)]), None);
        assert_eq!(trend(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]), None);
    }

    #[test]
    fn span_gives_first_low_high_last() {
        assert_eq!(
            span([3.0, 1.0, 4.0, 2.0].into_iter()),
            Some([3.0, 1.0, 4.0, 2.0])
        );
        assert_eq!(span(std::iter::empty()), None);
    }
}
