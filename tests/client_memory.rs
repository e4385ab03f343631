//! Backpressure through `wsgate client` (the built binary), both ways: 200 MiB pushed
//! towards a reader that reads nothing stalls, the client's resident memory stays small,
//! and once the reader reads, every byte arrives in order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::process::rss_bytes;
use common::tunnel::{echo_through, tunnel_to};
use common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

const TOTAL: u64 = 200 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// How much the client's RSS may grow while holding a stalled transfer: its own buffers
/// are a few hundred KiB; the rest of what is in flight sits in kernel buffers.
const RSS_GROWTH_LIMIT: u64 = 16 * 1024 * 1024;

/// Writes `TOTAL` patterned bytes into `w`, counting them in `pushed`.
fn push(mut w: impl AsyncWrite + Unpin + Send + 'static, pushed: Arc<AtomicU64>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = vec![0u8; CHUNK];
        let mut sent = 0u64;
        while sent < TOTAL {
            pattern(7, sent, &mut chunk);
            w.write_all(&chunk).await.unwrap();
            sent += CHUNK as u64;
            pushed.store(sent, Ordering::Relaxed);
        }
        w.shutdown().await.unwrap();
    })
}

/// Waits until `pushed` has not moved for a second; returns where it stopped.
async fn stalled(pushed: &AtomicU64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut still_since) = (0, Instant::now());
    loop {
        sleep(Duration::from_millis(100)).await;
        let now = pushed.load(Ordering::Relaxed);
        if now != last {
            (last, still_since) = (now, Instant::now());
        } else if now > 0 && still_since.elapsed() >= Duration::from_secs(1) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "never stalled ({now} bytes pushed)"
        );
    }
}

/// Reads all `TOTAL` bytes from `r`, checking each.
async fn read_all(r: &mut (impl AsyncRead + Unpin)) {
    read_pattern(r, TOTAL, 7, Duration::from_secs(300)).await;
}

fn assert_small(what: &str, pid: u32, baseline: u64, stalled_at: u64) {
    let held = rss_bytes(pid).saturating_sub(baseline);
    eprintln!("{what}: stalled after {stalled_at} B pushed; client rss growth {held} B");
    assert!(
        stalled_at < TOTAL / 2,
        "{what}: {stalled_at} bytes went in unread"
    );
    assert!(
        held < RSS_GROWTH_LIMIT,
        "{what}: client RSS grew by {held} bytes while stalled at {stalled_at} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_reads_nothing_holds_back_the_local_program() {
    let backend = Backend::bind().await;
    let gw = spawn_gateway(config_for(backend.addr)).await;
    let client = tunnel_to(&gw.url("/"), &[]).await;
    let pid = client.proc.pid;
    let local = TcpStream::connect(client.addr()).await.unwrap();
    let mut far = backend.accept().await;
    let baseline = rss_bytes(pid);
    let pushed = Arc::new(AtomicU64::new(0));
    let writer = push(local, pushed.clone());
    let at = stalled(&pushed).await;
    assert_small("local to backend", pid, baseline, at);
    read_all(&mut far).await;
    timeout(PATIENCE, writer).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_program_that_reads_nothing_holds_back_the_backend() {
    let backend = Backend::bind().await;
    let gw = spawn_gateway(config_for(backend.addr)).await;
    let client = tunnel_to(&gw.url("/"), &[]).await;
    let pid = client.proc.pid;
    // One session first, so the client's buffers and threads are part of the baseline.
    let echo = spawn_gateway(config_for(echo_backend().await)).await;
    let warm = tunnel_to(&echo.url("/"), &[]).await;
    assert_eq!(echo_through(warm.addr(), b"warm").await, b"warm");
    // Nothing goes the other way: a backend socket closed with unread bytes would reset.
    let mut local = TcpStream::connect(client.addr()).await.unwrap();
    let far = backend.accept().await;
    let baseline = rss_bytes(pid);
    let pushed = Arc::new(AtomicU64::new(0));
    let writer = push(far, pushed.clone());
    let at = stalled(&pushed).await;
    assert_small("backend to local", pid, baseline, at);
    read_all(&mut local).await;
    timeout(PATIENCE, writer).await.unwrap().unwrap();
    let mut rest = Vec::new();
    timeout(PATIENCE, local.read_to_end(&mut rest))
        .await
        .expect("no EOF after the last byte")
        .unwrap();
    assert!(rest.is_empty(), "{} bytes beyond the end", rest.len());
}
