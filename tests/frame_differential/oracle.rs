//! The independent decoder: tungstenite's server-side `WebSocket` over an in-memory
//! connection that delivers the stream in random pieces. It gathers whole messages, so what
//! it reports is the messages completed before the end, the pings, and how it ended.

use std::io::{self, Read, Write};

use fastrand::Rng;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{Error, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use wsgate::internals::FrameLimits;

/// What a decoder made of a stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Complete data messages: whether text, and the payload.
    pub messages: Vec<(bool, Vec<u8>)>,
    pub pings: Vec<Vec<u8>>,
    /// The close code the connection ends with: the client's own (1005 for a close without
    /// a code), or the one the server must send (1002, 1007, 1009); `None` if the stream
    /// ended without either.
    pub end: Option<u16>,
}

/// The client's side of the connection: reads in random pieces, writes go nowhere.
struct Conn<'a> {
    wire: &'a [u8],
    rng: Rng,
}

impl Read for Conn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.rng.usize(1..=64).min(buf.len()).min(self.wire.len());
        buf[..n].copy_from_slice(&self.wire[..n]);
        self.wire = &self.wire[n..];
        Ok(n)
    }
}

impl Write for Conn<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn decode(wire: &[u8], limits: &FrameLimits, seed: u64) -> Decoded {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_frame_size(Some(limits.max_frame as usize))
        .max_message_size(Some(limits.max_message as usize));
    let conn = Conn {
        wire,
        rng: Rng::with_seed(seed),
    };
    let mut ws = WebSocket::from_raw_socket(conn, Role::Server, Some(config));
    let mut out = Decoded::default();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => out.messages.push((true, t.as_bytes().to_vec())),
            Ok(Message::Binary(b)) => out.messages.push((false, b.to_vec())),
            Ok(Message::Ping(p)) => out.pings.push(p.to_vec()),
            Ok(Message::Pong(_)) => {}
            Ok(Message::Close(close)) => {
                // tungstenite turns a code no endpoint may send into 1002.
                out.end = Some(close.map_or(1005, |c| c.code.into()));
                return out;
            }
            Ok(Message::Frame(_)) => unreachable!("only produced when writing"),
            Err(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => return out,
            Err(Error::Protocol(_)) => {
                out.end = Some(1002);
                return out;
            }
            Err(Error::Utf8(_)) => {
                out.end = Some(1007);
                return out;
            }
            Err(Error::Capacity(_)) => {
                out.end = Some(1009);
                return out;
            }
            Err(e) => panic!("unexpected error from an in-memory stream: {e}"),
        }
    }
}
