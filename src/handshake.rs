//! The RFC 6455 opening handshake: which requests are valid upgrades, and the 101 answer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::auth::negotiable_subprotocols;
use crate::error::Reject;

/// How a valid opening handshake asked for the WebSocket, and so how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// RFC 6455 over HTTP/1.1: answered 101 with this `Sec-WebSocket-Accept`.
    Http1 { accept: String },
    /// RFC 8441 extended CONNECT over HTTP/2: answered 200 on the stream.
    Http2,
}

impl Opening {
    pub fn protocol(&self) -> &'static str {
        match self {
            Self::Http1 { .. } => "http/1.1",
            Self::Http2 => "h2",
        }
    }
}

/// Checks that `req` opens a WebSocket, over HTTP/1.1 (RFC 6455) or HTTP/2 (RFC 8441).
/// Checks run in order, so each failure has one clear status.
pub fn check_upgrade<B>(req: &Request<B>) -> Result<Opening, Reject> {
    if req.version() == Version::HTTP_2 {
        return check_extended_connect(req);
    }
    let h = req.headers();
    if !has_token(h, &UPGRADE, "websocket") {
        return Err(if req.method() == Method::GET {
            Reject::UpgradeRequired
        } else {
            Reject::Method
        });
    }
    if req.method() != Method::GET {
        return Err(Reject::Handshake("method must be GET"));
    }
    if req.version() < Version::HTTP_11 {
        return Err(Reject::Handshake("HTTP/1.1 or later required"));
    }
    if !has_token(h, &CONNECTION, "upgrade") {
        return Err(Reject::Handshake("Connection header lacks 'upgrade'"));
    }
    check_version(h)?;
    let key =
        single(h, &SEC_WEBSOCKET_KEY)?.ok_or(Reject::Handshake("Sec-WebSocket-Key missing"))?;
    let key = key.as_bytes().trim_ascii();
    match STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(Opening::Http1 {
            accept: derive_accept_key(key),
        }),
        _ => Err(Reject::Handshake(
            "Sec-WebSocket-Key is not 16 base64-encoded bytes",
        )),
    }
}

/// RFC 8441: `CONNECT` with `:protocol = websocket` and `sec-websocket-version: 13`.
fn check_extended_connect<B>(req: &Request<B>) -> Result<Opening, Reject> {
    let protocol = req.extensions().get::<hyper::ext::Protocol>();
    if req.method() != Method::CONNECT {
        return Err(if req.method() == Method::GET {
            Reject::Handshake("WebSockets over HTTP/2 use extended CONNECT")
        } else {
            Reject::Method
        });
    }
    if !protocol.is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket")) {
        return Err(Reject::Handshake("CONNECT without :protocol websocket"));
    }
    check_version(req.headers())?;
    Ok(Opening::Http2)
}

fn check_version(h: &HeaderMap) -> Result<(), Reject> {
    match single(h, &SEC_WEBSOCKET_VERSION)? {
        None => Err(Reject::Handshake("Sec-WebSocket-Version missing")),
        Some(v) if v.as_bytes().trim_ascii() != b"13" => Err(Reject::Version),
        Some(_) => Ok(()),
    }
}

/// The subprotocol to answer with: the first one the client offers that `accepted` lists.
/// With an empty `accepted`, offers are ignored; otherwise a client offering none of them is
/// refused, since it could not talk to this route's backend.
pub fn choose_subprotocol<B>(
    req: &Request<B>,
    accepted: &[String],
) -> Result<Option<HeaderValue>, Reject> {
    if accepted.is_empty() {
        return Ok(None);
    }
    for offer in negotiable_subprotocols(req.headers()) {
        if let Some(proto) = accepted.iter().find(|a| a.as_str() == offer) {
            return HeaderValue::from_str(proto)
                .map(Some)
                .map_err(|_| Reject::Handshake("unusable subprotocol"));
        }
    }
    Err(Reject::Handshake("no acceptable subprotocol offered"))
}

/// The response completing the handshake: 101 over HTTP/1.1, 200 over HTTP/2.
pub fn accepted(opening: &Opening, protocol: Option<HeaderValue>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    let h = resp.headers_mut();
    if let Some(protocol) = protocol {
        h.insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    match opening {
        Opening::Http1 { accept } => {
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(v) = HeaderValue::from_str(accept) {
                h.insert(SEC_WEBSOCKET_ACCEPT, v);
            }
        }
        Opening::Http2 => *resp.status_mut() = StatusCode::OK,
    }
    resp
}

/// The header's only value; a repeated header is malformed.
fn single<'a>(h: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a HeaderValue>, Reject> {
    let mut values = h.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Reject::Handshake("repeated handshake header"));
    }
    Ok(first)
}

/// Whether a comma-separated header holds `token` (case-insensitive), in any of its values.
fn has_token(h: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    h.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade() -> hyper::http::request::Builder {
        Request::get("/")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    #[test]
    fn rfc_example_key_is_accepted() {
        let opening = check_upgrade(&upgrade().body(()).unwrap()).unwrap();
        assert_eq!(
            opening,
            Opening::Http1 {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
    }

    #[test]
    fn each_defect_has_its_answer() {
        let plain = Request::get("/").body(()).unwrap();
        assert!(matches!(
            check_upgrade(&plain),
            Err(Reject::UpgradeRequired)
        ));
        let post = Request::post("/").body(()).unwrap();
        assert!(matches!(check_upgrade(&post), Err(Reject::Method)));
        let v8 = upgrade().header("Sec-WebSocket-Version", "8");
        assert!(matches!(
            check_upgrade(&v8.body(()).unwrap()),
            Err(Reject::Handshake(_))
        ));
        let mut req = upgrade().body(()).unwrap();
        req.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert!(matches!(check_upgrade(&req), Err(Reject::Version)));
        req.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        req.headers_mut()
            .insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("c2hvcnQ="));
        assert!(matches!(check_upgrade(&req), Err(Reject::Handshake(_))));
        req.headers_mut().remove(CONNECTION);
        assert!(matches!(check_upgrade(&req), Err(Reject::Handshake(_))));
    }

    #[test]
    fn first_offer_the_route_accepts_is_chosen() {
        let accepted = vec!["binary".to_string(), "base64".to_string()];
        let req = upgrade()
            .header("Sec-WebSocket-Protocol", "chat, base64, binary")
            .body(())
            .unwrap();
        assert_eq!(
            choose_subprotocol(&req, &accepted).unwrap().unwrap(),
            "base64"
        );
        let none = upgrade().body(()).unwrap();
        assert!(matches!(
            choose_subprotocol(&none, &accepted),
            Err(Reject::Handshake(_))
        ));
        assert_eq!(choose_subprotocol(&req, &[]).unwrap(), None);
    }
}
