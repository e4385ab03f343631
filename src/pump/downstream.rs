//! Everything sent to the client: backend data, and every control frame (pongs, pings,
//! the close) the other parts queue, which always goes out ahead of the next data frame.
//! The backend is read only when the writer is idle (one frame in flight per session,
//! nothing queued). The read goes into a pooled buffer that leaves room in
//! front for the frame header, so header and payload leave in one write. While a binary
//! stream to a plain-TCP client runs in bulk (a read fills the whole buffer), the payload
//! is spliced instead (see [`super::splice`]) and never enters the gateway; small messages
//! stay with the two-syscall copy, which is cheaper for them than three splice calls. On
//! text routes a read is sent up to its last complete character; the rest of a cut
//! character (≤ 3 bytes) waits for the next read.

use std::task::{Context, Poll, ready};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::pool;
use super::session_state::SessionState;
use super::socket::{ClientStream, poll_read_drained};
use super::splice::{self, Filled};
use super::throttle::Throttle;
use super::writer::ClientWriter;
use crate::error::SessionEnd;
use crate::frame::header::{MAX_CLIENT_HEADER, encode_client, encode_server};
use crate::frame::mask::unmask;
use crate::frame::utf8::complete_prefix;
use crate::frame::{MAX_SERVER_HEADER, OpCode};

/// Room kept in front of the payload: the longest header (a masked one, when `wsgate
/// client` sends), plus a cut character carried over.
const HEADROOM: usize = MAX_CLIENT_HEADER + 3;

/// A splice smaller than this goes back to copying.
const SPLICE_AT_LEAST: usize = 16 * 1024;

pub struct Downstream {
    text: bool,
    /// Bulk mode: the last read filled the buffer, so the next ones are spliced.
    splicing: bool,
    carry: [u8; 3],
    carry_len: usize,
    read_size: usize,
    throttle: Option<Box<Throttle>>,
    resume_at: Option<Instant>,
}

/// What one read from the backend gave.
enum Read {
    /// A frame is now with the writer (or nothing was complete yet); `n` bytes were read.
    Moved(usize),
    Eof,
}

impl Downstream {
    pub fn new(text: bool, read_size: usize, throttle: Option<Box<Throttle>>) -> Self {
        Self {
            text,
            splicing: false,
            carry: [0; 3],
            carry_len: 0,
            read_size,
            throttle,
            resume_at: None,
        }
    }

    pub fn resume_at(&self) -> Option<Instant> {
        self.resume_at
    }

    /// Moves backend bytes and waiting control frames to the client until something has to
    /// wait; ready when the session must end. While `draining`, the backend is no longer
    /// read: ready with [`SessionEnd::Shutdown`] once what was read has left.
    pub fn poll<C>(
        &mut self,
        cx: &mut Context<'_>,
        backend: &mut TcpStream,
        writer: &mut ClientWriter,
        client: &mut C,
        act: &SessionState<'_>,
        draining: bool,
    ) -> Poll<SessionEnd>
    where
        C: ClientStream,
    {
        loop {
            if ready!(writer.poll_write_out(cx, client)).is_err() {
                return Poll::Ready(SessionEnd::ClientGone);
            }
            if writer.start_control(act) {
                continue;
            }
            if draining {
                return Poll::Ready(SessionEnd::Shutdown);
            }
            if let Some(at) = self.resume_at {
                if Instant::now() < at {
                    return Poll::Pending;
                }
                self.resume_at = None;
            }
            // A masked payload must pass through memory, so only a server splices.
            let spliceable = client.tcp().is_some() && !writer.is_masking();
            let spliced = if self.splicing && spliceable && splice::supported() {
                match ready!(splice::poll_fill(backend, cx, self.read_size)) {
                    Ok(Filled::Frame(frame)) => {
                        let n = frame.payload_len();
                        self.splicing = n >= SPLICE_AT_LEAST;
                        act.moved_down(n, 1);
                        writer.send_spliced(frame);
                        Some(Read::Moved(n))
                    }
                    Ok(Filled::Eof) => Some(Read::Eof),
                    Ok(Filled::Unavailable) => None,
                    Err(e) => return Poll::Ready(SessionEnd::BackendIo(e.kind())),
                }
            } else {
                None
            };
            let read = match spliced {
                Some(read) => read,
                None => match ready!(self.poll_copy(cx, backend, writer, act)) {
                    Ok(read) => read,
                    Err(end) => return Poll::Ready(end),
                },
            };
            match read {
                Read::Eof if self.carry_len > 0 => {
                    return Poll::Ready(SessionEnd::BackendInvalidUtf8);
                }
                Read::Eof => return Poll::Ready(SessionEnd::BackendEof),
                Read::Moved(n) => {
                    self.resume_at = self
                        .throttle
                        .as_mut()
                        .and_then(|t| t.charge(n, Instant::now()));
                }
            }
        }
    }

    /// Reads the backend into a pooled buffer and hands the writer a frame of it.
    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        backend: &TcpStream,
        writer: &mut ClientWriter,
        act: &SessionState<'_>,
    ) -> Poll<Result<Read, SessionEnd>> {
        let mut buf = pool::take(HEADROOM + self.read_size);
        let start = HEADROOM - self.carry_len;
        buf[start..HEADROOM].copy_from_slice(&self.carry[..self.carry_len]);
        let read = poll_read_drained(backend, cx, &mut buf[HEADROOM..HEADROOM + self.read_size]);
        let n = match read {
            Poll::Pending => {
                pool::give(buf);
                return Poll::Pending;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(SessionEnd::BackendIo(e.kind()))),
            Poll::Ready(Ok(0)) => {
                pool::give(buf);
                return Poll::Ready(Ok(Read::Eof));
            }
            Poll::Ready(Ok(n)) => n,
        };
        self.splicing = !self.text && n == self.read_size;
        let end = HEADROOM + n;
        let payload_end = if self.text {
            let Some(complete) = complete_prefix(&buf[start..end]) else {
                return Poll::Ready(Err(SessionEnd::BackendInvalidUtf8));
            };
            let cut = start + complete;
            self.carry_len = end - cut;
            self.carry[..self.carry_len].copy_from_slice(&buf[cut..end]);
            cut
        } else {
            end
        };
        let payload = payload_end - start;
        act.moved_down(n, u32::from(payload > 0));
        if payload == 0 {
            pool::give(buf);
            return Poll::Ready(Ok(Read::Moved(n)));
        }
        let opcode = if self.text {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        let frame_start = match writer.next_mask() {
            None => {
                let mut header = [0u8; MAX_SERVER_HEADER];
                let header_len = encode_server(opcode, payload, &mut header);
                let frame_start = start - header_len;
                buf[frame_start..start].copy_from_slice(&header[MAX_SERVER_HEADER - header_len..]);
                frame_start
            }
            Some(key) => {
                let mut header = [0u8; MAX_CLIENT_HEADER];
                let header_len = encode_client(opcode, payload, key, &mut header);
                let frame_start = start - header_len;
                buf[frame_start..start].copy_from_slice(&header[MAX_CLIENT_HEADER - header_len..]);
                unmask(&mut buf[start..payload_end], key, 0);
                frame_start
            }
        };
        writer.send_data(buf, frame_start, payload_end);
        Poll::Ready(Ok(Read::Moved(n)))
    }
}
