//! The periodic backend check behind `readiness.check_backend`: a route is healthy if any
//! of its backends accepts a TCP connection. Probes themselves never touch a backend; they
//! read what this check last saw (see [`crate::health`]).

use std::sync::Arc;

use tokio::time::{MissedTickBehavior, interval, timeout};
use tracing::{info, warn};

use crate::backend;
use crate::generation::Shared;

/// Checks every route's backends on `readiness.interval` while `check_backend` is on,
/// until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut every = interval(shared.current().cfg.readiness.interval);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shared.life.stopping() => return,
        }
        let generation = shared.current();
        if !generation.cfg.readiness.check_backend {
            shared.health.set_backends_ok(true);
            continue;
        }
        let mut all_ok = true;
        for route in &generation.cfg.routes {
            let limit = generation.cfg.connect_timeout_for(route);
            let reached = timeout(limit * 2, backend::connect(&route.backend.0, limit)).await;
            if !matches!(reached, Ok(Ok(_))) {
                all_ok = false;
                warn!(route = %route.path, "readiness: no backend of this route accepts connections");
            }
        }
        let was = shared.health.set_backends_ok(all_ok);
        if all_ok && !was {
            info!("readiness: every route has a backend again");
        }
    }
}
