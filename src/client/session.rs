//! One local connection, from accept to its access-log line: open a session (with
//! retries), then the same pump as the gateway's, with the roles turned around: the
//! WebSocket side is the gateway (its frames unmasked, ours masked) and the TCP side is the
//! local program. A local EOF becomes close 1000 after the data; the gateway's close
//! becomes a local EOF after the data. A session that ended is never re-opened: the local
//! connection ends with it (a byte stream cannot be resumed without a protocol for it).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{info, warn};

use super::dial::GatewayStream;
use super::plan::TunnelPlan;
use super::retry;
use super::stats::ClientStats;
use crate::error::{SessionEnd, Side};
use crate::lifecycle::Lifecycle;
use crate::pump::{Outcome, Pump};
use crate::socket_options;

/// Serves `local` until its session ends, or until it could not be opened.
pub async fn serve(
    local: TcpStream,
    peer: SocketAddr,
    plan: Arc<TunnelPlan>,
    stats: Arc<ClientStats>,
    life: Lifecycle,
) {
    let started = Instant::now();
    let attempted = tokio::select! {
        attempted = retry::open(&plan, &stats) => attempted,
        () = life.stopping() => return,
    };
    let url = plan
        .urls
        .get(attempted.url)
        .map(|u| u.host_port())
        .unwrap_or_default();
    let dialed = match attempted.result {
        Ok(dialed) => dialed,
        Err(e) => {
            stats.open_failed();
            warn!(
                tunnel = %plan.name,
                local = %peer,
                url = %url,
                attempts = attempted.attempts,
                duration_ms = millis(started),
                error = %e,
                end = "open_failed",
                reason = e.label(),
                "session could not be opened; local connection closed"
            );
            return;
        }
    };
    // No Nagle (request/response programs), keepalive unless on loopback: as the gateway's
    // backend sockets.
    let _ = socket_options::tune_backend(&local, peer.ip());
    tracing::debug!(
        local = %peer,
        url = %url,
        subprotocol = dialed.opened.subprotocol.as_deref().unwrap_or(""),
        "session opened"
    );
    let early = dialed.opened.early;
    let (cfg, metrics) = (&plan.pump, &plan.metrics);
    let stopping = || life.stopping();
    metrics.session_opened();
    let outcome = match dialed.stream {
        GatewayStream::Plain(tcp) => {
            Pump::new(tcp, early, local, cfg, metrics)
                .run(stopping)
                .await
        }
        GatewayStream::Tls(tls) => {
            Pump::new(*tls, early, local, cfg, metrics)
                .run(stopping)
                .await
        }
    };
    metrics.session_ended();
    stats.closed(&outcome);
    log_access(&plan, peer, &url, attempted.attempts, &outcome, started);
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Who ended the session, from the client's side: the pump's "client" is the gateway and
/// its "backend" the local program.
pub fn ended_by(end: &SessionEnd) -> &'static str {
    match end.ended_by() {
        Side::Client => "gateway",
        Side::Backend => "local",
        Side::Gateway => "client",
    }
}

/// Why the session ended, named from the client's side.
pub fn end_label(end: &SessionEnd) -> &'static str {
    match end.label() {
        "client_closed" => "gateway_closed",
        "client_gone" => "gateway_gone",
        "backend_eof" => "local_eof",
        "backend_error" => "local_error",
        other => other,
    }
}

/// The one line per session, like the gateway's.
fn log_access(
    plan: &TunnelPlan,
    peer: SocketAddr,
    url: &str,
    attempts: u32,
    outcome: &Outcome,
    started: Instant,
) {
    let end = &outcome.end;
    if let SessionEnd::BackendIo(kind) = end {
        warn!(tunnel = %plan.name, local = %peer, error = %kind, "local connection failed");
    }
    info!(
        tunnel = %plan.name,
        local = %peer,
        url = %url,
        attempts,
        duration_ms = millis(started),
        // The pump's "up" is towards its backend, here the local program.
        bytes_up = outcome.bytes_down,
        bytes_down = outcome.bytes_up,
        close_code = end.logged_code(),
        ended_by = ended_by(end),
        end = end_label(end),
        "session closed"
    );
}
