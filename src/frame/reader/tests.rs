use super::*;

const LIMITS: FrameLimits = FrameLimits {
    max_frame: 1 << 20,
    max_message: 1 << 20,
    accept_text: true,
};

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0xA1, 0xB2, 0xC3, 0xD4];
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Feeds `wire` in pieces cut at `cuts`; returns the bytes for the backend, the message
/// count and the stop, if any.
fn run(
    wire: &[u8],
    cuts: &[usize],
    limits: &FrameLimits,
) -> (Vec<u8>, u32, Option<Stop>, FrameReader) {
    feed_cut(FrameReader::default(), wire, cuts, limits)
}

/// Feeds `wire` to `reader` in pieces cut at `cuts`, as the session's read loop does.
fn feed_cut(
    mut reader: FrameReader,
    wire: &[u8],
    cuts: &[usize],
    limits: &FrameLimits,
) -> (Vec<u8>, u32, Option<Stop>, FrameReader) {
    let (mut out, mut messages) = (Vec::new(), 0);
    let mut start = 0;
    for end in cuts.iter().copied().chain([wire.len()]) {
        let mut piece = wire[start..end].to_vec();
        start = end;
        let fed = reader.feed(&mut piece, limits);
        out.extend_from_slice(&piece[..fed.data]);
        messages += fed.messages;
        if fed.stop.is_some() {
            return (out, messages, fed.stop, reader);
        }
    }
    (out, messages, None, reader)
}

#[test]
fn payloads_come_out_whole_wherever_the_reads_are_cut() {
    let payload: Vec<u8> = (0..300u16).map(|i| (i % 251) as u8).collect();
    let mut wire = frame(true, 2, &payload[..5]);
    wire.extend(frame(false, 2, &payload[5..200]));
    wire.extend(frame(true, 9, b"are you there"));
    wire.extend(frame(true, 0, &payload[200..]));
    wire.extend(frame(true, 1, "€uro".as_bytes()));
    let mut expected = payload.clone();
    expected.extend_from_slice("€uro".as_bytes());
    for a in 0..wire.len() {
        for b in [a, a + 1, a + 7, wire.len()] {
            let b = b.min(wire.len());
            let (out, messages, stop, mut reader) = run(&wire, &[a, b], &LIMITS);
            assert_eq!(stop, None, "cuts {a} {b}");
            assert_eq!(out, expected, "cuts {a} {b}");
            assert_eq!(messages, 3);
            assert_eq!(reader.take_ping().as_deref(), Some(&b"are you there"[..]));
        }
    }
}

#[test]
fn a_close_frame_ends_after_the_data_before_it() {
    let mut wire = frame(true, 2, b"last words");
    wire.extend(frame(true, 8, &[0x0F, 0xA0, b'b', b'y', b'e']));
    wire.extend(frame(true, 2, b"never read"));
    let (out, _, stop, _) = run(&wire, &[], &LIMITS);
    assert_eq!(out, b"last words");
    assert_eq!(stop, Some(Stop::Closed(Some(4000))));
    let (_, _, stop, _) = run(&frame(true, 8, &[]), &[], &LIMITS);
    assert_eq!(stop, Some(Stop::Closed(None)));
    let (_, _, stop, _) = run(&frame(true, 8, &1005u16.to_be_bytes()), &[], &LIMITS);
    assert_eq!(stop, Some(Stop::Protocol));
}

#[test]
fn message_rules_are_enforced() {
    let cont = frame(true, 0, b"orphan");
    assert_eq!(run(&cont, &[], &LIMITS).2, Some(Stop::Protocol));
    let mut interleaved = frame(false, 2, b"a");
    interleaved.extend(frame(true, 2, b"b"));
    assert_eq!(run(&interleaved, &[], &LIMITS).2, Some(Stop::Protocol));
    let no_text = FrameLimits {
        accept_text: false,
        ..LIMITS
    };
    assert_eq!(
        run(&frame(true, 1, b"hi"), &[], &no_text).2,
        Some(Stop::TextRefused)
    );
    let small = FrameLimits {
        max_frame: 10,
        max_message: 15,
        accept_text: true,
    };
    assert_eq!(
        run(&frame(true, 2, &[0; 11]), &[], &small).2,
        Some(Stop::TooBig)
    );
    let mut parts = frame(false, 2, &[0; 10]);
    parts.extend(frame(true, 0, &[0; 10]));
    let (out, _, stop, _) = run(&parts, &[], &small);
    assert_eq!((out.len(), stop), (10, Some(Stop::TooBig)));
}

#[test]
fn invalid_text_stops_at_the_bad_byte() {
    let (out, _, stop, _) = run(&frame(true, 1, b"ok\xffno"), &[3], &LIMITS);
    assert_eq!(out, b"ok");
    assert_eq!(stop, Some(Stop::InvalidUtf8));
    // A message that ends inside a character is invalid too.
    let (_, _, stop, _) = run(&frame(true, 1, b"a\xe2\x82"), &[], &LIMITS);
    assert_eq!(stop, Some(Stop::InvalidUtf8));
}

/// Regression: the bytes of a text message passed on before an invalid sequence depended
/// on where the reads were cut (a surrogate's first byte went out only if a read ended
/// right after it).
#[test]
fn invalid_text_delivers_the_same_bytes_wherever_the_reads_are_cut() {
    let wire = frame(true, 1, b"ok\xed\xa0\x80");
    for cut in 0..=wire.len() {
        let (out, _, stop, _) = run(&wire, &[cut], &LIMITS);
        assert_eq!(
            (&out[..], stop),
            (&b"ok\xed"[..], Some(Stop::InvalidUtf8)),
            "cut {cut}"
        );
    }
}

#[test]
fn large_frames_use_the_64_bit_length() {
    let payload = vec![0x5Au8; 70_000];
    let wire = frame(true, 2, &payload);
    let (out, messages, stop, _) = run(&wire, &[9, 40_000], &LIMITS);
    assert_eq!((out == payload, messages, stop), (true, 1, None));
}

/// An unmasked server frame, as `wsgate client` reads them.
fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame(fin, opcode, payload);
    let header = f.len() - payload.len() - 4;
    f[1] &= 0x7F;
    f.drain(header..header + 4);
    let at = f.len() - payload.len();
    f[at..].copy_from_slice(payload);
    f
}

/// As [`run`], with a reader of server frames.
fn run_server(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, u32, Option<Stop>, FrameReader) {
    feed_cut(FrameReader::from_server(), wire, cuts, &LIMITS)
}

#[test]
fn server_frames_come_out_whole_wherever_the_reads_are_cut() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = server_frame(true, 2, &payload[..5]);
    wire.extend(server_frame(false, 2, &payload[5..200]));
    wire.extend(server_frame(true, 9, b"ping from the gateway"));
    wire.extend(server_frame(true, 0, &payload[200..]));
    wire.extend(server_frame(true, 8, &1000u16.to_be_bytes()));
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..500 {
        let mut cuts: Vec<usize> = (0..rng.usize(0..6))
            .map(|_| rng.usize(0..=wire.len()))
            .collect();
        cuts.sort_unstable();
        let (out, messages, stop, mut reader) = run_server(&wire, &cuts);
        assert_eq!(stop, Some(Stop::Closed(Some(1000))), "cuts {cuts:?}");
        assert!(out == payload, "cuts {cuts:?}");
        assert_eq!(messages, 2);
        assert_eq!(
            reader.take_ping().as_deref(),
            Some(&b"ping from the gateway"[..])
        );
    }
}

#[test]
fn a_masked_frame_from_a_server_is_a_protocol_error() {
    let (_, _, stop, _) = run_server(&frame(true, 2, b"masked"), &[]);
    assert_eq!(stop, Some(Stop::Protocol));
}
