//! One client connection, the same logic over raw TCP (straight to a backend, or through the
//! copy proxy) and over WebSocket, plain or in TLS (through the gateway): the same payload
//! bytes are sent and the same payload bytes counted, only the framing differs.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result, bail, ensure};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::wsclient::{self, Event, FrameReader, OP_BINARY, OP_CLOSE, OP_PONG};

/// How a client speaks to the address it connects to.
#[derive(Debug, Clone)]
pub enum Proto {
    Raw,
    Ws,
    /// WebSocket in TLS (wss://), trusting what this configuration trusts, the server named
    /// [`TLS_NAME`].
    Wss(Arc<rustls::ClientConfig>),
}

/// The TLS version and cipher suite the first wss connection negotiated, for the report.
pub static NEGOTIATED: OnceLock<String> = OnceLock::new();

/// The name the client asks for and checks in the gateway's certificate.
pub const TLS_NAME: &str = "localhost";

/// A connection's byte stream: plain TCP, or TLS over it.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Read buffer of connections that move small messages (echo, idle, churn).
pub const SMALL_BUFFER: usize = 1024;
/// Read buffer of bulk connections.
pub const BULK_BUFFER: usize = 256 * 1024;

/// Seeds masking keys and handshake keys so that no two connections share them.
static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

pub struct Conn {
    sock: Stream,
    /// Raw connections read through `reader` too, as plain bytes.
    reader: FrameReader,
    /// Whether payloads travel in WebSocket frames (ws:// or wss://).
    framed: bool,
    mask: [u8; 4],
    /// Reused for each framed message.
    out: Vec<u8>,
}

impl Conn {
    /// Connects (for wss, completes the TLS handshake; for WebSocket, the upgrade);
    /// `buffer` is the read buffer.
    pub async fn open(addr: SocketAddr, proto: &Proto, buffer: usize) -> Result<Self> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting {addr}"))?;
        tcp.set_nodelay(true)?;
        let mut sock = match proto {
            Proto::Raw | Proto::Ws => Stream::Tcp(tcp),
            Proto::Wss(config) => {
                let name = ServerName::try_from(TLS_NAME)?;
                let tls = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .context("TLS handshake")?;
                let session = tls.get_ref().1;
                if let (Some(v), Some(c)) = (
                    session.protocol_version(),
                    session.negotiated_cipher_suite(),
                ) {
                    let _ = NEGOTIATED.set(format!("{v:?}, {:?}", c.suite()));
                }
                Stream::Tls(Box::new(tls))
            }
        };
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
        let mut buf = vec![0u8; buffer].into_boxed_slice();
        let framed = !matches!(proto, Proto::Raw);
        let pending = if framed {
            wsclient::handshake(&mut sock, &addr.to_string(), seed, &mut buf).await?
        } else {
            0..0
        };
        Ok(Self {
            sock,
            reader: FrameReader::new(buf, pending),
            framed,
            mask: wsclient::mask_for(seed),
            out: Vec::new(),
        })
    }

    /// `payload` as it goes on the wire: framed once, so bulk senders can write it again
    /// and again at no cost.
    pub fn wire_form(&self, payload: &[u8]) -> Vec<u8> {
        match self.framed {
            false => payload.to_vec(),
            true => {
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
        match self.framed {
            false => self.sock.write_all(payload).await.context("writing"),
            true => {
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
        if !self.framed {
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
                // Nothing more is sent after a close frame, pongs included.
                Event::Data(_) | Event::Ping(_) => {}
                Event::Close | Event::Eof => return Ok(()),
            }
        }
    }

    /// Holds the connection open and quiet until `end` resolves, answering every ping the
    /// gateway sends, as a live client does, and counting them in `answered` as they go.
    /// Fails if the connection ends (the gateway dropped it) or data arrives that nobody
    /// asked for.
    pub async fn hold(
        &mut self,
        end: impl Future<Output = ()>,
        answered: &AtomicU64,
    ) -> Result<()> {
        tokio::pin!(end);
        loop {
            // Only the read is given up when `end` comes first: it is cancel-safe (the
            // reader keeps what it read between calls); a pong is never cut short.
            let event = tokio::select! {
                event = self.reader.next(&mut self.sock) => event?,
                () = &mut end => return Ok(()),
            };
            match event {
                Event::Ping(payload) => {
                    self.pong(payload).await?;
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Event::Data(_) => bail!("data arrived on a quiet connection"),
                Event::Close => bail!("the gateway closed the connection (close frame)"),
                Event::Eof => bail!("the gateway ended the connection (no close frame)"),
            }
        }
    }

    /// Answers a ping whose payload is `payload` in the reader's buffer.
    async fn pong(&mut self, payload: std::ops::Range<usize>) -> Result<()> {
        let mut body = [0u8; 125];
        let body = &mut body[..payload.len()];
        body.copy_from_slice(self.reader.bytes(payload));
        self.out.clear();
        wsclient::encode_frame(&mut self.out, OP_PONG, body, self.mask);
        self.sock
            .write_all(&self.out)
            .await
            .context("sending a pong")
    }

    /// The next payload range, or `None` at the end of the connection (or a close frame).
    /// Pings met on the way are answered.
    async fn next_data(&mut self) -> Result<Option<std::ops::Range<usize>>> {
        if !self.framed {
            let n = self.reader_fill_raw().await?;
            return Ok((n > 0).then_some(0..n));
        }
        loop {
            match self.reader.next(&mut self.sock).await? {
                Event::Data(range) => return Ok(Some(range)),
                Event::Ping(payload) => self.pong(payload).await?,
                Event::Close | Event::Eof => return Ok(None),
            }
        }
    }

    /// Raw mode: one read into the start of the buffer.
    async fn reader_fill_raw(&mut self) -> Result<usize> {
        let buf = self.reader.raw_buffer();
        self.sock.read(buf).await.context("reading")
    }
}
