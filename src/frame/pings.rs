//! Pings a client sent that still wait for their pong, oldest first. Every ping is
//! answered, in order, up to [`MAX_UNANSWERED`] waiting at once; past that a new ping
//! replaces the newest waiting one (RFC 6455 §5.5.3 lets an endpoint answer only the latest
//! of several), so a ping flood costs at most that many payloads of 125 bytes.

use std::collections::VecDeque;

/// How many pings may wait for their pong before new ones are coalesced.
pub const MAX_UNANSWERED: usize = 16;

#[derive(Debug, Default)]
pub struct UnansweredPings {
    payloads: VecDeque<Vec<u8>>,
}

impl UnansweredPings {
    /// Queues the payload of a ping to answer.
    pub fn push(&mut self, payload: Vec<u8>) {
        if self.payloads.len() < MAX_UNANSWERED {
            self.payloads.push_back(payload);
        } else if let Some(newest) = self.payloads.back_mut() {
            *newest = payload;
        }
    }

    /// The oldest ping still to be answered.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.payloads.pop_front()
    }

    pub fn clear(&mut self) {
        self.payloads = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_order_and_coalesces_past_the_bound() {
        let mut pings = UnansweredPings::default();
        for i in 0..MAX_UNANSWERED + 5 {
            pings.push(vec![u8::try_from(i).unwrap()]);
        }
        assert_eq!(pings.payloads.len(), MAX_UNANSWERED);
        let answered: Vec<u8> = std::iter::from_fn(|| pings.pop()).flatten().collect();
        let mut expected: Vec<u8> = (0..u8::try_from(MAX_UNANSWERED - 1).unwrap()).collect();
        expected.push(u8::try_from(MAX_UNANSWERED + 4).unwrap());
        assert_eq!(answered, expected);
        assert!(pings.payloads.is_empty());
    }
}
