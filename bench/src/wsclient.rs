//! A minimal WebSocket client (RFC 6455), just what the load needs: the opening handshake,
//! masked client frames built once and written as often as wanted, and a reader that walks
//! server frames in place, handing out payload ranges without copying them. Kept this small
//! so that the load generator spends its CPU on the socket, not on framing.

use std::ops::Range;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::Stream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Appends one final client frame (masked with `mask`, as clients must) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// A masking key that differs per connection (the gateway cannot rely on any pattern).
pub fn mask_for(seed: u64) -> [u8; 4] {
    let x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (x as u32).to_be_bytes()
}

/// Sends the opening handshake for `/` and checks the 101 answer. The answer is read into
/// `buf`; returns how many bytes of `buf` came after the answer's head (the first frames).
pub async fn handshake(
    sock: &mut Stream,
    host: &str,
    seed: u64,
    buf: &mut [u8],
) -> Result<Range<usize>> {
    let key = base64::engine::general_purpose::STANDARD.encode(seed.to_be_bytes().repeat(2));
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    sock.write_all(request.as_bytes())
        .await
        .context("sending the upgrade request")?;
    let mut filled = 0;
    let head_end = loop {
        ensure!(
            filled < buf.len(),
            "upgrade answer larger than {} bytes",
            buf.len()
        );
        let n = sock
            .read(&mut buf[filled..])
            .await
            .context("reading the upgrade answer")?;
        ensure!(n > 0, "connection closed before the upgrade answer");
        filled += n;
        if let Some(i) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let status = head.lines().next().unwrap_or_default();
    ensure!(
        status.starts_with("HTTP/1.1 101"),
        "upgrade refused: {status}"
    );
    let accept = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim())
    });
    ensure!(
        accept == Some(derive_accept_key(key.as_bytes()).as_str()),
        "wrong Sec-WebSocket-Accept in the upgrade answer"
    );
    Ok(head_end..filled)
}

/// What the reader found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Payload bytes of a data frame (perhaps part of it), as a range of [`FrameReader::bytes`].
    Data(Range<usize>),
    /// A ping arrived; its payload (at most 125 bytes) is this range of
    /// [`FrameReader::bytes`], for the pong that answers it.
    Ping(Range<usize>),
    /// A close frame arrived.
    Close,
    /// The connection ended between frames.
    Eof,
}

struct Header {
    len: usize,
    opcode: u8,
    payload: u64,
}

/// Parses a server frame header at the start of `b`, or `None` if it is not all there.
fn parse_header(b: &[u8]) -> Result<Option<Header>> {
    if b.len() < 2 {
        return Ok(None);
    }
    ensure!(b[0] & 0x70 == 0, "frame with reserved bits set");
    ensure!(b[1] & 0x80 == 0, "server frame is masked");
    let (len, payload) = match b[1] & 0x7F {
        126 if b.len() >= 4 => (4, u64::from(u16::from_be_bytes([b[2], b[3]]))),
        127 if b.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (10, u64::from_be_bytes(n))
        }
        126 | 127 => return Ok(None),
        n => (2, u64::from(n)),
    };
    Ok(Some(Header {
        len,
        opcode: b[0] & 0x0F,
        payload,
    }))
}

/// Reads server frames through one buffer, with no copy of payloads.
pub struct FrameReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Payload bytes of the current data frame not yet handed out.
    remaining: u64,
}

impl FrameReader {
    /// A reader over `buf`, whose `pending` range holds bytes already read (after the
    /// handshake answer).
    pub fn new(buf: Box<[u8]>, pending: Range<usize>) -> Self {
        Self {
            buf,
            start: pending.start,
            end: pending.end,
            remaining: 0,
        }
    }

    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The whole buffer, for connections that read plain bytes instead of frames.
    pub fn raw_buffer(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The next payload bytes, ping, close frame or end. Pongs are skipped (this client
    /// sends no pings). Cancel-safe: everything read is kept in `self` between calls.
    pub async fn next(&mut self, sock: &mut Stream) -> Result<Event> {
        loop {
            if self.remaining > 0 {
                if self.start == self.end && self.fill(sock).await? == 0 {
                    bail!("connection ended inside a frame");
                }
                let n = self.remaining.min((self.end - self.start) as u64) as usize;
                let range = self.start..self.start + n;
                self.start += n;
                self.remaining -= n as u64;
                return Ok(Event::Data(range));
            }
            let Some(h) = parse_header(&self.buf[self.start..self.end])? else {
                if self.fill(sock).await? == 0 {
                    ensure!(
                        self.start == self.end,
                        "connection ended inside a frame header"
                    );
                    return Ok(Event::Eof);
                }
                continue;
            };
            match h.opcode {
                OP_CONTINUATION | OP_TEXT | OP_BINARY => {
                    self.start += h.len;
                    self.remaining = h.payload;
                }
                OP_CLOSE | OP_PING | OP_PONG => {
                    ensure!(h.payload <= 125, "control frame of {} bytes", h.payload);
                    let total = h.len + h.payload as usize;
                    if self.end - self.start < total {
                        if self.fill(sock).await? == 0 {
                            bail!("connection ended inside a control frame");
                        }
                        continue;
                    }
                    let payload = self.start + h.len..self.start + total;
                    self.start += total;
                    match h.opcode {
                        OP_CLOSE => return Ok(Event::Close),
                        OP_PING => return Ok(Event::Ping(payload)),
                        _ => {}
                    }
                }
                other => bail!("frame with unknown opcode {other:#x}"),
            }
        }
    }

    /// Reads more bytes behind those pending, moving them to the front first if needed.
    async fn fill(&mut self, sock: &mut Stream) -> Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        ensure!(
            self.end < self.buf.len(),
            "frame header larger than the read buffer"
        );
        let n = sock
            .read(&mut self.buf[self.end..])
            .await
            .context("reading a frame")?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_length_in_the_smallest_form() {
        for (n, header) in [(32usize, 6usize), (200, 8), (65536, 14)] {
            let mut out = Vec::new();
            encode_frame(&mut out, OP_BINARY, &vec![7u8; n], [1, 2, 3, 4]);
            assert_eq!(out.len(), header + n);
            assert_eq!(out[0], 0x82);
            let unmasked: Vec<u8> = out[header..]
                .iter()
                .zip([1u8, 2, 3, 4].iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            assert!(unmasked.iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn headers_are_parsed_only_when_complete() {
        assert!(parse_header(&[0x82]).unwrap().is_none());
        assert!(parse_header(&[0x82, 126, 1]).unwrap().is_none());
        let h = parse_header(&[0x82, 126, 1, 0]).unwrap().unwrap();
        assert_eq!((h.len, h.opcode, h.payload), (4, OP_BINARY, 256));
        assert!(parse_header(&[0x82, 0x85]).is_err(), "masked server frame");
    }
}
