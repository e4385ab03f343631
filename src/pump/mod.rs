//! After the 101: bytes both ways between one WebSocket client and one backend connection,
//! ping/pong liveness, and the close handshake. The two directions are separate loops
//! joined by one `select!`, so neither waits on the other; the close frame is chosen in one
//! place ([`SessionEnd::close_frame`]) and sent by the one writer.

mod activity;
mod backend_read;
mod downstream;
mod liveness;
mod throttle;
mod upstream;
mod writer;

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::config::{Config, MessageType, Route};
use crate::error::SessionEnd;
use crate::metrics::RouteMetrics;
use activity::Activity;
use writer::ClientWriter;

/// The settings one session runs with, fixed when it starts.
#[derive(Debug, Clone)]
pub struct PumpConfig {
    pub message_type: MessageType,
    pub accept_text: bool,
    pub backend_read_size: usize,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub close_timeout: Duration,
    /// Throughput cap per direction, bytes per second.
    pub max_bytes_per_second: Option<u64>,
}

impl PumpConfig {
    pub fn new(cfg: &Config, route: &Route) -> Self {
        Self {
            message_type: route.message_type,
            accept_text: route.accept_text,
            backend_read_size: cfg.limits.backend_read_size.as_usize(),
            ping_interval: cfg.liveness.ping_interval,
            pong_timeout: cfg.liveness.pong_timeout,
            idle_timeout: cfg.liveness.idle_timeout,
            close_timeout: cfg.liveness.close_timeout,
            max_bytes_per_second: cfg.limits.max_bytes_per_second.map(|b| b.0),
        }
    }
}

/// How a session went, for the access log.
#[derive(Debug)]
pub struct Outcome {
    pub end: SessionEnd,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// Pipes `ws` and `backend` until one side ends, then closes both. `stopping` resolves when
/// the gateway shuts down: the session then closes with 1001 once the data already read
/// from the backend has reached the client.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    backend: TcpStream,
    cfg: &PumpConfig,
    metrics: &RouteMetrics,
    stopping: impl Future<Output = ()>,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let act = Activity::new(Instant::now(), metrics);
    let (sink, mut stream) = ws.split();
    let mut writer = ClientWriter::new(sink);
    let (back_rx, mut back_tx) = backend.into_split();

    let mut up = Box::pin(upstream::run(&mut stream, &mut back_tx, cfg, &act));
    let mut up_done = false;
    let end = tokio::select! {
        biased;
        end = &mut up => {
            up_done = true;
            end
        }
        end = downstream::run(&back_rx, &mut writer, cfg, &act, stopping) => end,
    };

    // The close handshake, bounded as a whole by close_timeout.
    let deadline = Instant::now() + cfg.close_timeout;
    let closing = async {
        if let Some((code, reason)) = end.close_frame() {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = writer.send(Message::Close(Some(frame))).await;
            if end.awaits_client_close() && !up_done {
                // Keep forwarding until the client's own close frame (or failure).
                let _ = (&mut up).await;
            }
        } else if matches!(end, SessionEnd::ClientClosed(_)) {
            // tungstenite has queued the reply to the client's close frame.
            let _ = writer.flush().await;
        }
    };
    let _ = timeout_at(deadline, closing).await;
    drop(up);
    if matches!(end, SessionEnd::ClientClosed(_)) {
        // Half-close first, so the backend reads a clean EOF; dropping then closes it.
        let _ = timeout_at(deadline, back_tx.shutdown()).await;
    }
    Outcome {
        end,
        bytes_up: act.bytes_up(),
        bytes_down: act.bytes_down(),
    }
}
