#![no_main]
//! A client's close payload, read against the rules written out here from RFC 6455 §5.5.1
//! and §7.4 and the IANA registry: no code, or a code an endpoint may send (never below
//! 1000, never 1004, 1005, 1006 or 1015, nothing between 1016 and 2999 or from 5000) with a
//! UTF-8 reason; a one-byte payload is malformed. Also the gateway's own close frames:
//! whatever code and reason they are given, they are valid control frames whose reason is
//! cut at a character boundary.
//!
//! Input: the payload; for the frame the gateway sends, its first two bytes are the code
//! and the rest, read lossily as text, the reason.

use libfuzzer_sys::fuzz_target;
use wsgate::internals::{ClientClose, close_frame, parse_close};

/// RFC 6455 §7.4.1-2 and the IANA "WebSocket Close Code Number Registry".
fn may_be_sent(code: u16) -> bool {
    match code {
        0..=999 => false,     // not used
        1004..=1006 => false, // reserved; no status; abnormal closure (never sent)
        1015 => false,        // TLS failure (never sent)
        1000..=1014 => true,  // defined by RFC 6455 and the registry
        1016..=2999 => false, // reserved for future revisions of the protocol
        3000..=4999 => true,  // libraries, frameworks and applications
        5000.. => false,      // undefined
    }
}

fuzz_target!(|payload: &[u8]| {
    let expected = match payload {
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
    };
    let got = parse_close(payload);
    assert_eq!(got, expected, "payload {payload:?}");
    if let ClientClose::Valid(Some(code)) = got {
        assert!(
            !matches!(code, 0..=999 | 1005 | 1006 | 1015),
            "accepted {code}"
        );
    }

    // The gateway's own close frame for any code and reason.
    let [hi, lo, reason @ ..] = payload else {
        return;
    };
    let code = u16::from_be_bytes([*hi, *lo]);
    let reason = String::from_utf8_lossy(reason);
    let sent = close_frame(Some(code), &reason);
    assert_eq!(sent[0], 0x88, "FIN and opcode close");
    let len = usize::from(sent[1]);
    assert!(len <= 125, "control payload of {len}");
    assert_eq!(sent.len(), 2 + len);
    let body = &sent[2..];
    assert_eq!(body[..2], code.to_be_bytes());
    let sent_reason = std::str::from_utf8(&body[2..]).expect("reason cut at a char boundary");
    assert!(reason.starts_with(sent_reason));
    // Only as much is cut as the 123 bytes left for the reason require.
    assert!(sent_reason.len() == reason.len() || sent_reason.len() > 123 - 4);
    if may_be_sent(code) {
        assert_eq!(parse_close(body), ClientClose::Valid(Some(code)));
    }
    assert_eq!(close_frame(None, &reason), [0x88, 0]);
});
