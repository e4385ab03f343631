//! A real browser speaks to the gateway: headless Chromium (Debian's package, installed by
//! `.ci/run`), driven over the DevTools protocol, loads the gateway's health page over
//! HTTP/2 and then opens a WebSocket to the same origin, which it carries over that HTTP/2
//! connection (RFC 8441). The gateway's access log says which protocol it got.

mod common;

use std::process::Stdio;

use common::process::json_str;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// A DevTools session on one page.
struct Page {
    ws: Client,
    next_id: u64,
}

impl Page {
    /// Sends a command and waits for its reply (events before it are dropped, except that
    /// `wait_event` below may be used to wait for one after).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
        loop {
            let reply = self.read().await;
            if reply["id"] == id {
                return reply;
            }
        }
    }

    async fn wait_event(&mut self, method: &str) {
        while self.read().await["method"] != method {}
    }

    async fn read(&mut self) -> Value {
        loop {
            match timeout(PATIENCE, self.ws.next())
                .await
                .expect("DevTools went quiet")
                .unwrap()
                .unwrap()
            {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                _ => continue,
            }
        }
    }
}

#[tokio::test]
async fn chromium_carries_a_websocket_over_http2() {
    if which("chromium").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium (.ci/run does)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = wsgate::devcert::generate(&["localhost".into()], &[]).unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server-key.pem");
    std::fs::write(&cert, &certs.server_chain).unwrap();
    std::fs::write(&key, &certs.server_key).unwrap();
    let echo = echo_backend().await.to_string();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--backend",
        &echo,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    let mut gw = process::start_serving(&args, &[("WSGATE_HTTP2", "true")]).await;
    let port = gw.addr.rsplit(':').next().unwrap().to_string();
    let origin = format!("https://localhost:{port}");

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors", // the test's own CA
            "--remote-debugging-port=0",
            &format!("--user-data-dir={}", profile.path().display()),
            "about:blank",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let mut lines = BufReader::new(browser.stderr.take().unwrap()).lines();
    let devtools = timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                return url.trim().to_string();
            }
        }
        panic!("chromium exited before DevTools listened");
    })
    .await
    .expect("DevTools never listened");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // The page target's own DevTools socket, from the browser's target list.
    let debug_port: std::net::SocketAddr = devtools.split('/').nth(2).unwrap().parse().unwrap();
    let body = get_json_list(debug_port).await;
    let targets: Value = serde_json::from_str(&body).unwrap();
    let page_url = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .unwrap()["webSocketDebuggerUrl"]
        .as_str()
        .unwrap()
        .to_string();
    // Its host may be `localhost`, which can resolve to ::1 where DevTools does not listen.
    let path = page_url.splitn(4, '/').nth(3).unwrap();
    let page_url = format!("ws://{debug_port}/{path}");
    let mut page = Page {
        ws: connect_devtools(&page_url).await,
        next_id: 0,
    };
    page.call("Page.enable", json!({})).await;
    page.call(
        "Page.navigate",
        json!({ "url": format!("{origin}/healthz") }),
    )
    .await;
    page.wait_event("Page.loadEventFired").await;
    let script = format!(
        "new Promise((ok, fail) => {{ const s = new WebSocket('wss://localhost:{port}/'); s.binaryType = 'arraybuffer';
           s.onopen = () => s.send('hello from chromium');
           s.onmessage = e => {{ ok(new TextDecoder().decode(e.data)); s.close(1000); }};
           s.onerror = () => fail('websocket error'); setTimeout(() => fail('timeout'), 10000); }})"
    );
    let reply = page
        .call(
            "Runtime.evaluate",
            json!({ "expression": script, "awaitPromise": true }),
        )
        .await;
    assert_eq!(
        reply["result"]["result"]["value"], "hello from chromium",
        "{reply}"
    );

    let line = gw
        .stderr
        .wait_for("the session's access line", |l| {
            l.contains("\"message\":\"session closed\"")
        })
        .await;
    assert_eq!(
        json_str(&line, "protocol"),
        Some("h2"),
        "Chromium did not use RFC 8441: {line}"
    );
    drop(page);
    let _ = browser.kill().await;
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}

/// `GET /json/list` from the DevTools HTTP server, which keeps connections open: the body
/// is read by its Content-Length.
async fn get_json_list(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"GET /json/list HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    timeout(PATIENCE, async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "DevTools closed the connection early");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>())
                    })
                    .expect("Content-Length")
                    .unwrap();
                if body.len() >= len {
                    return body[..len].to_string();
                }
            }
        }
    })
    .await
    .expect("no target list in time")
}

async fn connect_devtools(url: &str) -> Client {
    let (ws, _) = timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    ws
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}
