//! Shared fixtures: routes, requests, signed tokens, and keys generated once per test run
//! with the `openssl` CLI (nothing private is stored in the repository).

mod config;
mod credential;
mod jwt;
mod token;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use hyper::Request;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::Value;
use tempfile::TempDir;

use super::{AuthError, Authenticator, Credential};
use crate::config::{AuthMode, JwtAlgorithm, JwtConfig, Problem, Route, TokenSource};

/// The HS256 secret most JWT tests use (40 bytes).
pub(super) const SECRET: &str = "hs256-test-secret-0123456789abcdefghijkl";
pub(super) const PREFIX: &str = "routes.2";

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

pub(super) fn route() -> Route {
    Route::new("/vnc", "127.0.0.1:5900")
}

/// A token route whose tokens come from the variable `TOKENS`, holding `value`.
pub(super) fn token_auth(value: &str) -> Authenticator {
    let mut r = route();
    r.auth = AuthMode::Token;
    r.tokens = Some(TokenSource {
        file: None,
        env: Some("TOKENS".into()),
    });
    build(&r, |name| (name == "TOKENS").then(|| value.to_string()))
}

pub(super) fn build(r: &Route, env: impl Fn(&str) -> Option<String>) -> Authenticator {
    match Authenticator::from_route_with(r, PREFIX, env) {
        Ok(Some(auth)) => auth,
        Ok(None) => panic!("no authenticator for auth: none"),
        Err(problems) => panic!("unexpected problems: {problems:?}"),
    }
}

/// The problems `r` has, each as (key, message).
pub(super) fn problems(r: &Route, env: impl Fn(&str) -> Option<String>) -> Vec<Problem> {
    match Authenticator::from_route_with(r, PREFIX, env) {
        Ok(_) => panic!("expected problems"),
        Err(problems) => problems,
    }
}

pub(super) fn jwt_route(algorithm: JwtAlgorithm, key_file: PathBuf) -> Route {
    let mut r = route();
    r.auth = AuthMode::Jwt;
    r.jwt = Some(JwtConfig {
        algorithm,
        key_file,
        audience: None,
        issuer: None,
        leeway: Duration::from_secs(30),
    });
    r
}

/// An HS256 route keyed with [`SECRET`], with `edit` applied to its `jwt` section.
pub(super) fn hs256_auth(dir: &TempDir, edit: impl FnOnce(&mut JwtConfig)) -> Authenticator {
    let mut r = jwt_route(JwtAlgorithm::HS256, write(dir, "hs.key", SECRET.as_bytes()));
    if let Some(jwt) = r.jwt.as_mut() {
        edit(jwt);
    }
    build(&r, no_env)
}

pub(super) fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

pub(super) fn tmp() -> TempDir {
    tempfile::tempdir().unwrap()
}

/// Authenticates a request to `uri` with the given headers.
pub(super) fn request(
    auth: &Authenticator,
    uri: &str,
    headers: &[(&str, &str)],
) -> Result<Credential, AuthError> {
    let mut req = Request::get(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    auth.authenticate(&req.body(()).unwrap())
}

pub(super) fn bearer(auth: &Authenticator, token: &str) -> Result<Credential, AuthError> {
    request(
        auth,
        "/vnc",
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

pub(super) fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

pub(super) fn sign(alg: jsonwebtoken::Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

pub(super) fn hs256(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    sign(jsonwebtoken::Algorithm::HS256, &key, claims)
}

/// PEM keys made once per test run; each test writes the ones it needs to its own dir.
pub(super) struct Pems {
    pub rsa_private: Vec<u8>,
    pub rsa_public: Vec<u8>,
    pub rsa_public_pkcs1: Vec<u8>,
    pub rsa1024_public: Vec<u8>,
    pub ec_private: Vec<u8>,
    pub ec_public: Vec<u8>,
    pub ec384_public: Vec<u8>,
}

pub(super) fn pems() -> &'static Pems {
    static PEMS: OnceLock<Pems> = OnceLock::new();
    PEMS.get_or_init(|| {
        let dir = tmp();
        let d = dir.path();
        genpkey(d, "rsa.pem", &["RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
        genpkey(
            d,
            "rsa1024.pem",
            &["RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        );
        genpkey(d, "ec.pem", &["EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        genpkey(
            d,
            "ec384.pem",
            &["EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        );
        let read = |name: &str| std::fs::read(d.join(name)).unwrap();
        Pems {
            rsa_private: read("rsa.pem"),
            rsa_public: public(d, "rsa.pem", "pkey", "-pubout"),
            rsa_public_pkcs1: public(d, "rsa.pem", "rsa", "-RSAPublicKey_out"),
            rsa1024_public: public(d, "rsa1024.pem", "pkey", "-pubout"),
            ec_private: read("ec.pem"),
            ec_public: public(d, "ec.pem", "pkey", "-pubout"),
            ec384_public: public(d, "ec384.pem", "pkey", "-pubout"),
        }
    })
}

fn genpkey(dir: &Path, out: &str, algorithm: &[&str]) {
    let out = dir.join(out);
    let mut args = vec!["genpkey", "-algorithm"];
    args.extend_from_slice(algorithm);
    openssl(&args, &out);
}

fn public(dir: &Path, private: &str, command: &str, flag: &str) -> Vec<u8> {
    let out = dir.join(format!("{private}.{flag}.pub"));
    let input = dir.join(private);
    let input = input.to_str().unwrap();
    openssl(&[command, "-in", input, flag], &out);
    std::fs::read(out).unwrap()
}

fn openssl(args: &[&str], out: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .arg("-out")
        .arg(out)
        .output()
        .expect("the openssl CLI is needed to make test keys");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
