//! The server side of a TLS connection over a `TcpStream`, on rustls's unbuffered API: the
//! handshake ([`accept`]), then `AsyncRead` and `AsyncWrite` for the HTTP layer and the pump.
//! Unlike a buffered `rustls::ServerConnection`, which keeps a 4 KiB record buffer for the
//! connection's whole life, this stream holds its buffers ([`buffers`]) only while they
//! hold bytes, so an idle wss:// session keeps none.
//!
//! Reads decrypt the records that have arrived, several per read when the reader has room,
//! and end at the peer's close_notify; a record that fails to decrypt or parse is an error,
//! with the alert rustls makes for it sent if the socket takes it at once. Writes encrypt
//! at most [`buffers::MAX_WRITE`] bytes at a time and take more only once the records
//! before have reached the socket. Whatever rustls sends on its own after the handshake
//! (session tickets, the answer to a client's key update) leaves with the next read, write
//! or flush.

mod buffers;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use buffers::{
    Incoming, MAX_HANDSHAKE_BUFFER, MAX_RECORD, MAX_WRITE, Outgoing, Plaintext, Traffic,
};

/// A TLS connection accepted by the gateway.
pub struct ServerTlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    incoming: Incoming,
    outgoing: Outgoing,
    plaintext: Plaintext,
    /// The peer's close_notify has arrived: reads end here.
    peer_closed: bool,
    /// Our close_notify is queued: nothing more is written.
    close_queued: bool,
    /// rustls reported an error: it is not called again (it would parse the same records
    /// again), and every read or write fails.
    failed: bool,
}

/// What one pass of rustls over the pending records came to.
enum Step {
    /// Something was done (a record decrypted or made); there may be more.
    Again,
    /// Nothing more without more bytes from the peer.
    NeedBytes,
    /// Application data may be sent (and the given action ran). Reading also needs more
    /// bytes from here.
    Traffic,
    /// Both sides have sent close_notify.
    Closed,
}

/// What to do with a record's worth of room for application data.
type OnTraffic<'a> = &'a mut dyn FnMut(&mut Traffic<'_>, &mut Outgoing) -> io::Result<()>;

/// Runs the server side of the TLS handshake on `tcp` with `config`. On failure, the alert
/// rustls made for it is sent if the socket takes it at once.
pub async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<ServerTlsStream> {
    let conn = UnbufferedServerConnection::new(config)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut stream = ServerTlsStream {
        tcp,
        conn,
        incoming: Incoming::default(),
        outgoing: Outgoing::default(),
        plaintext: Plaintext::default(),
        peer_closed: false,
        close_queued: false,
        failed: false,
    };
    poll_fn(|cx| stream.poll_handshake(cx)).await?;
    Ok(stream)
}

impl ServerTlsStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The protocol agreed by ALPN.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The client's verified certificate chain, leaf first, if it presented one.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// Bytes of buffer held: incoming records, outgoing records, waiting plaintext.
    #[cfg(test)]
    pub fn buffered_capacity(&self) -> [usize; 3] {
        [
            self.incoming.capacity(),
            self.outgoing.capacity(),
            self.plaintext.capacity(),
        ]
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let step = self.step(None, None)?;
            let handshaking = self.conn.is_handshaking();
            if self.peer_closed && handshaking {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "client closed the connection during the TLS handshake",
                )));
            }
            match step {
                Step::Again => {}
                Step::Traffic if !handshaking => {
                    ready!(self.outgoing.poll_send(&mut self.tcp, cx))?;
                    return Poll::Ready(Ok(()));
                }
                Step::Traffic | Step::NeedBytes => {
                    ready!(self.outgoing.poll_send(&mut self.tcp, cx))?;
                    let read = self.incoming.poll_fill(&self.tcp, cx, MAX_HANDSHAKE_BUFFER);
                    if ready!(read)? == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "client closed the connection during the TLS handshake",
                        )));
                    }
                }
                Step::Closed => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
            }
        }
    }

    /// One pass of rustls over the pending records: decrypted data goes to `read` (or waits
    /// in `plaintext`), records rustls makes go to `outgoing`, and `on_traffic` runs if
    /// application data may be sent. A TLS error is returned after its alert is sent.
    fn step(
        &mut self,
        read: Option<&mut ReadBuf<'_>>,
        on_traffic: Option<OnTraffic<'_>>,
    ) -> io::Result<Step> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS connection failed earlier",
            ));
        }
        let Self {
            conn,
            incoming,
            outgoing,
            plaintext,
            peer_closed,
            ..
        } = self;
        let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming.pending());
        let mut discard = discard;
        let step = match state {
            Err(e) => Err(Failure::Tls(e)),
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                let mut read = read;
                let mut failed = None;
                while let Some(record) = traffic.next_record() {
                    match record {
                        Ok(record) => {
                            discard += record.discard;
                            plaintext.deliver(record.payload, read.as_deref_mut());
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                failed.map_or(Ok(Step::Again), |e| Err(Failure::Tls(e)))
            }
            Ok(ConnectionState::EncodeTlsData(mut record)) => outgoing
                .encode(&mut record)
                .map(|()| Step::Again)
                .map_err(Failure::Io),
            // The records stay in `outgoing` until the socket takes them: ours to send.
            Ok(ConnectionState::TransmitTlsData(transmit)) => {
                transmit.done();
                Ok(Step::Again)
            }
            Ok(ConnectionState::BlockedHandshake) => Ok(Step::NeedBytes),
            Ok(ConnectionState::WriteTraffic(mut traffic)) => match on_traffic {
                Some(action) => action(&mut traffic, outgoing)
                    .map(|()| Step::Traffic)
                    .map_err(Failure::Io),
                None => Ok(Step::Traffic),
            },
            Ok(ConnectionState::PeerClosed) => {
                *peer_closed = true;
                Ok(Step::Again)
            }
            Ok(ConnectionState::Closed) => Ok(Step::Closed),
            Ok(other) => Err(Failure::Io(io::Error::other(format!(
                "unexpected TLS state {other:?}"
            )))),
        };
        incoming.discard(discard);
        match step {
            Ok(step) => Ok(step),
            Err(Failure::Io(e)) => Err(e),
            Err(Failure::Tls(e)) => {
                self.failed = true;
                self.send_alert();
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// After a TLS error: the alert rustls queued for it, sent if the socket takes it now.
    /// rustls hands a queued record out before looking at the input again, so this one
    /// call does not parse the failed records twice.
    fn send_alert(&mut self) {
        let Self {
            conn,
            incoming,
            outgoing,
            ..
        } = self;
        let UnbufferedStatus { state, .. } = conn.process_tls_records(incoming.pending());
        if let Ok(ConnectionState::EncodeTlsData(mut record)) = state {
            let _ = outgoing.encode(&mut record);
        }
        self.outgoing.send_now(&self.tcp);
    }

    /// Passes over the pending records until application data may be sent, then runs
    /// `action` with room for it.
    fn until_traffic(&mut self, action: OnTraffic<'_>) -> io::Result<()> {
        loop {
            match self.step(None, Some(&mut *action))? {
                Step::Again => {}
                Step::Traffic => return Ok(()),
                Step::NeedBytes => return Err(io::ErrorKind::NotConnected.into()),
                Step::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
            }
        }
    }
}

/// How a pass failed: the peer broke the protocol (an alert is due), or the socket did.
enum Failure {
    Tls(rustls::Error),
    Io(io::Error),
}

impl AsyncRead for ServerTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        loop {
            this.plaintext.take_into(buf);
            if buf.remaining() == 0 || !this.plaintext.is_empty() || this.peer_closed {
                break;
            }
            match this.step(Some(&mut *buf), None)? {
                Step::Again => {}
                Step::Closed => this.peer_closed = true,
                Step::NeedBytes | Step::Traffic if buf.filled().len() > before => {
                    // Records the socket already holds go in the same read while there
                    // is room (never waiting: what was read so far is returned first).
                    if !this.incoming.maybe_more() {
                        break;
                    }
                    match this.incoming.poll_fill(&this.tcp, cx, MAX_RECORD) {
                        Poll::Ready(Ok(n)) if n > 0 => {}
                        _ => break,
                    }
                }
                Step::NeedBytes | Step::Traffic => {
                    // Whatever rustls made meanwhile (a key update's answer) leaves now.
                    if let Poll::Ready(Err(e)) = this.outgoing.poll_send(&mut this.tcp, cx) {
                        return Poll::Ready(Err(e));
                    }
                    let limit = if this.conn.is_handshaking() {
                        MAX_HANDSHAKE_BUFFER
                    } else {
                        MAX_RECORD
                    };
                    if ready!(this.incoming.poll_fill(&this.tcp, cx, limit))? == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed connection without sending TLS close_notify",
                        )));
                    }
                }
            }
        }
        if !this.outgoing.is_empty() {
            if let Poll::Ready(Err(e)) = this.outgoing.poll_send(&mut this.tcp, cx) {
                if buf.filled().len() == before {
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ServerTlsStream {
    /// Takes at most [`MAX_WRITE`] bytes, and only once what was taken before has reached the
    /// socket; what it reports taken is encrypted and on its way.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.outgoing.poll_send(&mut this.tcp, cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.close_queued {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "TLS stream already closed for writing",
            )));
        }
        let taken = &data[..data.len().min(MAX_WRITE)];
        this.until_traffic(&mut |traffic, out| out.encrypt(traffic, taken))?;
        // Sending starts now; what the socket does not take yet leaves on the next write or
        // flush.
        if let Poll::Ready(Err(e)) = this.outgoing.poll_send(&mut this.tcp, cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.outgoing.poll_send(&mut this.tcp, cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    /// Sends close_notify, then ends the TCP stream.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            this.close_queued = true;
            // Nothing to say goodbye on if the connection already failed or closed.
            let _ = this.until_traffic(&mut |traffic, out| out.close_notify(traffic));
        }
        ready!(this.outgoing.poll_send(&mut this.tcp, cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

impl AsFd for ServerTlsStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tcp.as_fd()
    }
}
