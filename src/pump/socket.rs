//! What the pump needs from its sockets beyond `AsyncRead`/`AsyncWrite`: whether a client is
//! a plain TCP socket (so the fast paths below and [`super::splice`] apply), and a read
//! that knows when it has drained the socket.
//!
//! tokio learns that a socket is drained only from a read that fails with `WouldBlock`,
//! so a plain read loop makes one empty `recv` after every message. A TCP read that
//! returns less than was asked for has emptied the receive queue; [`poll_read_drained`]
//! then clears tokio's readiness itself, against the readiness event it sampled *before*
//! the read: if new data arrived since, the event has moved on and the clear does nothing,
//! so no wake-up is lost.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::ServerTlsStream;

/// The client side of a session: plain TCP, TLS, or anything else hyper upgraded (HTTP/2).
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin {
    /// The TCP socket itself, when nothing (TLS, HTTP/2) sits in between: bytes written
    /// here are the bytes on the wire.
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }

    /// The TCP connection underneath, whatever sits in between, for what its kernel says
    /// about the client (see [`crate::tcp_info`]).
    fn transport(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

impl ClientStream for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }

    fn transport(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

impl ClientStream for ServerTlsStream {
    fn transport(&self) -> Option<BorrowedFd<'_>> {
        Some(self.tcp().as_fd())
    }
}

/// `wsgate client`'s wss:// connection to a gateway.
impl ClientStream for tokio_rustls::client::TlsStream<TcpStream> {
    fn transport(&self) -> Option<BorrowedFd<'_>> {
        Some(self.get_ref().0.as_fd())
    }
}

/// An upgraded stream that cannot reach its socket through hyper (an HTTP/2 stream), with a
/// handle on the connection's socket kept beside it.
pub struct Http2Stream {
    io: TokioIo<Upgraded>,
    socket: Option<Arc<OwnedFd>>,
}

impl Http2Stream {
    pub fn new(io: TokioIo<Upgraded>, socket: Option<Arc<OwnedFd>>) -> Self {
        Self { io, socket }
    }
}

impl ClientStream for Http2Stream {
    fn transport(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_deref().map(AsFd::as_fd)
    }
}

impl AsyncRead for Http2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Http2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Reads what `socket` holds now into `buf` (0 at end of stream); pending, with the task
/// registered for readiness, when it holds nothing.
pub fn poll_read_drained(
    socket: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(socket.poll_read_ready(cx))?;
        let mut short = None;
        let read = socket.try_io(Interest::READABLE, || {
            let n = rustix::io::read(socket, &mut *buf)?;
            if n > 0 && n < buf.len() {
                // Drained: report it as WouldBlock so tokio clears readiness, keep the count.
                short = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match read {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(n) = short {
                    return Poll::Ready(Ok(n));
                }
                // Really empty: the next readiness poll registers the task.
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Writes `buf`, the last bytes `socket` will carry, to be sent with the FIN of the close
/// that follows: `MSG_MORE` holds them in the kernel until the socket is closed (or for at
/// most 200 ms), which then sends data and FIN in one segment instead of two.
pub fn poll_write_last(
    socket: &TcpStream,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    use rustix::net::{SendFlags, send};
    loop {
        ready!(socket.poll_write_ready(cx))?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            Ok(send(socket, buf, SendFlags::MORE | SendFlags::NOSIGNAL)?)
        });
        match sent {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn the_last_bytes_held_back_leave_when_the_socket_closes() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        ours.set_nodelay(true).unwrap();
        let sent = poll_fn(|cx| poll_write_last(&ours, cx, b"\x88\x02\x03\xe8"))
            .await
            .unwrap();
        assert_eq!(sent, 4);
        drop(ours);
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), peer.read_to_end(&mut got))
            .await
            .expect("data and end of stream arrive once the socket is closed")
            .unwrap();
        assert_eq!(got, b"\x88\x02\x03\xe8");
    }

    #[tokio::test]
    async fn a_short_read_still_wakes_for_the_next_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut writer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (reader, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        for round in 0..50u8 {
            writer.write_all(&[round; 5]).await.unwrap();
            let mut got = 0;
            while got < 5 {
                let read = poll_fn(|cx| poll_read_drained(&reader, cx, &mut buf[got..]));
                got += tokio::time::timeout(Duration::from_secs(10), read)
                    .await
                    .expect("woken for data sent after a short read")
                    .unwrap();
            }
            assert_eq!(&buf[..got], &[round; 5]);
        }
        drop(writer);
        let eof = poll_fn(|cx| poll_read_drained(&reader, cx, &mut buf))
            .await
            .unwrap();
        assert_eq!(eof, 0);
    }
}
