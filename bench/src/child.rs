//! The process between client and backend: the gateway binary, this binary in its hidden
//! `proxy` mode, or HAProxy in TCP mode. Started per measured run, its listening address
//! read from its output (or, for HAProxy, which cannot report a port-0 bind, found by
//! looking for its listening socket on a port picked for it), its output drained for as
//! long as it runs (a gateway blocked on a full stderr pipe would measure nothing), and
//! killed by its PID and reaped when dropped, on every exit path.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tokio::sync::oneshot;
use tokio::time::{sleep, timeout};

use crate::gatewaylog::GatewayLog;
use crate::haproxy::Haproxy;
use crate::procfs;

/// How long a child may take to say where it listens.
const START_PATIENCE: Duration = Duration::from_secs(10);
/// Lines of a child's output kept to explain a failure.
const TAIL_LINES: usize = 20;
/// Name of the threads that read the children's output.
pub const LOG_READER_THREADS: &str = "bench-childlog";
/// Ports tried for HAProxy: each picked free, but another process may take it first.
const HAPROXY_PORT_ATTEMPTS: usize = 5;
/// How often HAProxy's listening socket is looked for while it starts.
const HAPROXY_POLL: Duration = Duration::from_millis(10);

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
    /// A directory of files made for this child (HAProxy's configuration), removed with it.
    workdir: Option<PathBuf>,
}

/// Why a start of HAProxy failed: its port was taken (worth another port), or otherwise.
enum HaproxyStart {
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
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
            workdir: None,
        }
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

    /// HAProxy in TCP mode in front of `backend`, configured by `haproxy`, on a free port
    /// picked here: another one if HAProxy finds it taken, a few times.
    pub async fn haproxy(haproxy: &Haproxy, backend: SocketAddr) -> Result<Self> {
        let mut taken = Vec::new();
        for _ in 0..HAPROXY_PORT_ATTEMPTS {
            match Self::haproxy_on_free_port(haproxy, backend).await {
                Ok(middle) => return Ok(middle),
                Err(HaproxyStart::PortTaken(e)) => taken.push(format!("{e:#}")),
                Err(HaproxyStart::Failed(e)) => return Err(e),
            }
        }
        Err(anyhow!(
            "HAProxy found each port picked for it taken:\n{}",
            taken.join("\n")
        ))
    }

    async fn haproxy_on_free_port(
        haproxy: &Haproxy,
        backend: SocketAddr,
    ) -> Result<Self, HaproxyStart> {
        let failed = HaproxyStart::Failed;
        let port = free_port().map_err(failed)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = haproxy.write_config(port, backend).map_err(failed)?;
        let spawned = Command::new(&haproxy.bin)
            .arg("-db") // foreground, no master process: the PID is the one that proxies
            .arg("-f")
            .arg(dir.join(crate::haproxy::CONFIG_FILE))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                let e = anyhow!(e).context(format!("cannot start {}", haproxy.bin.display()));
                return Err(failed(e));
            }
        };
        let stderr = child.stderr.take();
        // Owned from here: dropping it kills HAProxy and removes its directory.
        let mut middle = Self::adopt(child, addr);
        middle.workdir = Some(dir);
        let pid = middle.pid;
        let stderr = stderr
            .context("stderr is piped")
            .map_err(HaproxyStart::Failed)?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, _) = oneshot::channel();
        let reader = spawn_drain(stderr, |_| None, tx, tail.clone(), middle.log.clone())
            .map_err(HaproxyStart::Failed)?;
        let start = Instant::now();
        while start.elapsed() < START_PATIENCE {
            if let Ok(Some(status)) = middle.child.try_wait() {
                // Its output is complete once the reader has met its end.
                let _ = tokio::task::spawn_blocking(move || reader.join()).await;
                let said = lines(&tail).join("\n");
                let e = anyhow!("HAProxy on port {port} exited ({status}):\n{said}");
                return Err(if said.contains("cannot bind") {
                    HaproxyStart::PortTaken(e)
                } else {
                    HaproxyStart::Failed(e)
                });
            }
            // Its own listening socket: a connection to a port someone else took would
            // measure that someone.
            if procfs::listens_on(pid, port) {
                tokio::net::TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("HAProxy listens on {addr} but refuses"))
                    .map_err(HaproxyStart::Failed)?;
                return Ok(middle);
            }
            sleep(HAPROXY_POLL).await;
        }
        Err(HaproxyStart::Failed(anyhow!(
            "HAProxy (process {pid}) did not listen on {addr} within {START_PATIENCE:?}; its \
             output:\n{}",
            lines(&tail).join("\n")
        )))
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
            workdir: None,
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = oneshot::channel();
        spawn_drain(output, parse, tx, tail.clone(), middle.log.clone())?;
        let found = timeout(START_PATIENCE, rx).await;
        match found {
            Ok(Ok(found)) => {
                middle.addr = found.addr;
                middle.admin = found.admin;
                Ok(middle)
            }
            _ => Err(anyhow!(
                "process {pid} did not report a listening address; its last output:\n{}",
                lines(&tail).join("\n")
            )),
        }
    }
}

/// A port of 127.0.0.1 free at this instant (bound to port 0, then let go).
fn free_port() -> Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(probe.local_addr()?.port())
}

/// The last lines a child's output has said.
fn lines(tail: &Mutex<VecDeque<String>>) -> Vec<String> {
    tail.lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default()
}

/// Starts the thread that reads a child's `output` to its end (see [`drain`]).
fn spawn_drain(
    output: impl Read + Send + 'static,
    parse: Parse,
    tx: oneshot::Sender<Listening>,
    tail: Arc<Mutex<VecDeque<String>>>,
    log: GatewayLog,
) -> Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(LOG_READER_THREADS.into())
        .spawn(move || drain(output, parse, tx, &tail, &log))
        .context("cannot start the output reader")
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
        if let Some(dir) = &self.workdir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HAProxy started as a run starts it carries bytes both ways to the backend, and is
    /// gone, with its directory, once dropped. Skipped without HAProxy, except under CI.
    #[tokio::test]
    async fn haproxy_proxies_to_the_backend_and_ends_with_its_files() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Some(haproxy) = Haproxy::find(&[], Some(1024)) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set: haproxy must be installed"
            );
            eprintln!("haproxy not installed: skipped");
            return;
        };
        // An echo backend: every connection (HAProxy's readiness check's among them).
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = backend.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = sock.read(&mut buf).await {
                        if sock.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let middle = Middle::haproxy(&haproxy, backend_addr).await.unwrap();
        let (pid, dir) = (middle.pid, middle.workdir.clone().unwrap());
        let config = std::fs::read_to_string(dir.join(crate::haproxy::CONFIG_FILE)).unwrap();
        assert!(
            config.contains(&format!("server backend {backend_addr}")),
            "{config}"
        );
        let mut client = tokio::net::TcpStream::connect(middle.addr).await.unwrap();
        client.write_all(b"through haproxy").await.unwrap();
        let mut got = [0u8; 15];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"through haproxy");
        assert!(procfs::listens_on(pid, middle.addr.port()));
        drop(middle);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

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
