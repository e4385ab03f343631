//! Dead-peer detection: a client that stops answering is dropped on time and its backend
//! closed; a client that answers is kept however long it stays quiet.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::wire;
use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const PING_INTERVAL: Duration = Duration::from_millis(200);
const PONG_TIMEOUT: Duration = Duration::from_millis(300);

fn fast_liveness(cfg: &mut wsgate::Config) {
    cfg.liveness.ping_interval = PING_INTERVAL;
    cfg.liveness.pong_timeout = PONG_TIMEOUT;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_dropped_and_its_backend_closed() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    fast_liveness(&mut cfg);
    let gw = spawn_gateway(cfg).await;
    let mut client = raw_upgrade(&gw).await;
    let upgraded_at = Instant::now();
    let mut sock = backend.accept().await;

    // The client reads (and so sees the pings) but never answers.
    let mut pings = 0;
    let mut buf = [0u8; 64];
    let dropped_at = timeout(PATIENCE, async {
        loop {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => pings += buf[..n].iter().filter(|b| **b == 0x89).count(),
            }
        }
    })
    .await
    .expect("silent client was never dropped");
    let lived = dropped_at - upgraded_at;
    assert!(pings >= 1, "no ping was sent");
    assert!(
        lived >= PING_INTERVAL + PONG_TIMEOUT - Duration::from_millis(50),
        "dropped too early: {lived:?}"
    );
    assert!(
        lived < PING_INTERVAL + PONG_TIMEOUT + Duration::from_secs(5),
        "dropped too late: {lived:?}"
    );
    wait_closed(&mut sock).await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let mut cfg = config_for(echo_backend().await);
    fast_liveness(&mut cfg);
    let gw = spawn_gateway(cfg).await;
    let mut ws = connect(&gw.url("/")).await;
    // Reading lets the client answer each ping; wait for several full ping cycles.
    let mut pings = 0;
    while pings < 5 {
        match timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    send_binary(&mut ws, b"still here").await;
    assert_eq!(next_data(&mut ws).await.into_data(), &b"still here"[..]);
    drop(ws);
    gw.shut_down().await.unwrap();
}

/// Intervals as short as a test can afford, long enough for a loaded 2-core machine.
const SHORT_PING: Duration = Duration::from_secs(2);
const SHORT_PONG: Duration = Duration::from_secs(2);

fn short_liveness(cfg: &mut wsgate::Config) {
    cfg.liveness.ping_interval = SHORT_PING;
    cfg.liveness.pong_timeout = SHORT_PONG;
}

/// Writes to `sock` without pause until the gateway closes it; returns when that was seen.
async fn write_without_pause(mut sock: tokio::net::TcpStream) -> tokio::time::Instant {
    let chunk = vec![0x5Au8; 64 * 1024];
    while sock.write_all(&chunk).await.is_ok() {}
    tokio::time::Instant::now()
}

/// The bytes the gateway holds unsent in the kernel towards `client` (from `ss`).
fn unsent_towards(gateway: SocketAddr, client: SocketAddr) -> u64 {
    let out = std::process::Command::new("ss")
        .args([
            "-tinH",
            "src",
            &gateway.to_string(),
            "dst",
            &client.to_string(),
        ])
        .output()
        .expect("ss (iproute2) is installed by .ci/run");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|field| field.strip_prefix("notsent:"))
        .map_or(0, |n| n.parse().unwrap())
}

fn pong_timeouts(samples: &[common::metrics::Sample]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == "wsgate_pong_timeouts_total")
        .map(|s| s.value)
        .sum()
}

/// How long a steady reader goes on reading after the gateway's counters are read: room
/// for a loaded machine to answer the metrics request.
const READING_PAST_THE_CHECK: Duration = Duration::from_secs(10);

/// A client reading a download steadily at `rate` bytes/s, while the backend writes
/// without pause, keeps its session for many ping cycles although its pongs wait behind
/// megabytes; and the gateway never holds more than its unsent bound in the kernel.
/// (Before liveness read the client's TCP stack, this client was dropped after 15 s at
/// 256 KiB/s with pings every 2 s and a 2 s pong timeout.)
async fn a_steady_reader_is_kept(rate: u64, pong_timeout: Duration) {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    short_liveness(&mut cfg);
    cfg.liveness.pong_timeout = pong_timeout;
    let gw = spawn_gateway(cfg).await;
    let mut client = wire::upgraded_client(gw.addr, None).await;
    let client_addr = client.local_addr().unwrap();
    let writer = tokio::spawn(write_without_pause(backend.accept().await));

    let (gw_addr, sampling) = (gw.addr, tokio_util::sync::CancellationToken::new());
    let stop = sampling.clone();
    let sampler = tokio::task::spawn_blocking(move || {
        let mut most = 0;
        while !stop.is_cancelled() {
            most = most.max(unsent_towards(gw_addr, client_addr));
            std::thread::sleep(Duration::from_millis(200));
        }
        most
    });
    let how_long = ((SHORT_PING + pong_timeout) * 4).max(Duration::from_secs(30));
    // The counter is read while the client still reads: once it stops, its window stands
    // still and the gateway rightly drops it a pong timeout later, which a read taken
    // after that would count.
    let pong_timeouts_while_reading = async {
        tokio::time::sleep(how_long).await;
        pong_timeouts(&gw.metrics().await)
    };
    let (reading, timeouts) = tokio::join!(
        wire::read_at_rate(&mut client, rate, how_long + READING_PAST_THE_CHECK),
        pong_timeouts_while_reading
    );
    sampling.cancel();
    let most_unsent = sampler.await.unwrap();

    assert_eq!(
        reading.dropped_at, None,
        "dropped while reading at {rate} B/s"
    );
    let expected = rate * how_long.as_secs();
    assert!(
        reading.data_bytes > expected / 2,
        "read {} bytes at {rate} B/s in {how_long:?}",
        reading.data_bytes
    );
    assert_eq!(timeouts, 0.0);
    // The bound, plus the one frame (64 KiB and its header) a write may add past it.
    let bound = 128 * 1024 + 64 * 1024 + 14;
    assert!(
        most_unsent <= bound,
        "{most_unsent} bytes waited unsent in the kernel"
    );
    drop(client);
    writer.await.unwrap();
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_client_draining_a_download_at_256_kib_per_second_is_kept() {
    a_steady_reader_is_kept(256 * 1024, SHORT_PONG).await;
}

/// A receiving kernel frees (and so reopens its window for) a received segment only once
/// its application has read all of it, and loopback delivers segments of 64 KiB: at
/// 16 KiB/s the window reopens every 4 s, so the pong timeout here is longer than that.
#[tokio::test]
async fn a_client_draining_a_download_at_16_kib_per_second_is_kept() {
    a_steady_reader_is_kept(16 * 1024, Duration::from_secs(5)).await;
}

/// A client that stops reading for good (its TCP stays up, its window closes) is dropped
/// within `ping_interval + pong_timeout` and a small slack, and its backend closed.
#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_its_backend_closed() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    short_liveness(&mut cfg);
    let gw = spawn_gateway(cfg).await;
    let mut client = wire::upgraded_internet_client(gw.addr).await;
    let writer = tokio::spawn(write_without_pause(backend.accept().await));
    let reading = wire::read_at_rate(&mut client, 1024 * 1024, Duration::from_secs(1)).await;
    assert_eq!(reading.dropped_at, None);
    let stopped = tokio::time::Instant::now();
    let closed = timeout(PATIENCE, writer)
        .await
        .expect("never dropped")
        .unwrap();
    let after = closed - stopped;
    let slack = Duration::from_millis(1500);
    assert!(
        after <= SHORT_PING + SHORT_PONG + slack,
        "dropped {after:?} after it stopped reading"
    );
    assert_eq!(pong_timeouts(&gw.metrics().await), 1.0);
    drop(client);
    gw.shut_down().await.unwrap();
}

/// With an echo backend, a client that sends megabytes and never reads blocks the echo,
/// and so the gateway's reading of it. It is judged all the same: its window stays closed
/// and not even the ping reaches it.
#[tokio::test]
async fn a_client_that_never_reads_an_echo_is_dropped() {
    let mut cfg = config_for(echo_backend().await);
    short_liveness(&mut cfg);
    let gw = spawn_gateway(cfg).await;
    let client = wire::upgraded_internet_client(gw.addr).await;
    let (_reader, mut writer) = client.into_split();
    let started = tokio::time::Instant::now();
    let frame = wire::client_frame(0x82, &vec![0x33u8; 64 * 1024]);
    let mut sent = 0u64;
    let closed = timeout(PATIENCE, async {
        while writer.write_all(&frame).await.is_ok() {
            sent += frame.len() as u64;
        }
        tokio::time::Instant::now()
    })
    .await
    .expect("a client that never reads kept its session");
    assert!(
        sent > 1024 * 1024,
        "only {sent} bytes went out before the drop"
    );
    let lived = closed - started;
    assert!(
        lived <= SHORT_PING + SHORT_PONG + Duration::from_secs(3),
        "dropped only after {lived:?}"
    );
    assert_eq!(pong_timeouts(&gw.metrics().await), 1.0);
    gw.shut_down().await.unwrap();
}

/// A client whose kernel takes every ping, but whose pongs wait behind its own data that
/// the gateway is not reading (the backend is slow), keeps its session; once the backend
/// reads, every byte arrives.
#[tokio::test]
async fn a_client_held_up_by_a_slow_backend_keeps_its_session() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    short_liveness(&mut cfg);
    let gw = spawn_gateway(cfg).await;
    let client = wire::upgraded_internet_client(gw.addr).await;
    let mut sock = backend.accept().await;
    let (mut reader, mut writer) = client.into_split();
    // The client reads everything the gateway sends (its pings), and cannot answer: its
    // writes are stuck behind the data below.
    let reading = tokio::spawn(async move {
        let mut frames = wire::ServerFrames::default();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return frames,
                Ok(n) => frames.feed(&buf[..n]),
            }
        }
    });
    const TOTAL: usize = 16 * 1024 * 1024;
    let frame = wire::client_frame(0x82, &vec![0x44u8; 64 * 1024]);
    let sending = tokio::spawn(async move {
        for _ in 0..TOTAL / (64 * 1024) {
            writer.write_all(&frame).await.unwrap();
        }
        writer
    });
    // Several ping cycles with the backend reading nothing.
    tokio::time::sleep(SHORT_PING * 3 + SHORT_PONG * 2).await;
    assert!(
        !sending.is_finished(),
        "the backend's backpressure reached the client"
    );
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    while got < TOTAL {
        let n = timeout(PATIENCE, sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "session dropped after {got} bytes");
        assert!(buf[..n].iter().all(|b| *b == 0x44));
        got += n;
    }
    let writer = timeout(PATIENCE, sending).await.unwrap().unwrap();
    assert_eq!(pong_timeouts(&gw.metrics().await), 0.0);
    drop(writer);
    let frames = timeout(PATIENCE, reading).await.unwrap().unwrap();
    assert!(!frames.pings.is_empty() || frames.closed.is_some());
    gw.shut_down().await.unwrap();
}

/// A client whose connection is cut silently (no FIN, no RST: every packet dropped) is
/// found within `ping_interval + pong_timeout`, and its backend closed.
#[tokio::test]
async fn a_client_cut_silently_is_found_within_ping_interval_and_pong_timeout() {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    short_liveness(&mut cfg);
    let gw = spawn_gateway(cfg).await;
    let mut ws = connect(&gw.url("/")).await;
    let mut sock = backend.accept().await;
    send_binary(&mut ws, b"before the cut").await;
    let mut got = [0u8; 14];
    timeout(PATIENCE, sock.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    let client = match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!("a ws:// client"),
    };
    let test = "a_client_cut_silently_is_found_within_ping_interval_and_pong_timeout";
    let Some(_cut) = netfault::SilentCut::between(gw.addr, client, test) else {
        return;
    };
    let cut_at = Instant::now();
    wait_closed(&mut sock).await;
    let found = cut_at.elapsed();
    assert!(
        found <= SHORT_PING + SHORT_PONG + Duration::from_millis(500),
        "found {found:?} after the cut"
    );
    assert_eq!(pong_timeouts(&gw.metrics().await), 1.0);
    gw.shut_down().await.unwrap();
}

/// The kernel's view of the TCP connections matching an `ss` filter (`-o`: with timers).
fn sockets_matching(filter: &[&str]) -> String {
    let out = std::process::Command::new("ss")
        .args(["-tnoH", "state", "established"])
        .args(filter)
        .output()
        .expect("ss (iproute2) is installed by .ci/run");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both of a session's connections on loopback (client and backend) carry no keepalive
/// timer: a loopback peer cannot vanish unseen, and thousands of idle loopback sockets
/// probing in the kernel's timer batches overflowed its input backlog (the liveness soak).
#[tokio::test]
async fn loopback_connections_carry_no_keepalive_probes() {
    let backend = Backend::bind().await;
    let gw = spawn_gateway(config_for(backend.addr)).await;
    let mut client = raw_upgrade(&gw).await;
    let mut backend_side = backend.accept().await;
    // One echo each way, so the session is fully open before the kernel is asked.
    client
        .write_all(&wire::client_frame(0x82, b"hi"))
        .await
        .unwrap();
    let mut got = [0u8; 2];
    timeout(PATIENCE, backend_side.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"hi");

    let towards_client = sockets_matching(&["src", &gw.addr.to_string()]);
    let towards_backend = sockets_matching(&["dst", &backend.addr.to_string()]);
    for (what, lines) in [("client", &towards_client), ("backend", &towards_backend)] {
        assert!(!lines.trim().is_empty(), "no {what} socket seen");
        assert!(
            !lines.contains("keepalive"),
            "the gateway's {what} socket has a keepalive timer: {lines}"
        );
    }
    drop(client);
    gw.shut_down().await.unwrap();
}
