//! Client to backend: every data message's payload written to the backend in order.
//! Waiting on a slow backend here is the backpressure: the client's frames stay in the
//! kernel until the backend takes what came before.

use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::PumpConfig;
use super::activity::Activity;
use super::throttle::Throttle;
use crate::error::SessionEnd;

/// Runs until the client closes, fails, or the backend stops accepting bytes.
/// Cancel-safety: dropping it mid-write loses the rest of that one message, which is only
/// done once the session is ending anyway.
pub async fn run<St>(
    stream: &mut St,
    back: &mut OwnedWriteHalf,
    cfg: &PumpConfig,
    act: &Activity<'_>,
) -> SessionEnd
where
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut throttle = cfg
        .max_bytes_per_second
        .map(|bps| Throttle::new(bps, Instant::now()));
    loop {
        let msg = match stream.next().await {
            None => return SessionEnd::ClientGone,
            Some(Err(e)) => return classify(e),
            Some(Ok(msg)) => msg,
        };
        act.heard_client();
        let payload = match msg {
            Message::Binary(bytes) => bytes,
            Message::Text(text) if cfg.accept_text => text.into(),
            Message::Text(_) => return SessionEnd::TextRefused,
            Message::Close(frame) => return SessionEnd::ClientClosed(frame.map(|f| f.code.into())),
            // Pings are answered by tungstenite on the next read; pongs only prove life.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if payload.is_empty() {
            continue;
        }
        act.set_upstream_blocked(true);
        let written = back.write_all(&payload).await;
        act.set_upstream_blocked(false);
        if let Err(e) = written {
            return SessionEnd::BackendIo(e.kind());
        }
        act.moved_up(payload.len());
        if let Some(until) = throttle
            .as_mut()
            .and_then(|t| t.charge(payload.len(), Instant::now()))
        {
            // Not reading the client is the point here; its silence is not its fault.
            act.set_upstream_blocked(true);
            sleep_until(until).await;
            act.set_upstream_blocked(false);
        }
    }
}

/// Maps a read error from the client to how the session ends.
fn classify(e: WsError) -> SessionEnd {
    match e {
        WsError::Capacity(_) => SessionEnd::TooBig,
        WsError::Utf8(_) => SessionEnd::InvalidUtf8,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | WsError::Io(_)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed => SessionEnd::ClientGone,
        _ => SessionEnd::Protocol,
    }
}
