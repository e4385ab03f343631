//! The one writer towards the client. Data, pings and the final close frame all pass here,
//! one message at a time: a message is queued only when the previous one has reached the
//! socket, so nothing piles up in memory when the client reads slowly.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Sink;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub struct ClientWriter<Si> {
    sink: Si,
    queued: Option<Message>,
    flushing: bool,
    /// Whether the message being flushed carries data (pings and closes do not count).
    flushing_data: bool,
    /// Data messages that have fully reached the socket: proof the client is draining us.
    delivered: u64,
}

impl<Si> ClientWriter<Si>
where
    Si: Sink<Message, Error = WsError> + Unpin,
{
    pub fn new(sink: Si) -> Self {
        Self {
            sink,
            queued: None,
            flushing: false,
            flushing_data: false,
            delivered: 0,
        }
    }

    /// Nothing queued or half-written: a new message may be queued.
    pub fn is_idle(&self) -> bool {
        self.queued.is_none() && !self.flushing
    }

    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Queues `msg`; [`Self::drive`] moves it to the socket. Only call when idle.
    pub fn queue(&mut self, msg: Message) {
        debug_assert!(self.is_idle(), "queue() while a message is in flight");
        self.queued = Some(msg);
    }

    /// Moves the queued message (and any reply tungstenite queued, such as a pong) into the
    /// socket. Cancel-safe: progress is kept in `self`, so a dropped call can be resumed.
    pub fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.queued.is_some() {
            ready!(Pin::new(&mut self.sink).poll_ready(cx))?;
            if let Some(msg) = self.queued.take() {
                self.flushing_data = msg.is_binary() || msg.is_text();
                Pin::new(&mut self.sink).start_send(msg)?;
                self.flushing = true;
            }
        }
        if self.flushing {
            ready!(Pin::new(&mut self.sink).poll_flush(cx))?;
            self.flushing = false;
            self.delivered += u64::from(self.flushing_data);
        }
        Poll::Ready(Ok(()))
    }

    pub async fn drive(&mut self) -> Result<(), WsError> {
        poll_fn(|cx| self.poll_drive(cx)).await
    }

    /// Finishes what is in flight, then sends `msg`.
    pub async fn send(&mut self, msg: Message) -> Result<(), WsError> {
        self.drive().await?;
        self.queue(msg);
        self.drive().await
    }

    /// Writes out whatever tungstenite holds (e.g. the reply to a client's close frame).
    pub async fn flush(&mut self) -> Result<(), WsError> {
        self.drive().await?;
        poll_fn(|cx| Pin::new(&mut self.sink).poll_flush(cx)).await
    }
}
