#![no_main]
//! The opening-handshake checks on requests made from fuzz bytes (an HTTP/1 request head,
//! parsed by httparse as hyper does, given the HTTP version and RFC 8441 `:protocol` the
//! first byte picks). Every verdict is checked against RFC 6455 §4.2.1 and RFC 8441 §4 as
//! written out here: an accepted upgrade really is one, with `Sec-WebSocket-Accept` computed
//! independently (SHA-1 and base64 of the key and the GUID); a valid one is never refused;
//! each refusal has the status its cause calls for. The subprotocol chosen is one the
//! client offered and the route lists.
//!
//! Input: byte 0 picks version, `:protocol` and the route's subprotocols; the rest is the
//! request head.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::header::{HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT};
use hyper::{HeaderMap, Method, Request, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use wsgate::internals::Reject;
use wsgate::internals::{Opening, accepted, check_upgrade, choose_subprotocol};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn request(flags: u8, head: &[u8]) -> Option<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    if !parsed.parse(head).ok()?.is_complete() {
        return None;
    }
    let version = match (flags & 3, parsed.version?) {
        (1, _) => Version::HTTP_2,
        (2, _) => Version::HTTP_09,
        (_, 0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut builder = Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?)
        .version(version);
    for h in parsed.headers.iter() {
        builder = builder.header(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        );
    }
    let protocol = match (flags >> 2) & 3 {
        0 => None,
        1 => Some("websocket"),
        2 => Some("WebSocket"),
        _ => Some("chat"),
    };
    if let Some(p) = protocol {
        builder = builder.extension(hyper::ext::Protocol::from(p));
    }
    builder.body(()).ok()
}

/// The header's values as text (values that are not visible ASCII do not count).
fn values<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

fn has_token(h: &HeaderMap, name: &str, token: &str) -> bool {
    values(h, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The header's value if it occurs exactly once.
fn once<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a HeaderValue> {
    let mut all = h.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() { None } else { first }
}

fn version_13(h: &HeaderMap) -> bool {
    once(h, "sec-websocket-version").is_some_and(|v| v.as_bytes().trim_ascii() == b"13")
}

/// The key if it is valid: once, 16 bytes in base64.
fn key(h: &HeaderMap) -> Option<&[u8]> {
    let key = once(h, "sec-websocket-key")?.as_bytes().trim_ascii();
    (STANDARD.decode(key).ok()?.len() == 16).then_some(key)
}

fn valid_http1(req: &Request<()>) -> bool {
    let h = req.headers();
    req.version() != Version::HTTP_2
        && req.version() >= Version::HTTP_11
        && req.method() == Method::GET
        && has_token(h, "upgrade", "websocket")
        && has_token(h, "connection", "upgrade")
        && version_13(h)
        && key(h).is_some()
}

fn valid_http2(req: &Request<()>) -> bool {
    req.version() == Version::HTTP_2
        && req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
        && version_13(req.headers())
}

fn accept_for(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

fn route_subprotocols(flags: u8) -> Vec<String> {
    let list: &[&str] = match (flags >> 4) & 3 {
        0 => &[],
        1 => &["binary"],
        2 => &["chat", "binary"],
        _ => &["bearer.x", "binary"],
    };
    list.iter().map(|s| s.to_string()).collect()
}

fuzz_target!(|input: &[u8]| {
    let [flags, head @ ..] = input else {
        return;
    };
    let Some(req) = request(*flags, head) else {
        return;
    };
    let h = req.headers();
    let h2 = req.version() == Version::HTTP_2;
    let verdict = check_upgrade(&req);
    match &verdict {
        Ok(Opening::Http1 { accept }) => {
            assert!(valid_http1(&req), "accepted {req:?}");
            let key = key(h).expect("a valid key");
            assert_eq!(*accept, accept_for(key));
        }
        Ok(Opening::Http2) => assert!(valid_http2(&req), "accepted {req:?}"),
        Err(e) => {
            assert!(
                !valid_http1(&req) && !valid_http2(&req),
                "refused {req:?}: {e}"
            );
            match e {
                Reject::UpgradeRequired => {
                    assert!(!h2 && req.method() == Method::GET);
                    assert!(!has_token(h, "upgrade", "websocket"));
                }
                Reject::Method => assert!(req.method() != Method::GET),
                Reject::Version => {
                    let v = once(h, "sec-websocket-version").expect("one version header");
                    assert_ne!(v.as_bytes().trim_ascii(), b"13");
                }
                Reject::Handshake(_) => {}
                other => panic!("a handshake check cannot refuse with {other:?}"),
            }
            let status = e.status();
            assert!(
                [
                    StatusCode::BAD_REQUEST,
                    StatusCode::METHOD_NOT_ALLOWED,
                    StatusCode::UPGRADE_REQUIRED
                ]
                .contains(&status),
                "{status}"
            );
        }
    }

    let route = route_subprotocols(*flags);
    let chosen = choose_subprotocol(&req, &route);
    let offered: Vec<&str> = values(h, "sec-websocket-protocol")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|o| !o.is_empty() && !o.starts_with("bearer."))
        .collect();
    let first_match = offered.iter().find(|o| route.iter().any(|r| r == *o));
    match &chosen {
        Ok(None) => assert!(route.is_empty()),
        Ok(Some(v)) => assert_eq!(Some(&v.to_str().expect("ascii")), first_match),
        Err(_) => assert!(!route.is_empty() && first_match.is_none()),
    }

    if let Ok(opening) = verdict {
        let resp = accepted(&opening, chosen.ok().flatten());
        match opening {
            Opening::Http1 { accept } => {
                assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
                assert_eq!(resp.headers()[SEC_WEBSOCKET_ACCEPT], accept.as_str());
            }
            Opening::Http2 => assert_eq!(resp.status(), StatusCode::OK),
        }
    }
});
