//! Owns shutdown: one token every connection and session watches, one tracker that knows
//! every task still running, and the bounded wait for them at the end.

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::timeout;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

#[derive(Clone, Default)]
pub(crate) struct Lifecycle {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Lifecycle {
    /// Runs `task` as a tracked task: the drain waits for it.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Resolves once shutdown has begun. Cancel-safe.
    pub fn stopping(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Starts the shutdown (sessions close with 1001, idle HTTP connections end) and waits
    /// at most `grace` for every tracked task; what is left is dropped when the runtime ends.
    pub async fn drain(&self, grace: Duration) {
        self.stop.cancel();
        self.tasks.close();
        let open = self.tasks.len();
        if open > 0 {
            info!(open, grace = ?grace, "draining open connections");
        }
        if timeout(grace, self.tasks.wait()).await.is_err() {
            warn!(left = self.tasks.len(), grace = ?grace, "drain deadline passed; dropping the rest");
        }
    }
}

/// SIGTERM and SIGINT handlers, installed when this is created: from then on a signal is
/// never the default action (exit 143) but a request to drain. Create it before the
/// listener is bound or "listening" is logged, so a supervisor that signals as soon as it
/// sees the process ready is always honoured.
pub struct Signals {
    term: Signal,
    int: Signal,
}

/// The SIGHUP handler (a reload request). Without it, SIGHUP would end the process.
pub struct ReloadSignal(Signal);

impl Signals {
    /// Installs the shutdown and reload handlers. Must run inside the tokio runtime.
    pub fn install() -> std::io::Result<(Self, ReloadSignal)> {
        let signals = Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        };
        Ok((signals, ReloadSignal(signal(SignalKind::hangup())?)))
    }

    /// Resolves on the first signal, logging which. A second signal exits at once.
    pub async fn shutdown(mut self) {
        let which = self.next().await;
        info!(
            signal = which,
            "shutdown signal received; draining (send it again to exit now)"
        );
        tokio::spawn(async move {
            let again = self.next().await;
            warn!(signal = again, "second signal; exiting without draining");
            std::process::exit(130);
        });
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

impl ReloadSignal {
    /// The next SIGHUP.
    pub async fn recv(&mut self) {
        self.0.recv().await;
    }
}
