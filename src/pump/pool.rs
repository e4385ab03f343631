//! Read buffers, lent to a session only while bytes are moving. A session takes one when a
//! socket has data for it and gives it back as soon as that data has been written on, so an
//! idle session holds no buffer at all, and a busy one holds at most one per direction.
//! wss:// connections borrow their TLS record buffers here the same way
//! ([`crate::tls::ServerTlsStream`]). Each worker thread keeps a few spare buffers of each
//! size in use (the client read size, the backend read size plus header room, and the TLS
//! record buffers), so a steady stream of reads does not allocate.

use std::cell::RefCell;

/// Spare buffers kept per thread: enough for the sessions one thread moves at a time.
const SPARES_PER_THREAD: usize = 8;

thread_local! {
    static SPARES: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of exactly `size` bytes (contents unspecified).
pub fn take(size: usize) -> Box<[u8]> {
    SPARES
        .with_borrow_mut(|spares| {
            let at = spares.iter().rposition(|buf| buf.len() == size)?;
            Some(spares.swap_remove(at))
        })
        .unwrap_or_else(|| vec![0; size].into_boxed_slice())
}

/// Returns a buffer for reuse.
/// Returns a buffer for reuse. When the spares are full, the oldest goes (so a size that
/// fell out of use after a reload leaves the pool).
pub fn give(buf: Box<[u8]>) {
    SPARES.with_borrow_mut(|spares| {
        if spares.len() == SPARES_PER_THREAD {
            spares.remove(0);
        }
        spares.push(buf);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_sized() {
        let a = take(1024);
        let addr = a.as_ptr();
        give(a);
        let b = take(1024);
        assert_eq!(b.as_ptr(), addr);
        give(b);
        // Another size is not handed out in its place, and does not evict it.
        let other = take(2048);
        assert_eq!(other.len(), 2048);
        give(other);
        let again = take(1024);
        assert_eq!(again.as_ptr(), addr);
    }
}
