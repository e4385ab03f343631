//! The process between client and backend: the gateway binary, or this binary in its hidden
//! `proxy` mode. Started per measured run, its listening address read from its output, its
//! output drained for as long as it runs (a gateway blocked on a full stderr pipe would
//! measure nothing), and killed by its PID when dropped, on every exit path.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::sync::oneshot;
use tokio::time::timeout;

use crate::gatewaylog::GatewayLog;

/// How long a child may take to say where it listens.
const START_PATIENCE: Duration = Duration::from_secs(10);
/// Lines of a child's output kept to explain a failure.
const TAIL_LINES: usize = 20;

pub struct Middle {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// The gateway's admin listener (`/metrics`), if it was given one.
    pub admin: Option<SocketAddr>,
    /// What its log has said about sessions (the gateway's; the proxy logs none).
    pub log: GatewayLog,
    /// Held open: the proxy exits when its stdin ends, so it cannot outlive this process
    /// even if this process is killed.
    _stdin: Option<ChildStdin>,
}

/// Where a child listens: its main address, and the gateway's admin address if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listening {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
}

/// Finds the listening addresses in one line of a child's output.
type Parse = fn(&str) -> Option<Listening>;

impl Middle {
    /// `gateway --listen 127.0.0.1:0 --backend ADDR --log-format json`, with no admin
    /// listener and no inherited `WSGATE_*` or `RUST_LOG`: otherwise the default config,
    /// unless `env` says more (`WSGATE_ADMIN__LISTEN=127.0.0.1:0` gives it an admin
    /// listener, whose address is then known). With `tls` (certificate chain, key), it
    /// serves wss://.
    pub async fn gateway(
        path: &Path,
        env: &[(String, String)],
        tls: Option<(&Path, &Path)>,
        backend: SocketAddr,
    ) -> Result<Self> {
        let mut cmd = Command::new(path);
        cmd.args(["--listen", "127.0.0.1:0", "--backend", &backend.to_string()])
            .args(["--log-format", "json"])
            .env_remove("RUST_LOG")
            .env("WSGATE_ADMIN__LISTEN", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("WSGATE_") && key != "WSGATE_ADMIN__LISTEN" {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start the gateway {}", path.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        Self::wait_listening(child, stderr, None, gateway_listening).await
    }

    /// This binary's hidden `proxy` mode in front of `backend`.
    pub async fn proxy(self_exe: &Path, backend: SocketAddr) -> Result<Self> {
        let mut child = Command::new(self_exe)
            .args(["proxy", "--backend", &backend.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the copy proxy")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stdin = child.stdin.take();
        Self::wait_listening(child, stdout, stdin, proxy_listening).await
    }

    /// A child started elsewhere (the client end of a tunnel chain) that listens at
    /// `addr`: owned, measured and killed like the others.
    pub fn adopt(child: Child, addr: SocketAddr) -> Self {
        let pid = child.id();
        Self {
            child,
            pid,
            addr,
            admin: None,
            log: GatewayLog::default(),
            _stdin: None,
        }
    }

    async fn wait_listening(
        child: Child,
        output: impl Read + Send + 'static,
        stdin: Option<ChildStdin>,
        parse: Parse,
    ) -> Result<Self> {
        let pid = child.id();
        // Owned from here: dropping it kills the child, whatever happens next.
        let mut middle = Self {
            child,
            pid,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin: None,
            log: GatewayLog::default(),
            _stdin: stdin,
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = oneshot::channel();
        let (tail2, log) = (tail.clone(), middle.log.clone());
        thread::Builder::new()
            .name("bench-childlog".into())
            .spawn(move || drain(output, parse, tx, &tail2, &log))
            .context("cannot start the output reader")?;
        let found = timeout(START_PATIENCE, rx).await;
        match found {
            Ok(Ok(found)) => {
                middle.addr = found.addr;
                middle.admin = found.admin;
                Ok(middle)
            }
            _ => {
                let lines: Vec<String> = tail
                    .lock()
                    .map(|t| t.iter().cloned().collect())
                    .unwrap_or_default();
                Err(anyhow!(
                    "process {pid} did not report a listening address; its last output:\n{}",
                    lines.join("\n")
                ))
            }
        }
    }
}

/// Reads `output` to its end: reports the listening address once, keeps the last lines,
/// and shows every line to `log`.
fn drain(
    output: impl Read,
    parse: Parse,
    tx: oneshot::Sender<Listening>,
    tail: &Mutex<VecDeque<String>>,
    log: &GatewayLog,
) {
    let mut tx = Some(tx);
    for line in BufReader::new(output).lines() {
        let Ok(line) = line else { return };
        log.note(&line);
        if tx.is_some() {
            if let Some(addr) = parse(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// The gateway's JSON `listening` line:
/// `{"message":"listening","addr":"127.0.0.1:PORT","admin":"off",..}`.
fn gateway_listening(line: &str) -> Option<Listening> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields").unwrap_or(&v);
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    Some(Listening {
        addr: fields.get("addr")?.as_str()?.parse().ok()?,
        // "off", or the admin listener's address.
        admin: fields
            .get("admin")
            .and_then(|a| a.as_str())
            .and_then(|a| a.parse().ok()),
    })
}

/// The proxy's `listening 127.0.0.1:PORT` line.
fn proxy_listening(line: &str) -> Option<Listening> {
    let addr = line.strip_prefix("listening ")?.trim().parse().ok()?;
    Some(Listening { addr, admin: None })
}

impl Drop for Middle {
    fn drop(&mut self) {
        // SIGKILL to this PID; fails harmlessly if it already exited. Then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_listening_line_gives_its_address() {
        let line = r#"{"timestamp":"t","level":"INFO","message":"listening","addr":"127.0.0.1:4567","admin":"off","routes":1,"target":"wsgate"}"#;
        let found = gateway_listening(line).unwrap();
        assert_eq!(found.addr, "127.0.0.1:4567".parse().unwrap());
        assert_eq!(found.admin, None);
        let with_admin = line.replace(r#""off""#, r#""127.0.0.1:4568""#);
        let found = gateway_listening(&with_admin).unwrap();
        assert_eq!(found.admin, Some("127.0.0.1:4568".parse().unwrap()));
        assert_eq!(gateway_listening(r#"{"message":"session closed"}"#), None);
        assert_eq!(
            proxy_listening("listening 127.0.0.1:9").map(|l| l.addr),
            Some("127.0.0.1:9".parse().unwrap())
        );
    }
}
