//! What one client connection is doing, for the timers that end it: whether its first
//! complete request has arrived (before that it holds a place under
//! `max_pending_handshakes` and must finish by the handshake deadline), and, on HTTP/2,
//! how many streams are open (a connection with none is closed after
//! `limits.http2_idle_timeout`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::Version;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Instant, timeout, timeout_at};

/// Why a connection's timers ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No complete request by the handshake deadline.
    Handshake,
    /// HTTP/2 with no open stream for the idle limit.
    Idle,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// A complete request head has arrived.
    started: bool,
    /// Requests came over HTTP/2 (one connection carries many, so idleness is watched).
    http2: bool,
    /// HTTP/2 requests being answered, and HTTP/2 streams whose session is running.
    open: usize,
    /// Requests so far: a watcher may see only the latest state, so a request opened and
    /// answered between two looks shows up here, not in `open`.
    requests: u64,
}

/// Shared by a connection's service (which reports requests) and its driver (which waits
/// on the timers).
pub struct Activity {
    state: watch::Sender<State>,
    /// The connection's place under `max_pending_handshakes`, given back at its first
    /// request: an HTTP/2 connection carrying sessions must not hold it for its whole life.
    pending: Mutex<Option<OwnedSemaphorePermit>>,
}

/// One open HTTP/2 request or upgraded stream; the count drops when this does. Empty on
/// HTTP/1.1, whose sessions then hold nothing of the connection they came on.
pub struct OpenStream(Option<Arc<Activity>>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        if let Some(activity) = &self.0 {
            activity
                .state
                .send_modify(|s| s.open = s.open.saturating_sub(1));
        }
    }
}

impl Activity {
    pub fn new(pending: OwnedSemaphorePermit) -> Arc<Self> {
        Arc::new(Self {
            state: watch::Sender::new(State::default()),
            pending: Mutex::new(Some(pending)),
        })
    }

    /// A complete request head of `version` has arrived. On HTTP/2 it counts as open until
    /// the returned guard drops (when it is answered, or when its session ends if it is
    /// upgraded).
    pub fn request(self: &Arc<Self>, version: Version) -> OpenStream {
        drop(
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let http2 = version == Version::HTTP_2;
        self.state.send_modify(|s| {
            s.started = true;
            s.http2 |= http2;
            s.open += usize::from(http2);
            s.requests += 1;
        });
        OpenStream(http2.then(|| self.clone()))
    }

    /// Resolves when the connection should end: [`Expiry::Handshake`] if no request is
    /// complete by `deadline`, [`Expiry::Idle`] once an HTTP/2 connection has had no open
    /// stream for `idle`. Never resolves for an HTTP/1.1 connection past its first request
    /// (hyper's header timeout bounds the wait for its next one). Cancel-safe.
    pub async fn expired(&self, deadline: Instant, idle: Duration) -> Expiry {
        let mut seen = self.state.subscribe();
        if timeout_at(deadline, seen.wait_for(|s| s.started))
            .await
            .is_err()
        {
            return Expiry::Handshake;
        }
        loop {
            // The sender lives in `self`, so these waits end only on a matching state.
            let idle_since = seen.wait_for(|s| s.http2 && s.open == 0).await;
            let Ok(requests) = idle_since.map(|s| s.requests) else {
                return std::future::pending().await;
            };
            let busy = seen.wait_for(|s| s.open > 0 || s.requests != requests);
            if timeout(idle, busy).await.is_err() {
                return Expiry::Idle;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    fn activity() -> (Arc<Semaphore>, Arc<Activity>) {
        let cap = Arc::new(Semaphore::new(1));
        let permit = cap.clone().try_acquire_owned().unwrap();
        (cap, Activity::new(permit))
    }

    #[tokio::test(start_paused = true)]
    async fn no_request_by_the_deadline_is_a_handshake_expiry() {
        let (_, a) = activity();
        let start = Instant::now();
        let end = a.expired(start + Duration::from_secs(3), Duration::from_secs(60));
        assert_eq!(end.await, Expiry::Handshake);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_request_gives_back_the_pending_place() {
        let (cap, a) = activity();
        assert_eq!(cap.available_permits(), 0);
        let _stream = a.request(Version::HTTP_11);
        assert_eq!(cap.available_permits(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn http1_past_its_first_request_never_expires_here() {
        let (_, a) = activity();
        drop(a.request(Version::HTTP_11));
        let start = Instant::now();
        let end = timeout(
            Duration::from_secs(600),
            a.expired(start + Duration::from_secs(1), Duration::from_secs(1)),
        );
        assert!(end.await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn http2_expires_only_after_idle_with_no_open_stream() {
        let (_, a) = activity();
        let start = Instant::now();
        let idle = Duration::from_secs(10);
        let stream = a.request(Version::HTTP_2);
        let watcher = {
            let a = a.clone();
            tokio::spawn(async move { a.expired(start + Duration::from_secs(1), idle).await })
        };
        // An open stream (a session) keeps the connection however long it lasts.
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!watcher.is_finished());
        drop(stream);
        let dropped_at = Instant::now();
        // A stream opened and answered inside the idle window restarts it.
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(a.request(Version::HTTP_2));
        let restarted_at = Instant::now();
        assert_eq!(watcher.await.unwrap(), Expiry::Idle);
        assert_eq!(restarted_at.elapsed(), idle);
        assert!(dropped_at.elapsed() > idle);
    }
}
