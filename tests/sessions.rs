//! What crosses the wire during and at the end of a session: bytes in order both ways at
//! once, and the close code each ending produces.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsgate::config::{ByteSize, MessageType};

const TEN_MIB: u64 = 10 * 1024 * 1024;

#[tokio::test]
async fn ten_mib_each_way_at_once_arrive_intact() {
    let (gw, ws, sock) = open_session(|_| {}).await;
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut b_rx, mut b_tx) = sock.into_split();

    // Client -> backend, in uneven message sizes.
    let client_sends = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut size = 1usize;
        while sent < TEN_MIB {
            let n = size.min((TEN_MIB - sent) as usize);
            let mut chunk = vec![0u8; n];
            pattern(1, sent, &mut chunk);
            ws_tx.send(Message::binary(chunk)).await.unwrap();
            sent += n as u64;
            size = (size * 7 + 13) % 200_000 + 1;
        }
        ws_tx
    });
    // Backend -> client, in uneven writes.
    let backend_sends = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut size = 3usize;
        while sent < TEN_MIB {
            let n = size.min((TEN_MIB - sent) as usize);
            let mut chunk = vec![0u8; n];
            pattern(2, sent, &mut chunk);
            b_tx.write_all(&chunk).await.unwrap();
            sent += n as u64;
            size = (size * 5 + 7) % 150_000 + 1;
        }
        b_tx
    });
    let backend_receives = tokio::spawn(async move {
        let mut got = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        while got < TEN_MIB {
            let n = b_rx.read(&mut buf).await.unwrap();
            assert!(n > 0, "backend saw EOF after {got} bytes");
            check_pattern(1, got, &buf[..n]);
            got += n as u64;
        }
        b_rx
    });
    let client_receives = tokio::spawn(async move {
        let mut got = 0u64;
        while got < TEN_MIB {
            let msg = ws_rx.next().await.expect("stream ended").unwrap();
            let data = msg.into_data();
            check_pattern(2, got, &data);
            got += data.len() as u64;
        }
        ws_rx
    });
    let all = async {
        let _ = tokio::try_join!(
            client_sends,
            backend_sends,
            backend_receives,
            client_receives
        )
        .unwrap();
    };
    timeout(Duration::from_secs(120), all)
        .await
        .expect("transfer did not finish");
    gw.shut_down().await.unwrap();
    // (The tasks' halves were dropped with them; nothing is left open.)
}

/// A request/response backend that writes a reply larger than every buffer on the way
/// before it reads the next request: with a half-duplex pump this deadlocks.
#[tokio::test]
async fn large_replies_while_the_client_keeps_sending_do_not_deadlock() {
    const REPLY: usize = 8 * 1024 * 1024;
    const REQUESTS: usize = 4;
    let (gw, ws, mut sock) = open_session(|_| {}).await;
    let server = tokio::spawn(async move {
        let mut req = [0u8; 4];
        for i in 0..REQUESTS {
            sock.read_exact(&mut req).await.unwrap();
            assert_eq!(u32::from_be_bytes(req) as usize, i);
            let mut reply = vec![0u8; REPLY];
            pattern(i as u64, 0, &mut reply);
            sock.write_all(&reply).await.unwrap();
        }
        sock
    });
    let (mut tx, mut rx) = ws.split();
    // The client sends every request up front, then reads.
    for i in 0..REQUESTS as u32 {
        tx.send(Message::binary(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    let mut got = 0usize;
    let total = REPLY * REQUESTS;
    let read = async {
        while got < total {
            let data = rx.next().await.unwrap().unwrap().into_data();
            let (i, off) = (got / REPLY, got % REPLY);
            // A message may span two replies: check each part against its own pattern.
            let first = data.len().min(REPLY - off);
            check_pattern(i as u64, off as u64, &data[..first]);
            if first < data.len() {
                check_pattern(i as u64 + 1, 0, &data[first..]);
            }
            got += data.len();
        }
    };
    timeout(Duration::from_secs(120), read)
        .await
        .expect("deadlock: replies stopped flowing");
    timeout(PATIENCE, server).await.unwrap().unwrap();
    drop((tx, rx));
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn backend_eof_delivers_everything_then_closes_normally() {
    let (gw, mut ws, mut sock) = open_session(|_| {}).await;
    let mut sent = vec![0u8; 3 * 1024 * 1024 + 17];
    pattern(9, 0, &mut sent);
    sock.write_all(&sent).await.unwrap();
    sock.shutdown().await.unwrap();
    drop(sock);
    let (got, frame) = read_until_close(&mut ws).await;
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes differ");
    assert_eq!(frame.unwrap().code, CloseCode::Normal);
    gw.shut_down().await.unwrap();
}

/// Bulk from the backend is spliced to a plain-TCP client, small writes are copied; a
/// stream that switches between the two arrives whole and in order, each small write as a
/// message of its own once the bulk before it is out.
#[tokio::test]
async fn backend_stream_switching_between_bulk_and_small_writes_arrives_intact() {
    let (gw, mut ws, mut sock) = open_session(|_| {}).await;
    let mut offset = 0u64;
    for round in 0..6u64 {
        let mut bulk = vec![0u8; 700 * 1024 + round as usize * 333];
        pattern(round, offset, &mut bulk);
        offset += bulk.len() as u64;
        sock.write_all(&bulk).await.unwrap();
        let mut got = Vec::new();
        while got.len() < bulk.len() {
            got.extend_from_slice(&next_data(&mut ws).await.into_data());
        }
        assert!(got == bulk, "round {round}: bulk bytes differ");
        for i in 0..5u8 {
            let small = [round as u8, i, 0xAB];
            sock.write_all(&small).await.unwrap();
            assert_eq!(
                next_data(&mut ws).await.into_data(),
                &small[..],
                "round {round}"
            );
        }
    }
    sock.shutdown().await.unwrap();
    let (rest, frame) = read_until_close(&mut ws).await;
    assert!(rest.is_empty());
    assert_eq!(frame.unwrap().code, CloseCode::Normal);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn backend_reset_closes_with_1011() {
    let (gw, mut ws, sock) = open_session(|_| {}).await;
    // Linger 0: close sends RST instead of FIN.
    sock.set_zero_linger().unwrap();
    drop(sock);
    assert_eq!(next_close(&mut ws).await.unwrap().code, CloseCode::Error);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn client_close_is_answered_and_backend_sees_eof() {
    let (gw, mut ws, mut sock) = open_session(|_| {}).await;
    send_binary(&mut ws, b"last words").await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))
    .await
    .unwrap();
    // The backend reads everything sent before the close, then a clean EOF.
    let mut got = Vec::new();
    timeout(PATIENCE, sock.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"last words");
    // The reply; after the close handshake the gateway closes the TCP connection.
    let frame = next_close(&mut ws).await.unwrap();
    assert_eq!(frame.code, CloseCode::Normal);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn client_vanishing_closes_the_backend() {
    let (gw, mut ws, mut sock) = open_session(|_| {}).await;
    send_binary(&mut ws, b"x").await;
    let mut one = [0u8; 1];
    sock.read_exact(&mut one).await.unwrap();
    drop(ws); // TCP closed without a close frame
    wait_closed(&mut sock).await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn oversize_message_closes_with_1009() {
    let mut cfg = config_for(echo_backend().await);
    cfg.limits.max_message_size = ByteSize::kib(64);
    cfg.limits.max_frame_size = ByteSize::kib(16);
    let gw = spawn_gateway(cfg).await;

    // One frame over max_frame_size.
    let mut ws = connect(&gw.url("/")).await;
    send_binary(&mut ws, &[7u8; 16 * 1024]).await;
    assert_eq!(next_data(&mut ws).await.into_data().len(), 16 * 1024);
    let _ = ws.send(Message::binary(vec![7u8; 16 * 1024 + 1])).await;
    assert_eq!(next_close(&mut ws).await.unwrap().code, CloseCode::Size);

    // Fragments within max_frame_size adding up to more than max_message_size.
    let mut ws = connect(&gw.url("/")).await;
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    };
    let part = |op, fin| Message::Frame(Frame::message(vec![1u8; 16 * 1024], op, fin));
    let _ = ws.send(part(OpCode::Data(Data::Binary), false)).await;
    for _ in 0..4 {
        let _ = ws.send(part(OpCode::Data(Data::Continue), false)).await;
    }
    let _ = ws.send(part(OpCode::Data(Data::Continue), true)).await;
    assert_eq!(next_close(&mut ws).await.unwrap().code, CloseCode::Size);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn text_refused_where_the_route_says_so() {
    let mut cfg = config_for(echo_backend().await);
    cfg.routes[0].accept_text = false;
    let gw = spawn_gateway(cfg).await;
    let mut ws = connect(&gw.url("/")).await;
    send_binary(&mut ws, b"binary is fine").await;
    assert_eq!(next_data(&mut ws).await.into_data(), &b"binary is fine"[..]);
    ws.send(Message::text("text is not")).await.unwrap();
    assert_eq!(
        next_close(&mut ws).await.unwrap().code,
        CloseCode::Unsupported
    );
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn text_route_splits_only_between_characters() {
    let (gw, mut ws, mut sock) =
        open_session(|cfg| cfg.routes[0].message_type = MessageType::Text).await;
    let euro = "€".as_bytes();
    // A read that ends inside a character sends only the complete ones...
    sock.write_all(&[b"ab", &euro[..1]].concat()).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("ab"));
    // ...and the rest of the character goes with the next read.
    sock.write_all(&[&euro[1..], b"c"].concat()).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("€c"));
    // A larger stream in pieces that cut characters arrives whole, every message valid.
    let text = "ünïcödé €uro 😀 ".repeat(20_000);
    for piece in text.as_bytes().chunks(7777) {
        sock.write_all(piece).await.unwrap();
    }
    sock.shutdown().await.unwrap();
    let mut got = String::new();
    loop {
        match next_data(&mut ws).await {
            Message::Text(t) => got.push_str(t.as_str()),
            Message::Close(frame) => {
                assert_eq!(frame.unwrap().code, CloseCode::Normal);
                break;
            }
            other => panic!("expected text, got {other:?}"),
        }
    }
    assert!(got == text, "text differs");
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn text_route_closes_1011_on_invalid_utf8_from_backend() {
    let (gw, mut ws, mut sock) =
        open_session(|cfg| cfg.routes[0].message_type = MessageType::Text).await;
    sock.write_all(b"fine\n").await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("fine\n"));
    sock.write_all(b"bad \xff byte").await.unwrap();
    assert_eq!(next_close(&mut ws).await.unwrap().code, CloseCode::Error);
    wait_closed(&mut sock).await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_text_from_client_closes_with_1007() {
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    let mut ws = connect(&gw.url("/")).await;
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    };
    let bad = Frame::message(b"\xff\xfe".to_vec(), OpCode::Data(Data::Text), true);
    let _ = ws.send(Message::Frame(bad)).await;
    assert_eq!(next_close(&mut ws).await.unwrap().code, CloseCode::Invalid);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn client_pings_are_answered_with_no_data_flowing() {
    let (gw, mut ws, _sock) = open_session(|_| {}).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
    drop(ws);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn idle_sessions_close_with_1000_idle() {
    let (gw, mut ws, mut sock) =
        open_session(|cfg| cfg.liveness.idle_timeout = Some(Duration::from_millis(300))).await;
    let frame = next_close(&mut ws).await.unwrap();
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Normal, "idle")
    );
    wait_closed(&mut sock).await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn shutdown_delivers_what_was_read_then_closes_1001() {
    let (gw, mut ws, mut sock) = open_session(|_| {}).await;
    sock.write_all(b"before shutdown").await.unwrap();
    assert_eq!(
        next_data(&mut ws).await.into_data(),
        &b"before shutdown"[..]
    );
    let stopping = tokio::spawn(gw.shut_down());
    let frame = next_close(&mut ws).await.unwrap();
    assert_eq!(frame.code, CloseCode::Away);
    timeout(PATIENCE, stopping).await.unwrap().unwrap().unwrap();
    wait_closed(&mut sock).await;
}
