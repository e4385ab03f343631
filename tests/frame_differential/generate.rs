//! Client streams for the differential test: mostly valid masked frames of every opcode,
//! random sizes, fragmentation and masks, with at most one defect per stream. Each stream
//! comes with a record of the data messages it carries up to its first defect, which is what
//! the gateway may deliver.

use std::collections::VecDeque;

use fastrand::Rng;
use wsgate::internals::FrameLimits;

mod defect;

/// Close codes a client may send, as both decoders agree (1014 is left out: see the test).
const VALID_CODES: [u16; 12] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4999,
];
/// Sequences that are not UTF-8 wherever they stand.
const BAD_UTF8: [&[u8]; 6] = [
    b"\xff",
    b"\x80",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82(",
];
/// (max frame, max message) pairs.
const LIMITS: [(u64, u64); 5] = [
    (256, 256),
    (256, 700),
    (1000, 3000),
    (4096, 4096),
    (1 << 20, 1 << 20),
];

/// One data message as the client sent it: its type and each frame's payload, unmasked.
#[derive(Debug, Clone)]
pub struct Sent {
    pub text: bool,
    pub frames: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct Case {
    pub wire: Vec<u8>,
    pub limits: FrameLimits,
    /// The data messages up to the first defect; the last may be incomplete.
    pub messages: Vec<Sent>,
    /// What the stream holds, frame by frame, for failure messages.
    pub story: Vec<String>,
}

struct Builder<'a> {
    rng: &'a mut Rng,
    case: Case,
    /// Fragments of the message being sent, not yet written.
    pending: Option<(bool, VecDeque<Vec<u8>>)>,
    message_size: u64,
}

/// A masked client frame (`mask: None`: unmasked), with `rsv` bits and the shortest length.
pub fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(masked | n as u8),
        n @ 126..=0xFFFF => {
            out.push(masked | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(masked | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

impl Builder<'_> {
    fn mask(&mut self) -> [u8; 4] {
        match self.rng.u8(0..10) {
            0 => [0; 4],
            _ => std::array::from_fn(|_| self.rng.u8(..)),
        }
    }

    fn write(&mut self, first: u8, payload: &[u8], what: String) {
        let mask = Some(self.mask());
        self.case.wire.extend(frame(first, payload, mask));
        self.case.story.push(what);
    }

    fn size(&mut self) -> usize {
        match self.rng.u8(0..100) {
            0..=74 => self.rng.usize(0..=60),
            75..=94 => self.rng.usize(100..=800),
            95..=98 => self.rng.usize(1000..=5000),
            _ => self.rng.usize(66_000..=70_000),
        }
    }

    fn text(&mut self, len: usize) -> Vec<u8> {
        const CHARS: [char; 8] = ['a', 'z', ' ', 'é', 'ß', '€', '漢', '😀'];
        let mut s = String::new();
        while s.len() < len {
            s.push(CHARS[self.rng.usize(..CHARS.len())]);
        }
        s.into_bytes()
    }

    /// A whole message's payload cut into 1 to 4 fragments at random bytes.
    fn plan(&mut self, text: bool, payload: Vec<u8>) {
        let mut cuts: Vec<usize> = (0..self.rng.usize(0..=3))
            .map(|_| self.rng.usize(0..=payload.len()))
            .collect();
        cuts.sort_unstable();
        let mut parts = VecDeque::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([payload.len()]) {
            parts.push_back(payload[start..cut].to_vec());
            start = cut;
        }
        self.pending = Some((text, parts));
    }

    fn start_message(&mut self) {
        let text = self.rng.bool();
        let len = self.size();
        let payload = if text {
            self.text(len)
        } else {
            // Binary data is not checked for UTF-8: sometimes it is not.
            let mut bytes: Vec<u8> = (0..len).map(|_| self.rng.u8(..)).collect();
            if self.rng.u8(0..4) == 0 {
                bytes.extend_from_slice(BAD_UTF8[self.rng.usize(..BAD_UTF8.len())]);
            }
            bytes
        };
        self.plan(text, payload);
        self.message_size = 0;
        self.case.messages.push(Sent {
            text,
            frames: Vec::new(),
        });
    }

    /// Writes the pending message's next fragment; false if it broke a limit (then it is
    /// not recorded: neither decoder reads past it).
    fn next_fragment(&mut self) -> bool {
        let Some((text, parts)) = self.pending.as_mut() else {
            return true;
        };
        let text = *text;
        let Some(part) = parts.pop_front() else {
            return true;
        };
        let fin = parts.is_empty();
        let message = self
            .case
            .messages
            .last_mut()
            .expect("a message was started");
        let opcode = match (message.frames.is_empty(), text) {
            (false, _) => 0x0,
            (true, true) => 0x1,
            (true, false) => 0x2,
        };
        if fin {
            self.pending = None;
        }
        self.message_size += part.len() as u64;
        let over = part.len() as u64 > self.case.limits.max_frame
            || self.message_size > self.case.limits.max_message;
        if !over {
            message.frames.push(part.clone());
        }
        let first = (u8::from(fin) << 7) | opcode;
        self.write(
            first,
            &part,
            format!("data {opcode:#x} fin={fin} len={} over={over}", part.len()),
        );
        !over
    }

    fn control(&mut self) {
        let opcode = if self.rng.bool() { 0x9 } else { 0xA };
        let len = self.rng.usize(0..=125);
        let payload: Vec<u8> = (0..len).map(|_| self.rng.u8(..)).collect();
        self.write(
            0x80 | opcode,
            &payload,
            format!("control {opcode:#x} len={len}"),
        );
    }

    fn close(&mut self, code: Option<u16>, reason: &[u8], what: &str) {
        let mut payload = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
        payload.extend_from_slice(reason);
        self.write(0x88, &payload, format!("close {what} {code:?}"));
    }
}

/// A random client stream and the messages it carries.
pub fn case(rng: &mut Rng) -> Case {
    let (max_frame, max_message) = LIMITS[rng.usize(..LIMITS.len())];
    let mut b = Builder {
        rng,
        case: Case {
            wire: Vec::new(),
            limits: FrameLimits {
                max_frame,
                max_message,
                accept_text: true,
            },
            messages: Vec::new(),
            story: Vec::new(),
        },
        pending: None,
        message_size: 0,
    };
    let steps = b.rng.usize(1..=14);
    let defect_at = (b.rng.u8(0..100) < 45).then(|| b.rng.usize(0..=steps));
    let mut ended = false;
    for step in 0..=steps {
        if defect_at == Some(step) {
            b.defect();
            ended = true;
            break;
        }
        if step == steps {
            break;
        }
        if b.rng.u8(0..10) < 2 {
            b.control();
        } else {
            if b.pending.is_none() {
                b.start_message();
            }
            if !b.next_fragment() {
                ended = true;
                break;
            }
        }
    }
    if !ended && b.rng.u8(0..10) < 6 {
        let code = match b.rng.u8(0..4) {
            0 => None,
            _ => Some(VALID_CODES[b.rng.usize(..VALID_CODES.len())]),
        };
        let len = if code.is_some() {
            b.rng.usize(0..=20)
        } else {
            0
        };
        let reason = b.text(len);
        b.close(code, &reason, "valid");
        ended = true;
    }
    if ended && b.rng.bool() {
        // Whatever follows the end is never read.
        let junk = b.text(10);
        b.write(0x81, &junk, "after the end: text".into());
        b.control();
    }
    b.case
}
