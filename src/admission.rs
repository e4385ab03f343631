//! Admission at the door: everything decided before the 101, cheapest first, each refusal
//! an HTTP status the client can act on. Client certificate names, Origin, the client's
//! own new-session rate, concurrent-session caps, credentials, the subprotocol, and last
//! the global new-session rate, so that only clients admitted on every other count spend
//! everybody's budget. The backend is connected only after all of them pass. The rules
//! themselves are built with each config generation ([`crate::policy`]); this module
//! only applies them.

use std::net::IpAddr;

use hyper::Request;
use hyper::header::{HeaderValue, ORIGIN};
use tracing::debug;

use crate::client_ip::ipv6_prefix_key;
use crate::error::Reject;
use crate::generation::{Generation, RoutePlan};
use crate::handshake;
use crate::policy::{CapRefusal, OriginCheck, RateRefusal, SessionCaps, SessionSlot};

/// What passing admission yields: the session's slot under the caps and its subprotocol.
pub struct Admitted {
    pub slot: SessionSlot,
    pub protocol: Option<HeaderValue>,
}

/// Who is asking: the resolved client address and, over mutual TLS, the names in its
/// verified certificate.
pub struct Client<'a> {
    pub ip: IpAddr,
    pub identity: Option<&'a [String]>,
}

/// Checks `req` from `client` for `route` under the rules of `generation`, taking a slot
/// from `caps`. The handshake itself has been checked.
pub fn admit<B>(
    req: &Request<B>,
    route: &RoutePlan,
    client: Client<'_>,
    generation: &Generation,
    caps: &SessionCaps,
) -> Result<Admitted, Reject> {
    if !route.client_names.is_empty() {
        let named = client
            .identity
            .is_some_and(|names| names.iter().any(|n| route.client_names.contains(n)));
        if !named {
            return Err(Reject::ClientCertificate);
        }
    }
    let origin = req.headers().get(ORIGIN).map(HeaderValue::as_bytes);
    if route.origins.check(origin) == OriginCheck::Refused {
        return Err(Reject::Origin);
    }
    let key = ipv6_prefix_key(client.ip, generation.cfg.limits.ipv6_prefix);
    generation.rates.check_client(key).map_err(rate_refusal)?;
    let slot = caps.try_acquire(key).map_err(|c| match c {
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
    generation.rates.check_global().map_err(rate_refusal)?;
    Ok(Admitted { slot, protocol })
}

fn rate_refusal(r: RateRefusal) -> Reject {
    match r {
        RateRefusal::PerClient { retry_after } => Reject::RateLimited { retry_after },
        RateRefusal::Global { retry_after } => Reject::Overloaded { retry_after },
    }
}
