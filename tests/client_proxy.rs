//! `wsgate client` reaching the real gateway through a real HTTP CONNECT proxy
//! (tinyproxy, with basic auth): named with `--proxy`, or taken from `http_proxy` in the
//! environment; wrong proxy credentials close the local connection without retries.
//! Skipped without tinyproxy, except under CI, where that fails.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;

use common::process::Lines;
use common::tools::require_tool;
use common::tunnel::{bytes, echo_through, start_client, tunnel_to};
use common::*;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// A running tinyproxy requiring `alice`/`s3cret`; killed (by pid) when dropped.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    log: Lines,
    _dir: TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn tinyproxy(test: &str) -> Option<Proxy> {
    let program = require_tool("tinyproxy", "apt-get install tinyproxy", test)?;
    // tinyproxy takes a fixed port: one the kernel just handed out and nobody holds.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nAllow 127.0.0.1\n\
             BasicAuth alice s3cret\nLogLevel Info\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(program)
        .args(["-d", "-c", conf.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // where tinyproxy -d logs
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start tinyproxy");
    let mut log = Lines::new(child.stdout.take().unwrap());
    log.wait_for("tinyproxy ready", |l| l.contains("Accepting connections"))
        .await;
    Some(Proxy {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        _dir: dir,
    })
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

#[tokio::test]
async fn sessions_cross_a_connect_proxy_with_basic_auth() {
    let Some(mut proxy) = tinyproxy("sessions_cross_a_connect_proxy_with_basic_auth").await else {
        return;
    };
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    let via = format!("http://alice:s3cret@{}", proxy.addr);
    let mut client = tunnel_to(&gw.url("/"), &["--proxy", &via]).await;
    let data = bytes(1024 * 1024, 31);
    let back = echo_through(client.addr(), &data).await;
    assert_eq!(back.len(), data.len());
    check_pattern(31, 0, &back);
    let line = json(&client.next_session_line().await);
    assert_eq!(line["end"], "local_eof", "{line}");
    // The proxy itself says it carried a CONNECT to the gateway.
    let target = format!("{}", gw.addr.port());
    proxy
        .log
        .find("the proxy's CONNECT", |l| {
            l.contains("CONNECT") && l.contains(&target)
        })
        .await;

    // The same from the environment, as a corporate machine sets it.
    let env_proxy = format!("http://alice:s3cret@{}", proxy.addr);
    let args = ["--listen", "127.0.0.1:0", "--url", &gw.url("/")];
    let from_env = start_client(&args, &[("http_proxy", &env_proxy)], 1).await;
    assert_eq!(echo_through(from_env.addr(), b"via env").await, b"via env");
}

#[tokio::test]
async fn wrong_proxy_credentials_close_the_local_connection_without_retries() {
    let Some(_proxy_kept) = tinyproxy("wrong_proxy_credentials_close_the_local_connection").await
    else {
        return;
    };
    let proxy = &_proxy_kept;
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    let via = format!("http://alice:wrong@{}", proxy.addr);
    let mut client = tunnel_to(&gw.url("/"), &["--proxy", &via]).await;
    let mut local = TcpStream::connect(client.addr()).await.unwrap();
    local.write_all(b"hello").await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(PATIENCE, local.read_to_end(&mut got))
        .await
        .expect("local connection left open");
    assert!(got.is_empty());
    let line = json(&client.next_session_line().await);
    assert_eq!(line["end"], "open_failed", "{line}");
    assert_eq!(line["reason"], "proxy", "{line}");
    assert_eq!(line["attempts"], 1, "{line}");
    // tinyproxy answers 401 where RFC 9110 says 407; either is a refusal.
    let error = line["error"].as_str().unwrap();
    assert!(error.contains("407") || error.contains("401"), "{line}");
    let all = client.stderr.so_far().join("\n");
    assert!(
        !all.contains("wrong"),
        "the proxy password was logged: {all}"
    );
}
