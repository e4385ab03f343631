//! `wsgate client` (the built binary) in front of the real gateway and real TCP backends,
//! over ws://: bytes exact both ways (megabytes too), half-close each way, several tunnels
//! from one config with env layering, a bearer token accepted and refused, failover past a
//! dead URL, a gateway restarted while new local connections keep arriving, a gateway
//! that goes silent, and bad flags and config refused with exit 64 naming key and value.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::metrics;
use common::process::{run_to_end, wsgate};
use common::tunnel::{TunnelClient, bytes, echo_through, start_client, tunnel_to};
use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use wsgate::config::{AuthMode, Route, TokenSource};

const EXIT_BAD_CONFIG: i32 = 64;

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// A field of an access line, as text (strings without quotes).
fn field(line: &Value, name: &str) -> String {
    match &line[name] {
        Value::String(s) => s.clone(),
        Value::Null => panic!("no {name} in {line}"),
        other => other.to_string(),
    }
}

async fn echo_gateway() -> Gateway {
    spawn_gateway(config_for(echo_backend().await)).await
}

#[tokio::test]
async fn bytes_cross_exactly_both_ways_small_and_megabytes() {
    let gw = echo_gateway().await;
    let mut client = tunnel_to(&gw.url("/"), &[]).await;
    assert_eq!(echo_through(client.addr(), b"hello").await, b"hello");
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "close_code"), "1000", "{line}");
    assert_eq!(field(&line, "ended_by"), "local", "{line}");
    assert_eq!(field(&line, "end"), "local_eof", "{line}");
    assert_eq!(field(&line, "attempts"), "1", "{line}");

    let big = bytes(8 * 1024 * 1024 + 3, 11);
    let back = echo_through(client.addr(), &big).await;
    assert_eq!(back.len(), big.len());
    check_pattern(11, 0, &back);
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "bytes_up"), big.len().to_string(), "{line}");
    assert_eq!(field(&line, "bytes_down"), big.len().to_string(), "{line}");
}

#[tokio::test]
async fn a_local_half_close_reaches_the_backend_after_the_data() {
    let backend = Backend::bind().await;
    let gw = spawn_gateway(config_for(backend.addr)).await;
    let mut client = tunnel_to(&gw.url("/"), &[]).await;
    let mut local = TcpStream::connect(client.addr()).await.unwrap();
    let data = bytes(1024 * 1024, 5);
    local.write_all(&data).await.unwrap();
    local.shutdown().await.unwrap();
    let mut far = backend.accept().await;
    let mut got = Vec::new();
    timeout(PATIENCE, far.read_to_end(&mut got))
        .await
        .expect("backend saw no EOF")
        .unwrap();
    assert_eq!(got.len(), data.len());
    check_pattern(5, 0, &got);
    // The session then ends and the local connection with it.
    let mut rest = Vec::new();
    timeout(PATIENCE, local.read_to_end(&mut rest))
        .await
        .expect("local connection not ended")
        .unwrap();
    let line = json(&client.next_session_line().await);
    assert_eq!(
        (field(&line, "end"), field(&line, "close_code")),
        ("local_eof".into(), "1000".into()),
        "{line}"
    );
}

#[tokio::test]
async fn a_backend_that_ends_reaches_the_local_program_as_eof_after_the_data() {
    let backend = Backend::bind().await;
    let gw = spawn_gateway(config_for(backend.addr)).await;
    let mut client = tunnel_to(&gw.url("/"), &[]).await;
    let mut local = TcpStream::connect(client.addr()).await.unwrap();
    local.write_all(b"start").await.unwrap();
    let mut far = backend.accept().await;
    let mut hello = [0u8; 5];
    timeout(PATIENCE, far.read_exact(&mut hello))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&hello, b"start");
    let data = bytes(3 * 1024 * 1024, 9);
    far.write_all(&data).await.unwrap();
    far.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(PATIENCE, local.read_to_end(&mut got))
        .await
        .expect("local program saw no EOF")
        .unwrap();
    assert_eq!(got.len(), data.len());
    check_pattern(9, 0, &got);
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "ended_by"), "gateway", "{line}");
    assert_eq!(field(&line, "end"), "gateway_closed", "{line}");
    assert_eq!(field(&line, "close_code"), "1000", "{line}");
    assert_eq!(field(&line, "bytes_down"), data.len().to_string(), "{line}");
}

#[tokio::test]
async fn several_tunnels_run_from_one_config_with_env_layering() {
    let mut cfg = config_for(echo_backend().await);
    let marker = Backend::bind().await;
    cfg.routes.push(Route::new("/b", marker.addr.to_string()));
    let gw = spawn_gateway(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.yaml");
    let yaml = format!(
        "tunnels:\n  - name: alpha\n    listen: 127.0.0.1:0\n    url: {}\n  \
         - name: beta\n    listen: 127.0.0.1:0\n    url: ws://nowhere.invalid/b\n",
        gw.url("/")
    );
    std::fs::write(&file, yaml).unwrap();
    let check = run_to_end(wsgate(&["check", "--config", file.to_str().unwrap()])).await;
    assert_eq!(check.0.code(), Some(0), "{}", check.2);
    assert!(
        check
            .1
            .contains("tunnel 127.0.0.1:0 -> ws://nowhere.invalid/b"),
        "{}",
        check.1
    );
    // The environment replaces one field of the second tunnel.
    let env_url = gw.url("/b");
    let env = [("WSGATE_TUNNELS__1__URL", env_url.as_str())];
    let mut client = start_client(&["--config", file.to_str().unwrap()], &env, 2).await;
    assert_eq!(
        echo_through(client.addrs[0], b"to alpha").await,
        b"to alpha"
    );
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "tunnel"), "alpha", "{line}");
    let mut to_beta = TcpStream::connect(client.addrs[1]).await.unwrap();
    to_beta.write_all(b"to beta").await.unwrap();
    let mut far = marker.accept().await;
    let mut got = [0u8; 7];
    timeout(PATIENCE, far.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"to beta");
}

#[tokio::test]
async fn a_bearer_token_is_sent_and_a_refused_one_closes_the_local_connection() {
    let dir = tempfile::tempdir().unwrap();
    let accepted = dir.path().join("tokens");
    std::fs::write(&accepted, "t0ken-for-tunnels\n").unwrap();
    let mut cfg = config_for(echo_backend().await);
    cfg.routes[0].auth = AuthMode::Token;
    cfg.routes[0].tokens = Some(TokenSource {
        file: Some(accepted.clone()),
        env: None,
    });
    let gw = spawn_gateway(cfg).await;

    let mut good = tunnel_to(&gw.url("/"), &["--token-file", accepted.to_str().unwrap()]).await;
    assert_eq!(
        echo_through(good.addr(), b"authorized").await,
        b"authorized"
    );
    let line = json(&good.next_session_line().await);
    assert_eq!(field(&line, "end"), "local_eof", "{line}");

    let args = [
        "--listen",
        "127.0.0.1:0",
        "--url",
        &gw.url("/"),
        "--token-env",
        "TUNNEL_TOKEN",
    ];
    let mut bad = start_client(&args, &[("TUNNEL_TOKEN", "wrong")], 1).await;
    let mut local = TcpStream::connect(bad.addr()).await.unwrap();
    local.write_all(b"let me in").await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(PATIENCE, local.read_to_end(&mut got))
        .await
        .expect("refused session left the local connection open");
    assert!(got.is_empty(), "{got:?}");
    let line = json(&bad.next_session_line().await);
    assert_eq!(field(&line, "end"), "open_failed", "{line}");
    assert_eq!(
        field(&line, "attempts"),
        "1",
        "a 401 is not retried: {line}"
    );
    assert!(field(&line, "error").contains("401"), "{line}");
}

/// A port nothing listens on.
async fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn a_url_list_fails_over_past_a_dead_gateway() {
    let gw = echo_gateway().await;
    let dead = format!("ws://{}/", dead_port().await);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--url",
        &dead,
        "--url",
        &gw.url("/"),
    ];
    let mut client = start_client(&args, &[], 1).await;
    assert_eq!(echo_through(client.addr(), b"failover").await, b"failover");
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "attempts"), "2", "{line}");
    assert_eq!(field(&line, "url"), gw.addr.to_string(), "{line}");
}

/// The client's counters, from its metrics listener.
async fn client_metrics(addr: SocketAddr) -> Vec<metrics::Sample> {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    metrics::parse(&body)
}

async fn metrics_addr(client: &mut TunnelClient) -> SocketAddr {
    let line = client
        .stderr
        .find("metrics listening line", |l| {
            l.contains("metrics listening")
        })
        .await;
    field(&json(&line), "addr").parse().unwrap()
}

#[tokio::test]
async fn new_connections_succeed_once_a_restarted_gateway_is_back() {
    let backend = echo_backend().await;
    let listener = wsgate::listener::bind("127.0.0.1:0", 1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let gw = spawn_gateway_on(config_for(backend), listener).await;
    let url = gw.url("/");
    let args = [
        "--name",
        "restart",
        "--reconnect-max-time",
        "60s",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let mut client = tunnel_to(&url, &args).await;
    let metrics_at = metrics_addr(&mut client).await;
    assert_eq!(echo_through(client.addr(), b"before").await, b"before");
    gw.shut_down().await.unwrap();

    // Local connections arrive while the gateway is down; their sessions keep trying.
    let local = client.addr();
    let waiting: Vec<_> = (0..3u64)
        .map(|i| tokio::spawn(async move { echo_through(local, &bytes(100_000, i)).await }))
        .collect();
    let retried = timeout(PATIENCE, async {
        loop {
            let samples = client_metrics(metrics_at).await;
            let labels = [("tunnel", "restart")];
            if metrics::value(&samples, "wsgate_client_reconnect_attempts_total", &labels) >= 3.0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    retried.expect("no retries counted while the gateway was down");

    let listener = wsgate::listener::bind(&addr.to_string(), 1024).unwrap();
    let _back = spawn_gateway_on(config_for(backend), listener).await;
    for (i, task) in waiting.into_iter().enumerate() {
        let got = task.await.unwrap();
        assert_eq!(got.len(), 100_000);
        check_pattern(i as u64, 0, &got);
    }
    let samples = client_metrics(metrics_at).await;
    let ended = [("tunnel", "restart"), ("end", "local_eof")];
    assert_eq!(
        metrics::value(&samples, "wsgate_client_sessions_closed_total", &ended),
        4.0
    );
    assert_eq!(
        metrics::value(&samples, "wsgate_client_open_failures_total", &[]),
        0.0
    );
    let up = [("route", "restart"), ("direction", "up")];
    assert_eq!(
        metrics::value(&samples, "wsgate_bytes_total", &up),
        300_006.0
    );
}

/// A "gateway" that completes the upgrade and then never reads or writes again.
async fn silent_gateway() -> (SocketAddr, tokio::task::JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            sock.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let accept =
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        sock.write_all(answer.as_bytes()).await.unwrap();
        sock
    });
    (addr, task)
}

#[tokio::test]
async fn a_gateway_that_goes_silent_is_dropped_after_the_pong_timeout() {
    let (addr, gateway) = silent_gateway().await;
    let url = format!("ws://{addr}/");
    let args = ["--listen", "127.0.0.1:0", "--url", &url];
    let env = [
        ("WSGATE_LIVENESS__PING_INTERVAL", "300ms"),
        ("WSGATE_LIVENESS__PONG_TIMEOUT", "300ms"),
    ];
    let mut client = start_client(&args, &env, 1).await;
    let mut local = TcpStream::connect(client.addr()).await.unwrap();
    local.write_all(b"anyone there?").await.unwrap();
    let _held = gateway.await.unwrap();
    let mut got = Vec::new();
    timeout(PATIENCE, local.read_to_end(&mut got))
        .await
        .expect("the local connection outlived a silent gateway")
        .unwrap();
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "end"), "ping_timeout", "{line}");
    assert_eq!(field(&line, "close_code"), "1006", "{line}");
}

/// Runs `wsgate ARGS` to its end and checks exit 64 with every `(key, value)` named.
async fn refused(args: &[&str], named: &[&str]) {
    let (status, _, stderr) = run_to_end(wsgate(args)).await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{args:?}: {stderr}");
    for n in named {
        assert!(stderr.contains(n), "{args:?}: {n:?} not named in {stderr}");
    }
}

#[tokio::test]
async fn bad_flags_and_config_exit_64_naming_key_and_value() {
    let l = ["client", "--listen", "127.0.0.1:0"];
    refused(
        &[&l[..], &["--url", "http://gw/"]].concat(),
        &["--url", "http://gw/"],
    )
    .await;
    refused(&["client", "--url", "ws://gw/"], &["--listen"]).await;
    refused(
        &["client", "--listen", "nope", "--url", "ws://gw/"],
        &["--listen", "nope"],
    )
    .await;
    let attempts = ["--url", "ws://gw/", "--reconnect-attempts", "0"];
    refused(
        &[&l[..], &attempts].concat(),
        &["--reconnect-attempts", "0"],
    )
    .await;
    let timeout_flag = ["--url", "ws://gw/", "--connect-timeout", "soon"];
    refused(
        &[&l[..], &timeout_flag].concat(),
        &["--connect-timeout", "soon"],
    )
    .await;
    let ca = ["--url", "wss://gw/", "--ca-file", "/nonexistent/ca.pem"];
    refused(
        &[&l[..], &ca].concat(),
        &["--ca-file", "/nonexistent/ca.pem"],
    )
    .await;
    refused(&[&l[..], &["--ca-file", "x.pem"]].concat(), &["--url"]).await;
    let backend = ["--url", "ws://gw/", "--backend", "127.0.0.1:9"];
    refused(&[&l[..], &backend].concat(), &["--backend", "does not use"]).await;
    let header = ["--url", "ws://gw/", "--header", "no colon"];
    refused(&[&l[..], &header].concat(), &["--header", "no colon"]).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.yaml");
    std::fs::write(
        &file,
        "tunnels:\n  - listen: 127.0.0.1:0\n    url: ftp://gw/\n    reconnect: {max_delay: 1ms}\n  \
         - listen: 127.0.0.1:1\n    url: ws://gw/\n    client_cert: /c.pem\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let named = [
        "tunnels.0.url",
        "ftp://gw/",
        "tunnels.0.reconnect.max_delay",
        "1ms",
        "tunnels.1.client_cert",
    ];
    refused(&["check", "--config", config], &named).await;
    refused(&["client", "--config", config], &named).await;
    let typo = "tunnels: [{listen: '127.0.0.1:0', url: 'ws://gw/', reconnect: {attempts: many}}]\n";
    std::fs::write(&file, typo).unwrap();
    let (status, _, stderr) = run_to_end(wsgate(&["check", "--config", config])).await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{stderr}");
    assert!(
        stderr.contains("tunnels.0.reconnect.attempts") && stderr.contains("many"),
        "{stderr}"
    );
    assert!(stderr.contains("(1 problem)"), "only the typo: {stderr}");
    std::fs::write(&file, "listen: 127.0.0.1:0\n").unwrap();
    refused(&["client", "--config", config], &["tunnels", "no tunnels"]).await;
    std::fs::write(
        &file,
        "tunnels: [{listen: '127.0.0.1:0', url: 'ws://gw/'}]\n",
    )
    .unwrap();
    refused(&["serve", "--config", config], &["routes"]).await;
}

#[tokio::test]
async fn sigterm_closes_open_sessions_with_1001_and_exits_0() {
    let backend = Backend::bind().await;
    let gw = spawn_gateway(config_for(backend.addr)).await;
    let mut client = tunnel_to(&gw.url("/"), &[]).await;
    let mut local = TcpStream::connect(client.addr()).await.unwrap();
    local.write_all(b"open").await.unwrap();
    let mut far = backend.accept().await;
    let mut got = [0u8; 4];
    timeout(PATIENCE, far.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    client.proc.sigterm();
    // The gateway hears close 1001 and half-closes its backend; the local side ends too.
    let mut rest = Vec::new();
    timeout(PATIENCE, far.read_to_end(&mut rest))
        .await
        .expect("the backend saw no EOF")
        .unwrap();
    timeout(PATIENCE, local.read_to_end(&mut rest))
        .await
        .expect("the local connection was not closed")
        .unwrap();
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "end"), "shutdown", "{line}");
    assert_eq!(field(&line, "close_code"), "1001", "{line}");
    assert_eq!(client.proc.wait().await.code(), Some(0));
}

#[tokio::test]
async fn many_connections_at_once_each_get_their_own_session() {
    let gw = echo_gateway().await;
    let client = tunnel_to(&gw.url("/"), &[]).await;
    let addr = client.addr();
    let tasks: Vec<_> = (0..50u64)
        .map(|i| tokio::spawn(async move { (i, echo_through(addr, &bytes(64 * 1024, i)).await) }))
        .collect();
    for task in tasks {
        let (i, got) = task.await.unwrap();
        assert_eq!(got.len(), 64 * 1024);
        check_pattern(i, 0, &got);
    }
}

#[tokio::test]
async fn origin_and_subprotocol_reach_a_gateway_that_requires_them() {
    let mut cfg = config_for(echo_backend().await);
    cfg.origins = vec!["https://app.example".into()];
    cfg.allow_missing_origin = false;
    cfg.routes[0].subprotocols = vec!["binary".into()];
    let gw = spawn_gateway(cfg).await;
    let args = [
        "--origin",
        "https://app.example",
        "--subprotocol",
        "other",
        "--subprotocol",
        "binary",
        "--header",
        "X-Team: storage",
    ];
    let mut client = tunnel_to(&gw.url("/"), &args).await;
    assert_eq!(echo_through(client.addr(), b"allowed").await, b"allowed");
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "end"), "local_eof", "{line}");

    // Without the Origin the gateway answers 403: not retried.
    let mut bare = tunnel_to(&gw.url("/"), &["--subprotocol", "binary"]).await;
    let mut local = TcpStream::connect(bare.addr()).await.unwrap();
    local.write_all(b"x").await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(PATIENCE, local.read_to_end(&mut got))
        .await
        .expect("local connection left open");
    let line = json(&bare.next_session_line().await);
    assert_eq!(field(&line, "attempts"), "1", "{line}");
    assert!(field(&line, "error").contains("403"), "{line}");
}

/// Waits until the sum of `name{labels}` in `samples()` reaches `at_least`.
async fn metric_reaches<F, Fut>(samples: F, name: &str, labels: &[(&str, &str)], at_least: f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<metrics::Sample>>,
{
    let reached = timeout(PATIENCE, async {
        loop {
            if metrics::value(&samples().await, name, labels) >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if reached.is_err() {
        let last: Vec<String> = samples().await.iter().map(|s| format!("{s:?}")).collect();
        panic!(
            "{name}{labels:?} never reached {at_least}:\n{}",
            last.join("\n")
        );
    }
}

/// One session through a client whose gateway pings every `gateway_ping` and which pings
/// every `client_ping`; waits for three pings from the side that pings more often, then
/// checks the session still echoes and ends with the gateway reading our close 1000.
async fn session_with_pings(gateway_ping: &str, client_ping: &str, gateway_pings: bool) {
    let mut cfg = config_for(echo_backend().await);
    cfg.liveness.ping_interval = humantime::parse_duration(gateway_ping).unwrap();
    // A ping waits for its pong (or this long) before the next one is due.
    cfg.liveness.pong_timeout = Duration::from_millis(500);
    let gw = spawn_gateway(cfg).await;
    let url = gw.url("/");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--url",
        &url,
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let env = [
        ("WSGATE_LIVENESS__PING_INTERVAL", client_ping),
        ("WSGATE_LIVENESS__PONG_TIMEOUT", "500ms"),
    ];
    let mut client = start_client(&args, &env, 1).await;
    let metrics_at = metrics_addr(&mut client).await;
    let mut local = TcpStream::connect(client.addr()).await.unwrap();
    let mut got = [0u8; 5];
    local.write_all(b"first").await.unwrap();
    local.read_exact(&mut got).await.unwrap();
    // An unmasked pong or ping from the client would end the session with 1002.
    let pings = "wsgate_pings_sent_total";
    if gateway_pings {
        metric_reaches(|| gw.metrics(), pings, &[], 3.0).await;
    } else {
        metric_reaches(|| client_metrics(metrics_at), pings, &[], 3.0).await;
    }
    local.write_all(b"again").await.unwrap();
    local.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"again");
    local.shutdown().await.unwrap();
    let mut rest = Vec::new();
    timeout(PATIENCE, local.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    // The gateway read our close frame: 1000 from the client, nothing else.
    let normal = [("code", "1000"), ("side", "client")];
    metric_reaches(
        || gw.metrics(),
        "wsgate_sessions_closed_total",
        &normal,
        1.0,
    )
    .await;
    let all = metrics::value(&gw.metrics().await, "wsgate_sessions_closed_total", &[]);
    assert_eq!(all, 1.0);
}

#[tokio::test]
async fn our_pongs_and_close_are_frames_the_gateway_accepts() {
    session_with_pings("100ms", "30s", true).await;
}

#[tokio::test]
async fn our_pings_are_frames_the_gateway_accepts() {
    session_with_pings("30s", "100ms", false).await;
}

#[tokio::test]
async fn a_gateway_closing_without_an_answer_is_tried_again() {
    // Accepts and closes at once, as a restarting gateway or a load balancer may.
    let closer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing = format!("ws://{}/", closer.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((sock, _)) = closer.accept().await {
            drop(sock);
        }
    });
    let gw = echo_gateway().await;
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--url",
        &closing,
        "--url",
        &gw.url("/"),
    ];
    let mut client = start_client(&args, &[], 1).await;
    assert_eq!(echo_through(client.addr(), b"second").await, b"second");
    let line = json(&client.next_session_line().await);
    assert_eq!(field(&line, "attempts"), "2", "{line}");
}
