//! Credentials on the wire: a route with `auth: token` or `auth: jwt` answers 401 (with no
//! detail) to a missing or bad credential and 101 to a good one, wherever the client put
//! it; a `bearer.` subprotocol entry is never echoed.

mod common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;
use wsgate::config::{AuthMode, JwtAlgorithm, JwtConfig, TokenSource};

const SECRET: &[u8] = b"test-only hmac secret, 32+ bytes long!!";

fn write_temp(dir: &tempfile::TempDir, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    aud: &'a str,
}

fn jwt(secret: &[u8], exp: u64, aud: &str) -> String {
    let claims = Claims {
        sub: "alice",
        exp,
        aud,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn status_with(gw: &Gateway, path: &str, extra: &str) -> (u16, String) {
    raw_request(gw.addr, &upgrade_request(path, extra)).await
}

#[tokio::test]
async fn token_routes_accept_good_tokens_from_every_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(
        &dir,
        "tokens",
        b"# test-only tokens\nsecret-one\n\nsecret-two\n",
    );
    let mut cfg = config_for(echo_backend().await);
    cfg.routes[0].auth = AuthMode::Token;
    cfg.routes[0].tokens = Some(TokenSource {
        file: Some(file),
        env: None,
    });
    cfg.routes[0].subprotocols = vec!["binary".into()];
    let gw = spawn_gateway(cfg).await;
    let proto = |p: &str| format!("Sec-WebSocket-Protocol: {p}\r\n");

    let (status, head) = status_with(&gw, "/", &proto("binary")).await;
    assert_eq!(status, 401, "missing: {head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    let (status, _) = status_with(
        &gw,
        "/",
        &format!("Authorization: Bearer nope\r\n{}", proto("binary")),
    )
    .await;
    assert_eq!(status, 401, "wrong token");

    let (status, head) = status_with(
        &gw,
        "/",
        &format!("Authorization: Bearer secret-one\r\n{}", proto("binary")),
    )
    .await;
    assert_eq!(status, 101, "header: {head}");
    let (status, head) = status_with(&gw, "/?token=secret-two", &proto("binary")).await;
    assert_eq!(status, 101, "query: {head}");
    let (status, head) = status_with(&gw, "/", &proto("binary, bearer.secret-one")).await;
    assert_eq!(status, 101, "subprotocol: {head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("sec-websocket-protocol: binary\r\n"),
        "{head}"
    );
    assert!(!lower.contains("bearer"), "credential echoed: {head}");
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn jwt_routes_check_signature_expiry_and_audience() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_temp(&dir, "hs256.key", SECRET);
    let mut cfg = config_for(echo_backend().await);
    cfg.routes[0].auth = AuthMode::Jwt;
    cfg.routes[0].jwt = Some(JwtConfig {
        algorithm: JwtAlgorithm::HS256,
        key_file: key,
        audience: Some("wsgate".into()),
        issuer: None,
        leeway: std::time::Duration::from_secs(5),
    });
    let gw = spawn_gateway(cfg).await;
    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");

    let good = jwt(SECRET, now() + 600, "wsgate");
    let (status, head) = status_with(&gw, "/", &bearer(&good)).await;
    assert_eq!(status, 101, "valid: {head}");
    let cases = [
        ("expired", jwt(SECRET, now() - 600, "wsgate")),
        (
            "wrong signature",
            jwt(
                b"another secret that is long enough!!",
                now() + 600,
                "wsgate",
            ),
        ),
        ("wrong audience", jwt(SECRET, now() + 600, "someone-else")),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (what, token) in cases {
        let (status, head) = status_with(&gw, "/", &bearer(&token)).await;
        assert_eq!(status, 401, "{what}: {head}");
        assert!(!head.contains(&token), "{what}: token echoed");
    }
    // Browsers: in the query string.
    let (status, head) = status_with(&gw, &format!("/?token={good}"), "").await;
    assert_eq!(status, 101, "query: {head}");
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn refused_credentials_never_reach_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(&dir, "tokens", b"letmein\n");
    let backend = Backend::bind().await;
    let mut cfg = config_for(backend.addr);
    cfg.routes[0].auth = AuthMode::Token;
    cfg.routes[0].tokens = Some(TokenSource {
        file: Some(file),
        env: None,
    });
    let gw = spawn_gateway(cfg).await;
    for _ in 0..3 {
        assert_eq!(
            status_with(&gw, "/", "Authorization: Bearer wrong\r\n")
                .await
                .0,
            401
        );
    }
    first_backend_connection_carries(
        &backend,
        &format!("{}?token=letmein", gw.url("/")),
        b"first",
    )
    .await;
    gw.shut_down().await.unwrap();
}

#[tokio::test]
async fn refused_credentials_do_not_spend_the_global_rate() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(&dir, "tokens", b"letmein\n");
    let mut cfg = config_for(echo_backend().await);
    cfg.routes[0].auth = AuthMode::Token;
    cfg.routes[0].tokens = Some(TokenSource {
        file: Some(file),
        env: None,
    });
    cfg.limits.global_rate = Some("1/h".parse().unwrap());
    cfg.limits.global_burst = 2;
    let gw = spawn_gateway(cfg).await;
    // Many refused attempts (from one address here; from many in an attack)...
    for extra in ["Authorization: Bearer wrong\r\n", ""] {
        for _ in 0..10 {
            assert_eq!(status_with(&gw, "/", extra).await.0, 401);
        }
    }
    // ...leave the whole budget to clients that authenticate, and the budget is real.
    let good = "Authorization: Bearer letmein\r\n";
    for _ in 0..2 {
        let (status, head) = status_with(&gw, "/", good).await;
        assert_eq!(status, 101, "{head}");
    }
    let (status, head) = status_with(&gw, "/", good).await;
    assert_eq!(status, 503, "past global_burst: {head}");
    gw.shut_down().await.unwrap();
}
