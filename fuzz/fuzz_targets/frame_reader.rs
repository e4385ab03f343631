#![no_main]
//! The frame reader, in both roles (the gateway reading a client's masked frames, `wsgate
//! client` reading a gateway's unmasked ones), fed one stream in three cuts: whole, in pieces of pseudo-random
//! sizes, and a byte at a time. What it decodes (the bytes for the backend, the message
//! count, the last ping and why the stream stops) must not depend on how the socket
//! delivered the bytes; each piece's data stays inside that piece; a close it accepts
//! carries a code a client may send.
//!
//! Input: byte 0 picks the limits (bits 0-6) and the role (bit 7: reading a server's
//! frames), byte 1 seeds the cuts, the rest is the peer's stream.

use libfuzzer_sys::fuzz_target;
use wsgate::internals::{FrameLimits, FrameReader, Stop};

/// Frame limits to pick from, the extremes included (a frame must still fit a message).
const SIZES: [u64; 8] = [0, 1, 125, 126, 1024, 65_536, 1 << 20, u64::MAX];

#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    data: Vec<u8>,
    messages: u32,
    last_ping: Option<Vec<u8>>,
    stop: Option<Stop>,
}

fn limits(selector: u8) -> FrameLimits {
    let max_frame = SIZES[usize::from(selector & 7)];
    let max_message = SIZES[usize::from((selector >> 3) & 7)].max(max_frame);
    FrameLimits {
        max_frame,
        max_message,
        accept_text: selector & 0x40 != 0,
    }
}

/// Feeds `wire` in pieces whose sizes `next_len` picks, as the session's read loop does.
fn run(
    wire: &[u8],
    limits: &FrameLimits,
    from_server: bool,
    mut next_len: impl FnMut() -> usize,
) -> Outcome {
    let mut reader = if from_server {
        FrameReader::from_server()
    } else {
        FrameReader::default()
    };
    let mut out = Outcome::default();
    let mut piece = Vec::with_capacity(wire.len());
    let mut start = 0;
    while start < wire.len() {
        let len = next_len().clamp(1, wire.len() - start);
        piece.clear();
        piece.extend_from_slice(&wire[start..start + len]);
        start += len;
        let fed = reader.feed(&mut piece, limits);
        assert!(
            fed.data <= len,
            "data {} beyond the piece ({len})",
            fed.data
        );
        // A message ends with a frame of at least 6 header bytes (2 from a server, whose
        // frames are unmasked); one may have begun in an earlier piece.
        let shortest_frame = if from_server { 2 } else { 6 };
        assert!(
            fed.messages as usize <= len / shortest_frame + 1,
            "{fed:?} from {len} bytes"
        );
        out.data.extend_from_slice(&piece[..fed.data]);
        out.messages += fed.messages;
        // Every ping waits for its answer, up to a bound per read; the newest is never lost,
        // however the stream was cut.
        let mut waiting = 0;
        while let Some(ping) = reader.take_ping() {
            assert!(ping.len() <= 125, "ping of {} bytes", ping.len());
            out.last_ping = Some(ping);
            waiting += 1;
        }
        assert!(waiting <= wsgate::internals::MAX_UNANSWERED_PINGS);
        if let Some(stop) = fed.stop {
            if let Stop::Closed(Some(code)) = stop {
                assert!(
                    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999),
                    "accepted close code {code}"
                );
            }
            if stop == Stop::TextRefused {
                assert!(!limits.accept_text);
            }
            out.stop = Some(stop);
            break;
        }
    }
    assert!(out.data.len() <= wire.len());
    out
}

fuzz_target!(|input: &[u8]| {
    let [selector, seed, wire @ ..] = input else {
        return;
    };
    let limits = limits(*selector);
    let from_server = selector & 0x80 != 0;
    let whole = run(wire, &limits, from_server, || usize::MAX);
    let mut state = u32::from(*seed) | 0x100;
    let random = run(wire, &limits, from_server, || {
        // xorshift32: sizes 1..=32, as varied as the seed makes them.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 32) as usize + 1
    });
    assert_eq!(whole, random, "whole vs pieces (seed {seed})");
    let bytewise = run(wire, &limits, from_server, || 1);
    assert_eq!(whole, bytewise, "whole vs one byte at a time");
});
