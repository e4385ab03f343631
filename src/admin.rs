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
use tokio::net::TcpListener;
use tokio::time::sleep;
use tracing::{debug, warn};

use crate::probes;
use crate::state::Shared;

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until the future is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "admin accept failed; pausing");
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    let resp = if let Some(resp) = probes::probe(&req, &shared) {
                        resp
                    } else if !authorized(&req, &shared) {
                        unauthorized()
                    } else if req.method() == Method::GET && req.uri().path() == "/metrics" {
                        probes::metrics(&shared)
                    } else {
                        probes::text(StatusCode::NOT_FOUND, "not found\n")
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), svc);
            if let Err(e) = conn.await {
                debug!(error = %e, "admin connection ended with an error");
            }
        });
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
