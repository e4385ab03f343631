//! After the 101: bytes both ways between one WebSocket client and one backend connection,
//! ping/pong liveness, and the close handshake. A session is one hand-written state
//! machine polled by one task: the two directions ([`upstream`], [`downstream`]) never wait
//! on each other, the one [`writer`] sends data, pongs, pings and the close frame, and the
//! liveness timer and shutdown signal are polled alongside. Buffers come from a per-thread
//! [`pool`] only while bytes are in flight, so an idle session holds its small state and
//! nothing else.

mod downstream;
mod liveness;
pub(crate) mod pool;
mod session_state;
mod socket;
mod splice;
mod throttle;
mod upstream;
mod writer;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::config::{Config, MessageType, Route};
use crate::error::SessionEnd;
use crate::frame::{FrameLimits, FrameReader, close};
use crate::metrics::RouteMetrics;
use crate::tcp_info;
use downstream::Downstream;
use liveness::{Evidence, LivenessTimer, Tick};
use session_state::SessionState;
pub(crate) use socket::poll_read_drained;
pub use socket::{ClientStream, Http2Stream};
use throttle::Throttle;
use upstream::Upstream;
use writer::ClientWriter;

/// The settings one session runs with, fixed when it starts.
#[derive(Debug, Clone)]
pub struct PumpConfig {
    pub message_type: MessageType,
    pub limits: FrameLimits,
    /// The most read from the client at once.
    pub read_buffer_size: usize,
    /// The most read from the backend at once (one frame to the client).
    pub backend_read_size: usize,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub close_timeout: Duration,
    /// Throughput cap per direction, bytes per second.
    pub max_bytes_per_second: Option<u64>,
    /// We are the client (`wsgate client`): the "client" stream is a gateway, whose frames
    /// are unmasked, and ours are masked.
    pub client_role: bool,
}

impl PumpConfig {
    pub fn new(cfg: &Config, route: &Route) -> Self {
        Self::from_config(cfg, route.message_type, route.accept_text, false)
    }

    /// `wsgate client`'s sessions: the same limits and liveness from the client's side
    /// (they apply to what the gateway sends, and to the gateway), binary messages out,
    /// text accepted in, our frames masked.
    pub fn client_role(cfg: &Config) -> Self {
        Self::from_config(cfg, MessageType::Binary, true, true)
    }

    fn from_config(
        cfg: &Config,
        message_type: MessageType,
        accept_text: bool,
        client_role: bool,
    ) -> Self {
        let l = &cfg.limits;
        Self {
            message_type,
            limits: FrameLimits {
                max_frame: l.max_frame_size.0,
                max_message: l.max_message_size.0,
                accept_text,
            },
            read_buffer_size: l.read_buffer_size.as_usize(),
            backend_read_size: l.backend_read_size.as_usize(),
            ping_interval: cfg.liveness.ping_interval,
            pong_timeout: cfg.liveness.pong_timeout,
            idle_timeout: cfg.liveness.idle_timeout,
            close_timeout: cfg.liveness.close_timeout,
            max_bytes_per_second: l.max_bytes_per_second.map(|b| b.0),
            client_role,
        }
    }

    /// Boxed: rarely configured, and an idle session should not carry its room.
    fn throttle(&self) -> Option<Box<Throttle>> {
        self.max_bytes_per_second
            .map(|bps| Box::new(Throttle::new(bps, Instant::now())))
    }
}

/// How a session went, for the access log.
#[derive(Debug)]
pub struct Outcome {
    pub end: SessionEnd,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// One session's pump: both sockets and everything the session keeps between reads.
pub struct Pump<'m, C> {
    client: C,
    backend: TcpStream,
    up: Upstream,
    down: Downstream,
    writer: ClientWriter,
    timer: LivenessTimer,
    act: SessionState<'m>,
    close_timeout: Duration,
    draining: bool,
}

/// Where the close handshake is.
struct Closing {
    /// Still forwarding client data until the client's own close frame.
    awaiting_client: bool,
    /// Half-close the backend once our close frame is out (the client closed first).
    shutdown_backend: bool,
}

impl<'m, C> Pump<'m, C>
where
    C: ClientStream,
{
    /// A pump between `client` and `backend`. `early` holds bytes the client sent right
    /// behind its upgrade request.
    pub fn new(
        client: C,
        early: Bytes,
        backend: TcpStream,
        cfg: &PumpConfig,
        metrics: &'m RouteMetrics,
    ) -> Self {
        let now = Instant::now();
        Self {
            client,
            backend,
            up: Upstream::new(
                if cfg.client_role {
                    FrameReader::from_server()
                } else {
                    FrameReader::default()
                },
                cfg.limits,
                cfg.read_buffer_size,
                early,
                cfg.throttle(),
            ),
            down: Downstream::new(
                cfg.message_type == MessageType::Text,
                cfg.backend_read_size,
                cfg.throttle(),
            ),
            writer: ClientWriter::new(cfg.client_role),
            timer: LivenessTimer::new(cfg.ping_interval, cfg.pong_timeout, cfg.idle_timeout, now),
            act: SessionState::new(now, metrics),
            close_timeout: cfg.close_timeout,
            draining: false,
        }
    }

    /// Pipes both ways until one side ends, then closes both. `stopping` resolves when the
    /// gateway shuts down: the session then closes with 1001 once the data already read
    /// from the backend has reached the client.
    ///
    /// Written as a function returning an `async move` block rather than an `async fn`: an
    /// `async fn` moves its arguments into locals, so the future would hold the pump twice.
    /// `stopping` makes that future inside the session's own (so it is stored once).
    #[allow(clippy::manual_async_fn)] // see above: the future's size is the point
    pub fn run<F>(mut self, stopping: impl FnOnce() -> F) -> impl Future<Output = Outcome>
    where
        F: Future<Output = ()>,
    {
        async move {
            // One timer serves the liveness schedule, the throttles and the close deadline.
            let sleep = sleep_until(self.timer.next_wake(&self.act));
            let stopping = stopping();
            tokio::pin!(sleep, stopping);
            let end = poll_fn(|cx| self.poll_open(cx, sleep.as_mut(), stopping.as_mut())).await;
            if let Some(mut closing) = self.begin_close(&end) {
                sleep.as_mut().reset(Instant::now() + self.close_timeout);
                poll_fn(|cx| match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(()),
                    Poll::Pending => self.poll_close(cx, &mut closing),
                })
                .await;
            }
            Outcome {
                end,
                bytes_up: self.act.bytes_up(),
                bytes_down: self.act.bytes_down(),
            }
        }
    }

    /// Runs both directions until the session ends.
    fn poll_open(
        &mut self,
        cx: &mut Context<'_>,
        mut sleep: Pin<&mut Sleep>,
        stopping: Pin<&mut impl Future<Output = ()>>,
    ) -> Poll<SessionEnd> {
        if !self.draining && stopping.poll(cx).is_ready() {
            self.draining = true;
        }
        while sleep.as_mut().poll(cx).is_ready() {
            let seen = self.evidence();
            match self.timer.on_wake(Instant::now(), &self.act, seen) {
                Tick::SendPing => self.writer.ping(),
                Tick::Dead => return Poll::Ready(SessionEnd::PeerGone),
                Tick::Idle => return Poll::Ready(SessionEnd::Idle),
                Tick::Wait => {}
            }
            sleep.as_mut().reset(self.timer.next_wake(&self.act));
        }
        if let Poll::Ready(end) = self
            .up
            .poll(cx, &mut self.client, &mut self.backend, &self.act)
        {
            return Poll::Ready(end);
        }
        while let Some(ping) = self.up.take_ping() {
            self.writer.answer_ping(ping);
        }
        let down = self.down.poll(
            cx,
            &mut self.backend,
            &mut self.writer,
            &mut self.client,
            &self.act,
            self.draining,
        );
        if self.writer.take_ping_left() {
            let written = self.client.transport().and_then(tcp_info::written);
            self.timer.ping_left(written);
        }
        if let Poll::Ready(end) = down {
            return Poll::Ready(end);
        }
        // A throttled direction must be woken when it may move again.
        let resume = [self.up.resume_at(), self.down.resume_at()]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = resume.filter(|at| *at < sleep.deadline()) {
            sleep.as_mut().reset(at);
            if sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }

    /// What the client shows now, for the liveness timer.
    fn evidence(&self) -> Evidence {
        Evidence {
            delivered: self.writer.delivered(),
            tcp: self.client.transport().and_then(tcp_info::send_progress),
        }
    }

    /// Queues the close frame `end` calls for (our own, or the reply to the client's).
    /// `None` when there is nobody to say it to: the client is gone or unresponsive.
    fn begin_close(&mut self, end: &SessionEnd) -> Option<Closing> {
        let facts = end.facts();
        let (code, reason) = facts.close.frame()?;
        // The client closed first: after our reply the connection carries nothing more.
        // Not after a protocol error: the client may still be sending, and closing with
        // unread bytes resets the connection, which would discard a frame held back.
        let last = matches!(end, SessionEnd::ClientClosed(_));
        self.writer
            .begin_close(Some(close::frame(code, reason)), last);
        Some(Closing {
            awaiting_client: facts.awaits_client_close,
            shutdown_backend: facts.shutdown_backend_after_close,
        })
    }

    /// The close handshake: the frame in flight is finished, then the close frame goes out;
    /// after a gateway- or backend-side end the client's data keeps flowing to the backend
    /// until its own close frame. The caller bounds it with `close_timeout`.
    fn poll_close(&mut self, cx: &mut Context<'_>, closing: &mut Closing) -> Poll<()> {
        if closing.awaiting_client
            && self
                .up
                .poll(cx, &mut self.client, &mut self.backend, &self.act)
                .is_ready()
        {
            closing.awaiting_client = false;
        }
        match self.writer.poll_finish(cx, &mut self.client, &self.act) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(())) if closing.awaiting_client => return Poll::Pending,
            Poll::Ready(Ok(())) => {}
        }
        if closing.shutdown_backend {
            // The backend reads a clean EOF.
            if upstream::poll_shutdown_backend(cx, &mut self.backend).is_pending() {
                return Poll::Pending;
            }
            closing.shutdown_backend = false;
        }
        if self.client.tcp().is_some() {
            // Dropping the socket sends the FIN; a shutdown first would only add a syscall.
            return Poll::Ready(());
        }
        // TLS: close_notify; HTTP/2: the end of the stream.
        Pin::new(&mut self.client).poll_shutdown(cx).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle session costs is mostly this future; it holds no buffer.
    #[tokio::test]
    async fn an_idle_pump_is_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let backend = TcpStream::connect(addr).await.unwrap();
        let cfg = Config::default();
        let pump_cfg = PumpConfig::new(&cfg, &Route::new("/", "127.0.0.1:1"));
        let metrics = crate::metrics::Metrics::new().route("/");
        let pump = Pump::new(client, Bytes::new(), backend, &pump_cfg, &metrics);
        let session = pump.run(std::future::pending::<()>);
        let size = std::mem::size_of_val(&session);
        assert!(size <= 1024, "the pump future takes {size} bytes");
    }
}
