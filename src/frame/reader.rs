//! Decoding what the peer sends (a client, or the gateway when `wsgate client` reads a
//! server's unmasked frames), in the pieces the socket delivers. [`FrameReader::feed`]
//! unmasks data payloads in place and moves them to the front of the piece, so what reaches
//! the backend is one contiguous run of bytes per read, whatever mix of frames it held.
//! Message rules (fragmentation, size limits, text allowed, UTF-8) are checked frame by
//! frame; control frames are gathered (≤ 125 bytes) and acted on when complete. The only
//! state kept between reads is a partial header (≤ 14 bytes), a partial character
//! (≤ 3 bytes) and a partial control payload.

use super::close::{self, ClientClose};
use super::header::{ClientHeader, MAX_CLIENT_HEADER, OpCode, parse};
use super::mask::unmask;
use super::pings::UnansweredPings;
use super::utf8::Utf8Stream;

/// Limits a session applies to its client's messages.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    pub max_frame: u64,
    pub max_message: u64,
    pub accept_text: bool,
}

/// Why a client's stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A valid close frame, with its code if it had one.
    Closed(Option<u16>),
    TooBig,
    TextRefused,
    InvalidUtf8,
    Protocol,
}

/// What one [`FrameReader::feed`] produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Fed {
    /// Payload bytes for the backend, now at the front of the piece.
    pub data: usize,
    /// Data messages whose last frame arrived.
    pub messages: u32,
    /// Set when the stream must end after `data` is delivered.
    pub stop: Option<Stop>,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    remaining: u64,
    mask: [u8; 4],
    phase: usize,
}

#[derive(Debug, Default)]
pub struct FrameReader {
    header: [u8; MAX_CLIENT_HEADER],
    header_len: usize,
    frame: Option<Frame>,
    /// The data message in progress: whether it is text, and its size so far.
    message: Option<(bool, u64)>,
    text: Utf8Stream,
    control: Vec<u8>,
    /// Pings decoded and not yet handed on for an answer.
    pings: UnansweredPings,
    /// The peer is a server: its frames are unmasked (a client's must be masked).
    from_server: bool,
}

impl FrameReader {
    /// A reader of a server's frames, for `wsgate client`.
    pub fn from_server() -> Self {
        Self {
            from_server: true,
            ..Self::default()
        }
    }

    /// Takes the payload of the oldest ping not yet taken, which the caller answers with a
    /// pong.
    pub fn take_ping(&mut self) -> Option<Vec<u8>> {
        self.pings.pop()
    }

    /// Decodes `piece`, the bytes just read from the client. Not to be called again after a
    /// `stop`.
    pub fn feed(&mut self, piece: &mut [u8], limits: &FrameLimits) -> Fed {
        let mut fed = Fed {
            data: 0,
            messages: 0,
            stop: None,
        };
        fed.stop = self.decode(piece, limits, &mut fed).err();
        fed
    }

    fn decode(
        &mut self,
        piece: &mut [u8],
        limits: &FrameLimits,
        fed: &mut Fed,
    ) -> Result<(), Stop> {
        let mut pos = 0;
        while pos < piece.len() {
            let Some(frame) = self.frame.as_mut() else {
                match self.header(&piece[pos..])? {
                    Some((header, used)) => {
                        pos += used;
                        self.start(header, limits)?;
                        if header.payload_len == 0 {
                            self.finish(fed)?;
                        }
                    }
                    None => pos = piece.len(),
                }
                continue;
            };
            let n = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(piece.len() - pos);
            let segment = &mut piece[pos..pos + n];
            if frame.mask != [0; 4] {
                frame.phase = unmask(segment, frame.mask, frame.phase);
            }
            frame.remaining -= n as u64;
            pos += n;
            if frame.opcode.is_control() {
                self.control.extend_from_slice(segment);
            } else {
                let checked = match self.message {
                    Some((true, _)) => self.text.push(segment).map_err(|e| e.valid),
                    _ => Ok(()),
                };
                let keep = checked.err().unwrap_or(n);
                piece.copy_within(pos - n..pos - n + keep, fed.data);
                fed.data += keep;
                if checked.is_err() {
                    return Err(Stop::InvalidUtf8);
                }
            }
            if self.frame.is_some_and(|f| f.remaining == 0) {
                self.finish(fed)?;
            }
        }
        Ok(())
    }

    /// Completes the header from the bytes carried over and `bytes`; `None` (with the bytes
    /// kept) while it is still incomplete. Returns the header and how much of `bytes` it used.
    fn header(&mut self, bytes: &[u8]) -> Result<Option<(ClientHeader, usize)>, Stop> {
        let had = self.header_len;
        let take = (MAX_CLIENT_HEADER - had).min(bytes.len());
        let parsed = if had == 0 {
            parse(bytes, !self.from_server)
        } else {
            self.header[had..had + take].copy_from_slice(&bytes[..take]);
            parse(&self.header[..had + take], !self.from_server)
        };
        match parsed.map_err(|_| Stop::Protocol)? {
            Some(h) => {
                self.header_len = 0;
                Ok(Some((h, h.len - had)))
            }
            None => {
                if had == 0 {
                    self.header[..take].copy_from_slice(&bytes[..take]);
                }
                self.header_len = had + take;
                Ok(None)
            }
        }
    }

    /// Checks a new frame against the message in progress and the limits.
    fn start(&mut self, h: ClientHeader, limits: &FrameLimits) -> Result<(), Stop> {
        if h.payload_len > limits.max_frame {
            return Err(Stop::TooBig);
        }
        match h.opcode {
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(Stop::Protocol);
                }
                let text = h.opcode == OpCode::Text;
                if text && !limits.accept_text {
                    return Err(Stop::TextRefused);
                }
                self.message = Some((text, 0));
                self.text = Utf8Stream::default();
            }
            OpCode::Continuation if self.message.is_none() => return Err(Stop::Protocol),
            OpCode::Continuation => {}
            OpCode::Close | OpCode::Ping | OpCode::Pong => self.control.clear(),
        }
        if let (false, Some((_, size))) = (h.opcode.is_control(), self.message.as_mut()) {
            *size += h.payload_len;
            if *size > limits.max_message {
                return Err(Stop::TooBig);
            }
        }
        self.frame = Some(Frame {
            opcode: h.opcode,
            fin: h.fin,
            remaining: h.payload_len,
            mask: h.mask,
            phase: 0,
        });
        Ok(())
    }

    /// Acts on a frame whose payload has fully arrived.
    fn finish(&mut self, fed: &mut Fed) -> Result<(), Stop> {
        let Some(frame) = self.frame.take() else {
            return Ok(());
        };
        match frame.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if frame.fin {
                    let text = self.message.take().is_some_and(|(text, _)| text);
                    if text && !self.text.is_complete() {
                        return Err(Stop::InvalidUtf8);
                    }
                    fed.messages += 1;
                }
            }
            OpCode::Ping => self.pings.push(std::mem::take(&mut self.control)),
            OpCode::Pong => {}
            OpCode::Close => {
                return Err(match close::parse(&self.control) {
                    ClientClose::Valid(code) => Stop::Closed(code),
                    ClientClose::BadCode => Stop::Protocol,
                    ClientClose::BadReason => Stop::InvalidUtf8,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
