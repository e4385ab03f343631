//! The TLS stream's own buffers: records read from the socket and not yet processed, records
//! made and not yet sent, and decrypted bytes the reader had no room for. Each holds memory
//! only while it holds bytes (the first two borrow theirs from the pump's per-thread pool),
//! so an idle connection keeps none.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustls::server::ServerConnectionData;
use rustls::unbuffered::{EncodeError, EncodeTlsData, EncryptError, WriteTraffic};
use tokio::io::{AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::pump::{poll_read_drained, pool};

/// The largest record on the wire: 16 KiB of payload, 2 KiB of expansion (TLS 1.2) and
/// the 5-byte header (rustls's own limit).
pub const MAX_RECORD: usize = 16_384 + 2048 + 5;

/// The incoming buffer's size: room for a partial record and a whole one behind it, so
/// that a read takes whole records.
const INCOMING_SIZE: usize = 2 * MAX_RECORD;

/// While handshaking, rustls joins a handshake message that spans records (a client's
/// certificate chain) in the incoming buffer, which may then grow to this.
pub const MAX_HANDSHAKE_BUFFER: usize = 0xffff + MAX_RECORD;

/// The most plaintext one write takes: five full records, so that a 64 KiB message and
/// its frame header go in one write.
pub const MAX_WRITE: usize = 5 * 16_384;

/// The outgoing buffer's size: [`MAX_WRITE`] in records, with room for their headers,
/// nonces and tags (at most 29 bytes a record) and a key update message.
const OUTGOING_SIZE: usize = MAX_WRITE + 512;

pub type Traffic<'c> = WriteTraffic<'c, ServerConnectionData>;

/// Records read from the socket that rustls has not consumed yet.
#[derive(Default)]
pub struct Incoming {
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    /// The last read filled all the room it had: the socket may hold more right now.
    maybe_more: bool,
}

impl Incoming {
    /// The bytes rustls has yet to consume (empty when none are held).
    pub fn pending(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Some(buf) => &mut buf[self.start..self.end],
            None => &mut [],
        }
    }

    /// Drops the first `n` pending bytes; the buffer goes back once nothing is left.
    pub fn discard(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.release();
        }
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len())
    }

    /// Whether the socket may hold more bytes without waiting (a short read drained it).
    pub fn maybe_more(&self) -> bool {
        self.maybe_more
    }

    fn release(&mut self) {
        self.start = 0;
        self.end = 0;
        if let Some(buf) = self.buf.take() {
            give_back(buf, INCOMING_SIZE);
        }
    }

    /// Reads what the socket holds behind the pending bytes, the buffer never growing past
    /// `limit`; the count read, 0 at the end of the stream. When nothing was pending and
    /// nothing could be read, the buffer goes back before waiting.
    pub fn poll_fill(
        &mut self,
        tcp: &TcpStream,
        cx: &mut Context<'_>,
        limit: usize,
    ) -> Poll<io::Result<usize>> {
        let buf = self.buf.get_or_insert_with(|| pool::take(INCOMING_SIZE));
        if buf.len() - self.end < MAX_RECORD && self.start > 0 {
            // What is left of the last read (part of a record) moves to the front.
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == buf.len() {
            // Full from the front, and rustls still waits for the rest of a message.
            if buf.len() < limit {
                let mut bigger = vec![0; (buf.len() * 2).min(limit)].into_boxed_slice();
                bigger[..self.end].copy_from_slice(&buf[..self.end]);
                give_back(std::mem::replace(buf, bigger), INCOMING_SIZE);
            } else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS record larger than the protocol allows",
                )));
            }
        }
        let room = buf.len() - self.end;
        let read = poll_read_drained(tcp, cx, &mut buf[self.end..]);
        if let Poll::Ready(Ok(n)) = read {
            self.end += n;
            self.maybe_more = n == room;
        }
        if self.start == self.end {
            self.release();
        }
        read
    }
}

/// Records made (handshake messages, encrypted data, alerts) and not yet sent.
#[derive(Default)]
pub struct Outgoing {
    buf: Option<Box<[u8]>>,
    sent: usize,
    end: usize,
}

impl Outgoing {
    pub fn is_empty(&self) -> bool {
        self.sent == self.end
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len())
    }

    /// At least `need` bytes of room behind what is held.
    fn room(&mut self, need: usize) -> &mut [u8] {
        let held = self.end - self.sent;
        let buf = match self.buf.take() {
            Some(mut buf) if buf.len() - held >= need => {
                if buf.len() - self.end < need {
                    buf.copy_within(self.sent..self.end, 0);
                    self.sent = 0;
                    self.end = held;
                }
                buf
            }
            old => {
                let size = held + need;
                let mut buf = if size <= OUTGOING_SIZE {
                    pool::take(OUTGOING_SIZE)
                } else {
                    vec![0; size].into_boxed_slice()
                };
                if let Some(old) = old {
                    buf[..held].copy_from_slice(&old[self.sent..self.end]);
                    give_back(old, OUTGOING_SIZE);
                }
                self.sent = 0;
                self.end = held;
                buf
            }
        };
        &mut self.buf.insert(buf)[self.end..]
    }

    /// Adds a handshake record (or alert) rustls has ready.
    pub fn encode(
        &mut self,
        record: &mut EncodeTlsData<'_, ServerConnectionData>,
    ) -> io::Result<()> {
        self.append(
            1,
            |room| record.encode(room),
            |e| match e {
                EncodeError::InsufficientSize(s) => Some(s.required_size),
                _ => None,
            },
        )
    }

    /// Adds `data`, encrypted.
    pub fn encrypt(&mut self, traffic: &mut Traffic<'_>, data: &[u8]) -> io::Result<()> {
        self.append(
            data.len() + 64,
            |room| traffic.encrypt(data, room),
            encrypt_needs,
        )
    }

    /// Adds a close_notify alert.
    pub fn close_notify(&mut self, traffic: &mut Traffic<'_>) -> io::Result<()> {
        self.append(64, |room| traffic.queue_close_notify(room), encrypt_needs)
    }

    /// Adds what `write` puts in the room behind the held bytes: first `need` bytes of
    /// room, then as much as `required` reads from its error that it needs.
    fn append<E>(
        &mut self,
        mut need: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
        required: impl Fn(&E) -> Option<usize>,
    ) -> io::Result<()>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        loop {
            match write(self.room(need)) {
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) => match required(&e) {
                    Some(size) if size > need => need = size,
                    _ => return Err(io::Error::other(e)),
                },
            }
        }
    }

    /// Sends everything held; ready once the socket has taken it all, the buffer then gone.
    pub fn poll_send(&mut self, tcp: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(buf) = &self.buf {
            while self.sent < self.end {
                let n = ready!(Pin::new(&mut *tcp).poll_write(cx, &buf[self.sent..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.sent += n;
            }
        }
        self.release();
        Poll::Ready(Ok(()))
    }

    /// Sends what the socket takes right now, without waiting (an alert before closing).
    pub fn send_now(&mut self, tcp: &TcpStream) {
        if let Some(buf) = &self.buf {
            while self.sent < self.end {
                match tcp.try_write(&buf[self.sent..self.end]) {
                    Ok(n) if n > 0 => self.sent += n,
                    _ => return,
                }
            }
        }
        self.release();
    }

    fn release(&mut self) {
        self.sent = 0;
        self.end = 0;
        if let Some(buf) = self.buf.take() {
            give_back(buf, OUTGOING_SIZE);
        }
    }
}

/// The room an encryption said it lacked.
fn encrypt_needs(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// A buffer goes back to the pool if it has the pool's size for its use; a larger one (a
/// long handshake flight) is freed.
fn give_back(buf: Box<[u8]>, size: usize) {
    if buf.len() == size {
        pool::give(buf);
    }
}

/// Decrypted bytes waiting for a reader with room (a record larger than the read, or one
/// decrypted while writing or handshaking).
#[derive(Default)]
pub struct Plaintext {
    bytes: Vec<u8>,
    taken: usize,
}

impl Plaintext {
    pub fn is_empty(&self) -> bool {
        self.taken == self.bytes.len()
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Hands `record` to the reader, as much as `read` has room for; the rest waits here.
    /// Bytes already waiting go first.
    pub fn deliver(&mut self, record: &[u8], read: Option<&mut ReadBuf<'_>>) {
        let n = match read {
            Some(read) if self.is_empty() => {
                let n = record.len().min(read.remaining());
                read.put_slice(&record[..n]);
                n
            }
            _ => 0,
        };
        if n < record.len() {
            self.bytes.extend_from_slice(&record[n..]);
        }
    }

    /// Moves waiting bytes into `read`; the storage goes once all are taken.
    pub fn take_into(&mut self, read: &mut ReadBuf<'_>) {
        if self.is_empty() {
            return;
        }
        let n = (self.bytes.len() - self.taken).min(read.remaining());
        read.put_slice(&self.bytes[self.taken..self.taken + n]);
        self.taken += n;
        if self.is_empty() {
            *self = Self::default();
        }
    }
}
