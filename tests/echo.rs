//! The basic promise: bytes in, the same bytes out, and a proper close when asked.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn echo_round_trip_binary_and_text() {
    let gw = spawn_gateway(config_for(echo_backend().await)).await;
    let mut ws = connect(&gw.url("/")).await;
    send_binary(&mut ws, b"hello").await;
    assert_eq!(next_data(&mut ws).await, Message::binary(&b"hello"[..]));
    // Text is accepted by default; the backend's bytes come back as binary.
    ws.send(Message::text("héllo")).await.unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary("héllo".as_bytes().to_vec())
    );
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let frame = next_close(&mut ws).await;
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
    gw.shut_down().await.unwrap();
}
