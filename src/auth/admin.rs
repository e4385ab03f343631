//! `admin.tokens`: the bearer tokens the admin listener asks for on everything but the
//! probes. Same sources (file and/or environment variable) and the same constant-time
//! check as a route's `auth: token`; the token is read from `Authorization: Bearer` only
//! (scrapers set headers; a query string would end up in proxies' logs).

use hyper::header::HeaderMap;

use super::credential;
use super::token::TokenSet;
use crate::config::{Problem, TokenSource};

/// The accepted admin tokens, as digests. `Debug` shows only how many there are.
#[derive(Debug)]
pub struct AdminTokens(TokenSet);

impl AdminTokens {
    /// Reads `source` now (problems keyed under `admin.tokens`).
    pub fn load(source: &TokenSource) -> Result<Self, Vec<Problem>> {
        Self::load_with(source, |name| std::env::var(name).ok())
    }

    /// As [`Self::load`], looking environment variables up with `env`.
    pub fn load_with(
        source: &TokenSource,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<Problem>> {
        let key = |field: &str| format!("admin.{field}");
        TokenSet::load(source, &key, &env).map(Self)
    }

    /// Whether `headers` carry one `Authorization: Bearer` with an accepted token.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        match credential::from_authorization(headers) {
            Ok(Some(presented)) => self.0.accepts(&presented),
            Ok(None) | Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{AUTHORIZATION, HeaderValue};

    fn headers(authorization: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for value in authorization {
            h.append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn only_a_single_accepted_bearer_token_passes() {
        let source = TokenSource {
            file: None,
            env: Some("ADMIN_TOKENS".into()),
        };
        let tokens = AdminTokens::load_with(&source, |_| Some("scrape-1, scrape-2".into()))
            .expect("two tokens");
        assert!(tokens.accepts(&headers(&["Bearer scrape-2"])));
        assert!(!tokens.accepts(&headers(&[])));
        assert!(!tokens.accepts(&headers(&["Bearer scrape-3"])));
        assert!(!tokens.accepts(&headers(&["Basic c2NyYXBlLTE="])));
        assert!(!tokens.accepts(&headers(&["Bearer scrape-1", "Bearer scrape-1"])));
    }

    #[test]
    fn problems_are_keyed_under_admin_tokens() {
        let source = TokenSource {
            file: None,
            env: Some("ADMIN_TOKENS".into()),
        };
        let problems = AdminTokens::load_with(&source, |_| None).unwrap_err();
        assert_eq!(problems[0].key, "admin.tokens.env");
    }
}
