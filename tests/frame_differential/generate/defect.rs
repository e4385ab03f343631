//! The one defect a stream may carry: each is a frame both decoders must stop on.

use super::{BAD_UTF8, Builder, Sent, frame};

/// Codes no endpoint may send.
const BAD_CODES: [u16; 12] = [
    0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
];

impl Builder<'_> {
    /// Writes one defect; both decoders must stop on it.
    pub(super) fn defect(&mut self) {
        let in_message = self.pending.is_some();
        let small: Vec<u8> = (0..self.rng.usize(0..=40))
            .map(|_| self.rng.u8(..))
            .collect();
        // A frame that would be valid here, to break in one way.
        let valid_first = match (in_message, self.rng.u8(0..3)) {
            (_, 0) => 0x89,
            (true, _) => 0x80,
            (false, _) => 0x82,
        };
        match self.rng.u8(0..11) {
            0 => {
                let opcode = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF][self.rng.usize(..10)];
                self.write(0x80 | opcode, &small, format!("defect: opcode {opcode:#x}"));
            }
            1 => {
                let rsv = self.rng.u8(1..8) << 4;
                self.write(valid_first | rsv, &small, format!("defect: rsv {rsv:#x}"));
            }
            2 => {
                self.case.wire.extend(frame(valid_first, &small, None));
                self.case.story.push("defect: unmasked".into());
            }
            3 => {
                let len = self.rng.usize(126..=250);
                let opcode = [0x88, 0x89, 0x8A][self.rng.usize(..3)];
                self.write(
                    opcode,
                    &vec![b'x'; len],
                    format!("defect: control of {len}"),
                );
            }
            4 => self.write(0x09, &small, "defect: fragmented ping".into()),
            5 if in_message => self.write(0x82, &small, "defect: new message inside one".into()),
            5 => self.write(0x80, &small, "defect: continuation of nothing".into()),
            6 if matches!(self.pending, Some((false, _))) => {
                self.write(0x81, &small, "defect: new message inside one".into());
            }
            6 => self.bad_text(),
            7 => {
                let code = BAD_CODES[self.rng.usize(..BAD_CODES.len())];
                self.close(Some(code), b"bye", "defect: code");
            }
            8 => self.write(0x88, &[0x03], "defect: one-byte close".into()),
            9 => self.close(Some(1000), b"\xc3\x28", "defect: reason"),
            _ => {
                // A frame over the limit: its header alone must end the stream.
                let len = self.case.limits.max_frame + self.rng.u64(1..=1000);
                let first = if in_message { 0x80 } else { 0x82 };
                let mut header = vec![first, 0x80 | 127];
                header.extend_from_slice(&len.to_be_bytes());
                header.extend_from_slice(&[1, 2, 3, 4]);
                self.case.wire.extend(header);
                self.case.story.push(format!("defect: frame of {len}"));
            }
        }
    }

    /// Text with a sequence that is not UTF-8, or a character cut off at the message's end.
    fn bad_text(&mut self) {
        let before = self.rng.usize(0..=20);
        let mut payload = self.text(before);
        if self.rng.bool() {
            payload.extend_from_slice(BAD_UTF8[self.rng.usize(..BAD_UTF8.len())]);
            let after = self.rng.usize(0..=10);
            payload.extend(self.text(after));
        } else {
            payload.extend_from_slice(&"€".as_bytes()[..self.rng.usize(1..=2)]);
        }
        match self.pending.as_mut() {
            Some((true, parts)) => parts.push_front(payload),
            _ => {
                self.plan(true, payload);
                self.message_size = 0;
                self.case.messages.push(Sent {
                    text: true,
                    frames: Vec::new(),
                });
            }
        }
        self.case.story.push("defect: text not UTF-8 next".into());
        while self.pending.is_some() && self.next_fragment() {}
    }
}
