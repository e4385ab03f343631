//! Owns shutdown: one token every connection and session watches, one tracker that knows
//! every task still running, and the bounded wait for them at the end.

use std::future::Future;
use std::time::Duration;

use tokio::time::timeout;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

#[derive(Clone, Default)]
pub struct Lifecycle {
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

/// Resolves on the first SIGTERM or SIGINT, logging which. A second signal exits at once.
pub async fn signal() {
    let which = first_signal().await;
    info!(
        signal = which,
        "shutdown signal received; draining (send it again to exit now)"
    );
    tokio::spawn(async {
        let again = first_signal().await;
        warn!(signal = again, "second signal; exiting without draining");
        std::process::exit(130);
    });
}

#[cfg(unix)]
async fn first_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without handlers the default disposition still ends the process on a signal.
        warn!("could not install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn first_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
