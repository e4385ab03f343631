//! Bare-socket clients for floods and pushers: half-sent handshakes, thousands of upgrades
//! that must not panic one by one, frames written with no library buffering them.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire::client_frame;

/// A final binary frame carrying `payload`.
pub fn binary_frame(payload: &[u8]) -> Vec<u8> {
    client_frame(0x82, payload)
}

/// A close frame with `code`.
pub fn close_frame(code: u16) -> Vec<u8> {
    client_frame(0x88, &code.to_be_bytes())
}

/// The start of an upgrade request, cut before the headers end: a handshake left hanging.
pub const PARTIAL_UPGRADE: &[u8] =
    b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Ver";

/// Sends a complete upgrade request for `path` on `sock` and reads the response head, in
/// whole reads (the gateway sends nothing after a 101 until the client speaks, and closes
/// after a refusal). The status, or `None` if the connection ended first.
pub async fn upgrade_on(sock: &mut TcpStream, path: &str) -> Option<u16> {
    let request = super::upgrade_request(path, "");
    sock.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    text.split(' ').nth(1)?.parse().ok()
}

/// Reads until the peer closes (EOF or reset), discarding what arrives.
pub async fn drain_to_end(sock: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = sock.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
