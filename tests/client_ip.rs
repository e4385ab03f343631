//! The real client address: PROXY protocol on the listener, forwarding headers believed
//! only from trusted proxies, and the PROXY v2 header the backend receives. The backend's
//! header is parsed with the `ppp` crate, not with the gateway's own code.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use ppp::v2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::client_async;
use wsgate::Config;

/// Reads the PROXY v2 header a backend receives and returns its source address.
async fn backend_sees(sock: &mut TcpStream) -> SocketAddr {
    let mut fixed = [0u8; 16];
    timeout(PATIENCE, sock.read_exact(&mut fixed))
        .await
        .unwrap()
        .unwrap();
    let len = u16::from_be_bytes([fixed[14], fixed[15]]) as usize;
    let mut rest = vec![0u8; len];
    sock.read_exact(&mut rest).await.unwrap();
    let bytes = [&fixed[..], &rest].concat();
    let header =
        v2::Header::try_from(bytes.as_slice()).expect("backend got a valid PROXY v2 header");
    assert_eq!(header.command, v2::Command::Proxy);
    match header.addresses {
        v2::Addresses::IPv4(a) => SocketAddr::from((a.source_address, a.source_port)),
        v2::Addresses::IPv6(a) => SocketAddr::from((a.source_address, a.source_port)),
        other => panic!("unexpected addresses {other:?}"),
    }
}

/// A gateway whose route sends PROXY v2 to `backend`, with `adjust` applied.
async fn gateway(backend: &Backend, adjust: impl FnOnce(&mut Config)) -> Gateway {
    let mut cfg = config_for(backend.addr);
    cfg.routes[0].backend_proxy_protocol = true;
    adjust(&mut cfg);
    spawn_gateway(cfg).await
}

/// Opens a WebSocket over `sock` (after whatever the test already wrote to it), sends a
/// message, and checks the backend receives it after its PROXY header.
async fn session_over(
    sock: TcpStream,
    url: &str,
    extra: &[(&'static str, &str)],
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    for (k, v) in extra {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let (ws, resp) = timeout(PATIENCE, client_async(req, sock))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

#[tokio::test]
async fn proxy_v1_on_the_listener_reaches_the_backend_as_proxy_v2() {
    let backend = Backend::bind().await;
    let gw = gateway(&backend, |c| c.proxy_protocol = true).await;
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\n")
        .await
        .unwrap();
    let mut ws = session_over(sock, &gw.url("/"), &[]).await;
    let mut back = backend.accept().await;
    assert_eq!(
        backend_sees(&mut back).await,
        "203.0.113.7:51234".parse().unwrap()
    );
    // And then the session's bytes, untouched.
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::binary(
        &b"after the header"[..],
    ))
    .await
    .unwrap();
    let mut got = [0u8; 16];
    back.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"after the header");
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn proxy_v2_on_the_listener_with_ipv6_client() {
    let backend = Backend::bind().await;
    let gw = gateway(&backend, |c| c.proxy_protocol = true).await;
    let client: SocketAddr = "[2001:db8::42]:40000".parse().unwrap();
    let header = v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        (client, "[2001:db8::1]:443".parse::<SocketAddr>().unwrap()),
    )
    .build()
    .unwrap();
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(&header).await.unwrap();
    let ws = session_over(sock, &gw.url("/"), &[]).await;
    let mut back = backend.accept().await;
    assert_eq!(backend_sees(&mut back).await, client);
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_listener_that_requires_proxy_drops_connections_without_it() {
    let backend = Backend::bind().await;
    let gw = gateway(&backend, |c| c.proxy_protocol = true).await;
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(upgrade_request("/", "").as_bytes())
        .await
        .unwrap();
    let mut rest = Vec::new();
    // Closed without any HTTP answer, and the backend never contacted.
    let _ = timeout(PATIENCE, sock.read_to_end(&mut rest))
        .await
        .expect("not dropped");
    assert!(
        rest.is_empty(),
        "got an answer: {}",
        String::from_utf8_lossy(&rest)
    );
    let mut good = TcpStream::connect(gw.addr).await.unwrap();
    good.write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n")
        .await
        .unwrap();
    let ws = session_over(good, &gw.url("/"), &[]).await;
    let mut back = backend.accept().await;
    assert_eq!(
        backend_sees(&mut back).await,
        "192.0.2.1:1000".parse().unwrap()
    );
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Untrusted peer: its X-Forwarded-For is ignored; the backend sees the TCP peer.
    let backend = Backend::bind().await;
    let gw = gateway(&backend, |_| {}).await;
    let sock = TcpStream::connect(gw.addr).await.unwrap();
    let ws = session_over(sock, &gw.url("/"), &[("x-forwarded-for", "198.51.100.9")]).await;
    let mut back = backend.accept().await;
    assert_eq!(
        backend_sees(&mut back).await.ip(),
        IpAddr::from([127, 0, 0, 1])
    );
    drop(ws);
    gw.shut_down().await.unwrap();

    // Trusted peer: the right-most untrusted address is the client (port unknown: 0).
    let gw = gateway(&backend, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()]
    })
    .await;
    let sock = TcpStream::connect(gw.addr).await.unwrap();
    let xff = [("x-forwarded-for", "203.0.113.1, 198.51.100.9, 10.2.3.4")];
    let ws = session_over(sock, &gw.url("/"), &xff).await;
    let mut back = backend.accept().await;
    assert_eq!(
        backend_sees(&mut back).await,
        "198.51.100.9:0".parse().unwrap()
    );
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn per_client_limits_use_the_resolved_address() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.trusted_proxies = vec!["127.0.0.1".into()];
    cfg.limits.per_ip_rate = Some("1/h".parse().unwrap());
    cfg.limits.per_ip_burst = 1;
    let gw = spawn_gateway(cfg).await;
    let from = |ip: &str| upgrade_request("/", &format!("X-Forwarded-For: {ip}\r\n"));
    assert_eq!(raw_request(gw.addr, &from("198.51.100.1")).await.0, 101);
    assert_eq!(raw_request(gw.addr, &from("198.51.100.1")).await.0, 429);
    // Another client behind the same proxy has its own budget.
    assert_eq!(raw_request(gw.addr, &from("198.51.100.2")).await.0, 101);
    // IPv6 clients count per /64: another address in the same /64 shares the budget.
    assert_eq!(raw_request(gw.addr, &from("2001:db8:1:2::1")).await.0, 101);
    assert_eq!(
        raw_request(gw.addr, &from("2001:db8:1:2::ffff")).await.0,
        429
    );
    assert_eq!(raw_request(gw.addr, &from("2001:db8:1:3::1")).await.0, 101);
    gw.shut_down().await.unwrap();
}
