//! The readiness state. Alive while the process serves at all; ready while it accepts
//! new sessions: not once draining has begun, and (with `readiness.check_backend`) not
//! while some route has no backend accepting connections, as last seen by
//! [`crate::ops::backend_check`] (probes themselves never touch a backend).

use std::sync::atomic::{AtomicBool, Ordering};

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

    /// Records whether every route had a backend at the last check; returns what was
    /// recorded before.
    pub fn set_backends_ok(&self, ok: bool) -> bool {
        self.backends_ok.swap(ok, Ordering::AcqRel)
    }
}
