//! WebSockets over HTTP/2 (RFC 8441): extended CONNECT on h2 (TLS, ALPN) and h2c (prior
//! knowledge), several sessions on one connection, each piped to its own backend
//! connection, closing one leaving the others running.

mod common;

use std::sync::Arc;

use common::*;
use futures_util::StreamExt;
use hyper::client::conn::http2;
use hyper::ext::Protocol;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

type H2Sender = http2::SendRequest<http_body_util::Empty<bytes::Bytes>>;
type H2Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// An HTTP/2 connection over `io`; its driver runs in the background.
async fn h2_connect<IO>(io: IO) -> H2Sender
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// Opens a WebSocket on a new stream with extended CONNECT; the response status if refused.
async fn open(sender: &mut H2Sender, authority: &str, path: &str) -> Result<H2Socket, StatusCode> {
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://{authority}{path}"))
        .header("sec-websocket-version", "13")
        .extension(Protocol::from_static("websocket"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = timeout(PATIENCE, sender.send_request(req))
        .await
        .unwrap()
        .expect("request");
    if resp.status() != StatusCode::OK {
        return Err(resp.status());
    }
    let upgraded = hyper::upgrade::on(resp).await.expect("upgraded stream");
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await)
}

/// Two sessions on one connection echo independently; closing one leaves the other.
async fn two_sessions_on_one_connection(mut sender: H2Sender, authority: &str, gw: &Gateway) {
    let mut a = open(&mut sender, authority, "/")
        .await
        .expect("first session");
    let mut b = open(&mut sender, authority, "/")
        .await
        .expect("second session");
    echo_on(&mut a, b"on stream a").await;
    echo_on(&mut b, b"on stream b").await;
    a.close(None).await.unwrap();
    while let Some(Ok(_)) = timeout(PATIENCE, a.next()).await.unwrap() {}
    echo_on(&mut b, b"b goes on").await;
    let mut c = open(&mut sender, authority, "/")
        .await
        .expect("a third on the same connection");
    echo_on(&mut c, b"and c").await;
    assert_eq!(
        open(&mut sender, authority, "/nope").await.err(),
        Some(StatusCode::NOT_FOUND)
    );
    let m = gw.metrics().await;
    assert_eq!(
        metrics::value(&m, "wsgate_connections_accepted_total", &[]),
        1.0,
        "one TCP connection"
    );
    drop((b, c));
}

#[tokio::test]
async fn h2c_prior_knowledge_carries_several_websockets() {
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    let gw = spawn_gateway(cfg).await;
    let sender = h2_connect(TcpStream::connect(gw.addr).await.unwrap()).await;
    two_sessions_on_one_connection(sender, &gw.addr.to_string(), &gw).await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn h2_over_tls_by_alpn_carries_several_websockets() {
    let dir = tempfile::tempdir().unwrap();
    let certs = wsgate::devcert::generate(&["localhost".into()], &[]).unwrap();
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server-key.pem");
    std::fs::write(&cert, &certs.server_chain).unwrap();
    std::fs::write(&key, &certs.server_key).unwrap();
    cfg.tls.cert = Some(cert);
    cfg.tls.key = Some(key);
    let gw = spawn_gateway(cfg).await;

    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(certs.ca_cert.as_bytes()).unwrap())
        .unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let sender = h2_connect(tls).await;
    two_sessions_on_one_connection(sender, "localhost", &gw).await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn http2_is_refused_unless_enabled() {
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    // An HTTP/2 prior-knowledge preface reaches an HTTP/1.1-only server: it is closed
    // without being served (no response at all, or an HTTP/1.1 error).
    let (status, head) = raw_request(gw.addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert!(status == 0 || status >= 400, "{head}");
    gw.shut_down().await.unwrap();
}

/// Liveness reads the client's TCP connection under HTTP/2 too: a session whose client
/// sends megabytes to an echo and never reads its stream is dropped (its stream reset),
/// although the gateway has stopped reading it as well.
#[tokio::test]
async fn an_h2_session_that_never_reads_an_echo_is_dropped() {
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    cfg.liveness.ping_interval = std::time::Duration::from_secs(1);
    cfg.liveness.pong_timeout = std::time::Duration::from_secs(1);
    let gw = spawn_gateway(cfg).await;
    let mut sender = h2_connect(TcpStream::connect(gw.addr).await.unwrap()).await;
    let ws = open(&mut sender, &gw.addr.to_string(), "/")
        .await
        .expect("session");
    let (mut reader, mut writer) = tokio::io::split(ws.into_inner());
    let frame = common::wire::client_frame(0x82, &vec![0x5Cu8; 64 * 1024]);
    let started = std::time::Instant::now();
    let writing = tokio::spawn(async move {
        let mut sent = 0u64;
        while tokio::io::AsyncWriteExt::write_all(&mut writer, &frame)
            .await
            .is_ok()
        {
            sent += frame.len() as u64;
        }
        sent
    });
    // The client never reads its stream: the gateway must find that out by itself.
    timeout(PATIENCE, async {
        while metrics::value(&gw.metrics().await, "wsgate_pong_timeouts_total", &[]) < 1.0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("an h2 session that never reads was kept");
    let lived = started.elapsed();
    // And the client learns it: its stream ends after what it had buffered.
    let mut buf = vec![0u8; 64 * 1024];
    timeout(PATIENCE, async {
        while let Ok(1..) = tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await {}
    })
    .await
    .expect("the client never learned that its stream ended");
    let sent = timeout(PATIENCE, writing)
        .await
        .expect("writes never failed")
        .unwrap();
    assert!(sent > 1024 * 1024, "only {sent} bytes went out");
    assert!(
        lived < std::time::Duration::from_secs(6),
        "dropped after {lived:?}"
    );
    let m = gw.metrics().await;
    assert_eq!(metrics::value(&m, "wsgate_pong_timeouts_total", &[]), 1.0);
}
