//! One deadline from accept to the first complete request: silent connections, half an
//! HTTP/2 preface, a preface with SETTINGS and no request, and a client slow at every step
//! (PROXY header, TLS, headers) are all dropped at `limits.handshake_timeout`, so floods of
//! them cannot hold every pending-handshake place for long.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame on stream 0.
const H2_EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Raises this process's soft limit on open files to at least `want`; fails the test,
/// naming the limit, if the hard limit is lower.
fn allow_open_files(want: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|soft| soft >= want) {
        return;
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= want,
        "this test needs {want} open files; RLIMIT_NOFILE's hard limit is {hard}"
    );
    let raised = Rlimit {
        current: Some(want),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raise RLIMIT_NOFILE");
}

/// Opens `n` connections to `addr`, writing `first` on each, from a blocking thread: fast,
/// and off the runtime the gateway runs on.
async fn open_many(addr: SocketAddr, n: usize, first: &'static [u8]) -> Vec<TcpStream> {
    let socks = tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|_| {
                let mut sock = std::net::TcpStream::connect(addr).expect("connect");
                sock.write_all(first).unwrap();
                sock
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    socks
        .into_iter()
        .map(|sock| {
            sock.set_nonblocking(true).unwrap();
            TcpStream::from_std(sock).unwrap()
        })
        .collect()
}

/// With HTTP/2 on, 1,100 silent connections and then 1,100 that send half the preface
/// (over the default 1,024 pending places) only delay a real client behind them: each is
/// dropped one handshake timeout after it was accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_preface_floods_only_delay_a_client_behind_them() {
    const FLOOD: usize = 1_100;
    allow_open_files(8_192);
    let handshake_timeout = Duration::from_secs(1);
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    cfg.limits.handshake_timeout = handshake_timeout;
    assert_eq!(cfg.limits.max_pending_handshakes, 1024);
    // The whole flood waits in the accept queue, as it would with the gateway's own bind.
    let listener = wsgate::listener::bind("127.0.0.1:0", cfg.limits.listen_backlog).unwrap();
    let gw = spawn_gateway_on(cfg, listener).await;
    let flood_started = Instant::now();
    let silent = open_many(gw.addr, FLOOD, b"").await;
    let half = open_many(gw.addr, FLOOD, &H2_PREFACE[..12]).await;
    let opened = flood_started.elapsed();
    let accepted = metrics::value(
        &gw.metrics().await,
        "wsgate_connections_accepted_total",
        &[],
    );
    assert!(
        accepted < (2 * FLOOD) as f64,
        "the flood no longer held the pending places when the client came ({accepted} accepted)"
    );

    let arrived = Instant::now();
    let mut ws = connect(&gw.url("/")).await;
    echo_on(&mut ws, b"behind the flood").await;
    let waited = arrived.elapsed();
    eprintln!(
        "flood of {} opened in {opened:?} ({accepted} accepted then); \
         client behind it served after {waited:?}",
        2 * FLOOD
    );
    // It queues behind two rounds of 1,024 held places, each ending one handshake timeout
    // after it began (so about 2 s less the time the flood took to open), plus the time the
    // gateway takes to drop and accept them on a shared machine. Before, the flood held
    // the places for as long as it liked.
    assert!(
        waited < 2 * handshake_timeout + Duration::from_secs(1),
        "client behind the flood waited {waited:?}"
    );
    // And the flood's connections were closed by the gateway, not left open.
    for mut sock in silent.into_iter().chain(half).take(50) {
        wait_closed(&mut sock).await;
    }
    drop(ws);
    gw.shut_down().await.unwrap();
}

/// A client that completes the HTTP/2 preface and SETTINGS but never sends a request is
/// closed about one handshake timeout after it connected.
#[tokio::test]
async fn preface_and_settings_without_a_request_is_closed_at_the_deadline() {
    let handshake_timeout = Duration::from_secs(1);
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    cfg.limits.handshake_timeout = handshake_timeout;
    let gw = spawn_gateway(cfg).await;
    let started = Instant::now();
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(H2_PREFACE).await.unwrap();
    sock.write_all(&H2_EMPTY_SETTINGS).await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(PATIENCE, sock.read_to_end(&mut got))
        .await
        .expect("connection never closed");
    let lived = started.elapsed();
    // The gateway spoke HTTP/2 (its first frame is SETTINGS) before it gave up.
    assert_eq!(got.get(3), Some(&4), "no SETTINGS frame first: {got:?}");
    assert!(
        lived >= handshake_timeout - Duration::from_millis(100),
        "closed early: {lived:?}"
    );
    assert!(
        lived < handshake_timeout + Duration::from_secs(3),
        "closed late: {lived:?}"
    );
    gw.shut_down().await.unwrap();
}

/// A client that takes a third of the handshake timeout over its PROXY header, another
/// third before its TLS ClientHello, then trickles its headers, is dropped one handshake
/// timeout after it connected (not one per step).
#[tokio::test]
async fn a_client_slow_at_every_step_is_dropped_at_one_deadline() {
    let handshake_timeout = Duration::from_secs(3);
    let step = handshake_timeout / 3;
    let dir = tempfile::tempdir().unwrap();
    let certs = wsgate::devcert::generate(&["localhost".into()], &[]).unwrap();
    let mut cfg = config_for(echo_backend().await);
    cfg.proxy_protocol = true;
    cfg.proxy_protocol_from = vec!["127.0.0.1".into()];
    cfg.limits.handshake_timeout = handshake_timeout;
    cfg.tls.cert = Some(dir.path().join("server.pem"));
    cfg.tls.key = Some(dir.path().join("server-key.pem"));
    std::fs::write(dir.path().join("server.pem"), &certs.server_chain).unwrap();
    std::fs::write(dir.path().join("server-key.pem"), &certs.server_key).unwrap();
    let gw = spawn_gateway(cfg).await;

    let started = Instant::now();
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let header = b"PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\n";
    for byte in header {
        tcp.write_all(&[*byte]).await.unwrap();
        sleep(step / header.len() as u32).await;
    }
    sleep(step).await;
    let tls = tokio_rustls::TlsConnector::from(client_config(&certs.ca_cert))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake inside the deadline");
    let (mut rd, mut wr) = tokio::io::split(tls);
    let trickle = tokio::spawn(async move {
        let head =
            "GET / HTTP/1.1\r\nHost: localhost\r\n".to_string() + &"X-Pad: y\r\n".repeat(500);
        for byte in head.as_bytes() {
            if wr.write_all(&[*byte]).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            sleep(Duration::from_millis(50)).await;
        }
    });
    let mut got = Vec::new();
    let _ = timeout(PATIENCE, rd.read_to_end(&mut got))
        .await
        .expect("slow client never dropped");
    let lived = started.elapsed();
    trickle.abort();
    assert!(
        got.is_empty(),
        "answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        lived >= handshake_timeout - Duration::from_millis(100),
        "dropped early: {lived:?}"
    );
    // Separate timeouts per step would have let it live to about 5 s.
    assert!(
        lived < handshake_timeout + Duration::from_millis(1200),
        "dropped late: {lived:?}"
    );
    let m = gw.metrics().await;
    assert_eq!(
        metrics::value(&m, "wsgate_proxy_header_errors_total", &[]),
        0.0
    );
    assert_eq!(metrics::value(&m, "wsgate_tls_handshakes_total", &[]), 1.0);
    gw.shut_down().await.unwrap();
}

/// A client configuration trusting the CA in `ca_pem`.
fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}
