#![no_main]
//! The streaming UTF-8 check against `std::str::from_utf8` on the whole input: pushed in
//! pseudo-random pieces, it accepts exactly the prefixes std accepts, fails on the piece
//! where std first sees an invalid sequence and points at the same byte wherever the cuts
//! fall, and is complete exactly when the whole input is valid. `complete_prefix` is checked
//! against std too.
//!
//! Input: byte 0 seeds the cuts, the rest is the text.

use libfuzzer_sys::fuzz_target;
use wsgate::internals::{Utf8Stream, complete_prefix};

/// Where a check of `bytes` must stop: the length of its longest prefix that some valid
/// UTF-8 text starts with. Only a byte that no valid continuation could follow is an error;
/// the bytes before it, a started character included, are not.
fn offending_byte(bytes: &[u8]) -> Option<usize> {
    let e = std::str::from_utf8(bytes).err()?;
    let len = e.error_len()?;
    let at = e.valid_up_to();
    // std reports a broken character by the bytes that could start one (a lead byte and
    // the continuations it allows); a byte that can never appear there is reported alone.
    Some(if matches!(bytes[at], 0xC2..=0xF4) {
        at + len
    } else {
        at
    })
}

fuzz_target!(|input: &[u8]| {
    let [seed, text @ ..] = input else {
        return;
    };
    let expected_error = offending_byte(text);

    let mut stream = Utf8Stream::default();
    let mut state = u32::from(*seed) | 0x100;
    let mut start = 0;
    let mut failed = None;
    while start < text.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let end = (start + (state % 8) as usize).min(text.len());
        let piece = &text[start..end];
        match stream.push(piece) {
            Ok(()) => {
                // std agrees that nothing so far is wrong.
                assert_eq!(offending_byte(&text[..end]), None, "accepted up to {end}");
            }
            Err(e) => {
                assert!(e.valid <= piece.len());
                failed = Some(start + e.valid);
                break;
            }
        }
        start = end;
    }
    assert_eq!(failed, expected_error, "error position, cuts seeded {seed}");
    if failed.is_none() {
        assert_eq!(
            stream.is_complete(),
            std::str::from_utf8(text).is_ok(),
            "complete at the end"
        );
    }

    match complete_prefix(text) {
        Some(n) => {
            assert!(std::str::from_utf8(&text[..n]).is_ok());
            assert!(text.len() - n <= 3, "{n} of {}", text.len());
            assert_eq!(expected_error, None);
        }
        None => assert!(expected_error.is_some()),
    }
});
