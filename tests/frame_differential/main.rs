//! Differential test of the client frame reader (`FrameReader`, reached through `wsgate::internals`) against an
//! independent decoder, tungstenite's server-side `WebSocket`. Thousands of random client
//! streams (mostly valid masked frames of every opcode, random sizes, fragmentation and
//! masks; some with one defect: a reserved opcode, RSV bits, no mask, an oversized or
//! fragmented control frame, a continuation of nothing, a message inside a message, text
//! that is not UTF-8, a bad close code, reason or length, a frame over the limit), each cut
//! at random points, go to both. They must agree on the close code that ends the
//! connection, the data messages completed and their bytes in order, and the pings.
//!
//! Where the two legitimately differ, and how the test accounts for it:
//! - tungstenite gathers whole messages; the gateway streams each frame's bytes as they
//!   arrive. The message in progress when a stream ends is compared with what the client
//!   sent: the gateway must have delivered all of it that precedes the end (for text, up to
//!   the byte that made it invalid UTF-8), and nothing of a frame it refused.
//! - tungstenite refuses close code 1014 (registered by IANA as "Bad Gateway" after RFC 6455);
//!   the gateway accepts it. Valid closes here use other codes;
//!   [`close_1014_is_accepted_unlike_tungstenite`] shows the difference.
//! - tungstenite checks a frame's RSV bits, mask and control-frame rules only once its payload
//!   has arrived, and its size when its header has; the gateway checks all on the header. A
//!   frame with two defects (oversized *and* unmasked, say), or cut off before its payload
//!   ends, can therefore end with different codes; each stream has at most one defect and
//!   whole frames.
//! - A close with both a bad code and a bad reason: tungstenite reports the reason (1007),
//!   the gateway the code (1002). Only one of them is ever bad here.
//! - The gateway can refuse text messages (1003); tungstenite cannot, so text is accepted.
//! - The gateway reports how many messages ended, not their type; the type matters through
//!   UTF-8 checking (binary data here is often not UTF-8, text sometimes), and tungstenite's
//!   message types are checked against what the client sent.
//!
//! `WSGATE_DIFF_CASES` and `WSGATE_DIFF_SEED` change how many streams and which; a failure
//! names the seed of its stream.

mod generate;
mod oracle;

use fastrand::Rng;
use oracle::Decoded;
use wsgate::internals::FrameLimits;
use wsgate::internals::{FrameReader, Stop};

const CASES: u64 = 20_000;

/// What the gateway's reader made of a stream, and after each read how many bytes and
/// messages it had delivered so far.
struct Ours {
    decoded: Decoded,
    data: Vec<u8>,
    messages: u32,
    progress: Vec<(usize, u32)>,
}

fn code(stop: Stop) -> u16 {
    match stop {
        Stop::Closed(code) => code.unwrap_or(1005),
        Stop::Protocol => 1002,
        Stop::TooBig => 1009,
        Stop::InvalidUtf8 => 1007,
        Stop::TextRefused => 1003,
    }
}

fn feed_gateway(wire: &[u8], limits: &FrameLimits, rng: &mut Rng) -> Ours {
    let mut reader = FrameReader::default();
    let mut ours = Ours {
        decoded: Decoded::default(),
        data: Vec::new(),
        messages: 0,
        progress: Vec::new(),
    };
    let mut start = 0;
    while start < wire.len() {
        let len = match rng.u8(0..10) {
            0 => wire.len() - start,
            1..=3 => rng.usize(1..=8),
            _ => rng.usize(1..=300),
        };
        let end = (start + len).min(wire.len());
        let mut piece = wire[start..end].to_vec();
        start = end;
        let fed = reader.feed(&mut piece, limits);
        assert!(fed.data <= piece.len());
        ours.data.extend_from_slice(&piece[..fed.data]);
        ours.messages += fed.messages;
        ours.progress.push((ours.data.len(), ours.messages));
        while let Some(ping) = reader.take_ping() {
            ours.decoded.pings.push(ping);
        }
        if let Some(stop) = fed.stop {
            ours.decoded.end = Some(code(stop));
            break;
        }
    }
    ours
}

/// The longest prefix of `bytes` that valid UTF-8 can start with: where a streaming check
/// must stop.
fn utf8_prefix(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => match e.error_len() {
            None => bytes.len(),
            Some(n) if matches!(bytes[e.valid_up_to()], 0xC2..=0xF4) => e.valid_up_to() + n,
            Some(_) => e.valid_up_to(),
        },
    }
}

fn is_subsequence(short: &[Vec<u8>], long: &[Vec<u8>]) -> bool {
    let mut long = long.iter();
    short.iter().all(|s| long.any(|l| l == s))
}

/// How the streams ended, to show the generator reaches every outcome.
#[derive(Debug, Default)]
struct Tally {
    by_end: std::collections::BTreeMap<Option<u16>, usize>,
    with_message_in_progress: usize,
    messages: usize,
    bytes: usize,
}

fn check(seed: u64, tally: &mut Tally) {
    let mut rng = Rng::with_seed(seed);
    let case = generate::case(&mut rng);
    let why = || {
        format!(
            "seed {seed}, limits {:?}, stream {:#?}",
            case.limits, case.story
        )
    };
    let ours = feed_gateway(&case.wire, &case.limits, &mut rng);
    let theirs = oracle::decode(&case.wire, &case.limits, rng.u64(..));

    assert_eq!(ours.decoded.end, theirs.end, "close code; {}", why());
    let completed = theirs.messages.len();
    assert_eq!(ours.messages as usize, completed, "messages; {}", why());
    for (i, (text, bytes)) in theirs.messages.iter().enumerate() {
        let sent = &case.messages[i];
        assert_eq!(
            (*text, bytes),
            (sent.text, &sent.frames.concat()),
            "message {i}; {}",
            why()
        );
    }

    // The completed messages' bytes in order, then what the gateway streamed of the next.
    let whole: Vec<u8> = theirs.messages.iter().flat_map(|m| m.1.clone()).collect();
    assert!(
        ours.data.starts_with(&whole),
        "completed messages' bytes; {}",
        why()
    );
    let expected_tail = case.messages.get(completed).map_or(Vec::new(), |sent| {
        let bytes = sent.frames.concat();
        let keep = if sent.text {
            utf8_prefix(&bytes)
        } else {
            bytes.len()
        };
        bytes[..keep].to_vec()
    });
    assert_eq!(
        ours.data[whole.len()..],
        expected_tail[..],
        "message in progress; {}",
        why()
    );

    // A message counts as ended once all its bytes, and none of the next one's, are out.
    let mut ends = vec![0];
    for (_, bytes) in &theirs.messages {
        ends.push(ends.last().copied().unwrap_or(0) + bytes.len());
    }
    for &(bytes, messages) in &ours.progress {
        let m = messages as usize;
        assert!(
            bytes >= ends[m],
            "{m} messages ended before their bytes; {}",
            why()
        );
        if let Some(&next_end) = ends.get(m + 1) {
            assert!(bytes <= next_end, "bytes past message {m}'s end; {}", why());
        }
    }

    *tally.by_end.entry(theirs.end).or_default() += 1;
    tally.with_message_in_progress += usize::from(ours.data.len() > whole.len());
    tally.messages += completed;
    tally.bytes += ours.data.len();

    // The gateway answers every ping in order, up to 16 waiting at once (a flood beyond is
    // coalesced into its newest): all of them, or some of them and the last.
    if theirs.pings.len() <= wsgate::internals::MAX_UNANSWERED_PINGS {
        assert_eq!(ours.decoded.pings, theirs.pings, "pings; {}", why());
    }
    assert_eq!(
        ours.decoded.pings.last(),
        theirs.pings.last(),
        "last ping; {}",
        why()
    );
    assert!(
        is_subsequence(&ours.decoded.pings, &theirs.pings),
        "pings; {}",
        why()
    );
}

#[test]
fn frame_reader_agrees_with_tungstenite() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let cases = var("WSGATE_DIFF_CASES", CASES);
    let first = var("WSGATE_DIFF_SEED", 0x5EED_0000);
    let mut tally = Tally::default();
    for seed in first..first + cases {
        check(seed, &mut tally);
    }
    println!("{cases} streams: {tally:?}");
    if cases >= CASES {
        // Every way a stream can end was reached, often.
        for end in [
            None,
            Some(1000),
            Some(1005),
            Some(1002),
            Some(1007),
            Some(1009),
        ] {
            let seen = tally.by_end.get(&end).copied().unwrap_or(0);
            assert!(
                seen as u64 >= cases / 100,
                "only {seen} streams ended with {end:?}"
            );
        }
        assert!(
            tally.with_message_in_progress as u64 >= cases / 20,
            "{tally:?}"
        );
    }
}

#[test]
fn close_1014_is_accepted_unlike_tungstenite() {
    let limits = FrameLimits {
        max_frame: 1024,
        max_message: 1024,
        accept_text: true,
    };
    let mut wire = generate::frame(0x88, &1014u16.to_be_bytes(), Some([9, 8, 7, 6]));
    let ours = feed_gateway(&wire, &limits, &mut Rng::with_seed(1));
    assert_eq!(ours.decoded.end, Some(1014));
    assert_eq!(oracle::decode(&wire, &limits, 1).end, Some(1002));
    // Every other registered code is judged alike.
    for code in [1000, 1004, 1005, 1012, 1013, 1015, 1016] {
        wire = generate::frame(0x88, &u16::to_be_bytes(code), Some([1, 2, 3, 4]));
        let ours = feed_gateway(&wire, &limits, &mut Rng::with_seed(1));
        assert_eq!(
            ours.decoded.end,
            oracle::decode(&wire, &limits, 1).end,
            "{code}"
        );
    }
}
