//! Admission at the door: everything decided before the 101, cheapest first, each refusal
//! an HTTP status the client can act on. Origin, new-session rates, concurrent-session
//! caps, then credentials; the backend is connected only after all of them pass.

mod caps;
mod origin;
mod rate;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::header::{HeaderValue, ORIGIN};
use tracing::debug;

pub use caps::{CapRefusal, SessionCaps, SessionSlot};
pub use origin::{OriginCheck, OriginPolicy};
pub use rate::{RateLimits, RateRefusal};

use crate::client_ip::ipv6_prefix_key;
use crate::config::Config;
use crate::error::Reject;
use crate::handshake;
use crate::lifecycle::Lifecycle;
use crate::state::RoutePlan;

/// How often idle per-client rate-limit state is dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Gateway-wide admission state: rate limiters and session caps.
pub struct Admission {
    rates: RateLimits,
    caps: SessionCaps,
    ipv6_prefix: u8,
}

/// What passing admission yields: the session's slot under the caps and its subprotocol.
pub struct Admitted {
    pub slot: SessionSlot,
    pub protocol: Option<HeaderValue>,
}

impl Admission {
    pub fn new(cfg: &Config) -> Self {
        let l = &cfg.limits;
        Self {
            rates: RateLimits::new(l),
            caps: SessionCaps::new(l.max_connections, l.max_connections_per_ip),
            ipv6_prefix: l.ipv6_prefix,
        }
    }

    /// Checks `req` from `client` for `route`. The handshake itself has been checked.
    pub fn admit<B>(
        &self,
        req: &Request<B>,
        route: &RoutePlan,
        client: IpAddr,
    ) -> Result<Admitted, Reject> {
        let origin = req.headers().get(ORIGIN).map(HeaderValue::as_bytes);
        if route.origins.check(origin) == OriginCheck::Refused {
            return Err(Reject::Origin);
        }
        let key = ipv6_prefix_key(client, self.ipv6_prefix);
        self.rates.check(key).map_err(|r| match r {
            RateRefusal::PerClient { retry_after } => Reject::RateLimited { retry_after },
            RateRefusal::Global { retry_after } => Reject::Overloaded { retry_after },
        })?;
        let slot = self.caps.try_acquire(key).map_err(|c| match c {
            CapRefusal::Total => Reject::Capacity,
            CapRefusal::PerClient => Reject::ClientCapacity,
        })?;
        if let Some(auth) = &route.auth {
            if let Err(e) = auth.authenticate(req) {
                debug!(reason = e.reason(), "credential refused");
                return Err(Reject::Unauthorized);
            }
        }
        let protocol = handshake::choose_subprotocol(req, &route.subprotocols)?;
        Ok(Admitted { slot, protocol })
    }

    /// Sessions holding a slot now.
    pub fn open_sessions(&self) -> usize {
        self.caps.open()
    }

    /// Prunes idle rate-limit state every minute until shutdown.
    pub async fn maintain(self: Arc<Self>, life: Lifecycle) {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => self.rates.prune(),
                () = life.stopping() => return,
            }
        }
    }
}
