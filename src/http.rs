//! One client TCP connection as HTTP/1.1: header timeout, the upgrade request, and the
//! answer to it. A valid upgrade connects the backend first and only then answers 101, so a
//! dead backend is a 502/504, never a 101 followed by a close.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, info_span};

use crate::error::Reject;
use crate::session::{self, SessionInfo};
use crate::state::Shared;
use crate::{backend, handshake};

/// Request heads larger than this are refused by hyper (431). hyper's minimum is 8 KiB.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Serves HTTP on `tcp` until the client leaves, the connection is upgraded, or shutdown.
pub async fn serve_connection(tcp: TcpStream, client: SocketAddr, shared: Arc<Shared>) {
    let svc_shared = shared.clone();
    let svc = service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(answer(req, client, &shared).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.cfg.limits.handshake_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .serve_connection(TokioIo::new(tcp), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = shared.life.stopping() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "http connection ended with an error");
    }
}

async fn answer(
    mut req: Request<Incoming>,
    client: SocketAddr,
    shared: &Arc<Shared>,
) -> Response<Full<Bytes>> {
    match upgrade(&mut req, client, shared).await {
        Ok(resp) => resp,
        Err(reject) => {
            debug!(
                reason = reject.reason(),
                status = reject.status().as_u16(),
                path = req.uri().path(),
                error = %reject,
                "upgrade refused"
            );
            reject.into_response()
        }
    }
}

/// Admits the request, connects the backend, spawns the session and returns the 101.
async fn upgrade(
    req: &mut Request<Incoming>,
    client: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Reject> {
    let route = shared
        .route(req.uri().path())
        .ok_or(Reject::NotFound)?
        .clone();
    let accept = handshake::check_upgrade(req)?;
    let protocol = handshake::choose_subprotocol(req, &route.subprotocols)?;
    if shared.life.is_stopping() {
        return Err(Reject::Draining);
    }
    let backend = backend::connect(&route.backends, route.connect_timeout).await?;
    let id = shared.next_id();
    let span = info_span!("session", id);
    let info = SessionInfo {
        id,
        client,
        route,
        backend_addr: backend.addr,
    };
    let on_upgrade = hyper::upgrade::on(req);
    shared
        .life
        .spawn(session::run(on_upgrade, backend.stream, info, shared.clone()).instrument(span));
    Ok(handshake::switching_protocols(&accept, protocol))
}
