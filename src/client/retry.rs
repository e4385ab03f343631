//! Opening a session with retries: the URLs are tried in turn (failover), and after each
//! full round that failed the next waits an exponentially growing delay with jitter, within
//! a bounded number of attempts and a bounded time. A failure that waiting cannot fix (a
//! 401, an untrusted certificate) ends the tries at once.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

use super::dial::{DialError, Dialed, dial};
use super::plan::TunnelPlan;
use super::stats::ClientStats;
use crate::config::Reconnect;

/// A session that opened, and what it took.
pub struct Attempted<T> {
    pub result: Result<T, DialError>,
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// Index of the URL of the last attempt.
    pub url: usize,
}

/// Opens a session for `plan`, retrying as its `reconnect` allows.
pub async fn open(plan: &TunnelPlan, stats: &ClientStats) -> Attempted<Dialed> {
    let urls = plan.urls.len().max(1);
    let mut attempts = 0;
    let started = Instant::now();
    loop {
        let url = attempts as usize % urls;
        attempts += 1;
        stats.attempt(attempts > 1);
        let result = match timeout(plan.connect_timeout, dial(plan, &plan.urls[url])).await {
            Ok(result) => result,
            Err(_) => Err(DialError::Timeout),
        };
        let err = match result {
            Ok(dialed) => {
                return Attempted {
                    result: Ok(dialed),
                    attempts,
                    url,
                };
            }
            Err(e) => e,
        };
        let give_up = !err.retryable() || attempts >= plan.reconnect.attempts;
        let round_done = attempts as usize % urls == 0;
        let wait = if round_done {
            jittered(delay(&plan.reconnect, attempts as usize / urls))
        } else {
            Duration::ZERO
        };
        if give_up || started.elapsed() + wait > plan.reconnect.max_time {
            return Attempted {
                result: Err(err),
                attempts,
                url,
            };
        }
        tracing::debug!(tunnel = %plan.name, url = url, attempt = attempts, error = %err, wait_ms = wait.as_millis() as u64, "session did not open; trying again");
        sleep(wait).await;
    }
}

/// The delay after `round` (1 after the first) failed rounds: doubling from the initial
/// delay, capped.
fn delay(r: &Reconnect, round: usize) -> Duration {
    let doublings = u32::try_from(round.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    r.initial_delay
        .saturating_mul(1 << doublings)
        .min(r.max_delay)
}

/// Somewhere from half of `d` to all of it, so clients that failed together do not all
/// come back in the same instant.
fn jittered(d: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    let half = d / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(random % nanos.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_within_half() {
        let r = Reconnect {
            attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            max_time: Duration::from_secs(10),
        };
        let got: Vec<u128> = (1..=5).map(|n| delay(&r, n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 700, 700]);
        for _ in 0..100 {
            let j = jittered(Duration::from_millis(400));
            assert!(
                j >= Duration::from_millis(200) && j <= Duration::from_millis(400),
                "{j:?}"
            );
        }
    }
}
