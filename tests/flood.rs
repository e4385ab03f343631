//! A connection flood against the real binary, alone in its test binary so nothing else
//! competes with it: 5,000 TCP connections opened at once on loopback, half of them left
//! hanging mid-handshake, half upgraded and closed, while one client keeps an echo session
//! and must get every echo back within a second.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use common::bare::{PARTIAL_UPGRADE, close_frame, drain_to_end, upgrade_on};
use common::metrics::value;
use common::process::{raise_fd_limit, start_serving};
use common::*;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_tungstenite::tungstenite::Message;

const FLOOD: usize = 5000;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const STEADY_EVERY: Duration = Duration::from_millis(50);
const ECHO_WITHIN: Duration = Duration::from_secs(1);
/// Every flood connection must have ended by then. Abandoned handshakes hold their place
/// under `max_pending_handshakes` (1024) for `HANDSHAKE_TIMEOUT`, so the flood drains in
/// about three rounds of that.
const FLOOD_DEADLINE: Duration = Duration::from_secs(40);
/// Descriptors this process needs: the flood's sockets, the backend's ends of the upgraded
/// half, and room for the rest. The gateway, started from here, inherits the limit.
const FDS_NEEDED: u64 = 16 * 1024;

/// User plus system CPU time process `pid` has used, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which ends with the last ')': utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

/// What the steady client saw.
#[derive(Debug)]
struct Steady {
    echoes: usize,
    worst: Duration,
}

/// The well-behaved client and its own echo backend, on a thread and runtime of their own
/// so the flood's tasks in this process cannot delay them: what is measured is the gateway.
fn steady_client(
    gateway: SocketAddr,
    backend: std::net::TcpListener,
    connected: oneshot::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> thread::JoinHandle<Steady> {
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            backend.set_nonblocking(true).unwrap();
            let backend = TcpListener::from_std(backend).unwrap();
            tokio::spawn(async move {
                while let Ok((mut sock, _)) = backend.accept().await {
                    tokio::spawn(async move {
                        let (mut rd, mut wr) = sock.split();
                        let _ = tokio::io::copy(&mut rd, &mut wr).await;
                    });
                }
            });
            let mut ws = connect(&format!("ws://{gateway}/steady")).await;
            echo_on(&mut ws, b"hello").await;
            connected.send(()).unwrap();
            let mut tick = interval(STEADY_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let (mut echoes, mut worst) = (0, Duration::ZERO);
            while !*stop.borrow_and_update() {
                tick.tick().await;
                let msg = (echoes as u64).to_be_bytes();
                let sent = Instant::now();
                ws.send(Message::binary(msg.to_vec())).await.unwrap();
                assert_eq!(next_data(&mut ws).await.into_data(), &msg[..]);
                worst = worst.max(sent.elapsed());
                echoes += 1;
            }
            ws.close(None).await.unwrap();
            Steady { echoes, worst }
        })
    })
}

/// How one flood connection went.
enum Flooded {
    /// Left hanging mid-handshake; the gateway closed it after this long.
    Abandoned(Duration),
    Upgraded,
}

async fn flood_one(addr: SocketAddr, abandon: bool) -> Flooded {
    let started = Instant::now();
    let mut sock = TcpStream::connect(addr)
        .await
        .expect("flood connect failed");
    if abandon {
        sock.write_all(PARTIAL_UPGRADE).await.unwrap();
        drain_to_end(&mut sock).await;
        return Flooded::Abandoned(started.elapsed());
    }
    assert_eq!(upgrade_on(&mut sock, "/").await, Some(101));
    sock.write_all(&close_frame(1000)).await.unwrap();
    drain_to_end(&mut sock).await;
    Flooded::Upgraded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_half_open_and_short_connections_leaves_a_steady_session_responsive() {
    raise_fd_limit(FDS_NEEDED);
    let flood_backend = echo_backend().await;
    let steady_backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:0\nlimits:\n  handshake_timeout: {}s\nroutes:\n  \
         - {{ path: /, backend: \"{flood_backend}\" }}\n  \
         - {{ path: /steady, backend: \"{}\" }}\n",
        HANDSHAKE_TIMEOUT.as_secs(),
        steady_backend.local_addr().unwrap()
    );
    std::fs::write(&file, yaml).unwrap();
    let gw = start_serving(&["--config", file.to_str().unwrap()], &[]).await;
    let addr: SocketAddr = gw.addr.parse().unwrap();

    let (connected_tx, connected) = oneshot::channel();
    let (stop_tx, stop) = watch::channel(false);
    let steady = steady_client(addr, steady_backend, connected_tx, stop);
    timeout(PATIENCE, connected)
        .await
        .expect("steady client did not connect")
        .expect("steady client failed");

    let cpu_before = cpu_time(gw.proc.pid);
    let own_before = cpu_time(std::process::id());
    let started = Instant::now();
    let mut flood = JoinSet::new();
    for i in 0..FLOOD {
        flood.spawn(flood_one(addr, i % 2 == 0));
    }
    let mut hanging = Vec::with_capacity(FLOOD / 2);
    let mut upgraded = 0;
    timeout(FLOOD_DEADLINE, async {
        while let Some(done) = flood.join_next().await {
            match done.expect("flood connection failed") {
                Flooded::Abandoned(lived) => hanging.push(lived),
                Flooded::Upgraded => upgraded += 1,
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} of {FLOOD} flood connections still open after {FLOOD_DEADLINE:?}",
            flood.len()
        )
    });
    let flood_took = started.elapsed();
    let gateway_cpu = cpu_time(gw.proc.pid).saturating_sub(cpu_before);
    let own_cpu = cpu_time(std::process::id()).saturating_sub(own_before);

    stop_tx.send(true).unwrap();
    let steady = tokio::task::spawn_blocking(move || steady.join())
        .await
        .unwrap()
        .expect("steady client failed");
    let shortest = hanging.iter().min().copied().unwrap_or_default();
    let longest = hanging.iter().max().copied().unwrap_or_default();
    eprintln!(
        "flood of {FLOOD} ended in {flood_took:?}: {} abandoned handshakes closed after \
         {shortest:?}..{longest:?}, {upgraded} upgraded and closed; steady client: {} echoes, \
         worst delay {:?}; gateway CPU time {gateway_cpu:?}, test process {own_cpu:?}",
        hanging.len(),
        steady.echoes,
        steady.worst
    );
    assert_eq!((hanging.len(), upgraded), (FLOOD / 2, FLOOD / 2));
    assert!(
        shortest >= HANDSHAKE_TIMEOUT,
        "an abandoned handshake ended after {shortest:?}, before the handshake timeout"
    );
    assert!(
        steady.worst < ECHO_WITHIN,
        "an echo took {:?} during the flood",
        steady.worst
    );
    let expected_echoes = (flood_took.as_millis() / STEADY_EVERY.as_millis() / 2) as usize;
    assert!(
        steady.echoes >= expected_echoes,
        "only {} echoes while the flood lasted {flood_took:?}",
        steady.echoes
    );

    let (status, body) = http_get(gw.admin.parse().unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    let m = common::metrics::parse(&body);
    assert_eq!(
        value(&m, "wsgate_connections_accepted_total", &[]),
        (FLOOD + 1) as f64
    );
    assert_eq!(
        value(
            &m,
            "wsgate_sessions_closed_total",
            &[("code", "1000"), ("side", "client")]
        ),
        (FLOOD / 2) as f64
    );
}
