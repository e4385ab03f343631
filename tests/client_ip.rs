//! The real client address: PROXY protocol on the listener, forwarding headers believed
//! only from trusted proxies, and the PROXY v2 header the backend receives. The backend's
//! header is parsed with the `ppp` crate, not with the gateway's own code.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use common::{metrics, process};
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

/// PROXY headers expected, and believed from the test's own address (the "load balancer").
fn behind_loopback_proxy(cfg: &mut Config) {
    cfg.proxy_protocol = true;
    cfg.proxy_protocol_from = vec!["127.0.0.1".into()];
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
    let gw = gateway(&backend, behind_loopback_proxy).await;
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
    let gw = gateway(&backend, behind_loopback_proxy).await;
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
    let gw = gateway(&backend, behind_loopback_proxy).await;
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

/// A connection to `to` from the loopback address `from` (127.0.0.x: all of 127/8 is local).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    timeout(PATIENCE, sock.connect(to)).await.unwrap().unwrap()
}

/// Writes `bytes` (the peer may already have closed) and returns what comes back before
/// the connection ends.
async fn answer_to(mut sock: TcpStream, bytes: &[u8]) -> Vec<u8> {
    let _ = sock.write_all(bytes).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    timeout(PATIENCE, async {
        // A reset (the gateway closed with our bytes unread) ends it as well as EOF.
        while let Ok(n @ 1..) = sock.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("connection not closed");
    got
}

#[tokio::test]
async fn a_proxy_header_from_a_peer_not_listed_is_dropped() {
    let backend = Backend::bind().await;
    let gw = gateway(&backend, |c| {
        c.proxy_protocol = true;
        c.proxy_protocol_from = vec!["127.0.0.2".into()];
    })
    .await;
    // From 127.0.0.1, not listed: a valid header claiming someone else gets nothing.
    let forged = format!(
        "PROXY TCP4 198.51.100.66 10.0.0.1 40000 8080\r\n{}",
        upgrade_request("/", "")
    );
    let sock = connect_from([127, 0, 0, 1], gw.addr).await;
    let got = answer_to(sock, forged.as_bytes()).await;
    assert!(
        got.is_empty(),
        "answered: {}",
        String::from_utf8_lossy(&got)
    );
    let errors = metrics::value(&gw.metrics().await, "wsgate_proxy_header_errors_total", &[]);
    assert_eq!(errors, 1.0);

    // From 127.0.0.2, listed: believed, and its session is the backend's first connection.
    let mut sock = connect_from([127, 0, 0, 2], gw.addr).await;
    sock.write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\n")
        .await
        .unwrap();
    let ws = session_over(sock, &gw.url("/"), &[]).await;
    let mut back = backend.accept().await;
    assert_eq!(
        backend_sees(&mut back).await,
        "203.0.113.7:51234".parse().unwrap()
    );
    drop(ws);
    gw.shut_down().await.unwrap();
}

/// The binary with `yaml` as its config file (kept in `dir`), serving with JSON logs.
async fn serve_config(dir: &std::path::Path, yaml: &str, args: &[&str]) -> process::Started {
    let file = dir.join("wsgate.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut all = vec!["--config", file.to_str().unwrap()];
    all.extend(args);
    process::start_serving(&all, &[]).await
}

#[tokio::test]
async fn the_binary_believes_only_listed_proxies_and_logs_the_claimed_client() {
    let echo = echo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nproxy_protocol: true\nproxy_protocol_from: [\"127.0.0.1\"]\n\
         routes:\n  - path: /\n    backend: \"{echo}\"\n"
    );
    let mut gw = serve_config(dir.path(), &yaml, &["--log-level", "wsgate=debug"]).await;
    let addr: SocketAddr = gw.addr.parse().unwrap();

    let forged = format!(
        "PROXY TCP4 198.51.100.66 10.0.0.1 40000 8080\r\n{}",
        upgrade_request("/", "")
    );
    let got = answer_to(connect_from([127, 0, 0, 2], addr).await, forged.as_bytes()).await;
    assert!(
        got.is_empty(),
        "answered: {}",
        String::from_utf8_lossy(&got)
    );
    let dropped = gw
        .stderr
        .wait_for("the debug line for the dropped connection", |l| {
            l.contains("not in proxy_protocol_from")
        })
        .await;
    assert!(dropped.contains("127.0.0.2"), "{dropped}");

    let mut sock = connect_from([127, 0, 0, 1], addr).await;
    sock.write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\n")
        .await
        .unwrap();
    let mut ws = session_over(sock, &format!("ws://{addr}/"), &[]).await;
    echo_on(&mut ws, b"believed").await;
    ws.close(None).await.unwrap();
    let access = gw
        .stderr
        .wait_for("the access log line", |l| {
            l.contains("\"message\":\"session closed\"")
        })
        .await;
    assert_eq!(
        process::json_str(&access, "client"),
        Some("203.0.113.7:51234"),
        "{access}"
    );

    let (status, body) = http_get(gw.admin.parse().unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    let errors = metrics::value(
        &metrics::parse(&body),
        "wsgate_proxy_header_errors_total",
        &[],
    );
    assert_eq!(errors, 1.0);
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}

#[tokio::test]
async fn proxy_protocol_needs_a_valid_sender_list_and_warns_on_a_catch_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.yaml");
    let routes = "routes: [{path: /, backend: \"127.0.0.1:9\"}]\n";
    std::fs::write(&file, format!("proxy_protocol: true\n{routes}")).unwrap();
    let path = file.to_str().unwrap();
    let (status, stdout, stderr) =
        process::run_to_end(process::wsgate(&["check", "--config", path])).await;
    assert_eq!(status.code(), Some(64), "{status}; {stdout}; {stderr}");
    assert!(stderr.contains("proxy_protocol_from"), "{stderr}");
    // Serving refuses the same way, before binding.
    let (status, _, stderr) = process::run_to_end(process::wsgate(&["--config", path])).await;
    assert_eq!(status.code(), Some(64), "{status}; {stderr}");
    assert!(stderr.contains("proxy_protocol_from"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");

    // Each entry must be an address or a network.
    let bad_entry = format!(
        "proxy_protocol: true\nproxy_protocol_from: [\"10.0.0.5\", \"lb.internal\"]\n{routes}"
    );
    std::fs::write(&file, bad_entry).unwrap();
    let (status, _, stderr) =
        process::run_to_end(process::wsgate(&["check", "--config", path])).await;
    assert_eq!(status.code(), Some(64), "{status}; {stderr}");
    assert!(stderr.contains("proxy_protocol_from.1:"), "{stderr}");

    // A catch-all written out is taken, with a warning from check and from the server.
    let open = format!(
        "listen: 127.0.0.1:0\nproxy_protocol: true\nproxy_protocol_from: [\"0.0.0.0/0\", \"::/0\"]\n{routes}"
    );
    std::fs::write(&file, &open).unwrap();
    let (status, stdout, stderr) =
        process::run_to_end(process::wsgate(&["check", "--config", path])).await;
    assert_eq!(status.code(), Some(0), "{status}; {stderr}");
    assert!(stdout.starts_with("configuration ok"), "{stdout}");
    assert!(stderr.contains("warning: proxy_protocol_from"), "{stderr}");
    let mut gw = serve_config(dir.path(), &open, &[]).await;
    let warned = gw
        .stderr
        .wait_for("the startup warning", |l| l.contains("\"level\":\"WARN\""))
        .await;
    assert!(warned.contains("proxy_protocol_from"), "{warned}");
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}
