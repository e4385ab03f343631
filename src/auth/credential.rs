//! Where a request's credential is found, and what the caller learns about it.
//!
//! The first of these that is present is used; the others are not looked at, so a request
//! gets one guess:
//!
//! 1. `Authorization: Bearer <token>` (the scheme is case-insensitive; other schemes are
//!    ignored, as they may be meant for something else);
//! 2. the route's `auth_query_param` (default `token`), percent-decoded (`+` stays `+`);
//! 3. a `Sec-WebSocket-Protocol` entry `bearer.<token>`, for browsers, which cannot set
//!    headers on a WebSocket. Subprotocol names may only hold HTTP token characters
//!    (letters, digits and ``!#$%&'*+-.^_`|~``), so tokens meant for this position must
//!    use only those: a JWT, being base64url, always does.
//!
//! A credential given twice in the same place (two bearer headers, a repeated query
//! parameter, two `bearer.` entries) is malformed rather than guessed at.
//!
//! The query string holds the token when it came from there: log the request's path, never
//! its whole URI.

use std::fmt;

use hyper::Uri;
use hyper::header::{AUTHORIZATION, HeaderMap, SEC_WEBSOCKET_PROTOCOL};
use percent_encoding::percent_decode_str;

use super::AuthError;

use crate::config::SUBPROTOCOL_PREFIX;

/// A request that passed authentication: where its credential was, and who it names.
/// Holds no part of the credential itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub carrier: Carrier,
    /// The JWT's `sub` claim, when it has one (always `None` for `auth: token`). It is
    /// signed by the issuer, not checked for content: log it escaped (`?subject`).
    pub subject: Option<String>,
}

/// Which part of the request carried the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `Authorization: Bearer`.
    Header,
    /// The route's query parameter.
    Query,
    /// The entry at `index` of [`offered_subprotocols`]; it must not be echoed in the 101.
    Subprotocol { index: usize },
}

/// The offered subprotocols left for negotiation: [`offered_subprotocols`] without any
/// `bearer.` entry. Such entries carry a credential (browsers cannot set headers on a
/// WebSocket), never a protocol, so they are dropped whether or not the credential was
/// taken from one of them.
///
/// When the credential was the only entry offered, nothing is left; answering the 101
/// without `Sec-WebSocket-Protocol` is then correct (RFC 6455 section 4.1).
pub fn negotiable_subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    offered_subprotocols(headers).filter(|entry| !entry.starts_with(SUBPROTOCOL_PREFIX))
}

/// Every `Sec-WebSocket-Protocol` entry offered, in order: all the header's values split
/// on commas, trimmed, empty entries and non-ASCII values skipped. [`Carrier::Subprotocol`]
/// indexes into this sequence.
pub fn offered_subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// A presented token. `Debug` and `Display` print `***`.
pub(super) struct Secret(String);

impl Secret {
    pub(super) fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself; only for comparing or verifying, never for printing.
    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The credential `headers` and `uri` present, from the first place that has one.
pub(super) fn extract(
    headers: &HeaderMap,
    uri: &Uri,
    query_param: &str,
) -> Result<(Secret, Carrier), AuthError> {
    if let Some(token) = from_authorization(headers)? {
        return Ok((token, Carrier::Header));
    }
    if let Some(token) = from_query(uri, query_param)? {
        return Ok((token, Carrier::Query));
    }
    if let Some((token, index)) = from_subprotocols(headers)? {
        return Ok((token, Carrier::Subprotocol { index }));
    }
    Err(AuthError::Missing)
}

/// The credential in `Authorization: Bearer`, if there is exactly one.
pub(super) fn from_authorization(headers: &HeaderMap) -> Result<Option<Secret>, AuthError> {
    let mut found = None;
    for value in headers.get_all(AUTHORIZATION) {
        let raw = value.as_bytes().trim_ascii();
        let (scheme, rest) = match raw.iter().position(|b| b.is_ascii_whitespace()) {
            Some(at) => raw.split_at(at),
            None => (raw, &b""[..]),
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            continue;
        }
        if found.is_some() {
            return Err(AuthError::Malformed("more than one bearer authorization"));
        }
        let token = std::str::from_utf8(rest.trim_ascii())
            .map_err(|_| AuthError::Malformed("bearer token is not UTF-8"))?;
        if token.is_empty() || token.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(AuthError::Malformed("bearer token is empty or has spaces"));
        }
        found = Some(Secret::new(token));
    }
    Ok(found)
}

fn from_query(uri: &Uri, name: &str) -> Result<Option<Secret>, AuthError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode_str(key).decode_utf8_lossy() != name {
            continue;
        }
        if found.is_some() {
            return Err(AuthError::Malformed("query parameter given more than once"));
        }
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| AuthError::Malformed("query token is not UTF-8"))?;
        if value.is_empty() {
            return Err(AuthError::Malformed("query token is empty"));
        }
        found = Some(Secret::new(value));
    }
    Ok(found)
}

fn from_subprotocols(headers: &HeaderMap) -> Result<Option<(Secret, usize)>, AuthError> {
    let mut found = None;
    for (index, entry) in offered_subprotocols(headers).enumerate() {
        let Some(token) = entry.strip_prefix(SUBPROTOCOL_PREFIX) else {
            continue;
        };
        if found.is_some() {
            return Err(AuthError::Malformed("more than one bearer subprotocol"));
        }
        if token.is_empty() {
            return Err(AuthError::Malformed("bearer subprotocol is empty"));
        }
        found = Some((Secret::new(token), index));
    }
    Ok(found)
}
