//! Before the 101: each bad request gets its own HTTP status, and a backend that cannot be
//! reached is an HTTP error, never an upgrade followed by a close.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use wsgate::config::Route;

#[tokio::test]
async fn bad_requests_get_their_own_status() {
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    let cases: [(&str, String, u16, &[&str]); 8] = [
        ("unknown path", upgrade_request("/nope", ""), 404, &[]),
        (
            "plain GET on a route",
            "GET / HTTP/1.1\r\nHost: t\r\n\r\n".into(),
            426,
            &["upgrade: websocket", "sec-websocket-version: 13"],
        ),
        (
            "POST on a route",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".into(),
            405,
            &["allow: get"],
        ),
        (
            "wrong version",
            upgrade_request("/", "").replace("Version: 13", "Version: 8"),
            426,
            &["sec-websocket-version: 13"],
        ),
        (
            "key not 16 bytes",
            upgrade_request("/", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            400,
            &[],
        ),
        (
            "key not base64",
            upgrade_request("/", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!!"),
            400,
            &[],
        ),
        (
            "no Connection: upgrade",
            upgrade_request("/", "").replace("Connection: Upgrade\r\n", ""),
            400,
            &[],
        ),
        (
            "upgrade with POST",
            upgrade_request("/", "Content-Length: 0\r\n").replacen("GET", "POST", 1),
            400,
            &[],
        ),
    ];
    for (what, request, status, headers) in cases {
        let (got, head) = raw_request(gw.addr, &request).await;
        assert_eq!(got, status, "{what}: {head}");
        let lower = head.to_ascii_lowercase();
        for h in headers {
            assert!(lower.contains(h), "{what}: missing {h:?} in {head}");
        }
    }
    // And a good one still works.
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 101, "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn oversized_request_head_is_refused() {
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    let big = format!("X-Filler: {}\r\n", "a".repeat(64 * 1024));
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", &big)).await;
    assert_eq!(status, 431, "{head}");
    gw.shut_down().await.unwrap();
}

/// An address where nothing listens: connecting is refused at once.
async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn refused_backend_is_502_never_101() {
    let gw = spawn_gateway(config_for(refused_addr().await)).await;
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 502, "{head}");
    gw.shut_down().await.unwrap();
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect to
/// it hangs (on loopback, without leaving the machine). Returns the address and the
/// sockets that must stay open to keep it that way.
async fn hanging_addr() -> (SocketAddr, Vec<socket2::Socket>, Vec<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => panic!("filler connect failed: {e}"),
            Err(_) => return (addr, vec![sock], fillers), // the queue is full
        }
    }
    panic!("could not fill the accept queue");
}

#[tokio::test]
async fn hanging_backend_is_504_within_the_timeout() {
    let (addr, _keep, _fillers) = hanging_addr().await;
    let mut cfg = config_for(addr);
    cfg.connect_timeout = Duration::from_millis(500);
    let gw = spawn_gateway(cfg).await;
    let started = Instant::now();
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    let took = started.elapsed();
    assert_eq!(status, 504, "{head}");
    assert!(
        took >= Duration::from_millis(450),
        "answered before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn backends_are_tried_in_order_until_one_connects() {
    let echo = echo_backend().await;
    let mut cfg = config_for(echo);
    cfg.routes = vec![Route::new("/tunnel", refused_addr().await.to_string())];
    cfg.routes[0].backend.0.push(echo.to_string());
    let gw = spawn_gateway(cfg).await;
    let mut ws = connect(&gw.url("/tunnel")).await;
    send_binary(&mut ws, b"second backend").await;
    assert_eq!(next_data(&mut ws).await.into_data(), &b"second backend"[..]);
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let mut cfg = config_for(echo_backend().await);
    cfg.limits.handshake_timeout = Duration::from_millis(300);
    let gw = spawn_gateway(cfg).await;
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    // Meanwhile others are served.
    let mut ws = connect(&gw.url("/")).await;
    send_binary(&mut ws, b"not blocked").await;
    assert_eq!(next_data(&mut ws).await.into_data(), &b"not blocked"[..]);
    // The slow one gets closed (hyper may send 408 first).
    let mut rest = Vec::new();
    let read = timeout(PATIENCE, slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "slow client was never dropped");
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn listed_subprotocol_is_echoed_and_required() {
    let mut cfg = config_for(echo_backend().await);
    cfg.routes[0].subprotocols = vec!["binary".into()];
    let gw = spawn_gateway(cfg).await;
    let offer = "Sec-WebSocket-Protocol: base64, binary\r\n";
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", offer)).await;
    assert_eq!(status, 101, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: binary\r\n"),
        "{head}"
    );
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 400, "no offer: {head}");
    let (status, head) = raw_request(
        gw.addr,
        &upgrade_request("/", "Sec-WebSocket-Protocol: chat\r\n"),
    )
    .await;
    assert_eq!(status, 400, "unlisted offer: {head}");
    gw.shut_down().await.unwrap();
}
