//! Config problems: each bad setting is named by its dotted key, all are reported at once,
//! and no message quotes a token or a key.

use super::*;

/// The problems' keys, after checking that no message holds any of `secrets`.
fn keys(problems: &[Problem], secrets: &[&[u8]]) -> Vec<String> {
    for p in problems {
        for secret in secrets {
            let secret = String::from_utf8_lossy(secret);
            for line in secret.lines().filter(|l| l.len() >= 8) {
                assert!(!p.message.contains(line), "{}: {}", p.key, p.message);
            }
        }
    }
    problems.iter().map(|p| p.key.clone()).collect()
}

fn tokens_route(file: Option<PathBuf>, env: Option<&str>) -> Route {
    let mut r = route();
    r.auth = AuthMode::Token;
    r.tokens = Some(TokenSource {
        file,
        env: env.map(String::from),
    });
    r
}

#[test]
fn auth_none_needs_nothing() {
    assert!(matches!(
        Authenticator::from_route_with(&route(), PREFIX, no_env),
        Ok(None)
    ));
}

#[test]
fn token_mode_needs_a_source() {
    let mut r = route();
    r.auth = AuthMode::Token;
    assert_eq!(keys(&problems(&r, no_env), &[]), ["routes.2.tokens"]);
    let neither = tokens_route(None, None);
    let found = problems(&neither, no_env);
    assert_eq!(keys(&found, &[]), ["routes.2.tokens"]);
    assert!(found[0].message.contains("file"), "{}", found[0].message);
}

#[test]
fn unreadable_token_file_names_path_and_error() {
    let dir = tmp();
    let path = dir.path().join("absent.tokens");
    let found = problems(&tokens_route(Some(path.clone()), None), no_env);
    assert_eq!(keys(&found, &[]), ["routes.2.tokens.file"]);
    let message = &found[0].message;
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("No such file"), "{message}");
}

#[test]
fn env_var_unset_or_empty() {
    let r = tokens_route(None, Some("WSGATE_TEST_UNSET"));
    let found = problems(&r, no_env);
    assert_eq!(keys(&found, &[]), ["routes.2.tokens.env"]);
    assert!(found[0].message.contains("WSGATE_TEST_UNSET is not set"));
    let found = problems(&r, |_| Some("  ".into()));
    assert_eq!(keys(&found, &[]), ["routes.2.tokens.env"]);
    assert!(
        found[0].message.contains("is empty"),
        "{}",
        found[0].message
    );
    let nameless = tokens_route(None, Some(""));
    assert_eq!(
        keys(&problems(&nameless, no_env), &[]),
        ["routes.2.tokens.env"]
    );
}

#[test]
fn every_source_problem_at_once() {
    let dir = tmp();
    let r = tokens_route(Some(dir.path().join("absent")), Some("UNSET"));
    let found = problems(&r, no_env);
    assert_eq!(
        keys(&found, &[]),
        ["routes.2.tokens.file", "routes.2.tokens.env"]
    );
}

#[test]
fn empty_token_set() {
    let dir = tmp();
    let path = write(&dir, "tokens", b"# none yet\n\n   \n");
    let found = problems(&tokens_route(Some(path), Some("T")), |_| {
        Some(" , ,".into())
    });
    assert_eq!(keys(&found, &[]), ["routes.2.tokens"]);
    assert!(
        found[0].message.contains("no tokens"),
        "{}",
        found[0].message
    );
}

#[test]
fn jwt_mode_needs_jwt() {
    let mut r = route();
    r.auth = AuthMode::Jwt;
    assert_eq!(keys(&problems(&r, no_env), &[]), ["routes.2.jwt"]);
}

#[test]
fn unreadable_key_file() {
    let dir = tmp();
    let path = dir.path().join("absent.pem");
    let found = problems(&jwt_route(JwtAlgorithm::RS256, path.clone()), no_env);
    assert_eq!(keys(&found, &[]), ["routes.2.jwt.key_file"]);
    assert!(found[0].message.contains(&path.display().to_string()));
}

#[test]
fn hs256_secret_too_short_or_a_pem_key() {
    let dir = tmp();
    let short = b"only-31-bytes-long-secret-value\n";
    assert_eq!(short.len(), 32);
    let path = write(&dir, "short.key", short);
    let found = problems(&jwt_route(JwtAlgorithm::HS256, path), no_env);
    assert_eq!(keys(&found, &[short]), ["routes.2.jwt.key_file"]);
    assert!(found[0].message.contains("31-byte"), "{}", found[0].message);
    let pem = write(&dir, "rsa.pub", &pems().rsa_public);
    let found = problems(&jwt_route(JwtAlgorithm::HS256, pem), no_env);
    assert_eq!(
        keys(&found, &[&pems().rsa_public]),
        ["routes.2.jwt.key_file"]
    );
    assert!(found[0].message.contains("PEM"), "{}", found[0].message);
}

#[test]
fn rs256_key_must_be_an_rsa_public_key_of_2048_bits() {
    let dir = tmp();
    let p = pems();
    let cases: [(&str, &[u8], &str); 5] = [
        ("garbage", b"not a key at all\n", "not an RSA public key"),
        ("ec.pub", &p.ec_public, "not an RSA public key"),
        ("rsa.key", &p.rsa_private, "private key"),
        ("rsa1024.pub", &p.rsa1024_public, "1024-bit"),
        ("secret", SECRET.as_bytes(), "not an RSA public key"),
    ];
    for (name, bytes, says) in cases {
        let path = write(&dir, name, bytes);
        let found = problems(&jwt_route(JwtAlgorithm::RS256, path), no_env);
        assert_eq!(keys(&found, &[bytes]), ["routes.2.jwt.key_file"], "{name}");
        assert!(
            found[0].message.contains(says),
            "{name}: {}",
            found[0].message
        );
    }
}

#[test]
fn es256_key_must_be_a_p256_public_key() {
    let dir = tmp();
    let p = pems();
    let cases: [(&str, &[u8], &str); 4] = [
        ("rsa.pub", &p.rsa_public, "not an EC public key"),
        ("ec384.pub", &p.ec384_public, "P-256"),
        ("ec.key", &p.ec_private, "private key"),
        (
            "garbage",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "not an EC",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = write(&dir, name, bytes);
        let found = problems(&jwt_route(JwtAlgorithm::ES256, path), no_env);
        assert_eq!(keys(&found, &[bytes]), ["routes.2.jwt.key_file"], "{name}");
        assert!(
            found[0].message.contains(says),
            "{name}: {}",
            found[0].message
        );
    }
}

#[test]
fn jwt_rules_out_of_range() {
    let dir = tmp();
    let mut r = jwt_route(
        JwtAlgorithm::HS256,
        write(&dir, "hs.key", SECRET.as_bytes()),
    );
    if let Some(jwt) = r.jwt.as_mut() {
        jwt.leeway = Duration::from_secs(2 * 3600);
        jwt.audience = Some(String::new());
        jwt.issuer = Some(String::new());
    }
    assert_eq!(
        keys(&problems(&r, no_env), &[SECRET.as_bytes()]),
        [
            "routes.2.jwt.leeway",
            "routes.2.jwt.audience",
            "routes.2.jwt.issuer"
        ]
    );
}

#[test]
fn sections_the_mode_does_not_use() {
    let dir = tmp();
    let key = write(&dir, "hs.key", SECRET.as_bytes());
    let mut open = jwt_route(JwtAlgorithm::HS256, key.clone());
    open.auth = AuthMode::None;
    open.tokens = Some(TokenSource::default());
    let found = problems(&open, no_env);
    assert_eq!(keys(&found, &[]), ["routes.2.auth", "routes.2.auth"]);
    assert!(
        found[0].message.contains("routes.2.tokens"),
        "{}",
        found[0].message
    );
    assert!(
        found[1].message.contains("routes.2.jwt"),
        "{}",
        found[1].message
    );
    let mut token_with_jwt = tokens_route(None, Some("T"));
    token_with_jwt.jwt = jwt_route(JwtAlgorithm::HS256, key).jwt;
    let found = problems(&token_with_jwt, |_| Some("tok".into()));
    assert_eq!(keys(&found, &[]), ["routes.2.auth"]);
}

#[test]
fn query_parameter_name_must_not_be_empty() {
    let mut r = tokens_route(None, Some("T"));
    r.auth_query_param = String::new();
    let found = problems(&r, |_| Some("env-token-value".into()));
    assert_eq!(
        keys(&found, &[b"env-token-value"]),
        ["routes.2.auth_query_param"]
    );
}

#[test]
fn empty_prefix_gives_bare_keys() {
    let mut r = route();
    r.auth = AuthMode::Jwt;
    let found = match Authenticator::from_route_with(&r, "", no_env) {
        Err(found) => found,
        Ok(_) => panic!("expected problems"),
    };
    assert_eq!(keys(&found, &[]), ["jwt"]);
}
