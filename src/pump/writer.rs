//! The one writer towards the client. Data frames, pongs, pings and the final close frame
//! all pass here, one frame at a time: a frame is started only when the previous one has
//! reached the socket, so nothing piles up in memory when the client reads slowly, and a
//! control frame never lands inside a data frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::pool;
use super::session_state::SessionState;
use super::socket::{self, ClientStream};
use super::splice::SplicedFrame;
use crate::frame::close::{control_frame, masked};
use crate::frame::mask::MaskKeys;
use crate::frame::{OpCode, UnansweredPings};

/// The bytes of one frame on their way out.
enum Frame {
    /// Header and payload in a pooled buffer.
    Data(Box<[u8]>),
    /// The gateway's own ping, whose arrival liveness watches for.
    Ping(Vec<u8>),
    /// A pong.
    Control(Vec<u8>),
    /// The close frame.
    Close(Vec<u8>),
    /// Header here, payload in a pipe (plain-TCP clients).
    Spliced(SplicedFrame),
}

impl Frame {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Data(b) => b,
            Self::Ping(v) | Self::Control(v) | Self::Close(v) => v,
            Self::Spliced(_) => &[],
        }
    }
}

struct InFlight {
    frame: Frame,
    pos: usize,
    end: usize,
}

/// What the frame being flushed was, for what its arrival proves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flushing {
    Data,
    Ping,
    Other,
}

#[derive(Default)]
pub struct ClientWriter {
    current: Option<InFlight>,
    /// Written, but the stream (TLS, HTTP/2) may still hold it.
    flushing: Option<Flushing>,
    /// Pings to answer, in order.
    pongs: UnansweredPings,
    ping_due: bool,
    /// A ping has fully reached the socket since the last [`Self::take_ping_left`].
    ping_left: bool,
    close: Option<Vec<u8>>,
    /// The close frame is the last thing the connection carries: on plain TCP it leaves
    /// with the FIN ([`socket::poll_write_last`]).
    close_is_last: bool,
    /// Data frames that have fully reached the socket.
    delivered: u64,
    /// Set when we are the client (`wsgate client`): every frame we send is masked.
    masks: Option<Box<MaskKeys>>,
}

impl ClientWriter {
    /// A writer whose frames are masked (`wsgate client` towards a gateway) or not.
    pub fn new(masking: bool) -> Self {
        Self {
            masks: masking.then(Box::default),
            ..Self::default()
        }
    }

    pub fn is_masking(&self) -> bool {
        self.masks.is_some()
    }

    /// The key for the next data frame, when frames are masked.
    pub fn next_mask(&mut self) -> Option<[u8; 4]> {
        self.masks.as_mut().map(|m| m.next_key())
    }

    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether a ping has fully reached the socket since the last call.
    pub fn take_ping_left(&mut self) -> bool {
        std::mem::take(&mut self.ping_left)
    }

    /// Nothing in flight: a new frame may start.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.flushing.is_none()
    }

    /// Sends `buf[start..end]`, a data frame with its header. Only when idle.
    pub fn send_data(&mut self, buf: Box<[u8]>, start: usize, end: usize) {
        debug_assert!(self.is_idle(), "send_data() while a frame is in flight");
        self.current = Some(InFlight {
            frame: Frame::Data(buf),
            pos: start,
            end,
        });
    }

    /// Sends a frame whose payload waits in a pipe. Only when idle, to a plain-TCP client.
    pub fn send_spliced(&mut self, frame: SplicedFrame) {
        debug_assert!(self.is_idle(), "send_spliced() while a frame is in flight");
        self.current = Some(InFlight {
            frame: Frame::Spliced(frame),
            pos: 0,
            end: 0,
        });
    }

    pub fn answer_ping(&mut self, payload: Vec<u8>) {
        self.pongs.push(payload);
    }

    pub fn ping(&mut self) {
        self.ping_due = true;
    }

    /// From now on only `close` (if any) goes out, after the frame in flight; `last` when
    /// nothing is read or written on the connection after it (the client closed first).
    pub fn begin_close(&mut self, close: Option<Vec<u8>>, last: bool) {
        self.pongs.clear();
        self.ping_due = false;
        self.close = close;
        self.close_is_last = last;
    }

    /// Starts the next control frame waiting, if any; whether one was started. Only when idle.
    pub fn start_control(&mut self, act: &SessionState<'_>) -> bool {
        // Every control frame a client sends is masked, whichever it is.
        let masks = &mut self.masks;
        let mut wire = |frame: Vec<u8>| match masks.as_mut() {
            Some(m) => masked(&frame, m.next_key()),
            None => frame,
        };
        let frame = if let Some(close) = self.close.take() {
            Frame::Close(wire(close))
        } else if let Some(payload) = self.pongs.pop() {
            Frame::Control(wire(control_frame(OpCode::Pong, &payload)))
        } else if std::mem::take(&mut self.ping_due) {
            act.pinged();
            Frame::Ping(wire(control_frame(OpCode::Ping, &[])))
        } else {
            return false;
        };
        let end = frame.bytes().len();
        self.current = Some(InFlight { frame, pos: 0, end });
        true
    }

    /// Moves the frame in flight into the socket; ready once the writer is idle again.
    /// Progress is kept in `self`, so a call that returned `Pending` resumes where it was.
    pub fn poll_write_out<C>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
    ) -> Poll<io::Result<()>>
    where
        C: ClientStream,
    {
        if let Some(out) = &mut self.current {
            if let Frame::Spliced(frame) = &mut out.frame {
                let tcp = client.tcp().ok_or(io::ErrorKind::Unsupported)?;
                ready!(frame.poll_send(tcp, cx))?;
            }
            let last = matches!(out.frame, Frame::Close(_)) && self.close_is_last;
            while out.pos < out.end {
                let bytes = &out.frame.bytes()[out.pos..out.end];
                let n = match client.tcp() {
                    Some(tcp) if last => ready!(socket::poll_write_last(tcp, cx, bytes))?,
                    _ => ready!(Pin::new(&mut *client).poll_write(cx, bytes))?,
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                out.pos += n;
            }
            if let Some(done) = self.current.take() {
                self.flushing = Some(match done.frame {
                    Frame::Ping(_) => Flushing::Ping,
                    Frame::Control(_) | Frame::Close(_) => Flushing::Other,
                    Frame::Data(buf) => {
                        pool::give(buf);
                        Flushing::Data
                    }
                    Frame::Spliced(_) => Flushing::Data,
                });
            }
        }
        if let Some(kind) = self.flushing {
            ready!(Pin::new(&mut *client).poll_flush(cx))?;
            self.flushing = None;
            match kind {
                Flushing::Data => self.delivered += 1,
                Flushing::Ping => self.ping_left = true,
                Flushing::Other => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes out the frame in flight and every control frame waiting.
    pub fn poll_finish<C>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        act: &SessionState<'_>,
    ) -> Poll<io::Result<()>>
    where
        C: ClientStream,
    {
        loop {
            ready!(self.poll_write_out(cx, client))?;
            if !self.start_control(act) {
                return Poll::Ready(Ok(()));
            }
        }
    }
}
