//! Per-route authentication of upgrade requests: building an [`Authenticator`] from a
//! route's `auth` settings (reading token and key files), and checking the credential a
//! request presents against it.
//!
//! Where the credential is looked for, and how the subprotocol that carried it is kept out
//! of negotiation, is in [`credential`]; the two checks are in `token` (a fixed set,
//! compared in constant time) and `jwt` (a signed token with an expiry).
//!
//! Every [`AuthError`] is meant to be answered 401 with no detail: the variant is for a
//! debug log and a metric label only. Nothing here prints a token or a key, in errors,
//! problems or `Debug` output.
//!
//! Reloading is calling [`Authenticator::from_route`] again: it re-reads every file and
//! environment variable each time.

mod admin;
pub mod credential;
mod jwt;
mod token;

#[cfg(test)]
mod tests;

use hyper::header::HeaderMap;
use hyper::{Request, Uri};

use crate::config::{AuthMode, Problem, Route};
pub use admin::AdminTokens;
pub use credential::{Credential, negotiable_subprotocols};
use jwt::JwtVerifier;
use token::TokenSet;

/// Why a request was not authenticated. All are answered 401 alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credential presented")]
    Missing,
    /// Unknown token, bad signature, or a JWT signed with another algorithm than the
    /// route's (including `alg: none`).
    #[error("credential not accepted")]
    BadCredential,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token audience not accepted")]
    WrongAudience,
    #[error("token issuer not accepted")]
    WrongIssuer,
    /// The credential could not be read; the text says which part, never its content.
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
}

impl AuthError {
    /// A short, stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::BadCredential => "bad_credential",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::Malformed(_) => "malformed",
        }
    }
}

/// The credential check for one route, built once from its config (and again on reload).
/// `Debug` shows the mode and settings, never tokens or keys.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// Query parameter that may carry the credential.
    query_param: String,
    check: Check,
}

#[derive(Debug, Clone)]
enum Check {
    Tokens(TokenSet),
    Jwt(Box<JwtVerifier>),
}

impl Authenticator {
    /// The authenticator for `route`, or `None` for `auth: none`. Reads the token file,
    /// the token environment variable or the JWT key file now. Problems are keyed under
    /// `key_prefix` (the route's own key, such as `routes.2`).
    pub fn from_route(route: &Route, key_prefix: &str) -> Result<Option<Self>, Vec<Problem>> {
        Self::from_route_with(route, key_prefix, |name| std::env::var(name).ok())
    }

    /// As [`Self::from_route`], looking environment variables up with `env` (which returns
    /// `None` for a variable that is not set).
    pub fn from_route_with(
        route: &Route,
        key_prefix: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Vec<Problem>> {
        let key = |field: &str| match key_prefix {
            "" => field.to_string(),
            prefix => format!("{prefix}.{field}"),
        };
        let mut problems = unused_sections(route, &key);
        if route.auth != AuthMode::None && route.auth_query_param.is_empty() {
            problems.push(problem(key("auth_query_param"), "must not be empty"));
        }
        let check = match route.auth {
            AuthMode::None => None,
            AuthMode::Token => match &route.tokens {
                None => {
                    problems.push(problem(key("tokens"), "is required when auth is token"));
                    None
                }
                Some(source) => {
                    collect(TokenSet::load(source, &key, &env), &mut problems).map(Check::Tokens)
                }
            },
            AuthMode::Jwt => match &route.jwt {
                None => {
                    problems.push(problem(key("jwt"), "is required when auth is jwt"));
                    None
                }
                Some(cfg) => collect(JwtVerifier::load(cfg, &key), &mut problems)
                    .map(|v| Check::Jwt(Box::new(v))),
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(check.map(|check| Self {
            query_param: route.auth_query_param.clone(),
            check,
        }))
    }

    /// Checks the credential `req` presents; see [`credential`] for where it is looked for.
    /// Works on any body type, including `hyper::body::Incoming`.
    pub fn authenticate<B>(&self, req: &Request<B>) -> Result<Credential, AuthError> {
        self.authenticate_parts(req.headers(), req.uri())
    }

    /// As [`Self::authenticate`], from the request's headers and URI.
    pub fn authenticate_parts(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Credential, AuthError> {
        let (secret, carrier) = credential::extract(headers, uri, &self.query_param)?;
        let subject = match &self.check {
            Check::Tokens(set) if set.accepts(&secret) => None,
            Check::Tokens(_) => return Err(AuthError::BadCredential),
            Check::Jwt(verifier) => verifier.verify(&secret)?,
        };
        Ok(Credential { carrier, subject })
    }
}

/// A `tokens` or `jwt` section the route's `auth` mode ignores is a mistake that may leave
/// the route open (`auth` forgotten), so it is a problem, reported on `auth`.
fn unused_sections(route: &Route, key: &dyn Fn(&str) -> String) -> Vec<Problem> {
    let mode = match route.auth {
        AuthMode::None => "none",
        AuthMode::Token => "token",
        AuthMode::Jwt => "jwt",
    };
    let mut problems = Vec::new();
    if route.tokens.is_some() && route.auth != AuthMode::Token {
        problems.push(problem(
            key("auth"),
            format!(
                "is {mode}, but {} is set: set auth: token to use it, or remove it",
                key("tokens")
            ),
        ));
    }
    if route.jwt.is_some() && route.auth != AuthMode::Jwt {
        problems.push(problem(
            key("auth"),
            format!(
                "is {mode}, but {} is set: set auth: jwt to use it, or remove it",
                key("jwt")
            ),
        ));
    }
    problems
}

fn collect<T>(result: Result<T, Vec<Problem>>, problems: &mut Vec<Problem>) -> Option<T> {
    result.map_err(|more| problems.extend(more)).ok()
}

fn problem(key: String, message: impl Into<String>) -> Problem {
    Problem {
        key,
        message: message.into(),
    }
}
