//! Concurrent-session caps: in all, and per client address. A [`SessionSlot`] is held from
//! admission to the end of the session and gives its place back when dropped, so the
//! counts stay exact whichever way a handshake or session ends. Sessions are counted per
//! client even while `max_connections_per_ip` is off (one map entry per client with open
//! sessions), so turning the limit on by reload counts the sessions already open. The
//! limits can change on reload; sessions already over a lowered limit keep running, and
//! new ones wait until the count is back under it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Why a session was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapRefusal {
    /// `max_connections` sessions are open (503).
    Total,
    /// This client has `max_connections_per_ip` open (429).
    PerClient,
}

#[derive(Default)]
struct Counts {
    open: AtomicUsize,
    max_total: AtomicUsize,
    /// 0 means no per-client limit.
    max_per_client: AtomicU32,
    per_client: Mutex<HashMap<IpAddr, u32>>,
}

#[derive(Clone, Default)]
pub struct SessionCaps {
    counts: Arc<Counts>,
}

/// One open session's place under the caps.
pub struct SessionSlot {
    counts: Arc<Counts>,
    /// The key it was counted under per client.
    client: IpAddr,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.counts.open.fetch_sub(1, Ordering::AcqRel);
        let mut map = self
            .counts
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

impl SessionCaps {
    pub fn new(max_total: usize, max_per_client: Option<u32>) -> Self {
        let caps = Self::default();
        caps.set_limits(max_total, max_per_client);
        caps
    }

    /// Applies new limits (on reload) without losing count of open sessions.
    pub fn set_limits(&self, max_total: usize, max_per_client: Option<u32>) {
        self.counts.max_total.store(max_total, Ordering::Release);
        self.counts
            .max_per_client
            .store(max_per_client.unwrap_or(0), Ordering::Release);
    }

    /// A slot for a session from `client` (already reduced to its limiting key), if both
    /// caps allow one.
    pub fn try_acquire(&self, client: IpAddr) -> Result<SessionSlot, CapRefusal> {
        let c = &self.counts;
        let max = c.max_total.load(Ordering::Acquire);
        c.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .map_err(|_| CapRefusal::Total)?;
        let per_client = c.max_per_client.load(Ordering::Acquire);
        let mut map = c.per_client.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(client).or_insert(0);
        if per_client > 0 && *n >= per_client {
            // The entry existed (its count is at least 1): nothing to remove.
            drop(map);
            c.open.fetch_sub(1, Ordering::AcqRel);
            return Err(CapRefusal::PerClient);
        }
        *n += 1;
        drop(map);
        // From here the slot owns one count of each; dropping it gives them back.
        Ok(SessionSlot {
            counts: c.clone(),
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    /// Sessions holding a slot now.
    fn open(caps: &SessionCaps) -> usize {
        caps.counts.open.load(Ordering::Acquire)
    }

    #[test]
    fn caps_count_exactly_and_give_back_on_drop() {
        let caps = SessionCaps::new(3, Some(2));
        let a1 = caps.try_acquire(A).unwrap();
        let _a2 = caps.try_acquire(A).unwrap();
        assert_eq!(caps.try_acquire(A).err(), Some(CapRefusal::PerClient));
        let _b1 = caps.try_acquire(B).unwrap();
        assert_eq!(caps.try_acquire(B).err(), Some(CapRefusal::Total));
        assert_eq!(open(&caps), 3);
        drop(a1);
        assert_eq!(open(&caps), 2);
        let _b2 = caps.try_acquire(B).unwrap();
    }

    #[test]
    fn a_refused_client_slot_does_not_leak_a_total_count() {
        let caps = SessionCaps::new(10, Some(1));
        let _a = caps.try_acquire(A).unwrap();
        for _ in 0..20 {
            assert_eq!(caps.try_acquire(A).err(), Some(CapRefusal::PerClient));
        }
        assert_eq!(open(&caps), 1);
    }

    #[test]
    fn a_per_client_limit_turned_on_counts_sessions_already_open() {
        let caps = SessionCaps::new(10, None);
        let held: Vec<_> = (0..3).map(|_| caps.try_acquire(A).unwrap()).collect();
        caps.set_limits(10, Some(2));
        assert_eq!(caps.try_acquire(A).err(), Some(CapRefusal::PerClient));
        let _b = caps.try_acquire(B).unwrap();
        drop(held);
        let _a1 = caps.try_acquire(A).unwrap();
        let _a2 = caps.try_acquire(A).unwrap();
        assert_eq!(caps.try_acquire(A).err(), Some(CapRefusal::PerClient));
        assert_eq!(open(&caps), 3);
    }

    #[test]
    fn lowered_limits_apply_to_new_sessions_only() {
        let caps = SessionCaps::new(3, None);
        let held: Vec<_> = (0..3).map(|_| caps.try_acquire(A).unwrap()).collect();
        caps.set_limits(1, None);
        assert_eq!(caps.try_acquire(B).err(), Some(CapRefusal::Total));
        drop(held);
        let _one = caps.try_acquire(B).unwrap();
        assert_eq!(caps.try_acquire(B).err(), Some(CapRefusal::Total));
    }
}
