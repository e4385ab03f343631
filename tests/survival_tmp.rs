//! Measurement only: how long a steady slow reader survives (no assertion).
mod common;
use std::time::Duration;
use common::*;
use common::wire;
use tokio::io::AsyncWriteExt;

async fn write_without_pause(mut sock: tokio::net::TcpStream) {
    let chunk = vec![0x5Au8; 64 * 1024];
    while sock.write_all(&chunk).await.is_ok() {}
}

async fn survival(rate: u64, ping: u64, pong: u64, mss: Option<u32>, limit: Duration) -> Option<Duration> {
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.liveness.ping_interval = Duration::from_secs(ping);
    cfg.liveness.pong_timeout = Duration::from_secs(pong);
    let gw = spawn_gateway(cfg).await;
    let mut client = wire::upgraded_client(gw.addr, mss).await;
    let started = tokio::time::Instant::now();
    tokio::spawn(write_without_pause(backend.accept().await));
    let r = wire::read_at_rate(&mut client, rate, limit).await;
    r.dropped_at.map(|at| at - started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure() {
    let runs: Vec<(u64, u64, u64, Option<u32>)> = vec![(256 * 1024, 2, 2, None), (16 * 1024, 2, 2, None), (16 * 1024, 2, 5, None), (16 * 1024, 30, 10, None)];
    for (rate, ping, pong, mss) in runs {
        let limit = Duration::from_secs(if ping == 30 { 90 } else { 40 });
        let out = futures_util::future::join_all((0..3).map(|_| survival(rate, ping, pong, mss, limit))).await;
        println!("SURVIVAL rate={}KiB/s ping={ping}s pong={pong}s mss={mss:?} limit={limit:?}: {out:?}", rate / 1024);
    }
}
