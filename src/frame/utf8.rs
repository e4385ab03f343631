//! UTF-8 checked as it streams: a text message is validated piece by piece as its frames
//! arrive, with a character cut between two pieces carried over (at most 3 bytes).

/// The part of a character seen at the end of the last piece.
#[derive(Debug, Default, Clone, Copy)]
pub struct Utf8Stream {
    partial: [u8; 4],
    len: u8,
}

/// The byte sequence is not UTF-8. The piece's first `valid` bytes come before the byte
/// that made it so: the start of a character that byte broke counts as valid, since a
/// stream cut right after it would already have passed it on. So the bytes accepted before
/// an error do not depend on where the text was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    pub valid: usize,
}

impl Utf8Stream {
    /// Checks the next piece of the text.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), Invalid> {
        let mut rest = piece;
        if self.len > 0 {
            let have = usize::from(self.len);
            let width = char_width(self.partial[0]);
            let take = (width - have).min(rest.len());
            self.partial[have..have + take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            let now = have + take;
            match std::str::from_utf8(&self.partial[..now]) {
                Ok(_) => self.len = 0,
                // Still short of the whole character: the piece was used up.
                Err(e) if e.error_len().is_none() => {
                    self.len = now as u8;
                    return Ok(());
                }
                // The carried bytes started a character; the byte that broke it is here.
                Err(e) => {
                    let broken_at = offending_byte(&self.partial[..now], e);
                    return Err(Invalid {
                        valid: broken_at.saturating_sub(have),
                    });
                }
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &rest[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.len = tail.len() as u8;
                Ok(())
            }
            Err(e) => Err(Invalid {
                valid: piece.len() - rest.len() + offending_byte(rest, e),
            }),
        }
    }

    /// Whether the text so far ends on a character boundary.
    pub fn is_complete(&self) -> bool {
        self.len == 0
    }
}

/// The index in `bytes` of the first byte no valid UTF-8 text could have there, given the
/// error std found. std reports a broken character as the bytes that started it (a lead
/// byte and the continuation bytes it allows: `error_len`), and a byte that cannot start a
/// character alone; only in the first case is the culprit further on.
fn offending_byte(bytes: &[u8], e: std::str::Utf8Error) -> usize {
    let at = e.valid_up_to();
    match (bytes.get(at), e.error_len()) {
        (Some(0xC2..=0xF4), Some(started)) => at + started,
        _ => at,
    }
}

/// How long the character led by `lead` is (a lead byte `from_utf8` accepted as the start
/// of an incomplete character, so 2 to 4).
fn char_width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

/// The length of the longest prefix of `bytes` made of whole characters, or `None` if
/// `bytes` holds an invalid sequence (rather than a character cut off at its end).
pub fn complete_prefix(bytes: &[u8]) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Some(bytes.len()),
        Err(e) if e.error_len().is_none() => Some(e.valid_up_to()),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_cut_anywhere_are_accepted() {
        let text = "aé€😀z".repeat(3);
        let bytes = text.as_bytes();
        for cut1 in 0..bytes.len() {
            for cut2 in cut1..bytes.len() {
                let mut s = Utf8Stream::default();
                assert!(s.push(&bytes[..cut1]).is_ok());
                assert!(s.push(&bytes[cut1..cut2]).is_ok());
                assert!(s.push(&bytes[cut2..]).is_ok());
                assert!(s.is_complete(), "cuts {cut1} {cut2}");
            }
        }
    }

    #[test]
    fn invalid_sequences_are_found_across_pieces() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"ab\xe2\x82"), Ok(()));
        assert!(!s.is_complete());
        assert_eq!(s.push(b"x"), Err(Invalid { valid: 0 }));
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"abc\xffd"), Err(Invalid { valid: 3 }));
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"\xe2"), Ok(()));
        assert_eq!(s.push(b"\x82\xacok\xc0"), Err(Invalid { valid: 4 }));
    }

    /// Regression: a character broken by a later byte was counted as valid when the cut fell
    /// inside it (its first bytes had passed) and as invalid when it did not, so what reached
    /// the backend depended on how the client's bytes were split into reads.
    #[test]
    fn the_error_is_at_the_same_byte_wherever_the_text_is_cut() {
        for (text, broken_at) in [
            (&b"ab\xe2\x82x"[..], 4), // a started character, then a byte that is not its
            (b"ab\xed\xa0\x80", 3),   // a surrogate: ED is fine, A0 after it is not
            (b"ab\xf4\x90\x80\x80", 3), // above U+10FFFF
            (b"ab\xc0\xaf", 2),       // C0 never starts a character
            (b"ab\xffcd", 2),
        ] {
            for cut in 0..=text.len() {
                let mut s = Utf8Stream::default();
                let (first, second) = text.split_at(cut);
                let at = match s.push(first) {
                    Err(e) => e.valid,
                    Ok(()) => cut + s.push(second).expect_err("invalid").valid,
                };
                assert_eq!(at, broken_at, "{text:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn complete_prefix_stops_before_a_cut_character() {
        assert_eq!(complete_prefix("ab€".as_bytes()), Some(5));
        assert_eq!(complete_prefix(&"ab€".as_bytes()[..4]), Some(2));
        assert_eq!(complete_prefix(b"a\xffb"), None);
    }
}
