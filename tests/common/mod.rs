//! Test harness: the real gateway on 127.0.0.1:0, real TCP backends, a real WebSocket
//! client, and helpers that wait on events (never on fixed sleeps).
#![allow(dead_code)] // each test binary uses a different subset

pub mod access_log;
pub mod backend_faults;
pub mod bare;
pub mod metrics;
pub mod netfault;
pub mod process;
pub mod tls_client;
pub mod tools;
pub mod tunnel;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tokio_util::sync::CancellationToken;
use wsgate::{Config, Handle, Listeners, Server, StartError};

/// Generous bound for anything a test waits on; only reached when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
}

pub struct Gateway {
    pub addr: SocketAddr,
    /// The admin listener (metrics and probes).
    pub admin: SocketAddr,
    pub handle: Handle,
    stop: CancellationToken,
    task: JoinHandle<Result<(), StartError>>,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn shut_down(self) -> Result<(), StartError> {
        let (stop, task) = self.begin_shutdown();
        stop.cancel();
        timeout(PATIENCE, task)
            .await
            .expect("gateway did not stop")
            .expect("gateway task panicked")
    }

    /// Parts for a test that drives the shutdown itself: the trigger and the server task.
    pub fn begin_shutdown(self) -> (CancellationToken, JoinHandle<Result<(), StartError>>) {
        (self.stop, self.task)
    }

    /// The metrics, as the admin listener serves them.
    pub async fn metrics(&self) -> Vec<metrics::Sample> {
        let (status, body) = http_get(self.admin, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        metrics::parse(&body)
    }
}

/// Runs the real gateway with `cfg` on an ephemeral port. Ready once this returns: the
/// listener is bound before `run` starts.
pub async fn spawn_gateway(cfg: Config) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_gateway_on(cfg, listener).await
}

/// As [`spawn_gateway`], on a listener the test bound (e.g. with the gateway's own
/// `listener::bind` and its accept queue, where tokio's default of 1,024 is too short).
pub async fn spawn_gateway_on(cfg: Config, listener: TcpListener) -> Gateway {
    init_logs();
    let addr = listener.local_addr().unwrap();
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = admin_listener.local_addr().unwrap();
    let server = Server::new(cfg).expect("test config is valid");
    let handle = server.handle();
    let stop = CancellationToken::new();
    let listeners = Listeners {
        main: listener,
        admin: Some(admin_listener),
    };
    let task = tokio::spawn(server.serve(listeners, stop.clone().cancelled_owned()));
    Gateway {
        addr,
        admin,
        handle,
        stop,
        task,
    }
}

/// A config with one route at `/` to `backend`, draining without the load-balancer delay.
pub fn config_for(backend: SocketAddr) -> Config {
    let mut cfg = Config::single_route("127.0.0.1:0", backend.to_string());
    cfg.shutdown.delay = Duration::ZERO;
    cfg
}

/// A TCP echo service; runs until the test ends.
pub async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = sock.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
    addr
}

/// A backend whose connections the test handles itself, one `accept` at a time.
pub struct Backend {
    listener: TcpListener,
    pub addr: SocketAddr,
}

impl Backend {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Self { listener, addr }
    }

    pub async fn accept(&self) -> TcpStream {
        let (sock, _) = timeout(PATIENCE, self.listener.accept())
            .await
            .expect("gateway never connected the backend")
            .unwrap();
        sock
    }
}

/// A gateway (config adjusted by `adjust`) in front of a backend the test controls, with
/// one session open through it: the gateway, the client, and the backend's end.
pub async fn open_session(adjust: impl FnOnce(&mut Config)) -> (Gateway, Client, TcpStream) {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    adjust(&mut cfg);
    let gw = spawn_gateway(cfg).await;
    let ws = connect(&gw.url("/")).await;
    let sock = backend.accept().await;
    (gw, ws, sock)
}

/// The backend must not have been contacted for refused clients: the first connection it
/// accepts is the one a later admitted client opened (it carries that client's marker).
pub async fn first_backend_connection_carries(backend: &Backend, url: &str, marker: &[u8]) {
    let mut ws = connect(url).await;
    send_binary(&mut ws, marker).await;
    let mut sock = backend.accept().await;
    let mut got = vec![0u8; marker.len()];
    timeout(PATIENCE, sock.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got, marker,
        "the backend's first connection was not the admitted client's"
    );
}

/// As [`connect`], with extra request headers.
pub async fn connect_with(url: &str, headers: &[(&'static str, &str)]) -> Client {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let (ws, resp) = timeout(PATIENCE, connect_async(req))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    assert_eq!(resp.status(), 101);
    ws
}

pub async fn connect(url: &str) -> Client {
    let (ws, resp) = timeout(PATIENCE, connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    assert_eq!(resp.status(), 101);
    ws
}

/// The next message that is not a ping or pong.
pub async fn next_data(ws: &mut Client) -> Message {
    loop {
        let msg = timeout(PATIENCE, ws.next())
            .await
            .expect("no message in time")
            .expect("stream ended")
            .expect("websocket error");
        if !msg.is_ping() && !msg.is_pong() {
            return msg;
        }
    }
}

/// Reads until the close frame and returns it (data before it is discarded), then
/// completes the close handshake: the gateway must close the TCP connection after it.
pub async fn next_close(ws: &mut Client) -> Option<CloseFrame> {
    read_until_close(ws).await.1
}

/// Collects binary/text payloads until the close frame; returns them and the frame, after
/// the client's reply has gone out and the gateway has closed the connection.
pub async fn read_until_close(ws: &mut Client) -> (Vec<u8>, Option<CloseFrame>) {
    let mut data = Vec::new();
    loop {
        match next_data(ws).await {
            Message::Close(frame) => {
                finish_close(ws).await;
                return (data, frame);
            }
            Message::Binary(b) => data.extend_from_slice(&b),
            Message::Text(t) => data.extend_from_slice(t.as_bytes()),
            _ => {}
        }
    }
}

/// After a close frame from the gateway: polling flushes the client's automatic reply,
/// and the stream must then end (the gateway closed TCP), well within the test's patience.
async fn finish_close(ws: &mut Client) {
    let ended = timeout(PATIENCE, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "gateway kept the connection open after the close handshake"
    );
}

/// Sends `payload` on any WebSocket client stream (plain, TLS, HTTP/2) and checks that the
/// next data message is the same bytes.
pub async fn echo_on<S>(ws: &mut WebSocketStream<S>, payload: &[u8])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::binary(payload.to_vec())).await.unwrap();
    loop {
        match timeout(PATIENCE, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Binary(b) => return assert_eq!(&b[..], payload),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub async fn send_binary(ws: &mut Client, bytes: &[u8]) {
    ws.send(Message::binary(bytes.to_vec())).await.unwrap();
}

/// Waits until the peer closes `sock`: reads return EOF or fail (reset). Data is discarded.
pub async fn wait_closed(sock: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    timeout(PATIENCE, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .expect("peer did not close the connection");
}

/// A plain GET (connection closed after it); returns the status and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    timeout(PATIENCE, sock.read_to_end(&mut all))
        .await
        .expect("no response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&all).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Sends a raw HTTP request and returns the status code and the whole response head.
pub async fn raw_request(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    timeout(PATIENCE, async {
        while !head.ends_with(b"\r\n\r\n") {
            if sock.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await
    .expect("no response head in time");
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// A valid upgrade request for `path`, with `extra` header lines appended.
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// Deterministic pseudo-random bytes: stream `seed` from `offset`, so a receiver can check
/// every byte without holding the whole transfer.
pub fn pattern(seed: u64, offset: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let x = (offset + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
        *b = (x >> 29) as u8 ^ (x >> 7) as u8;
    }
}

/// Checks `got` against `pattern(seed, offset, ..)`, reporting the first mismatch.
pub fn check_pattern(seed: u64, offset: u64, got: &[u8]) {
    let mut want = vec![0u8; got.len()];
    pattern(seed, offset, &mut want);
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!("byte {} differs", offset + i as u64);
    }
}

/// Reads `total` bytes from `r`, each checked against `pattern(seed, ..)`, within
/// `patience`.
pub async fn read_pattern(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    total: u64,
    seed: u64,
    patience: Duration,
) {
    use tokio::io::AsyncReadExt;
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    tokio::time::timeout(patience, async {
        while got < total {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "EOF after {got} bytes");
            check_pattern(seed, got, &buf[..n]);
            got += n as u64;
        }
    })
    .await
    .expect("transfer did not finish");
}

/// Completes the upgrade by hand and returns the socket, past the 101 response head.
pub async fn raw_upgrade(gw: &Gateway) -> TcpStream {
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    wire::upgrade(&mut sock).await;
    sock
}
