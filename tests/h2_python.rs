//! RFC 8441 against a client this project did not write the protocol stack of: the Python
//! `h2` package (installed by `.ci/run`) drives two WebSockets on one h2c connection.

mod common;

use common::tools;
use common::*;
use tokio::process::Command;
use tokio::time::timeout;

#[tokio::test]
async fn python_h2_client_speaks_rfc8441_to_the_gateway() {
    let test = "python_h2_client_speaks_rfc8441_to_the_gateway";
    if !tools::require_python_module("h2", test) {
        return;
    }
    let mut cfg = config_for(echo_backend().await);
    cfg.http2 = true;
    let gw = spawn_gateway(cfg).await;
    let script = format!(
        "{}/tests/clients/h2_websocket.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = timeout(
        PATIENCE,
        Command::new("python3")
            .args([script.as_str(), "127.0.0.1", &gw.addr.port().to_string()])
            .output(),
    )
    .await
    .expect("the python client hung")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed: {stdout}\n{stderr}");
    assert!(stdout.contains("echo 1 from stream a"), "{stdout}");
    assert!(stdout.contains("echo 3 from stream b"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    gw.shut_down().await.unwrap();
}
