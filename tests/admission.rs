//! Admission on the wire: each rule's accepted and refused case, with the status and
//! headers the client gets, and the backend never contacted when a client is refused.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use wsgate::Config;

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn origin_allowlist_refuses_with_403_before_the_backend() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.origins = vec![
        "https://app.example.com".into(),
        "https://*.example.org".into(),
    ];
    cfg.allow_missing_origin = false;
    let gw = spawn_gateway(cfg).await;
    for bad in [
        "https://evil.example",
        "https://app.example.com.evil.net",
        "null",
        "https://example.org",
    ] {
        let (status, head) = raw_request(
            gw.addr,
            &upgrade_request("/", &format!("Origin: {bad}\r\n")),
        )
        .await;
        assert_eq!(status, 403, "{bad}: {head}");
    }
    let (status, _) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(
        status, 403,
        "missing Origin with allow_missing_origin: false"
    );
    for good in [
        "https://app.example.com",
        "https://APP.example.com:443",
        "https://a.b.example.org",
    ] {
        let (status, head) = raw_request(
            gw.addr,
            &upgrade_request("/", &format!("Origin: {good}\r\n")),
        )
        .await;
        assert_eq!(status, 101, "{good}: {head}");
        drop(backend.accept().await);
    }
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn route_origins_replace_the_global_list() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.origins = vec!["https://global.example".into()];
    cfg.routes[0].origins = Some(vec!["https://route.example".into()]);
    let gw = spawn_gateway(cfg).await;
    let (status, _) = raw_request(
        gw.addr,
        &upgrade_request("/", "Origin: https://global.example\r\n"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = raw_request(
        gw.addr,
        &upgrade_request("/", "Origin: https://route.example\r\n"),
    )
    .await;
    assert_eq!(status, 101);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn per_client_rate_is_429_with_retry_after() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.limits.per_ip_rate = Some("1/m".parse().unwrap());
    cfg.limits.per_ip_burst = 2;
    let gw = spawn_gateway(cfg).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(connect(&gw.url("/")).await);
        drop(backend.accept().await);
    }
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 429, "{head}");
    let retry: u64 = header(&head, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{head}");
    drop(open);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn global_rate_is_503_with_retry_after() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.limits.global_rate = Some("1/h".parse().unwrap());
    cfg.limits.global_burst = 1;
    let gw = spawn_gateway(cfg).await;
    let ws = connect(&gw.url("/")).await;
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 503, "{head}");
    assert!(header(&head, "retry-after").is_some(), "{head}");
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn session_caps_are_exact_and_freed_when_sessions_end() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.limits.max_connections = 3;
    cfg.limits.max_connections_per_ip = Some(2);
    let gw = spawn_gateway(cfg).await;
    let mut a = connect(&gw.url("/")).await;
    let mut a_back = backend.accept().await;
    let _b = connect(&gw.url("/")).await;
    let _b_back = backend.accept().await;
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 429, "per-client cap: {head}");
    // A session ending gives its slot back: the backend sees it close, then a new one fits.
    a.close(None).await.unwrap();
    wait_closed(&mut a_back).await;
    let c = connect(&gw.url("/")).await;
    drop((c, _b));
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_per_client_cap_turned_on_by_reload_counts_sessions_already_open() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    let gw = spawn_gateway(cfg.clone()).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let ws = connect(&gw.url("/")).await;
        open.push((ws, backend.accept().await));
    }
    cfg.limits.max_connections_per_ip = Some(2);
    gw.handle.reload(cfg).expect("the config is valid");
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 429, "3 open from 127.0.0.1, cap 2: {head}");
    // Two of them end: one open, so one more fits under the cap of two, and no more.
    for (mut ws, mut back) in open.drain(..2) {
        ws.close(None).await.unwrap();
        wait_closed(&mut back).await;
    }
    let fits = connect(&gw.url("/")).await;
    let _fits_back = backend.accept().await;
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 429, "2 open, cap 2: {head}");
    drop((fits, open));
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn total_cap_is_503_and_failed_handshakes_do_not_leak_slots() {
    let mut cfg = config_for(refused_backend().await);
    cfg.limits.max_connections = 1;
    let gw = spawn_gateway(cfg).await;
    // Twenty admissions that fail at the backend (502) each give their slot back...
    for _ in 0..20 {
        let (status, _) = raw_request(gw.addr, &upgrade_request("/", "")).await;
        assert_eq!(status, 502);
    }
    gw.shut_down().await.unwrap();
    // ...so with a working backend the one slot is still free, and the next is refused.
    let echo = echo_backend().await;
    let mut cfg = config_for(echo);
    cfg.limits.max_connections = 1;
    let gw = spawn_gateway(cfg).await;
    let one = connect(&gw.url("/")).await;
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 503, "{head}");
    drop(one);
    gw.shut_down().await.unwrap();
}

async fn refused_backend() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn refused_clients_never_reach_the_backend() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.origins = vec!["https://ok.example".into()];
    let gw = spawn_gateway(cfg).await;
    for _ in 0..5 {
        let (status, _) = raw_request(
            gw.addr,
            &upgrade_request("/", "Origin: https://bad.example\r\n"),
        )
        .await;
        assert_eq!(status, 403);
    }
    // No Origin: allowed by default (non-browser clients).
    first_backend_connection_carries(&backend, &gw.url("/"), b"admitted").await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn http_1_0_upgrade_and_too_many_headers_are_refused() {
    let mut cfg = config_for(echo_backend().await);
    cfg.limits.max_headers = 20;
    let gw = spawn_gateway(cfg).await;
    let old = upgrade_request("/", "").replacen("HTTP/1.1", "HTTP/1.0", 1);
    let (status, head) = raw_request(gw.addr, &old).await;
    assert_eq!(status, 400, "{head}");
    let many: String = (0..30).map(|i| format!("X-Pad-{i}: x\r\n")).collect();
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", &many)).await;
    assert_eq!(status, 431, "{head}");
    let few: String = (0..10).map(|i| format!("X-Pad-{i}: x\r\n")).collect();
    let (status, head) = raw_request(gw.addr, &upgrade_request("/", &few)).await;
    assert_eq!(status, 101, "{head}");
    gw.shut_down().await.unwrap();
}

/// Hundreds of clients trickle their headers a byte at a time; a normal client still gets
/// through at once, and the trickling ones are dropped when the handshake timeout ends.
#[tokio::test]
async fn slowloris_handshakes_are_dropped_on_time_and_do_not_starve_others() {
    const TRICKLERS: usize = 300;
    let handshake_timeout = Duration::from_millis(800);
    let mut cfg = config_for(echo_backend().await);
    cfg.limits.handshake_timeout = handshake_timeout;
    let gw = spawn_gateway(cfg).await;
    let started = Instant::now();
    let mut tricklers = Vec::new();
    for _ in 0..TRICKLERS {
        let addr = gw.addr;
        tricklers.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(addr).await.unwrap();
            let request = upgrade_request("/", "");
            for byte in request.as_bytes().iter().take(request.len() - 2) {
                if sock.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Dropped by the gateway: reads end (EOF, reset, or a 408 then EOF).
            let mut rest = Vec::new();
            let _ = timeout(PATIENCE, sock.read_to_end(&mut rest))
                .await
                .expect("trickler never dropped");
            Instant::now()
        }));
    }
    let mut ws = connect(&gw.url("/")).await;
    send_binary(&mut ws, b"served meanwhile").await;
    assert_eq!(
        next_data(&mut ws).await.into_data(),
        &b"served meanwhile"[..]
    );
    for t in tricklers {
        let dropped_at = t.await.unwrap();
        let lived = dropped_at - started;
        assert!(
            lived >= handshake_timeout - Duration::from_millis(100),
            "dropped early: {lived:?}"
        );
        assert!(
            lived < handshake_timeout + Duration::from_secs(10),
            "dropped late: {lived:?}"
        );
    }
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn pending_handshake_cap_holds_new_connections_until_a_slot_frees() {
    let mut cfg = config_for(echo_backend().await);
    cfg.limits.max_pending_handshakes = 4;
    cfg.limits.handshake_timeout = Duration::from_millis(600);
    let gw = spawn_gateway(cfg).await;
    // Four silent connections take every pending slot.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    // A real client waits in the backlog until the silent ones time out, then gets through.
    let started = Instant::now();
    let mut ws = connect(&gw.url("/")).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "was not held back: {waited:?}"
    );
    send_binary(&mut ws, b"after the flood").await;
    assert_eq!(
        next_data(&mut ws).await.into_data(),
        &b"after the flood"[..]
    );
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn per_session_throughput_cap_slows_but_loses_nothing() {
    const RATE: u64 = 64 * 1024;
    const TOTAL: usize = 192 * 1024;
    let (gw, mut ws, mut sock) = open_session(|cfg: &mut Config| {
        cfg.limits.max_bytes_per_second = Some(wsgate::config::ByteSize(RATE));
    })
    .await;
    let mut sent = vec![0u8; TOTAL];
    pattern(3, 0, &mut sent);
    let started = Instant::now();
    sock.write_all(&sent).await.unwrap();
    let mut got = Vec::new();
    while got.len() < TOTAL {
        got.extend_from_slice(&next_data(&mut ws).await.into_data());
    }
    let took = started.elapsed();
    assert!(got == sent, "bytes differ");
    // One second's worth passes at once; the rest at the rate: at least 2 s for 3 s' worth.
    let floor = Duration::from_secs_f64((TOTAL as f64 - RATE as f64) / RATE as f64 * 0.9);
    assert!(
        took >= floor,
        "{TOTAL} bytes at {RATE} B/s took only {took:?}"
    );
    drop(ws);
    gw.shut_down().await.unwrap();
}
