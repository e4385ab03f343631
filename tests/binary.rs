//! The `wsgate` binary as an operator runs it: serving until SIGTERM, refusing bad
//! configuration with exit code 64 before binding, `check`, and `demo`.

mod common;

use common::process::*;
use common::*;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const EXIT_BAD_CONFIG: i32 = 64;

#[tokio::test]
async fn serves_until_sigterm_then_drains_and_exits_zero() {
    let echo = echo_backend().await.to_string();
    let (gw, mut stderr, addr) =
        start_listening(&["--listen", "127.0.0.1:0", "--backend", &echo]).await;
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(!addr.ends_with(":0"), "not the bound port: {addr}");

    let mut ws = connect(&format!("ws://{addr}/")).await;
    send_binary(&mut ws, b"through the binary").await;
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(&b"through the binary"[..])
    );

    // The session is open (the echo came back through it) when the signal arrives.
    gw.sigterm();
    let frame = next_close(&mut ws)
        .await
        .expect("close frame without a code");
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");

    let mut gw = gw;
    let status = gw.wait().await;
    let log = stderr.all().await;
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{log}");
    let access = log
        .lines()
        .find(|l| l.contains("\"message\":\"session closed\""))
        .unwrap_or_else(|| panic!("no access line in:\n{log}"));
    assert!(access.contains("\"close_code\":1001"), "{access}");
    assert!(access.contains("\"end\":\"shutdown\""), "{access}");
    assert!(log.contains("\"message\":\"stopped\""), "{log}");
}

#[tokio::test]
async fn bad_environment_value_exits_64_naming_key_and_value() {
    let mut cmd = wsgate(&["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"]);
    cmd.env("WSGATE_LIMITS__MAX_FRAME_SIZE", "lots");
    let (status, _, stderr) = run_to_end(cmd).await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stderr.contains("limits.max_frame_size"), "{stderr}");
    assert!(stderr.contains("lots"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[tokio::test]
async fn a_log_flush_interval_beyond_ten_seconds_exits_64_naming_key_and_value() {
    let mut cmd = wsgate(&["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"]);
    cmd.env("WSGATE_LOG__FLUSH_INTERVAL", "1m");
    let (status, _, stderr) = run_to_end(cmd).await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stderr.contains("log.flush_interval"), "{stderr}");
    assert!(stderr.contains("1m is too long"), "{stderr}");
}

#[tokio::test]
async fn missing_config_file_exits_64_naming_the_flag() {
    let (status, _, stderr) = run_to_end(wsgate(&[
        "--config",
        "/nonexistent.yaml",
        "--listen",
        "127.0.0.1:0",
    ]))
    .await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stderr.contains("--config"), "{stderr}");
    assert!(stderr.contains("/nonexistent.yaml"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[tokio::test]
async fn check_accepts_the_example_config() {
    let (status, stdout, stderr) =
        run_to_end(wsgate(&["check", "--config", "config/wsgate.yaml"])).await;
    assert_eq!(status.code(), Some(0), "{status}; {stderr}");
    assert!(stdout.starts_with("configuration ok"), "{stdout}");
    assert!(stdout.contains("route / -> 127.0.0.1:5900"), "{stdout}");
}

#[tokio::test]
async fn check_refuses_an_invalid_fixture_naming_its_key() {
    let (status, stdout, stderr) = run_to_end(wsgate(&[
        "check",
        "--config",
        "tests/fixtures/invalid/frame_larger_than_message.yaml",
    ]))
    .await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("limits.max_frame_size"), "{stderr}");
}

#[tokio::test]
async fn check_reports_every_bad_value_and_unknown_key_inside_one_section_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.yaml");
    let yaml = "limits: { max_message_size: 12XB, max_frame_size: lots, bogus: 1, max_headers: many }\n\
                liveness: { ping_interval: 3, typo: 1 }\n\
                routes:\n  - path: /\n    backend: 127.0.0.1:9\n    message_typ: text\n    accept_text: maybe\n";
    std::fs::write(&file, yaml).unwrap();
    let mut cmd = wsgate(&["check", "--config", file.to_str().unwrap()]);
    cmd.env("WSGATE_LIMITS__HANDSHAKE_TIMEOUT", "soon");
    let (status, stdout, stderr) = run_to_end(cmd).await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // Each problem once, with its key, its value and where the value came from.
    let expected = [
        ("limits.max_message_size", "12XB", "wsgate.yaml"),
        ("limits.max_frame_size", "lots", "wsgate.yaml"),
        ("limits.max_headers", "many", "wsgate.yaml"),
        ("limits.bogus", "unknown key", "wsgate.yaml"),
        ("limits.handshake_timeout", "soon", "WSGATE_"),
        ("liveness.ping_interval", "needs a unit", "wsgate.yaml"),
        ("liveness.typo", "unknown key", "wsgate.yaml"),
        ("routes.0.message_typ", "unknown key", "wsgate.yaml"),
        ("routes.0.accept_text", "maybe", "wsgate.yaml"),
    ];
    let problems: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  ")).collect();
    for (key, what, source) in expected {
        let line = problems
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("{key} not reported:\n{stderr}"));
        assert!(line.contains(what), "{key} without {what:?}: {line}");
        assert!(
            line.contains(source),
            "{key} without its source {source}: {line}"
        );
    }
    let n = expected.len();
    assert_eq!(problems.len(), n, "{stderr}");
    assert!(stderr.contains(&format!("({n} problems)")), "{stderr}");
}

#[tokio::test]
async fn check_refuses_client_certificates_beside_plaintext_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let made = run_to_end(wsgate(&["cert", "--host", "localhost", "--out", out])).await;
    assert_eq!(made.0.code(), Some(0), "{}", made.2);
    let file = dir.path().join("wsgate.yaml");
    let yaml = |plaintext: bool| {
        format!(
            "tls:\n  cert: {out}/server.pem\n  key: {out}/server-key.pem\n  client_ca: {out}/ca.pem\n  \
             allow_plaintext: {plaintext}\nroutes: [{{path: /, backend: \"127.0.0.1:9\"}}]\n"
        )
    };
    let check = || run_to_end(wsgate(&["check", "--config", file.to_str().unwrap()]));
    std::fs::write(&file, yaml(false)).unwrap();
    let (status, _, stderr) = check().await;
    assert_eq!(status.code(), Some(0), "mutual TLS alone: {stderr}");
    std::fs::write(&file, yaml(true)).unwrap();
    let (status, stdout, stderr) = check().await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("(1 problem)"), "{stderr}");
    assert!(stderr.contains("tls.allow_plaintext:"), "{stderr}");
    assert!(stderr.contains("tls.client_ca"), "{stderr}");
}

/// Every secret in the redaction tests contains this, so one search finds any echo.
const SECRET: &str = "s3cr3t";

/// A config with a secret in the wrong place, and the keys its error must name.
struct Misplaced {
    what: &'static str,
    yaml: String,
    env: Vec<(&'static str, String)>,
    keys: &'static [&'static str],
}

#[tokio::test]
async fn check_names_the_key_of_a_misplaced_secret_but_never_echoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let made = run_to_end(wsgate(&["cert", "--host", "localhost", "--out", out])).await;
    assert_eq!(made.0.code(), Some(0), "{}", made.2);
    let pem = std::fs::read_to_string(dir.path().join("server-key.pem")).unwrap();
    let inline_key = pem.replace("\n-----END", &format!("{SECRET}\n-----END"));
    let route = |path: &str, extra: String| {
        format!("  - {{path: {path}, backend: \"127.0.0.1:9\", {extra}}}\n")
    };
    let cases = [
        Misplaced {
            what: "secrets of the wrong type, an unknown key, a variable",
            yaml: format!(
                "api_token: {SECRET}-unknown\nroutes:\n{}{}",
                route("/a", format!("tokens: {SECRET}-tokens")),
                route("/b", format!("auth: {SECRET}-auth")),
            ),
            env: vec![("WSGATE_ROUTES__2__JWT", format!("{SECRET}-env"))],
            keys: &[
                "api_token",
                "routes.0.tokens",
                "routes.1.auth",
                "routes.2.jwt",
            ],
        },
        Misplaced {
            what: "a credential as a subprotocol",
            yaml: format!(
                "routes:\n{}",
                route("/", format!("subprotocols: [bearer.{SECRET}]"))
            ),
            env: vec![],
            keys: &["routes.0.subprotocols.0"],
        },
        Misplaced {
            what: "a key pasted where its file goes; tokens where their file and variable go",
            yaml: format!(
                "tls:\n  cert: {out}/server.pem\n  key: {inline_key:?}\nroutes:\n{}",
                route(
                    "/",
                    format!("auth: token, tokens: {{file: {SECRET}-file, env: {SECRET}-env}}")
                ),
            ),
            env: vec![],
            keys: &["tls.key", "routes.0.tokens.file", "routes.0.tokens.env"],
        },
    ];
    let file = dir.path().join("wsgate.yaml");
    for case in cases {
        let what = case.what;
        std::fs::write(&file, &case.yaml).unwrap();
        let mut cmd = wsgate(&["check", "--config", file.to_str().unwrap()]);
        for (k, v) in case.env {
            cmd.env(k, v);
        }
        let (status, _, stderr) = run_to_end(cmd).await;
        assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{what}: {stderr}");
        for key in case.keys {
            assert!(
                stderr.contains(&format!("  {key}: ")),
                "{what}: no {key} in\n{stderr}"
            );
        }
        assert!(
            !stderr.contains(SECRET),
            "{what}: a secret echoed:\n{stderr}"
        );
        assert!(stderr.contains("***"), "{what}: {stderr}");
    }
}

#[tokio::test]
async fn a_refused_reload_never_echoes_a_misplaced_secret() {
    let echo = echo_backend().await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.yaml");
    std::fs::write(&file, config_yaml(&echo, "https://a.example")).unwrap();
    let mut gw = start_serving(&["--config", file.to_str().unwrap()], &[]).await;
    let misplaced = format!(
        "listen: 127.0.0.1:0\nroutes:\n  - path: /\n    backend: {echo}\n    tokens: {SECRET}-reload\n"
    );
    std::fs::write(&file, misplaced).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &gw.proc.pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let refused = gw
        .stderr
        .wait_for("refusal", |l| l.contains("reload refused"))
        .await;
    assert!(refused.contains("routes.0.tokens"), "{refused}");
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
    let rest = gw.stderr.all().await;
    assert!(!rest.contains(SECRET), "a secret echoed:\n{rest}");
}

/// The WebSocket URL the demo prints in its banner.
async fn demo_url(stdout: &mut Lines) -> String {
    let banner = stdout
        .wait_for("demo banner", |l| l.starts_with("wsgate demo: ws://"))
        .await;
    banner
        .strip_prefix("wsgate demo: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no url in {banner}"))
        .to_string()
}

#[tokio::test]
async fn demo_echoes_then_exits_zero_on_sigterm() {
    let mut demo = Running::start(wsgate(&["demo", "--listen", "127.0.0.1:0"]));
    let mut stdout = demo.stdout();
    let mut stderr = demo.stderr();
    let url = demo_url(&mut stdout).await;
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    assert!(url.ends_with('/'), "{url}");
    assert!(!url.starts_with("ws://127.0.0.1:0/"), "{url}");

    let mut ws = connect(&url).await;
    send_binary(&mut ws, b"hello demo").await;
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(&b"hello demo"[..])
    );

    demo.sigterm();
    let frame = next_close(&mut ws)
        .await
        .expect("close frame without a code");
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    let status = demo.wait().await;
    let log = stderr.all().await;
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{log}");
}

/// The config file for the reload test: one route to `backend` allowing `origin`.
fn config_yaml(backend: &str, origin: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\norigins: [\"{origin}\"]\nroutes:\n  - path: /\n    backend: {backend}\n"
    )
}

#[tokio::test]
async fn sighup_reloads_for_new_connections_and_keeps_the_config_on_errors() {
    let echo = echo_backend().await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.yaml");
    std::fs::write(&file, config_yaml(&echo, "https://old.example")).unwrap();
    let mut gw = start_serving(&["--config", file.to_str().unwrap()], &[]).await;
    let addr: std::net::SocketAddr = gw.addr.parse().unwrap();
    let url = format!("ws://{addr}/");
    let mut old = connect_with(&url, &[("Origin", "https://old.example")]).await;
    let hup = |pid: u32| {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let with_origin = |o: &str| upgrade_request("/", &format!("Origin: {o}\r\n"));

    std::fs::write(&file, config_yaml(&echo, "https://new.example")).unwrap();
    hup(gw.proc.pid);
    gw.stderr
        .wait_for("reload", |l| l.contains("configuration reloaded"))
        .await;
    assert_eq!(
        raw_request(addr, &with_origin("https://old.example"))
            .await
            .0,
        403
    );
    assert_eq!(
        raw_request(addr, &with_origin("https://new.example"))
            .await
            .0,
        101
    );
    send_binary(&mut old, b"opened before the reload").await;
    assert_eq!(
        next_data(&mut old).await.into_data(),
        &b"opened before the reload"[..]
    );

    std::fs::write(&file, "limits: {max_frame_size: lots}\n").unwrap();
    hup(gw.proc.pid);
    let refused = gw
        .stderr
        .wait_for("refusal", |l| l.contains("reload refused"))
        .await;
    assert!(refused.contains("limits.max_frame_size"), "{refused}");
    assert_eq!(
        raw_request(addr, &with_origin("https://new.example"))
            .await
            .0,
        101,
        "kept serving"
    );

    let (status, body) = http_get(gw.admin.parse().unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    let m = common::metrics::parse(&body);
    let reloads =
        |result| common::metrics::value(&m, "wsgate_config_reloads_total", &[("result", result)]);
    assert_eq!((reloads("ok"), reloads("failed")), (1.0, 1.0));
    drop(old);
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}

/// SIGTERM while the backend streams: readiness turns 503 during the delay, the client gets
/// an intact prefix of the stream, then 1001, and the process exits 0.
#[tokio::test]
async fn drain_delivers_what_was_read_then_1001_and_exits_zero() {
    use tokio::io::AsyncWriteExt;
    let backend = Backend::bind().await;
    let backend_addr = backend.addr.to_string();
    let mut gw = start_serving(
        &["--listen", "127.0.0.1:0", "--backend", &backend_addr],
        &[("WSGATE_SHUTDOWN__DELAY", "1s")],
    )
    .await;
    let mut ws = connect(&format!("ws://{}/", gw.addr)).await;
    let mut sock = backend.accept().await;
    let streamer = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            pattern(11, sent, &mut chunk);
            if sock.write_all(&chunk).await.is_err() {
                return sent;
            }
            sent += chunk.len() as u64;
        }
    });
    // Data is flowing before the signal.
    let mut got = 0u64;
    while got < 1024 * 1024 {
        let data = next_data(&mut ws).await.into_data();
        check_pattern(11, got, &data);
        got += data.len() as u64;
    }
    gw.proc.sigterm();
    let admin: std::net::SocketAddr = gw.admin.parse().unwrap();
    let mut saw_not_ready = false;
    let frame = loop {
        use tokio_tungstenite::tungstenite::Message;
        if !saw_not_ready {
            saw_not_ready = http_get(admin, "/readyz").await.0 == 503;
        }
        match next_data(&mut ws).await {
            Message::Binary(data) => {
                check_pattern(11, got, &data);
                got += data.len() as u64;
            }
            Message::Close(frame) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(saw_not_ready, "readiness never turned 503 during the delay");
    assert_eq!(frame.unwrap().code, CloseCode::Away);
    let sent = timeout(PATIENCE, streamer).await.unwrap().unwrap();
    assert!(got <= sent, "received {got} of {sent}");
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}

/// The accept queue is what `limits.listen_backlog` says (std and tokio would use 128), as
/// the kernel reports it for the listening socket (`ss`, from iproute2: Send-Q).
#[tokio::test]
async fn the_listener_gets_the_configured_backlog() {
    let mut gw = start_serving(
        &["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"],
        &[("WSGATE_LIMITS__LISTEN_BACKLOG", "777")],
    )
    .await;
    let port = gw.addr.rsplit(':').next().unwrap().to_string();
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    let send_q: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(send_q, ["777"], "{listing}");
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}

/// The whole log of `wsgate --listen <listen>` with the default origins (`*`) and no
/// auth, from start to a clean exit.
async fn log_of_a_run_listening_on(listen: &str) -> String {
    let echo = echo_backend().await.to_string();
    let mut gw = start_serving(&["--listen", listen, "--backend", &echo], &[]).await;
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
    gw.stderr.all().await
}

#[tokio::test]
async fn any_origin_without_auth_is_warned_about_off_loopback_only() {
    let is_warning =
        |l: &&str| l.contains("\"level\":\"WARN\"") && l.contains("route open to any web page");
    let log = log_of_a_run_listening_on("0.0.0.0:0").await;
    let warning = log
        .lines()
        .find(is_warning)
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(warning.contains("\"route\":\"/\""), "{warning}");

    let log = log_of_a_run_listening_on("127.0.0.1:0").await;
    assert!(!log.lines().any(|l| is_warning(&l)), "{log}");
    assert!(log.contains("\"message\":\"listening\""), "{log}");
}

#[tokio::test]
async fn admin_token_from_the_environment_guards_metrics() {
    let echo = echo_backend().await.to_string();
    let mut gw = start_serving(
        &["--listen", "127.0.0.1:0", "--backend", &echo],
        &[
            ("WSGATE_ADMIN__TOKENS__ENV", "ADMIN_TOKEN"),
            ("ADMIN_TOKEN", "test-only-scrape-token"),
        ],
    )
    .await;
    let admin: std::net::SocketAddr = gw.admin.parse().unwrap();
    let get = |path: &str, auth: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n")
    };
    assert_eq!(raw_request(admin, &get("/metrics", "")).await.0, 401);
    let bearer = "Authorization: Bearer test-only-scrape-token\r\n";
    assert_eq!(raw_request(admin, &get("/metrics", bearer)).await.0, 200);
    assert_eq!(raw_request(admin, &get("/readyz", "")).await.0, 200);
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}

/// Logging to a stderr whose reader is gone (a closed pipe) drops the lines; it does not
/// bring the gateway down, and a SIGTERM still ends it cleanly.
#[tokio::test]
async fn a_closed_stderr_does_not_crash_the_gateway() {
    let mut demo = Running::start(wsgate(&["demo", "--listen", "127.0.0.1:0"]));
    demo.close_stderr();
    let mut stdout = demo.stdout();
    let url = demo_url(&mut stdout).await;
    // A session logs as it ends; the gateway must still answer.
    let mut ws = connect(&url).await;
    send_binary(&mut ws, b"still up").await;
    assert_eq!(next_data(&mut ws).await, Message::binary(&b"still up"[..]));
    drop(ws);
    demo.sigterm();
    let status = demo.wait().await;
    assert_eq!(status.code(), Some(0), "{status}");
}
