//! Backend to a plain-TCP client without copying the payload through the gateway: the
//! backend's bytes are spliced into a pipe, the frame header (binary frames need no
//! masking) is sent with `MSG_MORE`, and the pipe is spliced into the client socket, so
//! header and payload still leave as one stream of segments. Pipes are lent like read
//! buffers: taken when the backend has data, given back empty once the frame is out, a few
//! kept per thread; an idle session holds none and costs no file descriptors.
//!
//! Where splice is unavailable (an old kernel, a sandbox), or a pipe cannot be had (out of
//! file descriptors), the session copies through a buffer as usual.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll, ready};

use rustix::net::SendFlags;
use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::frame::MAX_SERVER_HEADER;

const SPARES_PER_THREAD: usize = 4;

thread_local! {
    static SPARES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// Cleared for good the first time the kernel refuses to splice a socket.
static SUPPORTED: AtomicBool = AtomicBool::new(true);

pub fn supported() -> bool {
    SUPPORTED.load(Relaxed)
}

fn flags() -> SpliceFlags {
    SpliceFlags::NONBLOCK | SpliceFlags::MOVE
}

/// An empty pipe, both ends non-blocking.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A spare pipe, or a new one able to hold `size` bytes; `None` if none can be made.
    pub fn take(size: usize) -> Option<Self> {
        if let Some(pipe) = SPARES.with_borrow_mut(Vec::pop) {
            return Some(pipe);
        }
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).ok()?;
        // The default 64 KiB is enough for the default read size; larger is a bonus.
        let _ = fcntl_setpipe_size(&write, size);
        Some(Self { read, write })
    }

    /// Returns an empty pipe for reuse.
    fn give(self) {
        SPARES.with_borrow_mut(|spares| {
            if spares.len() < SPARES_PER_THREAD {
                spares.push(self);
            }
        });
    }
}

/// The outcome of moving backend bytes into a pipe.
pub enum Filled {
    /// A frame ready to go out.
    Frame(SplicedFrame),
    /// The backend closed its side.
    Eof,
    /// No pipe (out of file descriptors) or no splice here: read by copying instead.
    Unavailable,
}

/// Waits for the backend to have data, then moves up to `max` bytes of it into a pipe.
pub fn poll_fill(
    backend: &TcpStream,
    cx: &mut Context<'_>,
    max: usize,
) -> Poll<io::Result<Filled>> {
    loop {
        ready!(backend.poll_read_ready(cx))?;
        let Some(pipe) = Pipe::take(max) else {
            return Poll::Ready(Ok(Filled::Unavailable));
        };
        let moved = backend.try_io(Interest::READABLE, || {
            Ok(splice(backend, None, &pipe.write, None, max, flags())?)
        });
        match moved {
            Ok(0) => {
                pipe.give();
                return Poll::Ready(Ok(Filled::Eof));
            }
            Ok(n) => return Poll::Ready(Ok(Filled::Frame(SplicedFrame::new(pipe, n)))),
            // Empty after all: the next readiness poll registers the task.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => pipe.give(),
            Err(e) if refused(&e) => {
                SUPPORTED.store(false, Relaxed);
                pipe.give();
                return Poll::Ready(Ok(Filled::Unavailable));
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Whether the kernel refuses splice on these descriptors at all.
fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::INVAL.raw_os_error()
            || code == rustix::io::Errno::NOSYS.raw_os_error()
            || code == rustix::io::Errno::OPNOTSUPP.raw_os_error()
    )
}

/// A binary frame whose payload waits in a pipe.
pub struct SplicedFrame {
    pipe: Option<Pipe>,
    header: [u8; MAX_SERVER_HEADER],
    header_pos: usize,
    /// Payload bytes still in the pipe.
    remaining: usize,
}

impl SplicedFrame {
    fn new(pipe: Pipe, payload: usize) -> Self {
        let mut header = [0u8; MAX_SERVER_HEADER];
        let len =
            crate::frame::header::encode_server(crate::frame::OpCode::Binary, payload, &mut header);
        Self {
            pipe: Some(pipe),
            header,
            header_pos: MAX_SERVER_HEADER - len,
            remaining: payload,
        }
    }

    pub fn payload_len(&self) -> usize {
        self.remaining
    }

    /// Sends the header, then the payload, into `client`; ready when all of it is out, and
    /// the (now empty) pipe has gone back to the spares.
    pub fn poll_send(&mut self, client: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.header_pos < MAX_SERVER_HEADER || self.remaining > 0 {
            ready!(client.poll_write_ready(cx))?;
            let step = client.try_io(Interest::WRITABLE, || self.send_some(client));
            match step {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if let Some(pipe) = self.pipe.take() {
            pipe.give();
        }
        Poll::Ready(Ok(()))
    }

    fn send_some(&mut self, client: &TcpStream) -> io::Result<()> {
        if self.header_pos < MAX_SERVER_HEADER {
            let header = &self.header[self.header_pos..];
            self.header_pos +=
                rustix::net::send(client, header, SendFlags::MORE | SendFlags::NOSIGNAL)?;
            return Ok(());
        }
        let Some(pipe) = &self.pipe else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        match splice(&pipe.read, None, client, None, self.remaining, flags())? {
            0 => Err(io::ErrorKind::WriteZero.into()),
            n => {
                self.remaining -= n;
                Ok(())
            }
        }
    }
}
