//! `auth: jwt`: signatures, algorithms, time claims, audience and issuer.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::auth::credential::Carrier;

fn valid_for_an_hour() -> Value {
    json!({ "sub": "alice", "exp": now() + 3600 })
}

#[test]
fn hs256_valid_gives_the_subject() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let cred = bearer(&auth, &hs256(&valid_for_an_hour())).unwrap();
    assert_eq!(cred.carrier, Carrier::Header);
    assert_eq!(cred.subject.as_deref(), Some("alice"));
    let no_sub = bearer(&auth, &hs256(&json!({ "exp": now() + 60 }))).unwrap();
    assert_eq!(no_sub.subject, None);
    let odd_sub = bearer(&auth, &hs256(&json!({ "sub": 42, "exp": now() + 60 }))).unwrap();
    assert_eq!(odd_sub.subject, None);
}

#[test]
fn jwt_in_the_query_and_as_a_subprotocol() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let jwt = hs256(&valid_for_an_hour());
    let by_query = request(&auth, &format!("/vnc?token={jwt}"), &[]).unwrap();
    assert_eq!(by_query.carrier, Carrier::Query);
    let entry = format!("binary, bearer.{jwt}");
    let by_protocol = request(&auth, "/vnc", &[("Sec-WebSocket-Protocol", &entry)]).unwrap();
    assert_eq!(by_protocol.carrier, Carrier::Subprotocol { index: 1 });
    assert_eq!(by_protocol.subject.as_deref(), Some("alice"));
}

#[test]
fn secret_file_may_end_with_a_newline() {
    let dir = tmp();
    let path = write(&dir, "hs.key", format!("{SECRET}\r\n").as_bytes());
    let auth = build(&jwt_route(JwtAlgorithm::HS256, path), no_env);
    assert!(bearer(&auth, &hs256(&valid_for_an_hour())).is_ok());
}

#[test]
fn expiry_beyond_and_within_the_leeway() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let expired = hs256(&json!({ "exp": now() - 120 }));
    assert_eq!(bearer(&auth, &expired), Err(AuthError::Expired));
    let within = hs256(&json!({ "exp": now() - 10 }));
    assert!(bearer(&auth, &within).is_ok());
    let strict = hs256_auth(&dir, |jwt| jwt.leeway = Duration::ZERO);
    assert_eq!(bearer(&strict, &within), Err(AuthError::Expired));
}

#[test]
fn not_before_is_checked_when_present() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let future = hs256(&json!({ "exp": now() + 3600, "nbf": now() + 600 }));
    assert_eq!(bearer(&auth, &future), Err(AuthError::NotYetValid));
    let skewed = hs256(&json!({ "exp": now() + 3600, "nbf": now() + 10 }));
    assert!(bearer(&auth, &skewed).is_ok());
    let past = hs256(&json!({ "exp": now() + 3600, "nbf": now() - 10 }));
    assert!(bearer(&auth, &past).is_ok());
}

#[test]
fn exp_is_required() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let forever = hs256(&json!({ "sub": "alice" }));
    assert!(matches!(
        bearer(&auth, &forever),
        Err(AuthError::Malformed(_))
    ));
    let text_exp = hs256(&json!({ "exp": "tomorrow" }));
    assert!(matches!(
        bearer(&auth, &text_exp),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn wrong_signature() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let other = EncodingKey::from_secret(b"another-secret-another-secret-0123456789");
    let forged = sign(Algorithm::HS256, &other, &valid_for_an_hour());
    assert_eq!(bearer(&auth, &forged), Err(AuthError::BadCredential));
    // A genuine signature over other claims.
    let genuine = hs256(&valid_for_an_hour());
    let longer = hs256(&json!({ "sub": "mallory", "exp": now() + 7200 }));
    let parts: Vec<&str> = genuine.split('.').collect();
    let claims = longer.split('.').nth(1).unwrap();
    let spliced = format!("{}.{claims}.{}", parts[0], parts[2]);
    assert_eq!(bearer(&auth, &spliced), Err(AuthError::BadCredential));
}

#[test]
fn audience_when_configured() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |jwt| jwt.audience = Some("wsgate".into()));
    let exp = now() + 600;
    let ok = hs256(&json!({ "aud": "wsgate", "exp": exp }));
    assert!(bearer(&auth, &ok).is_ok());
    let among = hs256(&json!({ "aud": ["other", "wsgate"], "exp": exp }));
    assert!(bearer(&auth, &among).is_ok());
    let wrong = hs256(&json!({ "aud": "other", "exp": exp }));
    assert_eq!(bearer(&auth, &wrong), Err(AuthError::WrongAudience));
    let absent = hs256(&json!({ "exp": exp }));
    assert_eq!(bearer(&auth, &absent), Err(AuthError::WrongAudience));
    // Not configured: not checked.
    let open = hs256_auth(&dir, |_| {});
    assert!(bearer(&open, &wrong).is_ok());
}

#[test]
fn issuer_when_configured() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |jwt| jwt.issuer = Some("https://idp.example".into()));
    let exp = now() + 600;
    let ok = hs256(&json!({ "iss": "https://idp.example", "exp": exp }));
    assert!(bearer(&auth, &ok).is_ok());
    let wrong = hs256(&json!({ "iss": "https://evil.example", "exp": exp }));
    assert_eq!(bearer(&auth, &wrong), Err(AuthError::WrongIssuer));
    let absent = hs256(&json!({ "exp": exp }));
    assert_eq!(bearer(&auth, &absent), Err(AuthError::WrongIssuer));
    let open = hs256_auth(&dir, |_| {});
    assert!(bearer(&open, &wrong).is_ok());
}

#[test]
fn alg_none_is_refused() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = part(json!({ "alg": "none", "typ": "JWT" }));
    let claims = part(valid_for_an_hour());
    for token in [
        format!("{header}.{claims}."),
        format!("{header}.{claims}.AAAA"),
    ] {
        assert_eq!(bearer(&auth, &token), Err(AuthError::BadCredential));
    }
}

#[test]
fn other_algorithm_with_the_same_secret_is_refused() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let hs512 = sign(Algorithm::HS512, &key, &valid_for_an_hour());
    assert_eq!(bearer(&auth, &hs512), Err(AuthError::BadCredential));
}

#[test]
fn hs256_token_keyed_with_the_public_key_is_refused_by_an_rs256_route() {
    let dir = tmp();
    let path = write(&dir, "rsa.pub", &pems().rsa_public);
    let auth = build(&jwt_route(JwtAlgorithm::RS256, path), no_env);
    let confused = EncodingKey::from_secret(&pems().rsa_public);
    let token = sign(Algorithm::HS256, &confused, &valid_for_an_hour());
    assert_eq!(bearer(&auth, &token), Err(AuthError::BadCredential));
}

#[test]
fn rs256_valid_with_either_public_key_form() {
    let dir = tmp();
    let private = EncodingKey::from_rsa_pem(&pems().rsa_private).unwrap();
    let token = sign(Algorithm::RS256, &private, &valid_for_an_hour());
    for (name, pem) in [
        ("spki.pem", &pems().rsa_public),
        ("pkcs1.pem", &pems().rsa_public_pkcs1),
    ] {
        let auth = build(
            &jwt_route(JwtAlgorithm::RS256, write(&dir, name, pem)),
            no_env,
        );
        let cred = bearer(&auth, &token).unwrap();
        assert_eq!(cred.subject.as_deref(), Some("alice"), "{name}");
        let expired = sign(Algorithm::RS256, &private, &json!({ "exp": now() - 3600 }));
        assert_eq!(bearer(&auth, &expired), Err(AuthError::Expired));
    }
}

#[test]
fn es256_valid() {
    let dir = tmp();
    let path = write(&dir, "ec.pub", &pems().ec_public);
    let auth = build(&jwt_route(JwtAlgorithm::ES256, path), no_env);
    let private = EncodingKey::from_ec_pem(&pems().ec_private).unwrap();
    let token = sign(Algorithm::ES256, &private, &valid_for_an_hour());
    assert_eq!(
        bearer(&auth, &token).unwrap().subject.as_deref(),
        Some("alice")
    );
    let rsa = EncodingKey::from_rsa_pem(&pems().rsa_private).unwrap();
    let rs256 = sign(Algorithm::RS256, &rsa, &valid_for_an_hour());
    assert_eq!(bearer(&auth, &rs256), Err(AuthError::BadCredential));
}

#[test]
fn garbage_is_malformed() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |_| {});
    let jwt = hs256(&valid_for_an_hour());
    let four_parts = format!("{jwt}.x");
    for token in ["abc", "a.b", "a.b.c", "e30.e30.", four_parts.as_str()] {
        let result = bearer(&auth, token);
        assert!(
            matches!(result, Err(AuthError::Malformed(_))),
            "{token}: {result:?}"
        );
    }
}

#[test]
fn debug_shows_rules_not_keys() {
    let dir = tmp();
    let auth = hs256_auth(&dir, |jwt| jwt.audience = Some("wsgate".into()));
    let debug = format!("{auth:?}");
    assert!(
        debug.contains("HS256") && debug.contains("wsgate"),
        "{debug}"
    );
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains("hs256-test"), "{debug}");
}
