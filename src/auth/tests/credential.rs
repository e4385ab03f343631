//! Where the credential is found, in which order, and what the caller is told.

use hyper::Request;
use hyper::header::HeaderMap;

use super::*;
use crate::auth::credential::Carrier;
use crate::auth::credential::Secret;

const TOKENS: &str = "alpha-token,a+b/c=";

#[test]
fn bearer_header_in_any_case() {
    let auth = token_auth(TOKENS);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let value = format!("{scheme} alpha-token");
        let cred = request(&auth, "/vnc", &[("Authorization", &value)]).unwrap();
        assert_eq!(cred.carrier, Carrier::Header);
        assert_eq!(cred.subject, None);
    }
    let padded = request(
        &auth,
        "/vnc",
        &[("Authorization", "  Bearer   alpha-token ")],
    );
    assert_eq!(padded.unwrap().carrier, Carrier::Header);
}

#[test]
fn query_parameter_is_percent_decoded() {
    let auth = token_auth(TOKENS);
    let cred = request(&auth, "/vnc?x=1&token=alpha-token", &[]).unwrap();
    assert_eq!(cred.carrier, Carrier::Query);
    let encoded = request(&auth, "/vnc?token=a%2Bb%2Fc%3D", &[]).unwrap();
    assert_eq!(encoded.carrier, Carrier::Query);
    // '+' is taken literally, not as a space: tokens never hold spaces but may hold '+'.
    assert!(request(&auth, "/vnc?token=a+b/c=", &[]).is_ok());
    assert_eq!(
        request(&auth, "/vnc?token=alpha%2Dtoken%00", &[]),
        Err(AuthError::BadCredential)
    );
}

#[test]
fn the_route_names_the_query_parameter() {
    let mut r = route();
    r.auth = AuthMode::Token;
    r.auth_query_param = "access_token".into();
    r.tokens = Some(TokenSource {
        file: None,
        env: Some("T".into()),
    });
    let auth = build(&r, |_| Some("alpha-token".into()));
    let cred = request(&auth, "/vnc?access_token=alpha-token", &[]).unwrap();
    assert_eq!(cred.carrier, Carrier::Query);
    let other = request(&auth, "/vnc?token=alpha-token", &[]);
    assert_eq!(other, Err(AuthError::Missing));
}

#[test]
fn subprotocol_entry_is_reported_as_consumed() {
    let auth = token_auth(TOKENS);
    let headers = [(
        "Sec-WebSocket-Protocol",
        "binary, bearer.alpha-token, base64",
    )];
    let cred = request(&auth, "/vnc", &headers).unwrap();
    assert_eq!(cred.carrier, Carrier::Subprotocol { index: 1 });
    let map = header_map(&headers);
    let offered: Vec<_> = crate::auth::credential::offered_subprotocols(&map).collect();
    assert_eq!(offered[1], "bearer.alpha-token");
    let left: Vec<_> = crate::auth::negotiable_subprotocols(&map).collect();
    assert_eq!(left, ["binary", "base64"]);
}

#[test]
fn subprotocol_index_counts_across_header_values() {
    let auth = token_auth(TOKENS);
    let headers = [
        ("Sec-WebSocket-Protocol", "binary,,"),
        ("Sec-WebSocket-Protocol", "chat, bearer.alpha-token"),
    ];
    let cred = request(&auth, "/vnc", &headers).unwrap();
    assert_eq!(cred.carrier, Carrier::Subprotocol { index: 2 });
    let map = header_map(&headers);
    let left: Vec<_> = crate::auth::negotiable_subprotocols(&map).collect();
    assert_eq!(left, ["binary", "chat"]);
}

#[test]
fn bearer_entries_are_never_negotiable() {
    let auth = token_auth(TOKENS);
    let headers = [
        ("Authorization", "Bearer alpha-token"),
        ("Sec-WebSocket-Protocol", "bearer.something-else, binary"),
    ];
    let cred = request(&auth, "/vnc", &headers).unwrap();
    assert_eq!(cred.carrier, Carrier::Header);
    let map = header_map(&headers);
    let left: Vec<_> = crate::auth::negotiable_subprotocols(&map).collect();
    assert_eq!(left, ["binary"]);
}

#[test]
fn first_place_found_is_the_only_guess() {
    let auth = token_auth(TOKENS);
    let good_header_bad_query = [("Authorization", "Bearer alpha-token")];
    let cred = request(&auth, "/vnc?token=wrong", &good_header_bad_query).unwrap();
    assert_eq!(cred.carrier, Carrier::Header);
    let bad_header = [
        ("Authorization", "Bearer wrong"),
        ("Sec-WebSocket-Protocol", "bearer.alpha-token"),
    ];
    let refused = request(&auth, "/vnc?token=alpha-token", &bad_header);
    assert_eq!(refused, Err(AuthError::BadCredential));
    let query_before_subprotocol = [("Sec-WebSocket-Protocol", "bearer.wrong")];
    let cred = request(&auth, "/vnc?token=alpha-token", &query_before_subprotocol).unwrap();
    assert_eq!(cred.carrier, Carrier::Query);
}

#[test]
fn other_authorization_schemes_are_ignored() {
    let auth = token_auth(TOKENS);
    let basic = [("Authorization", "Basic dXNlcjpwYXNz")];
    let cred = request(&auth, "/vnc?token=alpha-token", &basic).unwrap();
    assert_eq!(cred.carrier, Carrier::Query);
    assert_eq!(request(&auth, "/vnc", &basic), Err(AuthError::Missing));
}

#[test]
fn wrong_token_is_a_bad_credential() {
    let auth = token_auth(TOKENS);
    for wrong in ["wrong", "alpha", "alpha-token2", "Alpha-token", "a+b/c"] {
        assert_eq!(
            bearer(&auth, wrong),
            Err(AuthError::BadCredential),
            "{wrong}"
        );
    }
}

#[test]
fn missing_credential() {
    let auth = token_auth(TOKENS);
    assert_eq!(request(&auth, "/vnc", &[]), Err(AuthError::Missing));
    assert_eq!(
        request(&auth, "/vnc?tokens=x&x=token", &[]),
        Err(AuthError::Missing)
    );
    let protocols = [("Sec-WebSocket-Protocol", "binary, bearer")];
    assert_eq!(request(&auth, "/vnc", &protocols), Err(AuthError::Missing));
}

#[test]
fn ambiguous_or_empty_credentials_are_malformed() {
    let auth = token_auth(TOKENS);
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("/vnc", &[("Authorization", "Bearer")]),
        ("/vnc", &[("Authorization", "Bearer  ")]),
        ("/vnc", &[("Authorization", "Bearer alpha token")]),
        (
            "/vnc",
            &[
                ("Authorization", "Bearer alpha-token"),
                ("Authorization", "Bearer alpha-token"),
            ],
        ),
        ("/vnc?token=alpha-token&token=alpha-token", &[]),
        ("/vnc?token=", &[]),
        ("/vnc?token", &[]),
        ("/vnc?token=%FF", &[]),
        ("/vnc", &[("Sec-WebSocket-Protocol", "bearer.")]),
        (
            "/vnc",
            &[(
                "Sec-WebSocket-Protocol",
                "bearer.alpha-token, bearer.alpha-token",
            )],
        ),
    ];
    for (uri, headers) in cases {
        let result = request(&auth, uri, headers);
        assert!(
            matches!(result, Err(AuthError::Malformed(_))),
            "{uri} {headers:?}: {result:?}"
        );
    }
}

#[test]
fn nothing_prints_a_token() {
    let auth = token_auth("very-secret-token");
    let secret = Secret::new("very-secret-token");
    assert_eq!(format!("{secret:?} {secret}"), "*** ***");
    let debug = format!("{auth:?}");
    assert!(!debug.contains("very-secret"), "{debug}");
    assert!(debug.contains("tokens: 1"), "{debug}");
    let headers = [("Sec-WebSocket-Protocol", "bearer.very-secret-token")];
    let cred = request(&auth, "/vnc", &headers).unwrap();
    assert!(!format!("{cred:?}").contains("very-secret"));
    let err = bearer(&auth, "very-secret-tokem").unwrap_err();
    assert!(!format!("{err} {err:?}").contains("very-secret"));
}

#[test]
fn reasons_are_stable_labels() {
    let all = [
        (AuthError::Missing, "missing"),
        (AuthError::BadCredential, "bad_credential"),
        (AuthError::Expired, "expired"),
        (AuthError::NotYetValid, "not_yet_valid"),
        (AuthError::WrongAudience, "wrong_audience"),
        (AuthError::WrongIssuer, "wrong_issuer"),
        (AuthError::Malformed("x"), "malformed"),
    ];
    for (err, reason) in all {
        assert_eq!(err.reason(), reason);
    }
}

/// `authenticate` takes the request type the server has.
#[allow(dead_code)]
fn works_on_incoming(auth: &Authenticator, req: &Request<hyper::body::Incoming>) {
    let _ = auth.authenticate(req);
}

fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut req = Request::get("/");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(()).unwrap().headers().clone()
}
