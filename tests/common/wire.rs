//! A WebSocket client written on the raw socket, for the cases a library client hides:
//! reading at a set rate (a slow mobile download), not reading at all, and answering pings
//! the moment it reads them (as a browser does), with the segment size of an internet path.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, sleep_until, timeout};

use super::{PATIENCE, upgrade_request};

/// The segment size of a typical internet path. On loopback a segment is 64 KiB, so a slow
/// reader's window would reopen only every few seconds, which no real client sees.
pub const INTERNET_MSS: u32 = 1400;

/// Connects to `addr` with segments of `INTERNET_MSS` and completes a WebSocket upgrade.
pub async fn upgraded_internet_client(addr: SocketAddr) -> TcpStream {
    upgraded_client(addr, Some(INTERNET_MSS)).await
}

/// Connects to `addr` (with segments of at most `mss` bytes, if given) and completes a
/// WebSocket upgrade.
pub async fn upgraded_client(addr: SocketAddr, mss: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(mss) = mss {
        socket2::SockRef::from(&socket).set_tcp_mss(mss).unwrap();
    }
    let mut sock = timeout(PATIENCE, socket.connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    upgrade(&mut sock).await;
    sock
}

/// Sends an upgrade request for `/` on `sock` and reads the 101 to its last byte.
pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(sock: &mut S) {
    sock.write_all(upgrade_request("/", "").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = timeout(PATIENCE, sock.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "closed during handshake");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

/// A masked client frame.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x1B, 0x7E, 0xC3, 0x05];
    let mut f = vec![first];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

/// Follows the server's frames across reads of any size: counts payload bytes and
/// collects pings (to be answered) without keeping data payloads.
#[derive(Default)]
pub struct ServerFrames {
    header: Vec<u8>,
    /// Payload bytes still to come in the current frame, and its opcode.
    frame: Option<(u8, u64)>,
    control: Vec<u8>,
    pub data_bytes: u64,
    pub pings: Vec<Vec<u8>>,
    pub closed: Option<u16>,
}

impl ServerFrames {
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let Some((opcode, remaining)) = self.frame else {
                self.header.push(bytes[0]);
                bytes = &bytes[1..];
                if let Some(len) = header_complete(&self.header) {
                    let opcode = self.header[0] & 0x0F;
                    self.header.clear();
                    self.control.clear();
                    self.frame = Some((opcode, len));
                    self.finish_if_done();
                }
                continue;
            };
            let n = usize::try_from(remaining).unwrap().min(bytes.len());
            if opcode >= 0x8 {
                self.control.extend_from_slice(&bytes[..n]);
            } else {
                self.data_bytes += n as u64;
            }
            bytes = &bytes[n..];
            self.frame = Some((opcode, remaining - n as u64));
            self.finish_if_done();
        }
    }

    fn finish_if_done(&mut self) {
        if let Some((opcode, 0)) = self.frame {
            self.frame = None;
            match opcode {
                0x9 => self.pings.push(std::mem::take(&mut self.control)),
                0x8 => {
                    self.closed = Some(match self.control.get(..2) {
                        Some(code) => u16::from_be_bytes([code[0], code[1]]),
                        None => 1005,
                    })
                }
                _ => {}
            }
        }
    }
}

/// The payload length once `header` holds a whole server frame header.
fn header_complete(header: &[u8]) -> Option<u64> {
    let len = *header.get(1)? & 0x7F;
    match len {
        126 if header.len() == 4 => Some(u64::from(u16::from_be_bytes([header[2], header[3]]))),
        127 if header.len() == 10 => Some(u64::from_be_bytes(header[2..10].try_into().ok()?)),
        0..=125 => Some(u64::from(len)),
        _ => None,
    }
}

/// How a rate-limited read ended.
#[derive(Debug)]
pub struct Reading {
    pub data_bytes: u64,
    pub pings_answered: usize,
    /// When the gateway closed the connection, if it did.
    pub dropped_at: Option<Instant>,
}

/// Reads `sock` at about `bytes_per_second` for `how_long`, answering every ping as soon as
/// it is read. Stops early if the gateway closes the connection.
pub async fn read_at_rate<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    bytes_per_second: u64,
    how_long: Duration,
) -> Reading {
    const TICK: Duration = Duration::from_millis(20);
    let per_tick = usize::try_from(bytes_per_second * TICK.as_millis() as u64 / 1000)
        .unwrap()
        .max(1);
    let mut frames = ServerFrames::default();
    let mut buf = vec![0u8; per_tick];
    let mut answered = 0;
    let end = Instant::now() + how_long;
    let mut next = Instant::now();
    while Instant::now() < end {
        // A budget per tick, read in as many pieces as the socket gives.
        let mut budget = per_tick;
        while budget > 0 {
            match timeout(TICK, sock.read(&mut buf[..budget])).await {
                Err(_) => break, // nothing more this tick
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return Reading {
                        data_bytes: frames.data_bytes,
                        pings_answered: answered,
                        dropped_at: Some(Instant::now()),
                    };
                }
                Ok(Ok(n)) => {
                    frames.feed(&buf[..n]);
                    budget -= n;
                }
            }
        }
        for ping in std::mem::take(&mut frames.pings) {
            if sock.write_all(&client_frame(0x8A, &ping)).await.is_err() {
                return Reading {
                    data_bytes: frames.data_bytes,
                    pings_answered: answered,
                    dropped_at: Some(Instant::now()),
                };
            }
            answered += 1;
        }
        next += TICK;
        sleep_until(next).await;
    }
    Reading {
        data_bytes: frames.data_bytes,
        pings_answered: answered,
        dropped_at: None,
    }
}
