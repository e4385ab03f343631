//! Harness for the live load-balancer tests: two real wsgate processes, each in front of
//! its own tagged echo service, a real HAProxy or nginx in front of both, and WebSocket
//! clients that connect from 127.0.0.2 so that the address wsgate logs is provably the
//! client's, not the balancer's (127.0.0.1).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, client_async};

use crate::common::process::{Lines, Running, json_str, wsgate};
use crate::common::{Client, PATIENCE, next_close, next_data, read_until_close, send_binary};

/// Where the test clients connect from; the balancers reach wsgate from 127.0.0.1.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// A forwarding header each client sends itself; wsgate must not believe it.
const SPOOFED_XFF: &str = "203.0.113.9";
/// shutdown.delay for the instances: long enough to watch the balancer react.
const DRAIN_DELAY: &str = "2s";
/// How often the balancer's port and a draining instance's port are tried.
const POLL: Duration = Duration::from_millis(20);

/// One wsgate process. Its backend sends `tag` first, so a client knows which instance
/// it reached.
pub struct Instance {
    pub tag: u8,
    pub proc: Running,
    pub log: Lines,
    pub addr: SocketAddr,
}

/// A TCP service that sends `tag`, then echoes.
async fn tagged_echo(tag: u8) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                if sock.write_all(&[tag]).await.is_ok() {
                    let (mut rd, mut wr) = sock.split();
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                }
            });
        }
    });
    addr
}

impl Instance {
    /// Two instances (A and B) serving the wsgate config shown in `deploy/README.md` under
    /// the heading line `heading`, written into `dir`.
    pub async fn pair(dir: &Path, heading: &str) -> (Self, Self) {
        let config = dir.join("wsgate.yaml");
        let yaml = crate::files::markdown_yaml_block("deploy/README.md", heading);
        std::fs::write(&config, yaml).expect("write the wsgate config");
        (
            Self::start(b'A', &config).await,
            Self::start(b'B', &config).await,
        )
    }

    /// Runs the binary with `config`, on an ephemeral port given by the flags (as are the
    /// backend and JSON logs), its admin listener on another, draining with a short delay.
    pub async fn start(tag: u8, config: &Path) -> Self {
        let backend = tagged_echo(tag).await.to_string();
        let mut cmd = wsgate(&[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--backend",
            &backend,
            "--log-format",
            "json",
        ]);
        cmd.env("WSGATE_ADMIN__LISTEN", "127.0.0.1:0")
            .env("WSGATE_SHUTDOWN__DELAY", DRAIN_DELAY);
        let mut proc = Running::start(cmd);
        let mut log = proc.stderr();
        let what = format!("instance {}'s listening line", tag as char);
        let line = log
            .wait_for(&what, |l| l.contains("\"message\":\"listening\""))
            .await;
        let addr = json_str(&line, "addr")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no addr in {line}"));
        Self {
            tag,
            proc,
            log,
            addr,
        }
    }

    /// Waits for `n` more access-log lines; each must name the real client.
    pub async fn sessions_closed(&mut self, n: usize) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..n {
            let what = format!("a session closed line from instance {}", self.tag as char);
            let line = self
                .log
                .wait_for(&what, |l| l.contains("\"message\":\"session closed\""))
                .await;
            let client = json_str(&line, "client").unwrap_or_else(|| panic!("no client: {line}"));
            assert!(
                client.starts_with(&format!("{CLIENT_IP}:")),
                "instance {} logged client {client}, not the real client {CLIENT_IP}: {line}",
                self.tag as char
            );
            lines.push(line);
        }
        lines
    }

    /// After SIGTERM: exits 0 once its sessions are gone.
    pub async fn exits_cleanly(&mut self) {
        let status = self.proc.wait().await;
        let rest = self.log.all().await;
        assert_eq!(
            status.code(),
            Some(0),
            "instance {}: {status}\n{rest}",
            self.tag as char
        );
    }
}

/// A WebSocket session through the balancer, and the instance it reached.
pub struct Session {
    pub ws: Client,
    pub tag: u8,
}

impl Session {
    /// Connects from [`CLIENT_IP`], sending a forged X-Forwarded-For, and reads the tag.
    pub async fn open(lb: SocketAddr) -> Self {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(IpAddr::V4(CLIENT_IP), 0))
            .unwrap();
        let tcp = timeout(PATIENCE, sock.connect(lb))
            .await
            .expect("connecting the balancer timed out")
            .expect("cannot connect the balancer");
        let mut req = format!("ws://{lb}/").into_client_request().unwrap();
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static(SPOOFED_XFF));
        let (mut ws, resp) = timeout(PATIENCE, client_async(req, MaybeTlsStream::Plain(tcp)))
            .await
            .expect("upgrade through the balancer timed out")
            .expect("upgrade through the balancer failed");
        assert_eq!(resp.status(), 101);
        let first = next_data(&mut ws).await.into_data();
        assert_eq!(first.len(), 1, "expected the backend's tag, got {first:?}");
        let mut session = Self { ws, tag: first[0] };
        session.echo().await;
        session
    }

    /// A message goes to the backend and comes back whole.
    async fn echo(&mut self) {
        let msg = format!("hello from a client of {}", self.tag as char).into_bytes();
        send_binary(&mut self.ws, &msg).await;
        let mut got = Vec::new();
        while got.len() < msg.len() {
            got.extend_from_slice(&next_data(&mut self.ws).await.into_data());
        }
        assert_eq!(got, msg);
    }

    /// The client ends the session and waits for the close handshake to finish.
    pub async fn close(mut self) {
        self.ws.close(None).await.unwrap();
        let _ = read_until_close(&mut self.ws).await;
    }

    /// The gateway ends the session; returns its close code.
    pub async fn closed_by_gateway(mut self) -> CloseCode {
        next_close(&mut self.ws)
            .await
            .expect("close frame without a code")
            .code
    }
}

/// Opens `n` sessions, held open together, each checked by an echo.
pub async fn open_sessions(lb: SocketAddr, n: usize) -> Vec<Session> {
    let mut sessions = Vec::new();
    for _ in 0..n {
        sessions.push(Session::open(lb).await);
    }
    sessions
}

/// Four sessions held open at once go two to each instance (least connections); every
/// access line names the real client. Returns one session still open on A and B's two.
pub async fn spread_over_both(
    lb: SocketAddr,
    a: &mut Instance,
    b: &Instance,
) -> (Session, Vec<Session>) {
    let sessions = open_sessions(lb, 4).await;
    let (on_a, on_b): (Vec<_>, Vec<_>) = sessions.into_iter().partition(|s| s.tag == a.tag);
    assert!(on_b.iter().all(|s| s.tag == b.tag));
    assert_eq!(
        (on_a.len(), on_b.len()),
        (2, 2),
        "least-connections balancing should put two of four held sessions on each instance"
    );
    let mut on_a = on_a.into_iter();
    let survivor = on_a.next().unwrap();
    on_a.next().unwrap().close().await;
    a.sessions_closed(1).await;
    (survivor, on_b)
}

/// A port nothing listens on right now, for the balancer's own listener.
pub fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// Waits until `addr` refuses connections (a draining instance stopped accepting).
pub async fn wait_refusing(addr: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        sleep(POLL).await;
    }
}

/// A plain GET on a listener that expects a PROXY header; returns the status code.
pub async fn status_behind_proxy_protocol(addr: SocketAddr, path: &str) -> u16 {
    let mut sock = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{addr} no longer accepts ({e}): shutdown.delay not honoured?"));
    let req = format!(
        "PROXY TCP4 127.0.0.3 127.0.0.1 40000 {}\r\nGET {path} HTTP/1.1\r\nHost: wsgate\r\n\r\n",
        addr.port()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 12];
    timeout(PATIENCE, sock.read_exact(&mut head))
        .await
        .expect("no answer in time")
        .expect("no status line");
    let head = String::from_utf8_lossy(&head).into_owned();
    head[9..12]
        .parse()
        .unwrap_or_else(|_| panic!("not an HTTP status line: {head}"))
}

/// A load balancer run as this test's child, in a process group of its own, so that
/// dropping it kills the master and every worker by the group's id.
pub struct Balancer {
    child: Child,
    pgid: u32,
    pub addr: SocketAddr,
    pub out: Lines,
    pub err: Lines,
}

impl Balancer {
    /// Starts `cmd` and waits until it accepts connections on `addr`.
    pub async fn start(mut cmd: Command, addr: SocketAddr) -> Self {
        cmd.process_group(0)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start the load balancer");
        let pgid = child.id().expect("a just-started child has a pid");
        let out = Lines::new(child.stdout.take().unwrap());
        let err = Lines::new(child.stderr.take().unwrap());
        let mut lb = Self {
            child,
            pgid,
            addr,
            out,
            err,
        };
        lb.wait_accepting().await;
        lb
    }

    async fn wait_accepting(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let (out, err) = (self.out.all().await, self.err.all().await);
                panic!("the load balancer exited: {status}\n{out}\n{err}");
            }
            if TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the load balancer never listened on {}",
                self.addr
            );
            sleep(POLL).await;
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pgid)])
            .stderr(Stdio::null())
            .status();
        // Reap the leader (SIGKILL is not refused), so no zombie outlives the test.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
