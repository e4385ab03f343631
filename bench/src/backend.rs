//! The TCP services behind the gateway, run in this process on their own runtime (its
//! threads are named `bench-backend`, so their CPU is told apart from the clients'): a sink
//! that counts what arrives, a source that writes as fast as it can, and an echo; or, for
//! the soak's mixed load, any of the three, chosen per connection by the first byte the
//! client sends. A fresh one is started for each measured run and stopped after it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Size of the source's writes and of the sink's reads.
const SOURCE_CHUNK: usize = 64 * 1024;
const SINK_BUFFER: usize = 256 * 1024;
/// Echo read buffer: 32-byte messages, and many idle connections.
const ECHO_BUFFER: usize = 4 * 1024;
/// Accept queue length (Linux caps it at net.core.somaxconn).
const BACKLOG: u32 = 4096;
/// How long stopping may take before it is reported as a problem.
const STOP_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sink,
    Source,
    Echo,
    /// The first byte each connection receives picks its role: [`ROLE_SINK`],
    /// [`ROLE_SOURCE`] or [`ROLE_ECHO`] (anything else ends the connection).
    Mixed,
}

/// The first byte a client of a [`Kind::Mixed`] backend sends, saying what it wants.
pub const ROLE_SINK: u8 = b's';
pub const ROLE_SOURCE: u8 = b'd';
pub const ROLE_ECHO: u8 = b'e';

pub struct Backend {
    pub addr: SocketAddr,
    /// Bytes the sink has received, all connections together.
    pub received: Arc<AtomicU64>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Backend {
    /// Binds 127.0.0.1:0 and serves `kind` on `rt` until [`Self::stop`].
    pub async fn start(rt: &Handle, kind: Kind) -> Result<Self> {
        let listener = {
            let _guard = rt.enter();
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            // A long accept queue: with a short one, bursts of connects overflow it and the
            // dropped SYNs come back a second later, measuring the backlog, not the target.
            socket.listen(BACKLOG).context("binding a backend")?
        };
        let addr = listener.local_addr()?;
        let backend = Self {
            addr,
            received: Arc::new(AtomicU64::new(0)),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let (stop, tasks, received) = (
            backend.stop.clone(),
            backend.tasks.clone(),
            backend.received.clone(),
        );
        let rt2 = rt.clone();
        backend.tasks.spawn_on(
            async move {
                loop {
                    let sock = tokio::select! {
                        () = stop.cancelled() => return,
                        accepted = listener.accept() => match accepted {
                            Ok((sock, _)) => sock,
                            Err(_) => continue, // a connection reset before it was taken
                        },
                    };
                    let _ = sock.set_nodelay(true);
                    let (stop, received) = (stop.clone(), received.clone());
                    tasks.spawn_on(
                        async move {
                            tokio::select! {
                                () = stop.cancelled() => {}
                                () = serve(kind, sock, &received) => {}
                            }
                        },
                        &rt2,
                    );
                }
            },
            rt,
        );
        Ok(backend)
    }

    /// Stops accepting, ends every connection, and waits for all of them to be gone.
    pub async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.tasks.close();
        timeout(STOP_PATIENCE, self.tasks.wait())
            .await
            .context("backend connections did not end")
    }
}

/// One connection until the peer ends it or fails; errors just end it.
async fn serve(kind: Kind, mut sock: TcpStream, received: &AtomicU64) {
    let kind = match kind {
        Kind::Mixed => match sock.read_u8().await {
            Ok(ROLE_SINK) => Kind::Sink,
            Ok(ROLE_SOURCE) => Kind::Source,
            Ok(ROLE_ECHO) => Kind::Echo,
            _ => return,
        },
        kind => kind,
    };
    match kind {
        Kind::Sink => {
            let mut buf = vec![0u8; SINK_BUFFER];
            while let Ok(n @ 1..) = sock.read(&mut buf).await {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        Kind::Source => {
            let chunk = vec![0x5Au8; SOURCE_CHUNK];
            while sock.write_all(&chunk).await.is_ok() {}
        }
        Kind::Echo => {
            let mut buf = [0u8; ECHO_BUFFER];
            while let Ok(n @ 1..) = sock.read(&mut buf).await {
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
        Kind::Mixed => {} // resolved to one of the others above
    }
}
