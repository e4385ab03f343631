//! Certificate renewal against the rest of the running state: a renewal and a config
//! reload at the same moment both land, and a broken credential file does not hold a
//! renewed certificate back. Checked with a real TLS client reading the served serial.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::Duration;

use common::metrics::value;
use common::tls_client::{handshake, pem_serial, served_serial, trusting};
use common::*;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsgate::config::units::Seconds;
use wsgate::config::{AuthMode, TokenSource};
use wsgate::devcert::{self, DevCerts};

/// Reload and renewal are raced this many times; before they were serialized, a run lost
/// the reload in several rounds.
const ROUNDS: usize = 40;

fn server_certs() -> DevCerts {
    devcert::generate(&["localhost".to_string()], &[]).unwrap()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Puts `pair` where the gateway's config points (key first, as renewal tools do).
fn install_pair(dir: &Path, pair: &DevCerts) {
    write(dir, "server-key.pem", &pair.server_key);
    write(dir, "server.pem", &pair.server_chain);
}

/// The status the gateway answers a WebSocket upgrade with over `stream`.
async fn upgrade_status(stream: TlsStream<TcpStream>, headers: &[(&'static str, &str)]) -> u16 {
    let mut req = "wss://localhost/".into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match timeout(PATIENCE, tokio_tungstenite::client_async(req, stream))
        .await
        .expect("upgrade timed out")
    {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

#[tokio::test]
async fn a_reload_and_a_certificate_renewal_at_once_both_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = [server_certs(), server_certs()];
    let mut cfg = config_for(echo_backend().await);
    cfg.tls.cert = Some(write(dir.path(), "server.pem", &pairs[0].server_chain));
    cfg.tls.key = Some(write(dir.path(), "server-key.pem", &pairs[0].server_key));
    cfg.tls.watch_interval = None; // renewals come from the test only
    let gw = spawn_gateway(cfg.clone()).await;
    let trust = trusting(&[&pairs[0].ca_cert, &pairs[1].ca_cert]);

    for round in 1..=ROUNDS {
        let pair = &pairs[round % 2];
        install_pair(dir.path(), pair);
        cfg.origins = vec![format!("https://v{round}.example")];
        let start = Barrier::new(2);
        std::thread::scope(|s| {
            let reload = s.spawn(|| {
                start.wait();
                gw.handle.reload(cfg.clone())
            });
            let renew = s.spawn(|| {
                start.wait();
                gw.handle.refresh_certificates();
            });
            reload.join().unwrap().expect("the config is valid");
            renew.join().unwrap();
        });
        assert_eq!(
            gw.handle.config().origins,
            cfg.origins,
            "round {round}: the reloaded config was lost"
        );
        let stream = handshake(gw.addr, "localhost", trust.clone()).await;
        assert_eq!(
            served_serial(&stream),
            pem_serial(&pair.server_chain),
            "round {round}: the renewed certificate was lost"
        );
    }
    // The last round's config on the wire, over the last round's certificate.
    let origin = format!("https://v{ROUNDS}.example");
    let stream = handshake(gw.addr, "localhost", trust.clone()).await;
    assert_eq!(upgrade_status(stream, &[("origin", &origin)]).await, 101);
    let stream = handshake(gw.addr, "localhost", trust).await;
    let stale = format!("https://v{}.example", ROUNDS - 1);
    assert_eq!(upgrade_status(stream, &[("origin", &stale)]).await, 403);
    let m = gw.metrics().await;
    let renewals = |result| {
        value(
            &m,
            "wsgate_tls_certificate_reloads_total",
            &[("result", result)],
        )
    };
    assert_eq!(renewals("ok"), ROUNDS as f64);
    assert_eq!(renewals("failed"), 0.0);
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_broken_token_file_does_not_hold_back_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (server_certs(), server_certs());
    let tokens = write(dir.path(), "tokens", "# test-only token\ngood-token\n");
    let mut cfg = config_for(echo_backend().await);
    cfg.tls.cert = Some(write(dir.path(), "server.pem", &first.server_chain));
    cfg.tls.key = Some(write(dir.path(), "server-key.pem", &first.server_key));
    cfg.tls.watch_interval = Some(Seconds(Duration::from_millis(100)));
    cfg.routes[0].auth = AuthMode::Token;
    cfg.routes[0].tokens = Some(TokenSource {
        file: Some(tokens.clone()),
        env: None,
    });
    let gw = spawn_gateway(cfg).await;
    let trust = trusting(&[&first.ca_cert, &second.ca_cert]);
    let bearer = [("authorization", "Bearer good-token")];
    let stream = handshake(gw.addr, "localhost", trust.clone()).await;
    assert_eq!(served_serial(&stream), pem_serial(&first.server_chain));
    assert_eq!(upgrade_status(stream, &bearer).await, 101);

    // A bad deploy empties the token file: a config built now is refused over it.
    write(dir.path(), "tokens", "# no tokens left\n");
    let refused = gw
        .handle
        .reload(gw.handle.config())
        .expect_err("a token file without tokens is refused");
    assert_eq!(refused.problems[0].key, "routes.0.tokens");

    install_pair(dir.path(), &second);
    let want = pem_serial(&second.server_chain);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stream = handshake(gw.addr, "localhost", trust.clone()).await;
        if served_serial(&stream) == want {
            // Authentication keeps the last good token set.
            assert_eq!(upgrade_status(stream, &bearer).await, 101);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        sleep(Duration::from_millis(50)).await;
    }
    let stream = handshake(gw.addr, "localhost", trust).await;
    assert_eq!(upgrade_status(stream, &[]).await, 401, "auth is still on");
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn sighup_renews_the_certificate_even_when_the_reload_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (server_certs(), server_certs());
    let cert = write(dir.path(), "server.pem", &first.server_chain);
    let key = write(dir.path(), "server-key.pem", &first.server_key);
    let tokens = write(dir.path(), "tokens", "# test-only token\ngood-token\n");
    let config = write(
        dir.path(),
        "wsgate.yaml",
        &format!(
            "listen: 127.0.0.1:0\ntls:\n  cert: {}\n  key: {}\n  watch_interval: off\n\
             routes:\n  - path: /\n    backend: {}\n    auth: token\n    tokens: {{ file: {} }}\n",
            cert.display(),
            key.display(),
            echo_backend().await,
            tokens.display(),
        ),
    );
    let mut gw = process::start_serving(&["--config", config.to_str().unwrap()], &[]).await;
    let addr = gw.addr.parse().unwrap();
    let trust = trusting(&[&first.ca_cert, &second.ca_cert]);
    let stream = handshake(addr, "localhost", trust.clone()).await;
    assert_eq!(served_serial(&stream), pem_serial(&first.server_chain));

    write(dir.path(), "tokens", "# no tokens left\n");
    install_pair(dir.path(), &second);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &gw.proc.pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let refused = gw
        .stderr
        .wait_for("the refused reload", |l| l.contains("reload refused"))
        .await;
    assert!(refused.contains("routes.0.tokens"), "{refused}");
    gw.stderr
        .wait_for("the renewal", |l| l.contains("certificates reloaded"))
        .await;
    let stream = handshake(addr, "localhost", trust).await;
    assert_eq!(served_serial(&stream), pem_serial(&second.server_chain));
    let bearer = [("authorization", "Bearer good-token")];
    assert_eq!(upgrade_status(stream, &bearer).await, 101);
    gw.proc.sigterm();
    assert!(gw.proc.wait().await.success());
}
