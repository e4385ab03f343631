//! Backend to client, plus everything else that writes to the client: pings on schedule and
//! the judgement of a silent client. One loop, so that a client which stops reading still
//! has its liveness judged, and the backend is read only when the previous message has left.

use std::future::Future;

use bytes::Bytes;
use futures_util::Sink;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::PumpConfig;
use super::activity::Activity;
use super::backend_read::{Read, Utf8Carry, read_ready};
use super::liveness::{LivenessTimer, Tick};
use super::throttle::Throttle;
use super::writer::ClientWriter;
use crate::config::MessageType;
use crate::error::SessionEnd;

/// Runs until the backend ends, the client is judged gone or idle, or shutdown completes.
/// On shutdown it first delivers the message already read, then returns.
pub async fn run<Si>(
    back: &OwnedReadHalf,
    writer: &mut ClientWriter<Si>,
    cfg: &PumpConfig,
    act: &Activity<'_>,
    stopping: impl Future<Output = ()>,
) -> SessionEnd
where
    Si: Sink<Message, Error = WsError> + Unpin,
{
    let mut timer = LivenessTimer::new(
        cfg.ping_interval,
        cfg.pong_timeout,
        cfg.idle_timeout,
        Instant::now(),
    );
    let sleep = sleep_until(timer.next_wake(act));
    tokio::pin!(sleep, stopping);
    let mut text = (cfg.message_type == MessageType::Text).then(Utf8Carry::default);
    let (mut draining, mut ping_waiting) = (false, false);
    let mut throttle = cfg
        .max_bytes_per_second
        .map(|bps| Throttle::new(bps, Instant::now()));
    let mut resume_at: Option<Instant> = None;
    loop {
        if writer.is_idle() {
            if draining {
                return SessionEnd::Shutdown;
            }
            if ping_waiting {
                writer.queue(Message::Ping(Bytes::new()));
                act.pinged();
                ping_waiting = false;
            }
        }
        let idle = writer.is_idle();
        tokio::select! {
            biased;
            sent = writer.drive(), if !idle => {
                if sent.is_err() {
                    return SessionEnd::ClientGone;
                }
            }
            () = &mut stopping, if !draining => draining = true,
            () = &mut sleep => {
                match timer.on_wake(Instant::now(), act, writer.delivered()) {
                    Tick::SendPing => ping_waiting = true,
                    Tick::Dead => return SessionEnd::PeerGone,
                    Tick::Idle => return SessionEnd::Idle,
                    Tick::Wait => {}
                }
                sleep.as_mut().reset(timer.next_wake(act));
            }
            () = async { if let Some(at) = resume_at { sleep_until(at).await } }, if resume_at.is_some() => {
                resume_at = None;
            }
            ready = back.readable(), if idle && !draining && resume_at.is_none() => {
                if let Err(e) = ready {
                    return SessionEnd::BackendIo(e.kind());
                }
                match read_ready(back, cfg.backend_read_size, text.as_mut()) {
                    Read::Message(msg, n) => {
                        act.moved_down(n);
                        writer.queue(msg);
                        resume_at = throttle.as_mut().and_then(|t| t.charge(n, Instant::now()));
                    }
                    Read::Nothing => {}
                    Read::Eof => return SessionEnd::BackendEof,
                    Read::InvalidUtf8 => return SessionEnd::BackendInvalidUtf8,
                    Read::Failed(kind) => return SessionEnd::BackendIo(kind),
                }
            }
        }
    }
}
