//! `wsgate client` as a child process in front of a gateway: started on 127.0.0.1:0 with
//! JSON logs, its tunnels' addresses read from its `listening` lines, and the access lines
//! it writes per session.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::PATIENCE;
use super::process::{Lines, Running, json_str, wsgate};

pub struct TunnelClient {
    pub proc: Running,
    pub stderr: Lines,
    /// Each tunnel's local address, in the order they were configured.
    pub addrs: Vec<SocketAddr>,
}

impl TunnelClient {
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The next access line (`session closed` or a session that could not open).
    pub async fn next_session_line(&mut self) -> String {
        self.stderr
            .wait_for("a session line", |l| {
                l.contains("\"message\":\"session closed\"")
                    || l.contains("session could not be opened")
            })
            .await
    }
}

/// `wsgate client --log-format json ARGS` with `env`, once `tunnels` tunnels listen.
pub async fn start_client(args: &[&str], env: &[(&str, &str)], tunnels: usize) -> TunnelClient {
    let mut all = vec!["client", "--log-format", "json"];
    all.extend_from_slice(args);
    let mut cmd = wsgate(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut proc = Running::start(cmd);
    let mut stderr = proc.stderr();
    let mut addrs = Vec::new();
    for _ in 0..tunnels {
        let line = stderr
            .wait_for("a tunnel's listening line", |l| {
                l.contains("\"message\":\"listening\"") && l.contains("\"tunnel\"")
            })
            .await;
        let addr = json_str(&line, "addr").unwrap_or_else(|| panic!("no addr in {line}"));
        addrs.push(addr.parse().unwrap());
    }
    TunnelClient {
        proc,
        stderr,
        addrs,
    }
}

/// `wsgate client --listen 127.0.0.1:0 --url URL ARGS`.
pub async fn tunnel_to(url: &str, args: &[&str]) -> TunnelClient {
    let mut all = vec!["--listen", "127.0.0.1:0", "--url", url];
    all.extend_from_slice(args);
    start_client(&all, &[], 1).await
}

/// Sends `data` through `addr`, reading concurrently, and returns what came back once the
/// far side ended the stream. The local side half-closes only once every byte was echoed,
/// so nothing in flight is cut off; then the stream must end.
pub async fn echo_through(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let sock = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let len = data.len();
    let (all_back, echoed) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 64 * 1024];
        let mut all_back = Some(all_back);
        loop {
            let n = timeout(PATIENCE, rd.read(&mut buf))
                .await
                .expect("echo stalled")
                .unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() >= len {
                if let Some(tx) = all_back.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    timeout(PATIENCE, wr.write_all(data))
        .await
        .expect("send stalled")
        .unwrap();
    let _ = timeout(PATIENCE, echoed).await.expect("echo incomplete");
    wr.shutdown().await.unwrap();
    timeout(PATIENCE, reader)
        .await
        .expect("no EOF after the half-close")
        .unwrap()
}

/// Deterministic test bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    super::pattern(seed, 0, &mut out);
    out
}

/// Waits until `addr` accepts TCP connections (a restarted server), up to PATIENCE.
pub async fn wait_listening(addr: SocketAddr) {
    timeout(PATIENCE, async {
        while TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("not listening in time");
}
