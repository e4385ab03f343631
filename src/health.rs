//! Liveness and readiness. Alive while the process serves at all; ready while it accepts
//! new sessions: not once draining has begun, and (with `readiness.check_backend`) not
//! while some route has no backend accepting connections, as last seen by a periodic check
//! (probes themselves never touch a backend).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::{MissedTickBehavior, interval, timeout};
use tracing::{info, warn};

use crate::backend;
use crate::generation::Shared;

pub struct Health {
    draining: AtomicBool,
    backends_ok: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            draining: AtomicBool::new(false),
            backends_ok: AtomicBool::new(true),
        }
    }
}

impl Health {
    pub fn ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && self.backends_ok.load(Ordering::Acquire)
    }

    /// From now on not ready: load balancers should stop sending new clients.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// Checks every route's backends on `readiness.interval` while `check_backend` is on,
/// until shutdown. A route is healthy if any of its backends accepts a TCP connection.
pub async fn check_backends(shared: Arc<Shared>) {
    let mut every = interval(shared.current().cfg.readiness.interval);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shared.life.stopping() => return,
        }
        let generation = shared.current();
        if !generation.cfg.readiness.check_backend {
            shared.health.backends_ok.store(true, Ordering::Release);
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
        let was = shared.health.backends_ok.swap(all_ok, Ordering::AcqRel);
        if all_ok && !was {
            info!("readiness: every route has a backend again");
        }
    }
}
