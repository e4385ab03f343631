//! Dead-peer detection: a client that stops answering is dropped on time and its backend
//! closed; a client that answers is kept however long it stays quiet.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
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
