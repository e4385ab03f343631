//! When to ping the client, and when its silence means it is gone.
//!
//! A ping goes out every `ping_interval`. The client is judged gone if nothing at all
//! (pong, ping or data) arrives within `pong_timeout` of the ping, unless it was not its
//! fault: the gateway was not reading it (the backend was not accepting bytes), or the
//! ping is still stuck behind data the client is visibly draining. Idle sessions (no data
//! either way for `idle_timeout`) are ended here too. Pure logic over explicit instants,
//! so it is tested without sockets or real time.

use std::time::Duration;

use tokio::time::Instant;

use super::activity::Activity;

/// What the pump should do after a wake-up.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    SendPing,
    Dead,
    Idle,
    Wait,
}

#[derive(Debug)]
struct Outstanding {
    /// When the ping was due (it may leave later if data was in flight).
    since: Instant,
    /// Data messages delivered to the client by then.
    delivered: u64,
}

#[derive(Debug)]
pub struct LivenessTimer {
    ping_interval: Duration,
    pong_timeout: Duration,
    idle_timeout: Option<Duration>,
    next_ping: Instant,
    outstanding: Option<Outstanding>,
}

impl LivenessTimer {
    pub fn new(
        ping_interval: Duration,
        pong_timeout: Duration,
        idle_timeout: Option<Duration>,
        now: Instant,
    ) -> Self {
        Self {
            ping_interval,
            pong_timeout,
            idle_timeout,
            next_ping: now + ping_interval,
            outstanding: None,
        }
    }

    /// The next instant at which [`Self::on_wake`] has something to decide. Waking
    /// earlier is harmless; data moving only pushes deadlines later.
    pub fn next_wake(&self, act: &Activity<'_>) -> Instant {
        let wake = match &self.outstanding {
            Some(o) => o.since + self.pong_timeout,
            None => self.next_ping,
        };
        match self.idle_timeout {
            Some(idle) => wake.min(act.data_at() + idle),
            None => wake,
        }
    }

    /// Decides at `now`, given what the session did and how many data messages have
    /// reached the client (`delivered`).
    pub fn on_wake(&mut self, now: Instant, act: &Activity<'_>, delivered: u64) -> Tick {
        if let Some(idle) = self.idle_timeout {
            if now >= act.data_at() + idle {
                return Tick::Idle;
            }
        }
        if let Some(o) = &self.outstanding {
            if act.heard_at() >= o.since {
                self.outstanding = None;
            } else if now >= o.since + self.pong_timeout {
                if !act.upstream_blocked() && delivered == o.delivered {
                    return Tick::Dead;
                }
                // Not reading the client, or it is still taking our data: judge again later.
                self.outstanding = Some(Outstanding {
                    since: now,
                    delivered,
                });
            }
        }
        if self.outstanding.is_none() && now >= self.next_ping {
            self.next_ping = now + self.ping_interval;
            self.outstanding = Some(Outstanding {
                since: now,
                delivered,
            });
            return Tick::SendPing;
        }
        Tick::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(30);
    const PONG: Duration = Duration::from_secs(10);

    fn setup(idle: Option<Duration>) -> (Instant, Activity<'static>, LivenessTimer) {
        let metrics = Box::leak(Box::new(crate::metrics::Metrics::new().route("/")));
        let t0 = Instant::now();
        (
            t0,
            Activity::new(t0, metrics),
            LivenessTimer::new(PING, PONG, idle, t0),
        )
    }

    #[test]
    fn silent_client_is_dead_one_pong_timeout_after_the_ping() {
        let (t0, act, mut timer) = setup(None);
        assert_eq!(timer.next_wake(&act), t0 + PING);
        assert_eq!(timer.on_wake(t0 + PING, &act, 0), Tick::SendPing);
        assert_eq!(timer.next_wake(&act), t0 + PING + PONG);
        assert_eq!(
            timer.on_wake(t0 + PING + PONG - Duration::from_millis(1), &act, 0),
            Tick::Wait
        );
        assert_eq!(timer.on_wake(t0 + PING + PONG, &act, 0), Tick::Dead);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_clears_the_ping_and_the_next_one_follows() {
        let (t0, act, mut timer) = setup(None);
        tokio::time::advance(PING).await;
        assert_eq!(timer.on_wake(t0 + PING, &act, 0), Tick::SendPing);
        tokio::time::advance(Duration::from_secs(1)).await;
        act.heard_client();
        assert_eq!(timer.on_wake(t0 + PING + PONG, &act, 0), Tick::Wait);
        assert_eq!(timer.next_wake(&act), t0 + PING + PING);
        assert_eq!(timer.on_wake(t0 + PING + PING, &act, 0), Tick::SendPing);
    }

    #[test]
    fn not_judged_while_the_backend_holds_up_reading() {
        let (t0, act, mut timer) = setup(None);
        timer.on_wake(t0 + PING, &act, 0);
        act.set_upstream_blocked(true);
        assert_eq!(timer.on_wake(t0 + PING + PONG, &act, 0), Tick::Wait);
        act.set_upstream_blocked(false);
        assert_eq!(timer.on_wake(t0 + PING + PONG + PONG, &act, 0), Tick::Dead);
    }

    #[test]
    fn a_client_draining_our_data_gets_more_time_until_it_stops() {
        let (t0, act, mut timer) = setup(None);
        timer.on_wake(t0 + PING, &act, 5);
        assert_eq!(timer.on_wake(t0 + PING + PONG, &act, 9), Tick::Wait);
        assert_eq!(timer.on_wake(t0 + PING + PONG * 2, &act, 9), Tick::Dead);
    }

    #[test]
    fn idle_sessions_end_after_idle_timeout() {
        let idle = Duration::from_secs(5);
        let (t0, act, mut timer) = setup(Some(idle));
        assert_eq!(timer.next_wake(&act), t0 + idle);
        assert_eq!(timer.on_wake(t0 + idle, &act, 0), Tick::Idle);
    }
}
