//! `wsgate client` over wss:// to the real gateway, with certificates made by `wsgate
//! cert`: bytes exact through TLS with the CA given, an untrusted gateway refused without
//! retries, and mutual TLS (a client certificate required, refused without one).

mod common;

use std::path::{Path, PathBuf};

use common::process::{run_to_end, wsgate};
use common::tunnel::{bytes, echo_through, tunnel_to};
use common::*;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// `wsgate cert --host localhost --client tunnel --out DIR`.
async fn certificates() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "cert",
        "--host",
        "localhost",
        "--client",
        "tunnel",
        "--out",
        out,
    ];
    let (status, _, stderr) = run_to_end(wsgate(&args)).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    dir
}

fn file(dir: &Path, name: &str) -> String {
    let path: PathBuf = dir.join(name);
    path.to_str().unwrap().to_string()
}

/// The real gateway with TLS in front of an echo backend; with `mutual`, client
/// certificates signed by the same CA are required.
async fn tls_gateway(dir: &Path, mutual: bool) -> (Gateway, String) {
    let mut cfg = config_for(echo_backend().await);
    cfg.tls.cert = Some(dir.join("server.pem"));
    cfg.tls.key = Some(dir.join("server-key.pem"));
    if mutual {
        cfg.tls.client_ca = Some(dir.join("ca.pem"));
    }
    let gw = spawn_gateway(cfg).await;
    let url = format!("wss://localhost:{}/", gw.addr.port());
    (gw, url)
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

/// A local connection whose session cannot open: it is closed without a byte.
async fn closed_unopened(addr: std::net::SocketAddr) {
    let mut local = TcpStream::connect(addr).await.unwrap();
    local.write_all(b"hello?").await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(PATIENCE, local.read_to_end(&mut got))
        .await
        .expect("the local connection was left open");
    assert!(got.is_empty());
}

#[tokio::test]
async fn wss_carries_bytes_exactly_with_the_ca_given() {
    let dir = certificates().await;
    let (_gw, url) = tls_gateway(dir.path(), false).await;
    let ca = file(dir.path(), "ca.pem");
    let mut client = tunnel_to(&url, &["--ca-file", &ca]).await;
    let data = bytes(2 * 1024 * 1024 + 1, 21);
    let back = echo_through(client.addr(), &data).await;
    assert_eq!(back.len(), data.len());
    check_pattern(21, 0, &back);
    let line = json(&client.next_session_line().await);
    assert_eq!(line["end"], "local_eof", "{line}");
    assert_eq!(line["bytes_up"], data.len() as u64, "{line}");
}

#[tokio::test]
async fn an_untrusted_gateway_is_refused_at_once() {
    let dir = certificates().await;
    let (_gw, url) = tls_gateway(dir.path(), false).await;
    // Another CA: the gateway's certificate is not signed by it.
    let other = certificates().await;
    let ca = file(other.path(), "ca.pem");
    let mut client = tunnel_to(&url, &["--ca-file", &ca]).await;
    closed_unopened(client.addr()).await;
    let line = json(&client.next_session_line().await);
    assert_eq!(line["end"], "open_failed", "{line}");
    assert_eq!(line["reason"], "tls", "{line}");
    assert_eq!(
        line["attempts"], 1,
        "a certificate problem is not retried: {line}"
    );
    assert!(
        line["error"].as_str().unwrap().contains("certificate"),
        "{line}"
    );
}

#[tokio::test]
async fn mutual_tls_sends_the_client_certificate_and_fails_without_one() {
    let dir = certificates().await;
    let (_gw, url) = tls_gateway(dir.path(), true).await;
    let ca = file(dir.path(), "ca.pem");
    let cert = file(dir.path(), "client-tunnel.pem");
    let key = file(dir.path(), "client-tunnel-key.pem");
    let args = [
        "--ca-file",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ];
    let mut client = tunnel_to(&url, &args).await;
    assert_eq!(echo_through(client.addr(), b"mutual").await, b"mutual");
    let line = json(&client.next_session_line().await);
    assert_eq!(line["end"], "local_eof", "{line}");

    let mut anonymous = tunnel_to(&url, &["--ca-file", &ca]).await;
    closed_unopened(anonymous.addr()).await;
    let line = json(&anonymous.next_session_line().await);
    assert_eq!(line["end"], "open_failed", "{line}");
    assert_eq!(
        line["attempts"], 1,
        "refused for what it is, not retried: {line}"
    );
}
