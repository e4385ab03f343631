//! Concurrent-session caps: in all, and per client address. A [`SessionSlot`] is held from
//! admission to the end of the session and gives its place back when dropped, so the
//! counts stay exact whichever way a handshake or session ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a session was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapRefusal {
    /// `max_connections` sessions are open (503).
    Total,
    /// This client has `max_connections_per_ip` open (429).
    PerClient,
}

pub struct SessionCaps {
    total: Arc<Semaphore>,
    max_total: usize,
    per_client: Option<Arc<PerClient>>,
}

struct PerClient {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl PerClient {
    fn release(&self, client: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&client);
            }
        }
    }
}

/// One open session's place under the caps.
pub struct SessionSlot {
    _total: OwnedSemaphorePermit,
    client: Option<(Arc<PerClient>, IpAddr)>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Some((per_client, ip)) = &self.client {
            per_client.release(*ip);
        }
    }
}

impl SessionCaps {
    pub fn new(max_total: usize, max_per_client: Option<u32>) -> Self {
        Self {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            per_client: max_per_client.map(|max| {
                Arc::new(PerClient {
                    max,
                    open: Mutex::default(),
                })
            }),
        }
    }

    /// A slot for a session from `client` (already reduced to its limiting key), if both
    /// caps allow one.
    pub fn try_acquire(&self, client: IpAddr) -> Result<SessionSlot, CapRefusal> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| CapRefusal::Total)?;
        let client = match &self.per_client {
            None => None,
            Some(per_client) => {
                let mut open = per_client
                    .open
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let n = open.entry(client).or_insert(0);
                if *n >= per_client.max {
                    return Err(CapRefusal::PerClient);
                }
                *n += 1;
                Some((per_client.clone(), client))
            }
        };
        Ok(SessionSlot {
            _total: total,
            client,
        })
    }

    /// Sessions holding a slot now.
    pub fn open(&self) -> usize {
        self.max_total - self.total.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn caps_count_exactly_and_give_back_on_drop() {
        let caps = SessionCaps::new(3, Some(2));
        let a1 = caps.try_acquire(A).unwrap();
        let _a2 = caps.try_acquire(A).unwrap();
        assert_eq!(caps.try_acquire(A).err(), Some(CapRefusal::PerClient));
        let _b1 = caps.try_acquire(B).unwrap();
        assert_eq!(caps.try_acquire(B).err(), Some(CapRefusal::Total));
        assert_eq!(caps.open(), 3);
        drop(a1);
        assert_eq!(caps.open(), 2);
        let _b2 = caps.try_acquire(B).unwrap();
    }

    #[test]
    fn a_refused_client_slot_does_not_leak_a_total_permit() {
        let caps = SessionCaps::new(10, Some(1));
        let _a = caps.try_acquire(A).unwrap();
        for _ in 0..20 {
            assert_eq!(caps.try_acquire(A).err(), Some(CapRefusal::PerClient));
        }
        assert_eq!(caps.open(), 1);
    }
}
