//! Backend faults against the real binary: a backend that resets mid-download, closes
//! mid-upload, restarts under open sessions (alone, or with a second backend to fail over
//! to), never reads, or never writes. Each test checks what the client sees on the wire and
//! what the gateway's access log says.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::access_log::{assert_ended, assert_no_panic, client_addr, number, session_closed};
use common::backend_faults::{Restartable, reset, wait_unread};
use common::bare::binary_frame;
use common::process::{Started, rss_bytes, start_serving};
use common::*;
use futures_util::{SinkExt, StreamExt};
use socket2::SockRef;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The binary with one route at `/` to `backends` (tried in order) and `extra` YAML
/// appended, logging JSON. The config file lives as long as the returned directory.
async fn gateway(backends: &[SocketAddr], extra: &str) -> (Started, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.yaml");
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    let yaml = format!(
        "listen: 127.0.0.1:0\nroutes:\n  - path: /\n    backend: [{}]\n{extra}",
        list.join(", ")
    );
    std::fs::write(&file, yaml).unwrap();
    let started = start_serving(&["--config", file.to_str().unwrap()], &[]).await;
    (started, dir)
}

fn url(gw: &Started) -> String {
    format!("ws://{}/", gw.addr)
}

/// A metric as the gateway's admin listener serves it (0 if not yet created).
async fn metric(gw: &Started, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (status, body) = http_get(gw.admin.parse().unwrap(), "/metrics").await;
    assert_eq!(status, 200, "{body}");
    common::metrics::value(&common::metrics::parse(&body), name, labels)
}

/// The backend streams 16 MiB and aborts: the client gets an intact prefix, every byte the
/// gateway read, then 1011; the log says the backend failed and why.
#[tokio::test]
async fn backend_reset_mid_download_closes_1011_after_what_was_read() {
    const STREAM: u64 = 16 * 1024 * 1024;
    let backend = Backend::bind().await;
    let (mut gw, _dir) = gateway(&[backend.addr], "").await;
    let mut ws = connect(&url(&gw)).await;
    let me = client_addr(&ws);
    let mut sock = backend.accept().await;
    let streamer = tokio::spawn(async move {
        let mut chunk = vec![0u8; 256 * 1024];
        let mut sent = 0;
        while sent < STREAM {
            pattern(7, sent, &mut chunk);
            sock.write_all(&chunk).await.unwrap();
            sent += chunk.len() as u64;
        }
        reset(sock);
    });

    let (got, frame) = read_until_close(&mut ws).await;
    timeout(PATIENCE, streamer).await.unwrap().unwrap();
    let frame = frame.expect("close frame with a code");
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Error, "backend error")
    );
    assert!(!got.is_empty(), "nothing arrived before the reset");
    check_pattern(7, 0, &got);

    let line = session_closed(&mut gw.stderr, me).await;
    assert_ended(&line, 1011, "backend", "backend_error");
    assert_eq!(
        number(&line, "bytes_down"),
        got.len() as u64,
        "every byte read from the backend reaches the client before the close"
    );
    let conn_id = number(&line, "conn_id");
    let warning = gw
        .stderr
        .find("backend failure warning", |l| {
            l.contains("backend connection failed")
                && l.contains(&format!("\"conn_id\":{conn_id},"))
        })
        .await;
    assert!(warning.contains("connection reset"), "{warning}");
    let closed = [("code", "1011"), ("side", "backend")];
    assert_eq!(
        metric(&gw, "wsgate_sessions_closed_total", &closed).await,
        1.0
    );
    assert_eq!(metric(&gw, "wsgate_sessions_active", &[]).await, 0.0);
    assert_no_panic(&mut gw.stderr);
}

/// The client uploads; the backend reads 1 MiB and closes with more unread (its kernel
/// answers with a reset): the client gets 1011, its sends then fail, the gateway does not
/// panic and keeps serving, and the log blames the backend.
#[tokio::test]
async fn backend_closing_mid_upload_closes_1011() {
    const READ_BEFORE_CLOSING: u64 = 1024 * 1024;
    const ATTEMPT: u64 = 256 * 1024 * 1024;
    let backend = Backend::bind().await;
    let (mut gw, _dir) = gateway(&[backend.addr], "").await;
    let ws = connect(&url(&gw)).await;
    let me = client_addr(&ws);
    let mut sock = backend.accept().await;
    let (mut tx, mut rx) = ws.split();
    let pusher = tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < ATTEMPT {
            pattern(11, sent, &mut chunk);
            if tx.send(Message::binary(chunk.clone())).await.is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });

    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0u64;
    while read < READ_BEFORE_CLOSING {
        let n = timeout(PATIENCE, sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the gateway closed the backend first");
        check_pattern(11, read, &buf[..n]);
        read += n as u64;
    }
    wait_unread(&sock).await;
    drop(sock);

    let frame = timeout(PATIENCE, async {
        loop {
            match rx.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("stream ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("no close frame in time")
    .expect("close frame with a code");
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Error, "backend error")
    );
    let sent = timeout(PATIENCE, pusher)
        .await
        .expect("the client's sends never failed")
        .unwrap();
    assert!(sent < ATTEMPT, "the client sent all {sent} bytes");

    let line = session_closed(&mut gw.stderr, me).await;
    assert_ended(&line, 1011, "backend", "backend_error");
    // The gateway may have forwarded part of the message the client was still sending.
    let up = number(&line, "bytes_up");
    assert!(
        (read..=sent + 64 * 1024).contains(&up),
        "bytes_up {up}: the backend read {read}, the client sent {sent}"
    );
    // Still serving: a new session through a fresh backend connection.
    let mut again = connect(&url(&gw)).await;
    let mut sock = backend.accept().await;
    send_binary(&mut again, b"after the fault").await;
    let mut got = [0u8; 15];
    timeout(PATIENCE, sock.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"after the fault");
    assert_eq!(metric(&gw, "wsgate_sessions_active", &[]).await, 1.0);
    assert_no_panic(&mut gw.stderr);
}

/// The backend restarts under two open sessions: the idle one ends 1000 (its backend's
/// kernel sent a FIN), the one with bytes in flight 1011 (a reset); while the backend is
/// down new sessions get 502, and once it listens again on the same port they succeed.
#[tokio::test]
async fn backend_restart_ends_open_sessions_refuses_502_then_recovers() {
    let mut backend = Restartable::bind();
    let (mut gw, _dir) = gateway(&[backend.addr], "").await;
    let mut idle = connect(&url(&gw)).await;
    let idle_sock = backend.accept().await;
    let mut busy = connect(&url(&gw)).await;
    let busy_sock = backend.accept().await;
    send_binary(&mut busy, &[7u8; 64 * 1024]).await;
    wait_unread(&busy_sock).await;

    // The backend process exits: no more listener, every connection closed by its kernel.
    backend.stop();
    drop(idle_sock);
    drop(busy_sock);
    let idle_close = next_close(&mut idle).await.expect("close code");
    assert_eq!(
        (idle_close.code, idle_close.reason.as_str()),
        (CloseCode::Normal, "backend closed")
    );
    let busy_close = next_close(&mut busy).await.expect("close code");
    assert_eq!(
        (busy_close.code, busy_close.reason.as_str()),
        (CloseCode::Error, "backend error")
    );
    let line = session_closed(&mut gw.stderr, client_addr(&idle)).await;
    assert_ended(&line, 1000, "backend", "backend_eof");
    let line = session_closed(&mut gw.stderr, client_addr(&busy)).await;
    assert_ended(&line, 1011, "backend", "backend_error");

    let addr: SocketAddr = gw.addr.parse().unwrap();
    let (status, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 502, "{head}");
    let refused = [("reason", "backend_refused")];
    assert_eq!(
        metric(&gw, "wsgate_upgrades_rejected_total", &refused).await,
        1.0
    );

    backend.start();
    let mut again = connect(&url(&gw)).await;
    let mut sock = backend.accept().await;
    send_binary(&mut again, b"back again").await;
    let mut got = [0u8; 10];
    timeout(PATIENCE, sock.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"back again");
    sock.write_all(b"welcome").await.unwrap();
    assert_eq!(next_data(&mut again).await.into_data(), &b"welcome"[..]);
    assert_no_panic(&mut gw.stderr);
}

/// With two backends listed, sessions opened while the first restarts go to the second,
/// and once the first listens again new sessions go back to it.
#[tokio::test]
async fn backend_restart_fails_over_to_the_second_backend_and_back() {
    let mut primary = Restartable::bind();
    let secondary = echo_backend().await;
    let (mut gw, _dir) = gateway(&[primary.addr, secondary], "").await;
    let mut before = connect(&url(&gw)).await;
    let sock = primary.accept().await;

    primary.stop();
    drop(sock);
    let close = next_close(&mut before).await.expect("close code");
    assert_eq!(close.code, CloseCode::Normal);
    let line = session_closed(&mut gw.stderr, client_addr(&before)).await;
    assert_ended(&line, 1000, "backend", "backend_eof");
    assert_eq!(line["backend"], primary.addr.to_string());

    let mut during = connect(&url(&gw)).await;
    echo_on(&mut during, b"through the second backend").await;

    primary.start();
    let mut after = connect(&url(&gw)).await;
    let mut sock = primary.accept().await;
    send_binary(&mut after, b"first again").await;
    let mut got = [0u8; 11];
    timeout(PATIENCE, sock.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"first again");

    let during_addr = client_addr(&during);
    during.close(None).await.unwrap();
    next_close(&mut during).await;
    let line = session_closed(&mut gw.stderr, during_addr).await;
    assert_eq!(line["backend"], secondary.to_string(), "{line}");
    assert_ended(&line, 1005, "client", "client_closed");
    assert_no_panic(&mut gw.stderr);
}

/// The most the kernel can hold between a client and a backend that never reads: four
/// socket buffers (client send, gateway receive, gateway send, backend receive), each at
/// most the autotuning maximum in `tcp_wmem` / `tcp_rmem`.
fn kernel_ceiling() -> u64 {
    let max = |name: &str| -> u64 {
        let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).unwrap();
        text.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    2 * (max("tcp_wmem") + max("tcp_rmem"))
}

/// A backend that accepts and never reads: the client's writes stop completing after at
/// most what kernel buffers and one gateway read buffer hold, far short of the 200 MiB it
/// tries to send, and the gateway's resident memory stays flat.
#[tokio::test]
async fn backend_that_never_reads_pushes_the_client_back_with_flat_gateway_memory() {
    const ATTEMPT: u64 = 200 * 1024 * 1024;
    const FRAME: usize = 64 * 1024;
    /// No write completing for this long means the client is held back.
    const STALLED: Duration = Duration::from_secs(2);
    const READ_BUFFER: u64 = 256 * 1024; // limits.read_buffer_size, default
    const RSS_GROWTH_LIMIT: u64 = 4 * 1024 * 1024;
    let backend = Backend::bind().await;
    let (gw, _dir) = gateway(&[backend.addr], "").await;
    let mut client = tokio::net::TcpStream::connect(&gw.addr).await.unwrap();
    common::wire::upgrade(&mut client).await;
    let _never_read = backend.accept().await;
    let baseline = rss_bytes(gw.proc.pid);

    let frame = binary_frame(&[0x5A; FRAME]);
    let mut pushed = 0u64;
    while pushed < ATTEMPT {
        match timeout(STALLED, client.write_all(&frame)).await {
            Ok(result) => result.expect("the gateway dropped a client it was holding back"),
            Err(_) => break,
        }
        pushed += FRAME as u64;
    }
    let growth = rss_bytes(gw.proc.pid).saturating_sub(baseline);
    let client_sndbuf = SockRef::from(&client).send_buffer_size().unwrap();
    let ceiling = kernel_ceiling() + READ_BUFFER + FRAME as u64;
    eprintln!(
        "client held back after {pushed} B of {ATTEMPT} B (kernel ceiling {ceiling} B, \
         client SO_SNDBUF {client_sndbuf} B); gateway RSS {baseline} B, grew by {growth} B"
    );
    assert!(pushed < ATTEMPT, "the client sent everything");
    assert!(
        pushed <= ceiling,
        "the client pushed {pushed} B, more than the kernel can hold ({ceiling} B): the gateway buffers"
    );
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "gateway RSS grew by {growth} B holding back {pushed} B"
    );
}

/// A backend that accepts and never writes: the session stays up for as long as the client
/// answers pings, and the client's bytes reach the backend.
#[tokio::test]
async fn backend_that_never_writes_keeps_a_session_whose_client_answers_pings() {
    // A pong that is late by more than the pong timeout drops the session; 1 s leaves room
    // for a loaded machine, and eight pings outlast it.
    const PING_INTERVAL: Duration = Duration::from_millis(250);
    const PONG_TIMEOUT: Duration = Duration::from_secs(1);
    const MESSAGE: usize = 100 * 1024;
    let backend = Backend::bind().await;
    let (mut gw, _dir) = gateway(
        &[backend.addr],
        "liveness:\n  ping_interval: 250ms\n  pong_timeout: 1s\n",
    )
    .await;
    let mut ws = connect(&url(&gw)).await;
    let me = client_addr(&ws);
    let opened = Instant::now();
    let mut sock = backend.accept().await;

    // Reading lets the client answer every ping; it sends nothing else.
    let answer_pings = async |ws: &mut Client, count: usize| {
        for _ in 0..count {
            match timeout(PATIENCE, ws.next()).await.expect("no ping in time") {
                Some(Ok(Message::Ping(_))) => {}
                other => panic!("expected a ping, got {other:?}"),
            }
        }
    };
    answer_pings(&mut ws, 8).await;
    let lived = opened.elapsed();
    assert!(
        lived > PING_INTERVAL + PONG_TIMEOUT,
        "eight pings came within {lived:?}"
    );

    let mut offset = 0u64;
    for _ in 0..4 {
        let mut payload = vec![0u8; MESSAGE];
        pattern(13, offset, &mut payload);
        send_binary(&mut ws, &payload).await;
        offset += MESSAGE as u64;
    }
    let mut got = vec![0u8; offset as usize];
    timeout(PATIENCE, sock.read_exact(&mut got))
        .await
        .expect("the backend did not get the client's bytes")
        .unwrap();
    check_pattern(13, 0, &got);

    answer_pings(&mut ws, 3).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .await
    .unwrap();
    let echoed = next_close(&mut ws).await.expect("close code");
    assert_eq!(echoed.code, CloseCode::Normal);
    let mut rest = Vec::new();
    timeout(PATIENCE, sock.read_to_end(&mut rest))
        .await
        .expect("the backend never saw EOF")
        .unwrap();
    assert!(rest.is_empty());

    let line = session_closed(&mut gw.stderr, me).await;
    assert_ended(&line, 1000, "client", "client_closed");
    assert_eq!(
        (number(&line, "bytes_up"), number(&line, "bytes_down")),
        (offset, 0)
    );
    assert_no_panic(&mut gw.stderr);
}
