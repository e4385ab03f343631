//! UTF-8 checked as it streams: a text message is validated piece by piece as its frames
//! arrive, with a character cut between two pieces carried over (at most 3 bytes).

/// The part of a character seen at the end of the last piece.
#[derive(Debug, Default, Clone, Copy)]
pub struct Utf8Stream {
    partial: [u8; 4],
    len: u8,
}

/// The byte sequence is not UTF-8; the piece's first `valid` bytes were fine.
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
                Err(_) => return Err(Invalid { valid: 0 }),
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
                valid: piece.len() - rest.len() + e.valid_up_to(),
            }),
        }
    }

    /// Whether the text so far ends on a character boundary.
    pub fn is_complete(&self) -> bool {
        self.len == 0
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

    #[test]
    fn complete_prefix_stops_before_a_cut_character() {
        assert_eq!(complete_prefix("ab€".as_bytes()), Some(5));
        assert_eq!(complete_prefix(&"ab€".as_bytes()[..4]), Some(2));
        assert_eq!(complete_prefix(b"a\xffb"), None);
    }
}
