//! The access log of a gateway run as a child process with `--log-format json`: its one
//! `session closed` line per session, found by the client's address and read as JSON.

use std::net::SocketAddr;

use serde_json::Value;

use super::Client;
use super::process::Lines;

/// The address a client connected from, as the gateway logs it.
pub fn client_addr(ws: &Client) -> SocketAddr {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => panic!("only plain ws:// clients are looked up by address"),
    }
}

/// The `session closed` line of the session whose client connected from `client`,
/// waiting for it if the session has not ended yet.
pub async fn session_closed(stderr: &mut Lines, client: SocketAddr) -> Value {
    let wanted = format!("\"client\":\"{client}\"");
    let line = stderr
        .find(&format!("access log line for {client}"), |l| {
            l.contains("\"message\":\"session closed\"") && l.contains(&wanted)
        })
        .await;
    serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("access log line is not JSON ({e}): {line}"))
}

/// Asserts how the logged session ended: the close code, the side that ended it and why.
pub fn assert_ended(line: &Value, close_code: u64, ended_by: &str, end: &str) {
    let got = (
        line["close_code"].as_u64(),
        line["ended_by"].as_str(),
        line["end"].as_str(),
    );
    assert_eq!(
        got,
        (Some(close_code), Some(ended_by), Some(end)),
        "access log line: {line}"
    );
}

/// A numeric field of an access log line.
pub fn number(line: &Value, field: &str) -> u64 {
    line[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {field} in {line}"))
}

/// Fails if the process has written a panic message so far.
pub fn assert_no_panic(stderr: &mut Lines) {
    if let Some(line) = stderr.so_far().iter().find(|l| l.contains("panicked")) {
        panic!("the gateway panicked: {line}");
    }
}
