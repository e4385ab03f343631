//! One WebSocket session, from the completed upgrade to its access-log line.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::Either;
use hyper::upgrade::{OnUpgrade, Parts, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::error::SessionEnd;
use crate::generation::{RoutePlan, Shared};
use crate::metrics::RouteMetrics;
use crate::pump::{ClientStream, Http2Stream, Outcome, Pump, PumpConfig};
use crate::tls::ServerTlsStream;

/// Who and what a session connects, for its log line.
pub struct SessionInfo {
    pub id: u64,
    pub client: SocketAddr,
    pub route: Arc<RoutePlan>,
    pub backend_addr: SocketAddr,
    /// `http/1.1` or `h2` (RFC 8441).
    pub protocol: &'static str,
    /// For an HTTP/2 session, the client's TCP socket (shared with the connection's other
    /// streams), for liveness to read its kernel's view of the client.
    pub transport: Option<Arc<OwnedFd>>,
}

/// Waits for hyper to hand over the upgraded connection, pumps, and logs the outcome.
/// (A function returning an `async move` block, not an `async fn`: an `async fn` would keep
/// a second copy of its arguments in every idle session's future.)
#[allow(clippy::manual_async_fn)] // see above: the future's size is the point
pub fn run(
    on_upgrade: OnUpgrade,
    backend: TcpStream,
    info: SessionInfo,
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send {
    async move {
        let started = Instant::now();
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                debug!(conn_id = info.id, error = %e, "client left before the upgrade completed");
                return;
            }
        };
        let metrics = &info.route.metrics;
        let stopping = || shared.life.stopping();
        metrics.session_opened();
        let outcome = pump(upgraded, backend, &info, stopping).await;
        metrics.session_ended();
        shared
            .metrics
            .session_closed(&outcome.end, started.elapsed().as_secs_f64());
        log_access(&info, &outcome, started);
    }
}

/// The session's pump for the connection hyper upgraded. Plain TCP and TLS over HTTP/1.1
/// skip hyper's boxed IO: the pump then reaches the TCP socket itself; HTTP/2 streams go
/// through it. The TLS and HTTP/2 pumps are boxed, so that an idle plain session does not
/// carry the room of a TLS one. A plain function, not part of [`run`]'s `async` block:
/// there, the temporaries of these branches would take room in every session's future
/// for its whole life (2.5 KiB, where the plain pump's own future takes 1 KiB).
fn pump<'s, F>(
    upgraded: Upgraded,
    backend: TcpStream,
    info: &'s SessionInfo,
    stopping: impl FnOnce() -> F + Send + 's,
) -> impl Future<Output = Outcome> + Send + 's
where
    F: Future<Output = ()> + Send + 's,
{
    let (cfg, metrics) = (&info.route.pump, &info.route.metrics);
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => Either::Left(unwrapped(parts, backend, cfg, metrics).run(stopping)),
        Err(upgraded) => {
            let boxed: BoxedPump<'s> = match upgraded.downcast::<TokioIo<ServerTlsStream>>() {
                Ok(parts) => Box::pin(unwrapped(parts, backend, cfg, metrics).run(stopping)),
                Err(upgraded) => {
                    let client = Http2Stream::new(TokioIo::new(upgraded), info.transport.clone());
                    Box::pin(Pump::new(client, Bytes::new(), backend, cfg, metrics).run(stopping))
                }
            };
            Either::Right(boxed)
        }
    }
}

/// A TLS or HTTP/2 session's pump future.
type BoxedPump<'s> = Pin<Box<dyn Future<Output = Outcome> + Send + 's>>;

/// The pump for a client stream taken out of hyper's wrapper.
fn unwrapped<'m, C: ClientStream>(
    parts: Parts<TokioIo<C>>,
    backend: TcpStream,
    cfg: &PumpConfig,
    metrics: &'m RouteMetrics,
) -> Pump<'m, C> {
    // `read_buf` is a view into hyper's whole read buffer: holding even an empty one would
    // keep that buffer alive for the session's life.
    let early = if parts.read_buf.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(&parts.read_buf)
    };
    Pump::new(parts.io.into_inner(), early, backend, cfg, metrics)
}

/// The one line per finished session; a failed backend also gets a warning of its own.
fn log_access(info: &SessionInfo, outcome: &Outcome, started: Instant) {
    let end = &outcome.end;
    match end {
        SessionEnd::BackendIo(kind) => {
            warn!(conn_id = info.id, error = %kind, "backend connection failed");
        }
        SessionEnd::BackendInvalidUtf8 => {
            warn!(
                conn_id = info.id,
                "backend sent invalid utf-8 on a text route"
            );
        }
        _ => {}
    }
    info!(
        conn_id = info.id,
        client = %info.client,
        route = %info.route.path,
        backend = %info.backend_addr,
        protocol = info.protocol,
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        bytes_up = outcome.bytes_up,
        bytes_down = outcome.bytes_down,
        close_code = end.logged_code(),
        ended_by = end.ended_by().as_str(),
        end = end.label(),
        "session closed"
    );
}
