//! Turning what the backend sends into client messages: binary as it comes, or text split
//! only on UTF-8 character boundaries (an incomplete character waits for the next read).

use std::io;

use bytes::BytesMut;
use tokio::net::tcp::OwnedReadHalf;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The bytes of a UTF-8 character cut by the end of a read, carried to the next one.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    bytes: [u8; 4],
    len: usize,
}

/// The outcome of one non-blocking read from the backend.
#[derive(Debug)]
pub enum Read {
    /// A message for the client and the payload bytes it carries.
    Message(Message, usize),
    /// Nothing to send yet (spurious wake-up, or only part of a character arrived).
    Nothing,
    /// The backend closed its side.
    Eof,
    /// Text mode only: the backend sent bytes that are not UTF-8.
    InvalidUtf8,
    Failed(io::ErrorKind),
}

/// Reads at most `max` bytes that are ready now. The buffer is allocated only once data is
/// waiting, so an idle session holds none.
pub fn read_ready(back: &OwnedReadHalf, max: usize, text: Option<&mut Utf8Carry>) -> Read {
    let carried = text.as_ref().map_or(0, |c| c.len);
    let mut buf = BytesMut::with_capacity(max + carried);
    if let Some(carry) = &text {
        buf.extend_from_slice(&carry.bytes[..carry.len]);
    }
    match back.try_read_buf(&mut buf) {
        Ok(0) if carried > 0 => Read::InvalidUtf8,
        Ok(0) => Read::Eof,
        Ok(n) => match text {
            None => Read::Message(Message::Binary(buf.freeze()), n),
            Some(carry) => {
                carry.len = 0;
                split_text(buf, carry)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Nothing,
        Err(e) => Read::Failed(e.kind()),
    }
}

/// Sends the complete characters in `buf` and keeps a trailing partial one in `carry`.
fn split_text(mut buf: BytesMut, carry: &mut Utf8Carry) -> Read {
    let complete = match std::str::from_utf8(&buf) {
        Ok(_) => buf.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return Read::InvalidUtf8,
    };
    let tail = buf.split_off(complete);
    carry.bytes[..tail.len()].copy_from_slice(&tail);
    carry.len = tail.len();
    if buf.is_empty() {
        return Read::Nothing;
    }
    let n = buf.len();
    match Utf8Bytes::try_from(buf.freeze()) {
        Ok(text) => Read::Message(Message::Text(text), n),
        Err(_) => Read::InvalidUtf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(r: Read) -> String {
        match r {
            Read::Message(Message::Text(t), _) => t.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn a_character_cut_in_two_waits_for_its_rest() {
        let mut carry = Utf8Carry::default();
        let euro = "€".as_bytes(); // 3 bytes
        let mut first = BytesMut::from(&b"ab"[..]);
        first.extend_from_slice(&euro[..1]);
        assert_eq!(text_of(split_text(first, &mut carry)), "ab");
        assert_eq!(carry.len, 1);
        let mut second = BytesMut::from(&carry.bytes[..carry.len]);
        carry.len = 0;
        second.extend_from_slice(&euro[1..]);
        assert_eq!(text_of(split_text(second, &mut carry)), "€");
        assert_eq!(carry.len, 0);
    }

    #[test]
    fn invalid_bytes_are_refused() {
        let mut carry = Utf8Carry::default();
        assert!(matches!(
            split_text(BytesMut::from(&b"a\xffb"[..]), &mut carry),
            Read::InvalidUtf8
        ));
    }
}
