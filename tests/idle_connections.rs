//! Connections past their first request do not live forever: an HTTP/2 connection with no
//! open stream is closed after `limits.http2_idle_timeout` (a WebSocket stream keeps it
//! open however quiet), an HTTP/2 peer that stops answering pings is dropped, and an
//! HTTP/1.1 keep-alive connection (a probe) idle between requests is closed after
//! `limits.handshake_timeout`.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper::ext::Protocol;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADERS: u8 = 1;
const FRAME_SETTINGS: u8 = 4;
const FRAME_PING: u8 = 6;
const FLAG_ACK: u8 = 1;

/// An HTTP/2 frame: type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame: (type, flags, payload), or `None` once the connection ends.
async fn read_frame(sock: &mut TcpStream) -> Option<(u8, u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    sock.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    sock.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], payload))
}

#[tokio::test]
async fn http2_connection_with_no_open_stream_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_secs(1);
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    cfg.limits.http2_idle_timeout = idle;
    let gw = spawn_gateway(cfg).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    let conn = tokio::spawn(async move {
        let result = conn.await;
        (Instant::now(), result)
    });
    let authority = gw.addr.to_string();

    // A probe, then a WebSocket that stays quiet for longer than the idle timeout: an open
    // stream keeps the connection.
    let probe = Request::get(format!("http://{authority}/healthz"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = timeout(PATIENCE, sender.send_request(probe))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().collect().await.unwrap();
    let connect = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{authority}/"))
        .header("sec-websocket-version", "13")
        .extension(Protocol::from_static("websocket"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = timeout(PATIENCE, sender.send_request(connect))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let upgraded = hyper::upgrade::on(resp).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    sleep(idle * 2).await;
    assert!(!conn.is_finished(), "closed with a session open");
    echo_on(&mut ws, b"still here").await;

    // Once the session ends and nothing else is open, the idle timeout runs.
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = timeout(PATIENCE, ws.next()).await.unwrap() {}
    let idle_from = Instant::now();
    let (closed_at, result) = timeout(PATIENCE, conn)
        .await
        .expect("never closed")
        .unwrap();
    result.expect("closed gracefully (GOAWAY), not torn down");
    let after = closed_at - idle_from;
    assert!(
        after >= idle - Duration::from_millis(200),
        "closed early: {after:?}"
    );
    assert!(
        after < idle + Duration::from_secs(3),
        "closed late: {after:?}"
    );
    gw.shut_down().await.unwrap();
}

/// A peer that made a request and then stops answering HTTP/2 pings is dropped after
/// `pong_timeout`, long before the idle timeout.
#[tokio::test]
async fn http2_peer_that_ignores_pings_is_dropped() {
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    cfg.liveness.ping_interval = Duration::from_millis(500);
    cfg.liveness.pong_timeout = Duration::from_millis(500);
    cfg.limits.http2_idle_timeout = Duration::from_secs(60);
    let gw = spawn_gateway(cfg).await;
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    // GET /healthz: :method GET, :scheme http (static table), :path and :authority as
    // literals without indexing.
    let mut block = vec![0x82, 0x86, 0x04, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x01, 1, b'a']);
    sock.write_all(H2_PREFACE).await.unwrap();
    sock.write_all(&frame(FRAME_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    sock.write_all(&frame(FRAME_HEADERS, 0x5, 1, &block))
        .await
        .unwrap();
    let started = Instant::now();
    let (mut answered, mut pinged) = (false, None);
    let ended = timeout(PATIENCE, async {
        while let Some((kind, flags, _)) = read_frame(&mut sock).await {
            match kind {
                FRAME_SETTINGS if flags & FLAG_ACK == 0 => {
                    let ack = frame(FRAME_SETTINGS, FLAG_ACK, 0, &[]);
                    let _ = sock.write_all(&ack).await;
                }
                FRAME_HEADERS => answered = true,
                FRAME_PING if flags & FLAG_ACK == 0 => {
                    pinged.get_or_insert(started.elapsed());
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a peer that never answers pings was kept");
    let lived = started.elapsed();
    assert!(answered, "the request was not answered");
    let pinged = pinged.expect("no ping before the connection closed");
    assert!(pinged < Duration::from_secs(5), "first ping at {pinged:?}");
    assert!(
        lived >= pinged + Duration::from_millis(400),
        "closed {lived:?}, before the pong timeout after the ping at {pinged:?}"
    );
    assert!(lived < Duration::from_secs(10), "closed late: {lived:?}");
    gw.shut_down().await.unwrap();
}

/// A keep-alive connection used for probes may make more requests, but one left idle is
/// closed one handshake timeout after its last answer (with or without HTTP/2 on).
#[tokio::test]
async fn idle_http1_keep_alive_probe_connection_is_closed() {
    for http2 in [false, true] {
        let handshake_timeout = Duration::from_secs(1);
        let mut cfg = config_for(echo_backend().await);
        cfg.http2 = http2;
        cfg.limits.handshake_timeout = handshake_timeout;
        let gw = spawn_gateway(cfg).await;
        let mut sock = TcpStream::connect(gw.addr).await.unwrap();
        for _ in 0..2 {
            sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .unwrap();
            let head = read_head(&mut sock).await;
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            let mut body = vec![0u8; len];
            sock.read_exact(&mut body).await.unwrap();
        }
        let idle_from = Instant::now();
        wait_closed(&mut sock).await;
        let after = idle_from.elapsed();
        assert!(
            after >= handshake_timeout - Duration::from_millis(200),
            "http2={http2}: closed early: {after:?}"
        );
        assert!(
            after < handshake_timeout + Duration::from_secs(3),
            "http2={http2}: closed late: {after:?}"
        );
        gw.shut_down().await.unwrap();
    }
}

/// Reads a response head, up to and including the blank line.
async fn read_head(sock: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    timeout(PATIENCE, async {
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(sock.read(&mut byte).await.unwrap(), 1, "closed mid-head");
            head.push(byte[0]);
        }
    })
    .await
    .expect("no response head in time");
    String::from_utf8_lossy(&head).into_owned()
}
