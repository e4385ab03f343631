//! Running it: probes on both listeners, metrics that move with the traffic (read from
//! the exposition text as data), readiness during a drain, and live reload.

mod common;

use std::time::Duration;

use common::metrics::value;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Polls `check` every 20 ms until it holds (or the test's patience runs out).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn probes_answer_on_the_main_and_admin_listeners() {
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    for addr in [gw.addr, gw.admin] {
        assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".into()));
        assert_eq!(http_get(addr, "/readyz").await, (200, "ready\n".into()));
    }
    assert_eq!(http_get(gw.admin, "/nope").await.0, 404);
    assert_eq!(
        http_get(gw.addr, "/metrics").await.0,
        404,
        "metrics stay off the public port"
    );
    gw.shut_down().await.unwrap();
}

/// A GET with an optional `Authorization` value; the status and the whole response.
async fn get_with(addr: std::net::SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    timeout(PATIENCE, sock.read_to_end(&mut all))
        .await
        .expect("no response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&all).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn admin_tokens_guard_metrics_but_not_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    std::fs::write(&tokens, "# test-only\nscrape-me\n").unwrap();
    let mut cfg = config_for(echo_backend().await);
    cfg.admin.tokens = Some(wsgate::config::TokenSource {
        file: Some(tokens.clone()),
        env: None,
    });
    let gw = spawn_gateway(cfg.clone()).await;
    for auth in [None, Some("Bearer wrong"), Some("Basic c2NyYXBlLW1l")] {
        let (status, resp) = get_with(gw.admin, "/metrics", auth).await;
        assert_eq!(status, 401, "{auth:?}: {resp}");
        assert!(
            resp.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{resp}"
        );
        assert!(!resp.contains("wsgate_"), "metrics leaked: {resp}");
    }
    let (status, _) = get_with(gw.admin, "/nope", None).await;
    assert_eq!(status, 401, "nothing but the probes without the token");
    let (status, resp) = get_with(gw.admin, "/metrics", Some("Bearer scrape-me")).await;
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("wsgate_connections_accepted_total"), "{resp}");
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(get_with(gw.admin, probe, None).await.0, 200, "{probe}");
    }

    // The token file is re-read on reload.
    std::fs::write(&tokens, "scrape-me-too\n").unwrap();
    gw.handle.reload(cfg).expect("the config is valid");
    assert_eq!(
        get_with(gw.admin, "/metrics", Some("Bearer scrape-me"))
            .await
            .0,
        401
    );
    assert_eq!(
        get_with(gw.admin, "/metrics", Some("Bearer scrape-me-too"))
            .await
            .0,
        200
    );
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn metrics_follow_sessions_refusals_and_traffic() {
    let mut cfg = config_for(echo_backend().await);
    cfg.origins = vec!["https://ok.example".into()];
    let gw = spawn_gateway(cfg).await;

    let mut ws = connect(&gw.url("/")).await;
    for _ in 0..2 {
        send_binary(&mut ws, b"12345").await;
        assert_eq!(next_data(&mut ws).await.into_data().len(), 5);
    }
    let m = gw.metrics().await;
    assert_eq!(value(&m, "wsgate_sessions_active", &[("route", "/")]), 1.0);
    ws.close(None).await.unwrap();
    next_close(&mut ws).await;

    assert_eq!(
        raw_request(gw.addr, &upgrade_request("/nope", "")).await.0,
        404
    );
    let bad_origin = upgrade_request("/", "Origin: https://evil.example\r\n");
    assert_eq!(raw_request(gw.addr, &bad_origin).await.0, 403);

    eventually("the session is counted closed", async || {
        value(&gw.metrics().await, "wsgate_sessions_closed_total", &[]) == 1.0
    })
    .await;
    let m = gw.metrics().await;
    let up = [("route", "/"), ("direction", "up")];
    let down = [("route", "/"), ("direction", "down")];
    assert_eq!(value(&m, "wsgate_bytes_total", &up), 10.0);
    assert_eq!(value(&m, "wsgate_bytes_total", &down), 10.0);
    assert_eq!(value(&m, "wsgate_messages_total", &up), 2.0);
    assert_eq!(value(&m, "wsgate_sessions_active", &[("route", "/")]), 0.0);
    assert_eq!(
        value(
            &m,
            "wsgate_sessions_closed_total",
            &[("code", "1005"), ("side", "client")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "wsgate_upgrades_rejected_total",
            &[("reason", "not_found")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "wsgate_upgrades_rejected_total",
            &[("reason", "origin")]
        ),
        1.0
    );
    assert_eq!(value(&m, "wsgate_session_duration_seconds_count", &[]), 1.0);
    assert_eq!(value(&m, "wsgate_backend_connect_seconds_count", &[]), 1.0);
    assert!(value(&m, "wsgate_connections_accepted_total", &[]) >= 3.0);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn client_chosen_close_codes_are_bucketed_in_metrics() {
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    for code in [4321, 3999] {
        let mut ws = connect(&gw.url("/")).await;
        ws.close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        }))
        .await
        .unwrap();
        let echoed = next_close(&mut ws)
            .await
            .expect("the gateway echoes the close");
        assert_eq!(u16::from(echoed.code), code);
    }
    eventually("both sessions are counted closed", async || {
        value(&gw.metrics().await, "wsgate_sessions_closed_total", &[]) == 2.0
    })
    .await;
    let m = gw.metrics().await;
    let closed = |code| value(&m, "wsgate_sessions_closed_total", &[("code", code)]);
    assert_eq!(closed("4xxx"), 1.0);
    assert_eq!(closed("3xxx"), 1.0);
    let codes: Vec<&str> = m
        .iter()
        .filter(|s| s.name == "wsgate_sessions_closed_total")
        .filter_map(|s| s.labels.get("code").map(String::as_str))
        .collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert!(
        !codes.contains(&"4321") && !codes.contains(&"3999"),
        "{codes:?}"
    );
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn pings_and_pong_timeouts_are_counted() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.liveness.ping_interval = Duration::from_millis(100);
    cfg.liveness.pong_timeout = Duration::from_millis(200);
    let gw = spawn_gateway(cfg).await;
    // Upgraded by hand and then silent: it never answers.
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    silent
        .write_all(upgrade_request("/", "").as_bytes())
        .await
        .unwrap();
    let mut sock = backend.accept().await;
    wait_closed(&mut sock).await;
    eventually("the timeout is counted", async || {
        value(&gw.metrics().await, "wsgate_pong_timeouts_total", &[]) == 1.0
    })
    .await;
    assert!(value(&gw.metrics().await, "wsgate_pings_sent_total", &[]) >= 1.0);
    drop(silent);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn draining_turns_readiness_off_keeps_accepting_for_the_delay_then_closes_1001() {
    let mut cfg = config_for(echo_backend().await);
    cfg.shutdown.delay = Duration::from_millis(800);
    let gw = spawn_gateway(cfg).await;
    let (addr, admin, url) = (gw.addr, gw.admin, gw.url("/"));
    let mut open = connect(&url).await;
    let (stop, task) = gw.begin_shutdown();
    stop.cancel();
    eventually("readiness turns 503", async || {
        http_get(admin, "/readyz").await.0 == 503
    })
    .await;
    assert_eq!(http_get(addr, "/readyz").await.0, 503);
    assert_eq!(
        http_get(addr, "/healthz").await.0,
        200,
        "still alive while draining"
    );
    // Within the delay a new client is still served.
    let mut late = connect(&url).await;
    send_binary(&mut late, b"still served").await;
    assert_eq!(next_data(&mut late).await.into_data(), &b"still served"[..]);
    // Then every session gets 1001, and the listener is gone.
    assert_eq!(next_close(&mut open).await.unwrap().code, CloseCode::Away);
    assert_eq!(next_close(&mut late).await.unwrap().code, CloseCode::Away);
    timeout(PATIENCE, task).await.unwrap().unwrap().unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after the drain"
    );
}

#[tokio::test]
async fn the_drain_ends_idle_admin_connections() {
    let mut cfg = config_for(echo_backend().await);
    // Longer than the test waits: a drain that waited out the grace would fail it.
    cfg.shutdown.grace = PATIENCE * 3;
    let gw = spawn_gateway(cfg).await;
    // A scraper keeps its connection open between scrapes (HTTP/1.1 keep-alive).
    let mut scraper = TcpStream::connect(gw.admin).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    scraper.write_all(request).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = timeout(PATIENCE, scraper.read_u8()).await.unwrap().unwrap();
        head.push(byte);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    gw.shut_down().await.unwrap();
    // The drain ended the idle connection: it is closed once the drain is over. (Left to
    // itself, it would close only when the admin listener's 10 s header timeout ran out.)
    let mut rest = Vec::new();
    timeout(Duration::from_secs(5), scraper.read_to_end(&mut rest))
        .await
        .expect("the admin connection outlived the drain")
        .unwrap();
}

#[tokio::test]
async fn backend_check_makes_readiness_follow_the_backends() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.readiness.check_backend = true;
    cfg.readiness.interval = Duration::from_millis(50);
    cfg.connect_timeout = Duration::from_millis(500);
    let gw = spawn_gateway(cfg).await;
    let admin = gw.admin;
    eventually("ready with the backend up", async || {
        http_get(admin, "/readyz").await.0 == 200
    })
    .await;
    drop(backend); // nothing listens there any more
    eventually("not ready with the backend down", async || {
        http_get(admin, "/readyz").await.0 == 503
    })
    .await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn reload_applies_to_new_connections_and_refuses_a_broken_config() {
    let echo = echo_backend().await;
    let mut cfg = config_for(echo);
    cfg.origins = vec!["https://old.example".into()];
    let gw = spawn_gateway(cfg.clone()).await;
    let old_origin = ("Origin", "https://old.example");
    let mut old = connect_with(&gw.url("/"), &[old_origin]).await;

    cfg.origins = vec!["https://new.example".into()];
    cfg.liveness.ping_interval = Duration::from_secs(7);
    gw.handle.reload(cfg.clone()).expect("valid config reloads");
    let with_origin = |o: &str| upgrade_request("/", &format!("Origin: {o}\r\n"));
    assert_eq!(
        raw_request(gw.addr, &with_origin("https://old.example"))
            .await
            .0,
        403
    );
    assert_eq!(
        raw_request(gw.addr, &with_origin("https://new.example"))
            .await
            .0,
        101
    );
    // The session from before keeps working.
    send_binary(&mut old, b"old session").await;
    assert_eq!(next_data(&mut old).await.into_data(), &b"old session"[..]);

    let mut broken = cfg.clone();
    broken.limits.max_frame_size = wsgate::config::ByteSize::mib(64);
    let err = gw
        .handle
        .reload(broken)
        .expect_err("a broken config is refused");
    assert_eq!(err.problems[0].key, "limits.max_frame_size");
    assert_eq!(
        raw_request(gw.addr, &with_origin("https://new.example"))
            .await
            .0,
        101,
        "kept serving"
    );
    let m = gw.metrics().await;
    assert_eq!(
        value(&m, "wsgate_config_reloads_total", &[("result", "ok")]),
        1.0
    );
    assert_eq!(
        value(&m, "wsgate_config_reloads_total", &[("result", "failed")]),
        1.0
    );
    drop(old);
    gw.shut_down().await.unwrap();
}
