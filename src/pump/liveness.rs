//! When to ping the client, and when its silence means it is gone.
//!
//! A ping goes out every `ping_interval`. A client that answers nothing (no pong, ping or
//! data) within `pong_timeout` of the ping is gone, unless its TCP stack shows it is still
//! there and busy. The evidence is what the client's kernel reports back, read with
//! `TCP_INFO` on the client's TCP connection (under TLS and HTTP/2 too):
//!
//! - **Reading**: the right edge of the client's receive window moved since the last look.
//!   It moves only when the client's application takes data out of its socket, so a client
//!   draining a long download at any rate keeps its session however long its pong waits
//!   behind that data, while a client that stopped reading (its window closes and stays
//!   put) does not, even though its kernel still acknowledges small frames.
//! - **Held up by us**: the gateway is not reading the client because the backend is not
//!   accepting bytes, and the client's kernel has acknowledged the ping itself, so the pong
//!   may be waiting behind the client's own unread data. A client whose window stays
//!   closed never gets the ping at all, and is gone whatever the backend does.
//!
//! Where the kernel reports nothing (no `TCP_INFO`), the older evidence stands in: frames
//! fully handed to the client's stream, and the backend holding up reading.
//!
//! Idle sessions (no data either way for `idle_timeout`) are ended here too. Pure logic over
//! explicit instants and samples, so it is tested without sockets or real time.

use std::time::Duration;

use tokio::time::Instant;

use super::session_state::SessionState;
use crate::tcp_info::SendProgress;

/// What the pump should do after a wake-up.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    SendPing,
    Dead,
    Idle,
    Wait,
}

/// What the session can show for its client at one look.
#[derive(Debug, Clone, Copy)]
pub struct Evidence {
    /// Data frames fully handed to the client's stream.
    pub delivered: u64,
    /// The client's TCP stack, when the kernel reports it.
    pub tcp: Option<SendProgress>,
}

#[derive(Debug)]
struct Outstanding {
    /// When the ping was due, or when the client was last found busy.
    since: Instant,
    /// What the client showed at `since`.
    seen: Evidence,
    /// Where the ping ends in the bytes written to the client's TCP connection, once it left.
    ping_end: Option<u64>,
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
    pub fn next_wake(&self, act: &SessionState<'_>) -> Instant {
        let wake = match &self.outstanding {
            Some(o) => o.since + self.pong_timeout,
            None => self.next_ping,
        };
        match self.idle_timeout {
            Some(idle) => wake.min(act.data_at() + idle),
            None => wake,
        }
    }

    /// The ping has been written; `written` is the client connection's byte offset just
    /// past it, when the kernel tells.
    pub fn ping_left(&mut self, written: Option<u64>) {
        if let Some(o) = &mut self.outstanding {
            o.ping_end = written;
        }
    }

    /// Decides at `now`, given what the session did and what the client shows.
    pub fn on_wake(&mut self, now: Instant, act: &SessionState<'_>, seen: Evidence) -> Tick {
        if let Some(idle) = self.idle_timeout {
            if now >= act.data_at() + idle {
                return Tick::Idle;
            }
        }
        if let Some(o) = &mut self.outstanding {
            if act.heard_at() >= o.since {
                self.outstanding = None;
            } else if now >= o.since + self.pong_timeout {
                if !still_there(o, act, &seen) {
                    return Tick::Dead;
                }
                // Busy, not gone: judge again one pong timeout from now.
                o.since = now;
                o.seen = seen;
            }
        }
        if self.outstanding.is_none() && now >= self.next_ping {
            self.next_ping = now + self.ping_interval;
            self.outstanding = Some(Outstanding {
                since: now,
                seen,
                ping_end: None,
            });
            return Tick::SendPing;
        }
        Tick::Wait
    }
}

/// Whether a client that has not answered shows it is there all the same (see the module
/// documentation).
fn still_there(o: &Outstanding, act: &SessionState<'_>, seen: &Evidence) -> bool {
    match (o.seen.tcp, seen.tcp) {
        (Some(before), Some(now)) => {
            let reading = now.read_since(&before);
            let ping_arrived = o.ping_end.is_some_and(|end| now.acked >= end);
            reading || (ping_arrived && act.upstream_blocked())
        }
        _ => act.upstream_blocked() || seen.delivered != o.seen.delivered,
    }
}

#[cfg(test)]
mod tests;
