//! Client to backend. The client is read only when the backend has taken everything read
//! before (the backpressure: unread frames stay in the kernel), into a pooled buffer taken
//! at the moment of the read and given back once its payload has been written on.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::pool;
use super::session_state::SessionState;
use super::socket::{ClientStream, poll_read_drained};
use super::throttle::Throttle;
use crate::error::SessionEnd;
use crate::frame::reader::Stop;
use crate::frame::{FrameLimits, FrameReader};

/// Payload read from the client that the backend has not fully taken yet.
struct Pending {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// How the client's stream ended right after this payload, if it did.
    then: Option<Stop>,
}

pub struct Upstream {
    reader: FrameReader,
    limits: FrameLimits,
    read_size: usize,
    /// Bytes the client sent right behind its upgrade request, read by the HTTP layer.
    early: Bytes,
    pending: Option<Pending>,
    throttle: Option<Box<Throttle>>,
    resume_at: Option<Instant>,
}

impl Upstream {
    pub fn new(
        reader: FrameReader,
        limits: FrameLimits,
        read_size: usize,
        early: Bytes,
        throttle: Option<Box<Throttle>>,
    ) -> Self {
        Self {
            reader,
            limits,
            read_size,
            early,
            pending: None,
            throttle,
            resume_at: None,
        }
    }

    /// When this direction may read again after the throttle held it back.
    pub fn resume_at(&self) -> Option<Instant> {
        self.resume_at
    }

    /// The payload of a ping the client sent, to be answered.
    pub fn take_ping(&mut self) -> Option<Vec<u8>> {
        self.reader.take_ping()
    }

    /// Moves client frames to the backend until either side has to wait; ready when the
    /// client's stream ends (a close frame, a violation, or the connection) or the backend
    /// fails. Data read before the end is written first.
    pub fn poll<C>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        backend: &mut TcpStream,
        act: &SessionState<'_>,
    ) -> Poll<SessionEnd>
    where
        C: ClientStream,
    {
        loop {
            if let Some(end) = ready!(self.poll_flush_pending(cx, backend, act)) {
                return Poll::Ready(end);
            }
            if let Some(end) = ready!(self.poll_read_and_decode(cx, client, act)) {
                return Poll::Ready(end);
            }
        }
    }

    /// Writes what is pending to the backend. Ready with `None` once nothing is pending and
    /// the throttle lets the client be read; with the end if the backend failed or the
    /// client's stream ended right after what was written.
    fn poll_flush_pending(
        &mut self,
        cx: &mut Context<'_>,
        backend: &mut TcpStream,
        act: &SessionState<'_>,
    ) -> Poll<Option<SessionEnd>> {
        if let Some(p) = &mut self.pending {
            while p.pos < p.end {
                match Pin::new(&mut *backend).poll_write(cx, &p.buf[p.pos..p.end]) {
                    Poll::Pending => {
                        act.set_upstream_blocked(true);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Some(SessionEnd::BackendIo(io::ErrorKind::WriteZero)));
                    }
                    Poll::Ready(Ok(n)) => p.pos += n,
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Some(SessionEnd::BackendIo(e.kind())));
                    }
                }
            }
            act.set_upstream_blocked(false);
            if let Some(done) = self.pending.take() {
                pool::give(done.buf);
                act.moved_up(done.end);
                if let Some(stop) = done.then {
                    return Poll::Ready(Some(end_of(stop)));
                }
                self.resume_at = self
                    .throttle
                    .as_mut()
                    .and_then(|t| t.charge(done.end, Instant::now()));
            }
        }
        if let Some(at) = self.resume_at {
            if Instant::now() < at {
                // Not reading the client is the point here; its silence is not its fault.
                act.set_upstream_blocked(true);
                return Poll::Pending;
            }
            self.resume_at = None;
            act.set_upstream_blocked(false);
        }
        Poll::Ready(None)
    }

    /// Reads the client once (or takes the early bytes) into a pooled buffer and decodes
    /// the frames in it. Ready with `None` when there is payload to write or more to read;
    /// with the end if the client's stream ended and nothing is left to write.
    fn poll_read_and_decode<C: ClientStream>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        act: &SessionState<'_>,
    ) -> Poll<Option<SessionEnd>> {
        let mut buf = pool::take(self.read_size);
        let n = if self.early.is_empty() {
            match poll_read_client(client, cx, &mut buf[..self.read_size]) {
                Poll::Pending => {
                    pool::give(buf);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(_)) => 0,
            }
        } else {
            let n = self.early.len().min(self.read_size);
            buf[..n].copy_from_slice(&self.early.split_to(n));
            if self.early.is_empty() {
                self.early = Bytes::new();
            }
            n
        };
        if n == 0 {
            pool::give(buf);
            return Poll::Ready(Some(SessionEnd::ClientGone));
        }
        act.heard_client();
        let fed = self.reader.feed(&mut buf[..n], &self.limits);
        act.messages_up(fed.messages);
        if fed.data > 0 {
            self.pending = Some(Pending {
                buf,
                pos: 0,
                end: fed.data,
                then: fed.stop,
            });
            return Poll::Ready(None);
        }
        pool::give(buf);
        Poll::Ready(fed.stop.map(end_of))
    }
}

/// Reads what the client has sent; straight from the socket when it is plain TCP.
fn poll_read_client<C: ClientStream>(
    client: &mut C,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    if let Some(tcp) = client.tcp() {
        return poll_read_drained(tcp, cx, buf);
    }
    let mut read = ReadBuf::new(buf);
    Pin::new(client)
        .poll_read(cx, &mut read)
        .map_ok(|()| read.filled().len())
}

fn end_of(stop: Stop) -> SessionEnd {
    match stop {
        Stop::Closed(code) => SessionEnd::ClientClosed(code),
        Stop::TooBig => SessionEnd::TooBig,
        Stop::TextRefused => SessionEnd::TextRefused,
        Stop::InvalidUtf8 => SessionEnd::InvalidUtf8,
        Stop::Protocol => SessionEnd::Protocol,
    }
}

/// Half-closes the backend (it reads a clean EOF) once the client has said goodbye.
pub fn poll_shutdown_backend(cx: &mut Context<'_>, backend: &mut TcpStream) -> Poll<()> {
    Pin::new(backend).poll_shutdown(cx).map(|_| ())
}
