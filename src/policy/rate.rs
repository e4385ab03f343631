//! New-session rate limits (governor): one bucket per client address (IPv6 by prefix, since
//! clients rotate addresses within one) and one for everybody. Idle per-client buckets are
//! pruned, so many distinct clients cannot grow memory without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::config::{Limits, Rate};

/// Why a new session was refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRefusal {
    /// This client opens sessions too fast (429).
    PerClient { retry_after: Duration },
    /// Everybody together does (503).
    Global { retry_after: Duration },
}

pub struct RateLimits {
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    global: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
}

/// The governor quota for `rate` with `burst` (validation has checked both are non-zero).
fn quota(rate: Rate, burst: u32) -> Option<Quota> {
    let count = NonZeroU32::new(rate.count)?;
    let period = rate.per.checked_div(count.get())?;
    Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?))
}

impl RateLimits {
    pub fn new(limits: &Limits) -> Self {
        let per_client = limits
            .per_ip_rate
            .and_then(|r| quota(r, limits.per_ip_burst))
            .map(DefaultKeyedRateLimiter::keyed);
        let global = limits
            .global_rate
            .and_then(|r| quota(r, limits.global_burst))
            .map(DefaultDirectRateLimiter::direct);
        Self {
            per_client,
            global,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one session from `client`'s own bucket.
    pub fn check_client(&self, client: IpAddr) -> Result<(), RateRefusal> {
        if let Some(limiter) = &self.per_client {
            if let Err(not_until) = limiter.check_key(&client) {
                let retry_after = not_until.wait_time_from(self.clock.now());
                return Err(RateRefusal::PerClient { retry_after });
            }
        }
        Ok(())
    }

    /// Takes one session from everybody's bucket. Admission asks last, once the client
    /// has passed every other check (its own bucket and its credential included), so
    /// clients that are refused anyway cannot use up everybody's budget.
    pub fn check_global(&self) -> Result<(), RateRefusal> {
        if let Some(limiter) = &self.global {
            if let Err(not_until) = limiter.check() {
                let retry_after = not_until.wait_time_from(self.clock.now());
                return Err(RateRefusal::Global { retry_after });
            }
        }
        Ok(())
    }

    /// Drops the buckets of clients that are back to full, and gives back their memory.
    pub fn prune(&self) {
        if let Some(limiter) = &self.per_client {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Clients currently tracked.
    fn tracked_clients(rl: &RateLimits) -> usize {
        rl.per_client.as_ref().map_or(0, |l| l.len())
    }

    fn limits(per_ip: &str, burst: u32) -> Limits {
        Limits {
            per_ip_rate: Some(per_ip.parse().unwrap()),
            per_ip_burst: burst,
            ..Limits::default()
        }
    }

    #[test]
    fn burst_then_refusal_with_a_retry_time() {
        let rl = RateLimits::new(&limits("1/m", 3));
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        for _ in 0..3 {
            rl.check_client(a).unwrap();
        }
        match rl.check_client(a) {
            Err(RateRefusal::PerClient { retry_after }) => {
                assert!(retry_after > Duration::from_secs(50), "{retry_after:?}")
            }
            other => panic!("{other:?}"),
        }
        // Another client has its own bucket.
        rl.check_client(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)))
            .unwrap();
    }

    #[test]
    fn global_limit_applies_to_everybody() {
        let l = Limits {
            global_rate: Some("1/m".parse().unwrap()),
            global_burst: 2,
            ..Limits::default()
        };
        let rl = RateLimits::new(&l);
        rl.check_global().unwrap();
        rl.check_global().unwrap();
        assert!(matches!(rl.check_global(), Err(RateRefusal::Global { .. })));
    }

    #[test]
    fn idle_clients_are_pruned() {
        let rl = RateLimits::new(&limits("1000/s", 1));
        for i in 0..200u8 {
            rl.check_client(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)))
                .unwrap();
        }
        assert_eq!(tracked_clients(&rl), 200);
        std::thread::sleep(Duration::from_millis(20)); // 1000/s refills a burst of 1 in 1 ms
        rl.prune();
        assert_eq!(tracked_clients(&rl), 0);
    }
}
