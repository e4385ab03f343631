//! What the two directions of one session tell each other: when the client was last heard,
//! when data last moved, whether the client-to-backend half is stuck on a slow backend, and
//! the byte counts. Plain relaxed atomics: both halves run in the same task, so these are
//! uncontended, and they keep the session future `Send`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use tokio::time::Instant;

use crate::metrics::RouteMetrics;

pub struct SessionState<'m> {
    start: Instant,
    /// The route's counters: bytes and messages are added as they move.
    metrics: &'m RouteMetrics,
    /// Microseconds since `start` at which any frame last arrived from the client.
    heard_us: AtomicU64,
    /// Microseconds since `start` at which a data message last moved either way.
    data_us: AtomicU64,
    /// The client-to-backend half is waiting for the backend to accept bytes, so it is not
    /// reading the client: silence from the client is then not the client's fault.
    upstream_blocked: AtomicBool,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl<'m> SessionState<'m> {
    pub fn new(start: Instant, metrics: &'m RouteMetrics) -> Self {
        Self {
            start,
            metrics,
            heard_us: AtomicU64::new(0),
            data_us: AtomicU64::new(0),
            upstream_blocked: AtomicBool::new(false),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        }
    }

    fn since_start(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    fn at(&self, us: u64) -> Instant {
        self.start + std::time::Duration::from_micros(us)
    }

    pub fn heard_client(&self) {
        self.heard_us
            .store(self.since_start(Instant::now()), Relaxed);
    }

    /// When the client was last heard (the session start if never).
    pub fn heard_at(&self) -> Instant {
        self.at(self.heard_us.load(Relaxed))
    }

    /// `n` payload bytes reached the backend.
    pub fn moved_up(&self, n: usize) {
        self.bytes_up.fetch_add(n as u64, Relaxed);
        self.metrics.moved_up(n as u64, 0);
        self.data_us
            .store(self.since_start(Instant::now()), Relaxed);
    }

    /// The client completed `n` data messages.
    pub fn messages_up(&self, n: u32) {
        self.metrics.moved_up(0, u64::from(n));
    }

    /// `n` bytes came from the backend, making `messages` messages for the client.
    pub fn moved_down(&self, n: usize, messages: u32) {
        self.bytes_down.fetch_add(n as u64, Relaxed);
        self.metrics.moved_down(n as u64, u64::from(messages));
        self.data_us
            .store(self.since_start(Instant::now()), Relaxed);
    }

    /// When data last moved either way (the session start if never).
    pub fn data_at(&self) -> Instant {
        self.at(self.data_us.load(Relaxed))
    }

    pub fn set_upstream_blocked(&self, blocked: bool) {
        self.upstream_blocked.store(blocked, Relaxed);
    }

    pub fn upstream_blocked(&self) -> bool {
        self.upstream_blocked.load(Relaxed)
    }

    pub fn pinged(&self) {
        self.metrics.ping_sent();
    }

    pub fn bytes_up(&self) -> u64 {
        self.bytes_up.load(Relaxed)
    }

    pub fn bytes_down(&self) -> u64 {
        self.bytes_down.load(Relaxed)
    }
}
