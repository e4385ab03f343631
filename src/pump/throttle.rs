//! The optional per-session throughput cap, one per direction. A token bucket that may go
//! into debt: a message is always passed on whole, and its size then decides how long the
//! direction waits before reading again. Reading later is the backpressure; nothing is
//! dropped or buffered. (governor's limiters refuse a request larger than the bucket
//! instead of charging it, which does not fit a byte stream.)

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: f64,
    /// At most one second's worth may be saved up.
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl Throttle {
    pub fn new(bytes_per_second: u64, now: Instant) -> Self {
        let rate = bytes_per_second as f64;
        Self {
            bytes_per_second: rate,
            burst: rate,
            tokens: rate,
            refilled_at: now,
        }
    }

    /// Charges `n` bytes that just moved; returns when the direction may read again, if it
    /// must wait.
    pub fn charge(&mut self, n: usize, now: Instant) -> Option<Instant> {
        let earned = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64()
            * self.bytes_per_second;
        self.tokens = (self.tokens + earned).min(self.burst) - n as f64;
        self.refilled_at = now;
        (self.tokens < 0.0)
            .then(|| now + Duration::from_secs_f64(-self.tokens / self.bytes_per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_is_paid_back_at_the_rate() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1000, t0);
        assert_eq!(t.charge(1000, t0), None); // the first second's worth is free
        let wait = t.charge(500, t0).unwrap() - t0;
        assert_eq!(wait, Duration::from_millis(500));
        // After waiting, the debt is gone; the bucket refills no faster than the rate.
        assert_eq!(t.charge(0, t0 + Duration::from_millis(500)), None);
        let wait = t.charge(2000, t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(
            wait - (t0 + Duration::from_millis(500)),
            Duration::from_secs(2)
        );
    }
}
