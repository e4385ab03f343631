//! Close frames (RFC 6455 §5.5.1, §7.4): which status codes a client may send, and the bytes
//! of the close frames the gateway sends.

use super::header::{MAX_SERVER_HEADER, OpCode, encode_server};

/// What a client's close frame said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClose {
    /// A valid close: its status code, if it carried one.
    Valid(Option<u16>),
    /// A one-byte payload, or a code no endpoint may send (1002).
    BadCode,
    /// The reason is not UTF-8 (1007).
    BadReason,
}

/// Reads a client's close payload.
pub fn parse(payload: &[u8]) -> ClientClose {
    match payload {
        [] => ClientClose::Valid(None),
        [_] => ClientClose::BadCode,
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !may_be_sent(code) {
                ClientClose::BadCode
            } else if std::str::from_utf8(reason).is_err() {
                ClientClose::BadReason
            } else {
                ClientClose::Valid(Some(code))
            }
        }
    }
}

/// Codes an endpoint may put in a close frame: the defined ones that are not reserved for
/// local use (1005, 1006, 1015), and the ranges for libraries and applications.
fn may_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A complete close frame with `code` and a short `reason` (at most 123 bytes, cut at a
/// character boundary if longer), or an empty one without a code.
pub fn frame(code: Option<u16>, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(125);
    if let Some(code) = code {
        payload.extend_from_slice(&code.to_be_bytes());
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
    }
    control_frame(OpCode::Close, &payload)
}

/// `frame`, a complete unmasked control frame from [`control_frame`] or [`frame`], masked
/// with `key` as a client sends it.
pub fn masked(frame: &[u8], key: [u8; 4]) -> Vec<u8> {
    let (head, payload) = frame.split_at(2.min(frame.len()));
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(head);
    if let Some(second) = out.get_mut(1) {
        *second |= 0x80;
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    super::mask::unmask(&mut out[start..], key, 0);
    out
}

/// A complete unmasked control frame (ping, pong, close) carrying `payload` (≤ 125 bytes).
pub fn control_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut header = [0u8; MAX_SERVER_HEADER];
    let len = encode_server(opcode, payload.len(), &mut header);
    let mut frame = Vec::with_capacity(len + payload.len());
    frame.extend_from_slice(&header[MAX_SERVER_HEADER - len..]);
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_codes_follow_the_rfc() {
        assert_eq!(parse(&[]), ClientClose::Valid(None));
        assert_eq!(parse(&[3]), ClientClose::BadCode);
        assert_eq!(
            parse(&1000u16.to_be_bytes()),
            ClientClose::Valid(Some(1000))
        );
        assert_eq!(
            parse(&4000u16.to_be_bytes()),
            ClientClose::Valid(Some(4000))
        );
        for reserved in [999u16, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert_eq!(
                parse(&reserved.to_be_bytes()),
                ClientClose::BadCode,
                "{reserved}"
            );
        }
        assert_eq!(parse(&[0x03, 0xE8, 0xFF]), ClientClose::BadReason);
    }

    #[test]
    fn masked_control_frames_parse_as_a_client_sends_them() {
        let f = masked(&frame(Some(1000), "bye"), [1, 2, 3, 4]);
        let h = super::super::header::parse(&f, true).unwrap().unwrap();
        assert_eq!((h.payload_len, h.len, h.mask), (5, 6, [1, 2, 3, 4]));
        let mut payload = f[6..].to_vec();
        super::super::mask::unmask(&mut payload, h.mask, 0);
        assert_eq!(payload, [0x03, 0xE8, b'b', b'y', b'e']);
    }

    #[test]
    fn close_frames_carry_code_and_reason() {
        assert_eq!(frame(Some(1001), "going away")[..4], [0x88, 12, 0x03, 0xE9]);
        assert_eq!(frame(None, "ignored"), [0x88, 0]);
        let long = "é".repeat(100);
        let f = frame(Some(1000), &long);
        assert_eq!(f.len(), 2 + 2 + 122, "cut before a split character");
    }
}
