#![no_main]
//! The PROXY v1/v2 reader on arbitrary connection bytes, delivered whole, in pseudo-random
//! pieces and a byte at a time: the verdict and the number of bytes taken from the stream
//! must not depend on the pieces; an accepted header is exactly the bytes taken (nothing
//! after it is read, and it reads the same without them) and is within the spec's bounds;
//! every refusal is explained by the bytes; what it accepts reads back the same when
//! written out again, and every v2 header the gateway writes for its backends reads back as
//! the addresses it was made from.
//!
//! Input: byte 0 seeds the pieces, the rest is what the connection sends.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};
use wsgate::internals::{
    ProxyError, ProxyHeader, V1_MAX_LEN, V2_MAX_LEN, V2_SIGNATURE, read_header, v2_header,
};

/// An in-memory connection that hands out at most `next_len()` bytes per read.
struct Pieces<'a, F> {
    data: &'a [u8],
    taken: usize,
    next_len: F,
}

impl<F: FnMut() -> usize + Unpin> AsyncRead for Pieces<'_, F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let want = (self.next_len)().max(1);
        let n = want.min(buf.remaining()).min(self.data.len() - self.taken);
        let from = self.taken;
        buf.put_slice(&self.data[from..from + n]);
        self.taken += n;
        Poll::Ready(Ok(()))
    }
}

/// Reads one header from `data`; returns the verdict (as text, to compare) and the bytes
/// taken from the stream.
fn read(
    data: &[u8],
    next_len: impl FnMut() -> usize + Unpin,
) -> (Result<ProxyHeader, String>, usize) {
    let mut conn = Pieces {
        data,
        taken: 0,
        next_len,
    };
    let result = {
        let mut fut = pin!(read_header(&mut conn));
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("an in-memory read never waits"),
        }
    };
    let verdict = result.map_err(|e| {
        check_refusal(data, &e);
        format!("{e:?}")
    });
    (verdict, conn.taken)
}

/// A refusal must be explained by the bytes.
fn check_refusal(data: &[u8], e: &ProxyError) {
    match e {
        ProxyError::NotProxy => assert!(
            !data.starts_with(b"PROXY ") && !data.starts_with(V2_SIGNATURE),
            "a signature refused as not PROXY"
        ),
        ProxyError::Closed { read } => assert_eq!(*read, data.len(), "closed early"),
        ProxyError::TooLong { limit } if *limit == V1_MAX_LEN => {
            assert!(!data[..V1_MAX_LEN.min(data.len())].contains(&b'\n'));
        }
        ProxyError::TooLong { limit } => {
            assert_eq!(*limit, V2_MAX_LEN);
            let announced = usize::from(u16::from_be_bytes([data[14], data[15]]));
            assert!(16 + announced > V2_MAX_LEN);
        }
        ProxyError::Malformed(_) => {}
        ProxyError::Io(e) => panic!("no I/O error can happen here: {e}"),
        ProxyError::UnlistedSender(ip) => panic!("read_header checks no sender list: {ip}"),
    }
}

/// The header as a v1 line or v2 header again, for a read-back check.
fn rewrite(first: u8, h: &ProxyHeader) -> Option<Vec<u8>> {
    let (src, dst) = (h.source?, h.destination?);
    if first == b'\r' {
        return Some(v2_header(src, dst).expect("addresses alone always fit a v2 header"));
    }
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    let line = format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    );
    Some(line.into_bytes())
}

fn xorshift(seed: u8) -> impl FnMut() -> usize + Unpin {
    let mut state = u32::from(seed) | 0x100;
    move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 20) as usize + 1
    }
}

/// Addresses for a v2 header the gateway would write, made from the input's bytes.
fn addresses(bytes: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let b: &[u8; 37] = bytes.first_chunk()?;
    let port = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let ip = |v6: bool, at: usize| -> IpAddr {
        if v6 {
            let o: [u8; 16] = b[at..at + 16].try_into().unwrap_or_default();
            Ipv6Addr::from(o).into()
        } else {
            Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]).into()
        }
    };
    let src = SocketAddr::new(ip(b[0] & 1 != 0, 1), port(33));
    let dst = SocketAddr::new(ip(b[0] & 2 != 0, 17), port(35));
    Some((src, dst))
}

fuzz_target!(|input: &[u8]| {
    let [seed, data @ ..] = input else {
        return;
    };
    let (whole, taken) = read(data, || usize::MAX);
    assert_eq!(
        read(data, xorshift(*seed)),
        (whole.clone(), taken),
        "pieces seeded {seed}"
    );
    assert_eq!(read(data, || 1), (whole.clone(), taken), "a byte at a time");

    if let Ok(header) = whole {
        let used = &data[..taken];
        assert_eq!(header.source.is_some(), header.destination.is_some());
        if used.starts_with(V2_SIGNATURE) {
            let announced = usize::from(u16::from_be_bytes([used[14], used[15]]));
            assert_eq!(taken, 16 + announced);
            assert!(taken <= V2_MAX_LEN);
        } else {
            assert!(
                used.starts_with(b"PROXY ") && used.ends_with(b"\r\n"),
                "{used:?}"
            );
            assert!(taken <= V1_MAX_LEN);
            assert_eq!(used.iter().filter(|&&b| b == b'\n').count(), 1);
        }
        assert_eq!(
            read(used, || usize::MAX),
            (Ok(header), taken),
            "header alone"
        );
        if let Some(again) = rewrite(used[0], &header) {
            assert_eq!(
                read(&again, || usize::MAX),
                (Ok(header), again.len()),
                "rewritten"
            );
        }
    }

    // What the gateway writes to a backend reads back as what it was made from.
    if let Some((src, dst)) = addresses(data) {
        let written = v2_header(src, dst).expect("addresses alone always fit a v2 header");
        let (back, taken) = read(&written, || usize::MAX);
        let back = back.expect("the gateway's own v2 header reads back");
        assert_eq!(taken, written.len());
        for (got, want) in [(back.source, src), (back.destination, dst)] {
            let got = got.expect("an address");
            assert_eq!(got.ip().to_canonical(), want.ip().to_canonical());
            assert_eq!(got.port(), want.port());
        }
    }
});
