//! Raw frames a library client would never send, written byte by byte onto the socket: the
//! gateway's own frame layer must accept every legal way of cutting and interleaving them
//! and answer every violation with the right close code.

mod common;

use common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// A client frame: `first` is the first header byte (FIN, RSV, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

/// The next server frame: (first header byte, payload).
async fn server_frame(sock: &mut (impl AsyncRead + Unpin)) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    timeout(PATIENCE, sock.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
    let len = match head[1] {
        126 => u64::from(sock.read_u16().await.unwrap()),
        127 => sock.read_u64().await.unwrap(),
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    sock.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

/// The close code of the next close frame, skipping data frames.
async fn close_code(sock: &mut TcpStream) -> u16 {
    loop {
        let (first, payload) = server_frame(sock).await;
        if first == 0x88 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

async fn session() -> (Gateway, TcpStream, TcpStream) {
    let backend = Backend::bind().await;
    let gw = spawn_gateway(config_for(backend.addr)).await;
    let client = raw_upgrade(&gw).await;
    client.set_nodelay(true).unwrap();
    let sock = backend.accept().await;
    (gw, client, sock)
}

#[tokio::test]
async fn frames_cut_into_single_bytes_and_interleaved_with_a_ping_arrive_whole() {
    let (gw, mut client, mut sock) = session().await;
    let text = "fragmented ünïcode, cut between every byte".as_bytes();
    let mut wire = frame(0x01, &text[..13]); // text, not final
    wire.extend(frame(0x89, b"still there?")); // a ping between the fragments
    wire.extend(frame(0x80, &text[13..])); // final continuation
    for byte in &wire {
        client.write_all(&[*byte]).await.unwrap();
    }
    let mut got = vec![0u8; text.len()];
    timeout(PATIENCE, sock.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, text);
    assert_eq!(
        server_frame(&mut client).await,
        (0x8A, b"still there?".to_vec())
    );
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn data_and_close_in_one_segment_deliver_the_data_then_echo_the_code() {
    let (gw, mut client, mut sock) = session().await;
    let mut wire = frame(0x82, b"last words");
    wire.extend(frame(0x88, &[0x0F, 0xA0, b'b', b'y', b'e'])); // 4000 "bye"
    client.write_all(&wire).await.unwrap();
    let mut got = Vec::new();
    timeout(PATIENCE, sock.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"last words", "the data, then EOF");
    assert_eq!(close_code(&mut client).await, 4000);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn protocol_violations_close_with_1002() {
    let unmasked = vec![0x82, 0x03, b'a', b'b', b'c'];
    let reserved_bit = frame(0xC2, b"compressed?");
    let unknown_opcode = frame(0x83, b"");
    let long_ping = frame(0x89, &[0u8; 126]);
    let orphan_continuation = frame(0x80, b"x");
    let reserved_close_code = frame(0x88, &1005u16.to_be_bytes());
    for (what, wire) in [
        ("unmasked", unmasked),
        ("reserved bit", reserved_bit),
        ("unknown opcode", unknown_opcode),
        ("ping over 125 bytes", long_ping),
        ("continuation without a message", orphan_continuation),
        ("close code 1005", reserved_close_code),
    ] {
        let (gw, mut client, mut sock) = session().await;
        client.write_all(&wire).await.unwrap();
        assert_eq!(close_code(&mut client).await, 1002, "{what}");
        wait_closed(&mut sock).await;
        gw.shut_down().await.unwrap();
    }
}

#[tokio::test]
async fn a_close_reason_that_is_not_utf8_closes_with_1007() {
    let (gw, mut client, _sock) = session().await;
    client
        .write_all(&frame(0x88, &[0x03, 0xE8, 0xC3, 0x28]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, 1007);
    gw.shut_down().await.unwrap();
}

/// Autobahn 2.10 and 2.11: every ping gets its own pong, in order, whether the pings
/// arrive in one segment or byte by byte.
#[tokio::test]
async fn every_ping_is_answered_in_order() {
    let (_gw, mut client, _sock) = session().await;
    for byte_by_byte in [false, true] {
        let payloads: Vec<Vec<u8>> = (0..10u8)
            .map(|i| format!("ping {i}").into_bytes())
            .collect();
        let wire: Vec<u8> = payloads.iter().flat_map(|p| frame(0x89, p)).collect();
        if byte_by_byte {
            for byte in &wire {
                client.write_all(&[*byte]).await.unwrap();
            }
        } else {
            client.write_all(&wire).await.unwrap();
        }
        for expected in &payloads {
            let (first, payload) = server_frame(&mut client).await;
            assert_eq!(first, 0x8A, "a pong");
            assert_eq!(
                &payload, expected,
                "pongs in order (byte by byte: {byte_by_byte})"
            );
        }
    }
}

/// A ping flood is answered without memory growing: the last pings are coalesced once
/// many wait, and the last one sent is always answered.
#[tokio::test]
async fn a_ping_flood_is_bounded_and_the_last_ping_answered() {
    let (_gw, mut client, _sock) = session().await;
    let mut wire = Vec::new();
    for i in 0..20_000u32 {
        wire.extend(frame(0x89, &i.to_be_bytes()));
    }
    wire.extend(frame(0x89, b"last"));
    let (mut reader, mut writer) = client.split();
    let send = async {
        writer.write_all(&wire).await.unwrap();
    };
    let receive = async {
        let mut answered = 0u32;
        let mut previous: Option<u32> = None;
        loop {
            let (first, payload) = server_frame(&mut reader).await;
            assert_eq!(first, 0x8A, "a pong");
            answered += 1;
            if payload == b"last" {
                return answered;
            }
            let n = u32::from_be_bytes(payload.try_into().unwrap());
            assert!(previous.is_none_or(|p| p < n), "pongs in order");
            previous = Some(n);
        }
    };
    let ((), answered) = tokio::join!(send, receive);
    assert!(answered > 1, "pings were answered along the way");
}
