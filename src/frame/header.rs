//! The frame header (RFC 6455 §5.2): parsing what the peer sends, with every rule its frames
//! must follow checked as soon as the bytes that carry it arrive, and encoding the headers
//! we send (never fragmented; masked only when `wsgate client` speaks to a gateway).

/// The longest header the gateway writes: 2 bytes plus a 64-bit length.
pub const MAX_SERVER_HEADER: usize = 10;
/// The longest header a client may send: 2 bytes, a 64-bit length and the mask.
pub const MAX_CLIENT_HEADER: usize = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A client frame's header, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHeader {
    pub fin: bool,
    pub opcode: OpCode,
    pub payload_len: u64,
    pub mask: [u8; 4],
    /// How many bytes the header itself took.
    pub len: usize,
}

/// A header no conforming client sends; the session ends with 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("protocol violation: {0}")]
pub struct Violation(pub &'static str);

/// Parses the header at the start of `bytes`: `Ok(None)` while it is incomplete. Rules
/// are checked on the first two bytes, so a bad frame is refused without waiting for more.
/// A client's frames must be masked (`masked`), a server's must not be (then `mask` is all
/// zeros, which unmasks to the same bytes).
pub fn parse(bytes: &[u8], masked: bool) -> Result<Option<ClientHeader>, Violation> {
    let [b0, b1, rest @ ..] = bytes else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(Violation("reserved bits set without an extension"));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(Violation("unknown opcode"))?;
    match (b1 & 0x80 != 0, masked) {
        (false, true) => return Err(Violation("client frame not masked")),
        (true, false) => return Err(Violation("server frame masked")),
        _ => {}
    }
    let short = b1 & 0x7F;
    if opcode.is_control() && (!fin || short > 125) {
        return Err(Violation("fragmented or oversized control frame"));
    }
    let ext = match short {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let Some((len_bytes, after)) = rest.split_at_checked(ext) else {
        return Ok(None);
    };
    let mask_len = if masked { 4 } else { 0 };
    let mask = match after.first_chunk::<4>() {
        _ if !masked => &[0; 4],
        Some(mask) => mask,
        None => return Ok(None),
    };
    let payload_len = match ext {
        2 => u64::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]])),
        8 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(len_bytes);
            let n = u64::from_be_bytes(be);
            if n >> 63 != 0 {
                return Err(Violation("payload length with its top bit set"));
            }
            n
        }
        _ => u64::from(short),
    };
    Ok(Some(ClientHeader {
        fin,
        opcode,
        payload_len,
        mask: *mask,
        len: 2 + ext + mask_len,
    }))
}

/// Writes the header of a final, unmasked frame carrying `payload_len` bytes into the end of
/// `out` and returns how many bytes it took, so that it sits right before a payload that
/// follows `out` in the same buffer.
pub fn encode_server(
    opcode: OpCode,
    payload_len: usize,
    out: &mut [u8; MAX_SERVER_HEADER],
) -> usize {
    let len = payload_len as u64;
    let (second, ext): (u8, usize) = match len {
        0..=125 => (len as u8, 0),
        126..=0xFFFF => (126, 2),
        _ => (127, 8),
    };
    let start = MAX_SERVER_HEADER - 2 - ext;
    out[start] = 0x80 | opcode.bits();
    out[start + 1] = second;
    out[start + 2..].copy_from_slice(&len.to_be_bytes()[8 - ext..]);
    2 + ext
}

/// Writes the header of a final frame carrying `payload_len` bytes masked with `mask` into
/// the end of `out` and returns how many bytes it took (as [`encode_server`]); the caller
/// masks the payload itself (see [`super::mask::unmask`]).
pub fn encode_client(
    opcode: OpCode,
    payload_len: usize,
    mask: [u8; 4],
    out: &mut [u8; MAX_CLIENT_HEADER],
) -> usize {
    let mut unmasked = [0u8; MAX_SERVER_HEADER];
    let len = encode_server(opcode, payload_len, &mut unmasked);
    let start = MAX_CLIENT_HEADER - len - 4;
    out[start..MAX_CLIENT_HEADER - 4].copy_from_slice(&unmasked[MAX_SERVER_HEADER - len..]);
    out[start + 1] |= 0x80;
    out[MAX_CLIENT_HEADER - 4..].copy_from_slice(&mask);
    len + 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(opcode: OpCode, n: usize) -> Vec<u8> {
        let mut out = [0u8; MAX_SERVER_HEADER];
        let len = encode_server(opcode, n, &mut out);
        out[MAX_SERVER_HEADER - len..].to_vec()
    }

    #[test]
    fn server_headers_use_the_shortest_length_form() {
        assert_eq!(encoded(OpCode::Binary, 5), [0x82, 5]);
        assert_eq!(encoded(OpCode::Text, 126), [0x81, 126, 0, 126]);
        assert_eq!(encoded(OpCode::Binary, 65535), [0x82, 126, 0xFF, 0xFF]);
        assert_eq!(
            encoded(OpCode::Binary, 65536),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(encoded(OpCode::Close, 0), [0x88, 0]);
    }

    fn parse_client(bytes: &[u8]) -> Result<Option<ClientHeader>, Violation> {
        parse(bytes, true)
    }

    #[test]
    fn client_headers_parse_once_complete() {
        let h = [0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4];
        for cut in 0..h.len() {
            assert_eq!(parse_client(&h[..cut]), Ok(None), "cut at {cut}");
        }
        let parsed = parse_client(&h).unwrap().unwrap();
        assert_eq!(parsed.payload_len, 256);
        assert_eq!(parsed.mask, [1, 2, 3, 4]);
        assert_eq!(parsed.len, 8);
        assert!(parsed.fin);
        assert_eq!(parsed.opcode, OpCode::Binary);
    }

    #[test]
    fn rule_breaking_headers_are_refused_on_their_first_bytes() {
        assert_eq!(parse_client(&[0x82, 0x85]), Ok(None));
        assert!(parse_client(&[0x82, 0x05]).is_err(), "unmasked");
        assert!(parse_client(&[0xC2, 0x85]).is_err(), "rsv1");
        assert!(parse_client(&[0x83, 0x85]).is_err(), "opcode 3");
        assert!(parse_client(&[0x09, 0x80]).is_err(), "fragmented ping");
        assert!(parse_client(&[0x89, 0xFE]).is_err(), "ping over 125");
        let huge = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert!(parse_client(&huge).is_err(), "top length bit");
    }

    #[test]
    fn server_headers_parse_unmasked_and_masked_ones_are_refused() {
        let h = [0x82, 0x7E, 0x01, 0x00];
        assert_eq!(parse(&h[..3], false), Ok(None));
        let parsed = parse(&h, false).unwrap().unwrap();
        assert_eq!(
            (parsed.payload_len, parsed.len, parsed.mask),
            (256, 4, [0; 4])
        );
        assert!(parse(&[0x82, 0x85], false).is_err(), "masked server frame");
    }

    #[test]
    fn client_headers_round_trip() {
        for n in [0, 5, 125, 126, 65535, 65536] {
            let mut out = [0u8; MAX_CLIENT_HEADER];
            let len = encode_client(OpCode::Binary, n, [9, 8, 7, 6], &mut out);
            let parsed = parse_client(&out[MAX_CLIENT_HEADER - len..])
                .unwrap()
                .unwrap();
            assert_eq!((parsed.payload_len, parsed.len), (n as u64, len));
            assert_eq!(parsed.mask, [9, 8, 7, 6]);
        }
    }
}
