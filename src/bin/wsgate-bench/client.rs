//! One client connection, the same logic over raw TCP (straight to a backend, or through the
//! copy proxy) and over WebSocket (through the gateway): the same payload bytes are sent
//! and the same payload bytes counted, only the framing differs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wsclient::{self, Event, FrameReader, OP_BINARY, OP_CLOSE};

/// How a client speaks to the address it connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Raw,
    Ws,
}

/// Read buffer of connections that move small messages (echo, idle, churn).
pub const SMALL_BUFFER: usize = 1024;
/// Read buffer of bulk connections.
pub const BULK_BUFFER: usize = 256 * 1024;

/// Seeds masking keys and handshake keys so that no two connections share them.
static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

pub struct Conn {
    sock: TcpStream,
    /// Raw connections read through `reader` too, as plain bytes.
    reader: FrameReader,
    proto: Proto,
    mask: [u8; 4],
    /// Reused for each framed message.
    out: Vec<u8>,
}

impl Conn {
    /// Connects (and for WebSocket, completes the upgrade); `buffer` is the read buffer.
    pub async fn open(addr: SocketAddr, proto: Proto, buffer: usize) -> Result<Self> {
        let mut sock = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting {addr}"))?;
        sock.set_nodelay(true)?;
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
        let mut buf = vec![0u8; buffer].into_boxed_slice();
        let pending = match proto {
            Proto::Raw => 0..0,
            Proto::Ws => wsclient::handshake(&mut sock, &addr.to_string(), seed, &mut buf).await?,
        };
        Ok(Self {
            sock,
            reader: FrameReader::new(buf, pending),
            proto,
            mask: wsclient::mask_for(seed),
            out: Vec::new(),
        })
    }

    /// `payload` as it goes on the wire: framed once, so bulk senders can write it again
    /// and again at no cost.
    pub fn wire_form(&self, payload: &[u8]) -> Vec<u8> {
        match self.proto {
            Proto::Raw => payload.to_vec(),
            Proto::Ws => {
                let mut out = Vec::with_capacity(payload.len() + 14);
                wsclient::encode_frame(&mut out, OP_BINARY, payload, self.mask);
                out
            }
        }
    }

    /// Writes bytes already in wire form (see [`Self::wire_form`]).
    pub async fn write_wire(&mut self, wire: &[u8]) -> Result<()> {
        self.sock.write_all(wire).await.context("writing")
    }

    /// Sends one message.
    pub async fn send(&mut self, payload: &[u8]) -> Result<()> {
        match self.proto {
            Proto::Raw => self.sock.write_all(payload).await.context("writing"),
            Proto::Ws => {
                self.out.clear();
                wsclient::encode_frame(&mut self.out, OP_BINARY, payload, self.mask);
                self.sock.write_all(&self.out).await.context("writing")
            }
        }
    }

    /// Waits for payload bytes and returns how many arrived (at least one).
    pub async fn recv_some(&mut self) -> Result<usize> {
        match self.next_data().await? {
            Some(range) => Ok(range.len()),
            None => bail!("the connection ended"),
        }
    }

    /// Reads exactly `want.len()` payload bytes and checks they equal `want`.
    pub async fn recv_expect(&mut self, want: &[u8]) -> Result<()> {
        let mut got = 0;
        while got < want.len() {
            let Some(range) = self.next_data().await? else {
                bail!(
                    "the connection ended after {got} of {} echoed bytes",
                    want.len()
                );
            };
            let bytes = self.reader.bytes(range);
            ensure!(
                got + bytes.len() <= want.len() && bytes == &want[got..got + bytes.len()],
                "echo mismatch: got bytes that were not sent"
            );
            got += bytes.len();
        }
        Ok(())
    }

    /// One round trip of `payload` through an echo backend.
    pub async fn echo(&mut self, payload: &[u8]) -> Result<()> {
        self.send(payload).await?;
        self.recv_expect(payload).await
    }

    /// Ends the connection: a raw one is simply closed; a WebSocket one sends a close frame
    /// and waits for the gateway's (data before it is discarded), as a polite client does.
    pub async fn close(mut self) -> Result<()> {
        if self.proto == Proto::Raw {
            return Ok(());
        }
        self.out.clear();
        wsclient::encode_frame(&mut self.out, OP_CLOSE, &1000u16.to_be_bytes(), self.mask);
        self.sock
            .write_all(&self.out)
            .await
            .context("sending close")?;
        loop {
            match self.reader.next(&mut self.sock).await? {
                Event::Data(_) => {}
                Event::Close | Event::Eof => return Ok(()),
            }
        }
    }

    /// The next payload range, or `None` at the end of the connection (or a close frame).
    async fn next_data(&mut self) -> Result<Option<std::ops::Range<usize>>> {
        match self.proto {
            Proto::Raw => {
                let n = self.reader_fill_raw().await?;
                Ok((n > 0).then_some(0..n))
            }
            Proto::Ws => match self.reader.next(&mut self.sock).await? {
                Event::Data(range) => Ok(Some(range)),
                Event::Close | Event::Eof => Ok(None),
            },
        }
    }

    /// Raw mode: one read into the start of the buffer.
    async fn reader_fill_raw(&mut self) -> Result<usize> {
        let buf = self.reader.raw_buffer();
        self.sock.read(buf).await.context("reading")
    }
}
