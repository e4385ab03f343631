//! Unmasking client payloads (RFC 6455 §5.3) in place, and masking our own when
//! `wsgate client` sends them (the same XOR). The XOR runs over fixed 32-byte blocks, which
//! the compiler turns into vector instructions; the mask's phase carries over between
//! calls, since a frame's payload arrives in pieces. [`MaskKeys`] draws the keys.

use std::hash::{BuildHasher, RandomState};

const BLOCK: usize = 32;

/// Masking keys a client draws for its frames. The RFC asks for keys an observer cannot
/// predict: each is SipHash (a keyed pseudo-random function) of a counter, under a key the
/// standard library seeds from the operating system's randomness.
pub struct MaskKeys {
    hasher: RandomState,
    counter: u64,
}

impl MaskKeys {
    pub fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            counter: 0,
        }
    }

    /// The key for the next frame.
    pub fn next_key(&mut self) -> [u8; 4] {
        self.counter += 1;
        let h = self.hasher.hash_one(self.counter);
        let [a, b, c, d, ..] = h.to_le_bytes();
        [a, b, c, d]
    }
}

impl Default for MaskKeys {
    fn default() -> Self {
        Self::new()
    }
}

/// XORs `data` with `mask`, starting `phase` bytes into the 4-byte mask cycle, and returns
/// the phase after the last byte.
pub fn unmask(data: &mut [u8], mask: [u8; 4], phase: usize) -> usize {
    let rotated: [u8; 4] = std::array::from_fn(|i| mask[(phase + i) % 4]);
    let pattern: [u8; BLOCK] = std::array::from_fn(|i| rotated[i % 4]);
    let mut blocks = data.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for (byte, m) in block.iter_mut().zip(pattern) {
            *byte ^= m;
        }
    }
    for (byte, m) in blocks.into_remainder().iter_mut().zip(pattern) {
        *byte ^= m;
    }
    (phase + data.len()) % 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &mut [u8], mask: [u8; 4], phase: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= mask[(phase + i) % 4];
        }
    }

    #[test]
    fn keys_vary() {
        let mut keys = MaskKeys::new();
        let drawn: std::collections::HashSet<[u8; 4]> = (0..100).map(|_| keys.next_key()).collect();
        assert!(drawn.len() > 95, "only {} distinct keys", drawn.len());
    }

    #[test]
    fn matches_the_bytewise_definition_for_any_split() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let original: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut expected = original.clone();
        naive(&mut expected, mask, 0);
        for cut in [0, 1, 3, 31, 32, 33, 500, 999, 1000] {
            let mut data = original.clone();
            let (a, b) = data.split_at_mut(cut);
            let phase = unmask(a, mask, 0);
            unmask(b, mask, phase);
            assert_eq!(data, expected, "cut at {cut}");
        }
    }
}
