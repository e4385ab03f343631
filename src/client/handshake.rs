//! The client side of the opening handshake (RFC 6455 §4.1): the upgrade request we write,
//! and the checks on the gateway's answer. Bytes the gateway sent right behind its 101 are
//! handed back, so the pump reads them first.

use std::hash::{BuildHasher, RandomState};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::dial::DialError;
use crate::config::GatewayUrl;

/// The most we read of the gateway's answer before giving up on it.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// What the request carries besides the URL.
#[derive(Debug, Clone, Default)]
pub struct RequestExtras {
    /// Header lines, each `Name: value` (credentials, `Origin`, custom headers).
    pub headers: Vec<(String, String)>,
    pub subprotocols: Vec<String>,
}

/// The upgrade is done: the subprotocol the gateway chose and the bytes behind the 101.
#[derive(Debug)]
pub struct Opened {
    pub subprotocol: Option<String>,
    pub early: Bytes,
}

/// A fresh `Sec-WebSocket-Key`: 16 bytes no one can predict, base64-encoded.
fn new_key() -> String {
    let state = RandomState::new();
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&state.hash_one(1u8).to_le_bytes());
    raw[8..].copy_from_slice(&state.hash_one(2u8).to_le_bytes());
    STANDARD.encode(raw)
}

/// The request head for `url`.
fn request(url: &GatewayUrl, key: &str, extras: &RequestExtras) -> String {
    let mut head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        url.path, url.authority
    );
    if !extras.subprotocols.is_empty() {
        head.push_str("Sec-WebSocket-Protocol: ");
        head.push_str(&extras.subprotocols.join(", "));
        head.push_str("\r\n");
    }
    for (name, value) in &extras.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends the upgrade request on `io` and checks the answer.
pub async fn open<S>(
    io: &mut S,
    url: &GatewayUrl,
    extras: &RequestExtras,
) -> Result<Opened, DialError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = new_key();
    io.write_all(request(url, &key, extras).as_bytes())
        .await
        .map_err(DialError::Io)?;
    io.flush().await.map_err(DialError::Io)?;
    let (head, rest) = read_head(io).await?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    if !matches!(response.parse(&head), Ok(httparse::Status::Complete(_))) {
        return Err(DialError::Handshake("the answer is not HTTP/1.1"));
    }
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(DialError::Refused(status));
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(DialError::Handshake("101 without Upgrade: websocket"));
    }
    let connection_upgrade = header("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err(DialError::Handshake("101 without Connection: upgrade"));
    }
    if header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(DialError::Handshake("wrong Sec-WebSocket-Accept"));
    }
    let subprotocol = header("sec-websocket-protocol").map(str::to_string);
    if let Some(chosen) = &subprotocol {
        if !extras.subprotocols.iter().any(|p| p == chosen) {
            return Err(DialError::Handshake(
                "the gateway chose a subprotocol we did not offer",
            ));
        }
    }
    if header("sec-websocket-extensions").is_some() {
        return Err(DialError::Handshake(
            "the gateway chose an extension we did not offer",
        ));
    }
    Ok(Opened {
        subprotocol,
        early: Bytes::from(rest),
    })
}

/// Reads up to the end of the response head; returns the head and what followed it.
pub async fn read_head<S>(io: &mut S) -> Result<(Vec<u8>, Vec<u8>), DialError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = io.read(&mut chunk).await.map_err(DialError::Io)?;
        if n == 0 {
            return Err(DialError::ClosedEarly);
        }
        let searched_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf[searched_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            let end = searched_from + at + 4;
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(DialError::Handshake("the answer's head is too long"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sixteen_fresh_bytes() {
        let (a, b) = (new_key(), new_key());
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn the_request_names_host_path_and_extras() {
        let url = GatewayUrl::parse("ws://gw:8080/redis?x=1").unwrap();
        let extras = RequestExtras {
            headers: vec![("Origin".into(), "https://app".into())],
            subprotocols: vec!["a".into(), "b".into()],
        };
        let r = request(&url, "KEY", &extras);
        assert!(
            r.starts_with("GET /redis?x=1 HTTP/1.1\r\nHost: gw:8080\r\n"),
            "{r}"
        );
        assert!(r.contains("\r\nSec-WebSocket-Protocol: a, b\r\n"), "{r}");
        assert!(r.ends_with("Origin: https://app\r\n\r\n"), "{r}");
    }
}
