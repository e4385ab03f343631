//! The `wsgate` binary as an operator runs it: serving until SIGTERM, refusing bad
//! configuration with exit code 64 before binding, `check`, and `demo`.

mod common;

use common::process::*;
use common::*;
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
async fn demo_echoes_then_exits_zero_on_sigterm() {
    let mut demo = Running::start(wsgate(&["demo", "--listen", "127.0.0.1:0"]));
    let mut stdout = demo.stdout();
    let mut stderr = demo.stderr();
    let banner = stdout
        .wait_for("demo banner", |l| l.starts_with("wsgate demo: ws://"))
        .await;
    let url = banner
        .strip_prefix("wsgate demo: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no url in {banner}"));
    assert!(url.starts_with("ws://127.0.0.1:"), "{banner}");
    assert!(url.ends_with('/'), "{banner}");
    assert!(!url.starts_with("ws://127.0.0.1:0/"), "{banner}");

    let mut ws = connect(url).await;
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
