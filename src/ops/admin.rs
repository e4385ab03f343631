//! The admin listener: `/metrics`, and the health and readiness probes, on an address
//! kept off the public port (default 127.0.0.1:9090). With `admin.tokens`, everything but
//! the probes needs one of those bearer tokens (401 otherwise): the probes stay open for
//! kubelets and load balancers, which send no credentials.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tracing::{Instrument, debug, info_span};

use super::probes;
use crate::generation::Shared;
use crate::listener;

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until the future is dropped. Connections are accepted as on the main listener
/// ([`listener::accept`]) and each is a task the lifecycle tracks, so the drain waits for
/// it; once shutdown begins it ends (an idle keep-alive connection at once, one with a
/// request in flight after answering it).
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (tcp, peer) = listener::accept(&listener).await;
        let conn = serve_connection(tcp, shared.clone());
        shared
            .life
            .spawn(conn.instrument(info_span!("admin", %peer)));
    }
}

/// HTTP/1.1 on one admin connection until the client leaves or shutdown.
async fn serve_connection(tcp: TcpStream, shared: Arc<Shared>) {
    let svc_shared = shared.clone();
    let svc = service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(answer(&req, &shared)) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = shared.life.stopping() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        debug!(error = %e, "admin connection ended with an error");
    }
}

/// The probes for anyone; `/metrics` (and a 404 for anything else) only when authorized.
fn answer<B>(req: &Request<B>, shared: &Shared) -> Response<Full<Bytes>> {
    if let Some(resp) = probes::probe(req, shared) {
        resp
    } else if !authorized(req, shared) {
        unauthorized()
    } else if req.method() == Method::GET && req.uri().path() == "/metrics" {
        probes::metrics(shared)
    } else {
        probes::text(StatusCode::NOT_FOUND, "not found\n")
    }
}

/// Whether `req` may see more than the probes: always without `admin.tokens`, else only
/// with one of those tokens.
fn authorized<B>(req: &Request<B>, shared: &Shared) -> bool {
    match &shared.current().admin_tokens {
        None => true,
        Some(tokens) => tokens.accepts(req.headers()),
    }
}

/// 401 with no detail, as a refused credential on a route gets.
fn unauthorized() -> Response<Full<Bytes>> {
    let mut resp = probes::text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}
