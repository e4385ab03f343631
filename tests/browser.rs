//! A real browser speaks to the gateway: headless Chromium (Debian's package, installed by
//! `.ci/run`), driven over the DevTools protocol.
//! - It loads the gateway's health page over HTTP/2 and then opens a WebSocket to the same
//!   origin, which it carries over that HTTP/2 connection (RFC 8441). The gateway's access
//!   log says which protocol it got.
//! - It loads `wsgate demo`'s page, where a message typed into the page comes back, and
//!   stopping the demo as Ctrl-C does shows close code 1001 on the page.

mod common;

use std::process::Stdio;

use common::process::{Running, json_str, wsgate};
use common::tools::require_tool;
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

    /// Loads `url` and waits for its load event.
    async fn navigate(&mut self, url: &str) {
        self.call("Page.enable", json!({})).await;
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_event("Page.loadEventFired").await;
    }

    /// Waits until the JavaScript expression `condition` is truthy in the page, and returns
    /// its value; fails naming `what` if it does not become so in time.
    async fn wait_until(&mut self, what: &str, condition: &str) -> Value {
        let script = format!(
            "new Promise((ok, fail) => {{ const started = Date.now();
               (function poll() {{ let v; try {{ v = ({condition}); }} catch (e) {{}}
                 if (v) ok(v); else if (Date.now() - started > 15000) fail('timed out');
                 else setTimeout(poll, 50); }})(); }})"
        );
        let params = json!({ "expression": script, "awaitPromise": true, "returnByValue": true });
        let reply = self.call("Runtime.evaluate", params).await;
        let result = &reply["result"];
        assert!(result["exceptionDetails"].is_null(), "{what}: {reply}");
        result["result"]["value"].clone()
    }

    /// Types `text` into the focused element as keyboard input, then presses Enter.
    async fn type_and_press_enter(&mut self, text: &str) {
        self.call("Input.insertText", json!({ "text": text })).await;
        for kind in ["keyDown", "keyUp"] {
            let key = json!({ "type": kind, "key": "Enter", "code": "Enter",
                "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13, "text": "\r" });
            self.call("Input.dispatchKeyEvent", key).await;
        }
    }
}

/// Headless Chromium with its own profile, and a DevTools session on its page; killed
/// when dropped.
struct Browser {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(chromium: &std::path::Path) -> (Self, Page) {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
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
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
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
        let page = Page {
            ws: connect_devtools(&page_url).await,
            next_id: 0,
        };
        let browser = Self {
            child,
            _profile: profile,
        };
        (browser, page)
    }
}

#[tokio::test]
async fn chromium_carries_a_websocket_over_http2() {
    let test = "chromium_carries_a_websocket_over_http2";
    let Some(chromium) = require_tool("chromium", "apt-get install chromium", test) else {
        return;
    };
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

    let (mut browser, mut page) = Browser::launch(&chromium).await;
    page.navigate(&format!("{origin}/healthz")).await;
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
    let _ = browser.child.kill().await;
    gw.proc.sigterm();
    assert_eq!(gw.proc.wait().await.code(), Some(0));
}

#[tokio::test]
async fn demo_page_echoes_what_is_typed_and_shows_going_away_on_ctrl_c() {
    let test = "demo_page_echoes_what_is_typed_and_shows_going_away_on_ctrl_c";
    let Some(chromium) = require_tool("chromium", "apt-get install chromium", test) else {
        return;
    };
    let mut demo = Running::start(wsgate(&["demo", "--listen", "127.0.0.1:0"]));
    let mut stdout = demo.stdout();
    let mut stderr = demo.stderr();
    let line = stdout
        .wait_for("the page's address", |l| l.starts_with("Open http://"))
        .await;
    let url = line.split_whitespace().nth(1).unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{line}"
    );

    let (mut browser, mut page) = Browser::launch(&chromium).await;
    page.navigate(&url).await;
    let open = "document.getElementById('status').textContent === 'open'";
    page.wait_until("the page's session to open", open).await;

    // A person clicks into the box, types and presses Enter; the echo shows in the page.
    page.call(
        "Runtime.evaluate",
        json!({ "expression": "document.getElementById('message').focus()" }),
    )
    .await;
    page.type_and_press_enter("hello from a person").await;
    let echoed = "[...document.querySelectorAll('#log li.received')]
        .map(li => li.textContent).find(t => t.includes('hello from a person'))";
    let shown = page.wait_until("the echo in the page", echoed).await;
    assert_eq!(shown, "echohello from a person");
    let sent = "[...document.querySelectorAll('#log li.sent')].map(li => li.textContent)";
    let sent = page.wait_until("the sent message in the page", sent).await;
    assert_eq!(sent, json!(["youhello from a person"]));
    let input_left = "document.getElementById('message').value";
    let left = page
        .call(
            "Runtime.evaluate",
            json!({ "expression": input_left, "returnByValue": true }),
        )
        .await;
    assert_eq!(left["result"]["result"]["value"], "", "the box is emptied");

    // Ctrl-C in the demo's terminal: the page shows the gateway's close code and reason.
    demo.sigint();
    let closed = "!document.getElementById('closed').hidden
        && document.getElementById('closed').textContent";
    let note = page.wait_until("the close shown in the page", closed).await;
    let note = note.as_str().unwrap();
    assert!(note.contains("code 1001 (going away)"), "{note}");
    assert!(note.contains("reason \u{201c}going away\u{201d}"), "{note}");
    let status = "document.getElementById('status').textContent === 'closed'";
    page.wait_until("the status to say closed", status).await;

    let status = demo.wait().await;
    let log = stderr.all().await;
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{log}");
    drop(page);
    let _ = browser.child.kill().await;
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
