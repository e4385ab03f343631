//! What the kernel knows about a TCP connection that the socket API does not say: how many
//! of our bytes the peer's TCP stack has acknowledged, how much room its receive window
//! still offers, and how much we have handed to the kernel in all. Liveness reads these to
//! tell a slow reader (its window keeps reopening) from a stopped or vanished one.
//!
//! Linux only (`TCP_INFO`, `SIOCOUTQ`); elsewhere, or on a kernel too old to report the
//! peer's window (before 5.4), every call answers `None` and callers fall back to what
//! they can see themselves. This module holds the crate's only `unsafe` code: two
//! syscalls that fill plain integers.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

/// One look at a connection's send side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendProgress {
    /// Our bytes the peer's TCP stack has acknowledged since the connection began (the SYN
    /// counts as one: compare offsets from the same socket only).
    pub acked: u64,
    /// The peer's receive window as last advertised, in bytes.
    pub window: u32,
    /// The granularity of that window (`1 << window scale`): a window that is never shrunk
    /// is rounded up to it, so its edge may creep by less than this as data arrives,
    /// without the peer's application reading anything.
    pub window_unit: u32,
}

impl SendProgress {
    /// The right edge of the peer's window: the offset up to which its application has
    /// made room. It moves only when the peer's application reads (or its buffer grows
    /// because it reads), so it stands still for a peer that has stopped reading even
    /// while its kernel still acknowledges small frames.
    pub fn window_end(&self) -> u64 {
        self.acked + u64::from(self.window)
    }

    /// Whether the peer's application has read since `before` was taken: its window's
    /// right edge moved by more than rounding explains.
    pub fn read_since(&self, before: &SendProgress) -> bool {
        self.window_end() >= before.window_end() + u64::from(self.window_unit)
    }
}

/// The acknowledged bytes and the peer's window, from `TCP_INFO`.
#[cfg(target_os = "linux")]
pub fn send_progress(socket: BorrowedFd<'_>) -> Option<SendProgress> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: `info` is a writable `tcp_info` of `len` bytes, and the kernel writes at most
    // `len` bytes into it and the length it wrote into `len`; the fd is open for the borrow.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_snd_wnd) + 4;
    if rc != 0 || usize::try_from(len).ok()? < needed {
        return None;
    }
    // SAFETY: zero-initialised plain integers, partly overwritten by the kernel.
    let info = unsafe { info.assume_init() };
    // `tcpi_snd_wscale` is the low nibble (a C bitfield); at most 14.
    let scale = u32::from(info.tcpi_snd_rcv_wscale & 0x0F).min(14);
    Some(SendProgress {
        acked: info.tcpi_bytes_acked,
        window: info.tcpi_snd_wnd,
        window_unit: 1 << scale,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn send_progress(_socket: BorrowedFd<'_>) -> Option<SendProgress> {
    None
}

/// How many bytes we have handed to the kernel on this connection since it began: the
/// acknowledged ones plus what waits in the send queue (`SIOCOUTQ`). Taken right after a
/// frame was written, it is the stream offset at which that frame ends.
#[cfg(target_os = "linux")]
pub fn written(socket: BorrowedFd<'_>) -> Option<u64> {
    let acked = send_progress(socket)?.acked;
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one `int` through the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if rc != 0 {
        return None;
    }
    Some(acked + u64::try_from(queued).ok()?)
}

#[cfg(not(target_os = "linux"))]
pub fn written(_socket: BorrowedFd<'_>) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    #[tokio::test]
    async fn counts_what_the_peer_acknowledged_and_its_window() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut receiver, _) = listener.accept().await.unwrap();
        let start = send_progress(sender.as_fd()).expect("TCP_INFO on Linux");
        assert!(start.window > 0);
        sender.write_all(&[7u8; 10_000]).await.unwrap();
        let mut got = vec![0u8; 10_000];
        receiver.read_exact(&mut got).await.unwrap();
        // The ACK may trail the data by a moment.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = send_progress(sender.as_fd()).unwrap();
            if now.acked == start.acked + 10_000 {
                assert_eq!(written(sender.as_fd()), Some(now.acked));
                assert!(now.read_since(&start), "the reader made room");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never acknowledged");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
