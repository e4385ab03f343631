//! `auth: token`: reading the accepted set from a file and the environment.

use super::*;
use crate::auth::credential::Secret;
use crate::auth::token::{TokenSet, env_tokens, file_tokens};

const FILE: &str = "# tokens for the VNC route\n\
                    \n\
                    \x20 alpha \n\
                    #beta\n\
                    \tgamma-with-tab\t\r\n\
                    \x20  # indented comment\n\
                    delta # not a comment: part of the token\n";

fn file_route(path: PathBuf, env: Option<&str>) -> Route {
    let mut r = route();
    r.auth = AuthMode::Token;
    r.tokens = Some(TokenSource {
        file: Some(path),
        env: env.map(String::from),
    });
    r
}

#[test]
fn file_lines_trimmed_without_blanks_or_comments() {
    let tokens: Vec<_> = file_tokens(FILE).collect();
    assert_eq!(
        tokens,
        [
            "alpha",
            "gamma-with-tab",
            "delta # not a comment: part of the token"
        ]
    );
}

#[test]
fn env_value_is_comma_separated() {
    let tokens: Vec<_> = env_tokens(" one, two,,three ,").collect();
    assert_eq!(tokens, ["one", "two", "three"]);
}

#[test]
fn token_file_with_comments_and_blank_lines() {
    let dir = tmp();
    let auth = build(
        &file_route(write(&dir, "tokens", FILE.as_bytes()), None),
        no_env,
    );
    for good in ["alpha", "gamma-with-tab"] {
        assert!(bearer(&auth, good).is_ok(), "{good}");
    }
    for bad in ["beta", "#beta", "# tokens for the VNC route", "delta"] {
        let result = request(
            &auth,
            "/vnc",
            &[("Authorization", &format!("Bearer {bad}"))],
        );
        assert!(result.is_err(), "{bad}");
    }
}

#[test]
fn env_source_through_the_lookup() {
    let auth = token_auth("one, two,,three");
    for good in ["one", "two", "three"] {
        assert!(bearer(&auth, good).is_ok(), "{good}");
    }
    assert_eq!(bearer(&auth, "one,two"), Err(AuthError::BadCredential));
}

#[test]
fn file_and_env_are_united() {
    let dir = tmp();
    let path = write(&dir, "tokens", b"from-file\n");
    let r = file_route(path, Some("WSGATE_ROUTE_TOKENS"));
    let auth = build(&r, |name| {
        (name == "WSGATE_ROUTE_TOKENS").then(|| "from-env".to_string())
    });
    assert!(bearer(&auth, "from-file").is_ok());
    assert!(bearer(&auth, "from-env").is_ok());
}

/// `from_route` looks variables up in the real environment; PATH is always set under
/// cargo, and reading it needs no `set_var`.
#[test]
fn from_route_reads_the_process_environment() {
    let Ok(path) = std::env::var("PATH") else {
        return;
    };
    let mut r = route();
    r.auth = AuthMode::Token;
    r.tokens = Some(TokenSource {
        file: None,
        env: Some("PATH".into()),
    });
    let auth = match Authenticator::from_route(&r, PREFIX) {
        Ok(Some(auth)) => auth,
        other => panic!("{other:?}"),
    };
    let first = env_tokens(&path).next().unwrap();
    assert!(bearer(&auth, first).is_ok());
}

#[test]
fn reloading_rereads_the_file() {
    let dir = tmp();
    let path = write(&dir, "tokens", b"old\n");
    let r = file_route(path.clone(), None);
    let before = build(&r, no_env);
    std::fs::write(&path, b"new\n").unwrap();
    let after = build(&r, no_env);
    assert!(bearer(&before, "old").is_ok());
    assert_eq!(bearer(&after, "old"), Err(AuthError::BadCredential));
    assert!(bearer(&after, "new").is_ok());
}

#[test]
fn comparison_sees_whole_tokens_only() {
    let set = TokenSet::from_tokens(["abc", "abc", "xyz-1"]);
    assert_eq!(format!("{set:?}"), "TokenSet { tokens: 2 }");
    assert!(set.accepts(&Secret::new("abc")));
    assert!(set.accepts(&Secret::new("xyz-1")));
    for wrong in ["", "ab", "abcd", "xyz", "xyz-12", "ABC"] {
        assert!(!set.accepts(&Secret::new(wrong)), "{wrong}");
    }
    assert!(!TokenSet::from_tokens([]).accepts(&Secret::new("")));
}
