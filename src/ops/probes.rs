//! Answers to probe and metrics requests, shared by the main and admin listeners.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::generation::Shared;

/// The response for a health or readiness probe at `path`, if it is one.
pub fn probe<B>(req: &Request<B>, shared: &Shared) -> Option<Response<Full<Bytes>>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let generation = shared.current();
    let path = req.uri().path();
    if path == generation.cfg.health.path {
        Some(text(StatusCode::OK, "ok\n"))
    } else if path == generation.cfg.ready.path {
        Some(if shared.health.ready() {
            text(StatusCode::OK, "ready\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        })
    } else {
        None
    }
}

/// The Prometheus exposition.
pub fn metrics(shared: &Shared) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(shared.metrics.render())));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
