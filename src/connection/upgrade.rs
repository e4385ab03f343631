//! One request on a client connection: a probe or the demo page, else an upgrade request.
//! A valid upgrade passes admission and connects the backend first, and only then is
//! answered 101, so a refusal or a dead backend is an HTTP status, never a 101 followed by
//! a close. The session then runs in a task of its own, holding its place under the caps.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tracing::debug;

use super::{Endpoints, OpenStream};
use crate::backend::{self, BackendError};
use crate::error::Reject;
use crate::generation::{Generation, RoutePlan, Shared};
use crate::ops::probes;
use crate::session::{self, SessionInfo};
use crate::{admission, client_ip, demo, handshake, proxy_protocol};

/// Answers one request. `stream` counts it as open on its connection until it is
/// answered, or, if it is upgraded, until its session ends.
pub(super) async fn answer(
    mut req: Request<Incoming>,
    ends: Endpoints,
    stream: OpenStream,
    shared: &Arc<Shared>,
) -> Response<Full<Bytes>> {
    if let Some(resp) = probes::probe(&req, shared) {
        return resp;
    }
    if let Some(page) = shared.demo_page.then(|| demo::page(&req)).flatten() {
        return page;
    }
    let generation = shared.current();
    // The real client: forwarded headers count only when the connection is from a trusted proxy.
    let ip = client_ip::resolve(ends.client.ip(), req.headers(), &generation.trusted);
    let client = SocketAddr::new(
        ip,
        if ip == ends.client.ip() {
            ends.client.port()
        } else {
            0
        },
    );
    match upgrade(&mut req, client, &ends, stream, &generation, shared).await {
        Ok(resp) => resp,
        Err(reject) => {
            shared.metrics.rejected(&reject);
            debug!(
                reason = reject.reason(),
                status = reject.status().as_u16(),
                %client,
                path = req.uri().path(),
                error = %reject,
                "upgrade refused"
            );
            reject.into_response(req.version())
        }
    }
}

/// Admits the request, connects the backend, spawns the session and returns the 101.
async fn upgrade(
    req: &mut Request<Incoming>,
    client: SocketAddr,
    ends: &Endpoints,
    stream: OpenStream,
    generation: &Generation,
    shared: &Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Reject> {
    let route = generation
        .route(req.uri().path())
        .ok_or(Reject::NotFound)?
        .clone();
    let opening = handshake::check_upgrade(req)?;
    if shared.life.is_stopping() {
        return Err(Reject::Draining);
    }
    let who = admission::Client {
        ip: client.ip(),
        identity: ends.identity.as_deref(),
    };
    let admitted = admission::admit(req, &route, who, generation, &shared.caps)?;
    let started = Instant::now();
    // A connection accepted before a reload turned the header on has no address of its
    // own looked up: the listen address stands in.
    let local = ends
        .local
        .or_else(|| generation.cfg.listen.parse().ok())
        .unwrap_or(client);
    let backend = connect_backend(&route, client, local)
        .await
        .inspect_err(|e| shared.metrics.backend_connect_failed(e))?;
    shared
        .metrics
        .backend_connected(started.elapsed().as_secs_f64());
    let id = shared.next_id();
    let info = SessionInfo {
        id,
        client,
        route,
        backend_addr: backend.addr,
        protocol: opening.protocol(),
        transport: (req.version() == hyper::Version::HTTP_2)
            .then(|| ends.transport.clone())
            .flatten(),
    };
    let on_upgrade = hyper::upgrade::on(req);
    let session = session::run(on_upgrade, backend.stream, info, shared.clone());
    // The session's place under the caps, and on HTTP/2 its place among the connection's
    // open streams, are held for exactly as long as it runs.
    shared.life.spawn(holding(session, (admitted.slot, stream)));
    Ok(handshake::accepted(&opening, admitted.protocol))
}

/// Runs `session`, then drops `held`: what the session occupies outside the data path.
/// A `map` rather than an `async fn`: an `async fn` would store the session future twice
/// (its argument and the future it awaits), doubling what every open session costs.
fn holding<T: Send>(
    session: impl Future<Output = ()> + Send,
    held: T,
) -> impl Future<Output = ()> + Send {
    session.map(move |()| drop(held))
}

/// Connects the route's backend and, if the route asks for it, tells it who the client is
/// with a PROXY v2 header before any client byte.
async fn connect_backend(
    route: &RoutePlan,
    client: SocketAddr,
    local: SocketAddr,
) -> Result<backend::Backend, Reject> {
    let mut backend = backend::connect(&route.backends, route.connect_timeout).await?;
    if route.backend_proxy_protocol {
        let sent = match proxy_protocol::v2_header(client, local) {
            Ok(header) => backend.stream.write_all(&header).await,
            Err(e) => Err(e),
        };
        if let Err(source) = sent {
            return Err(BackendError::Connect {
                addr: backend.addr.to_string(),
                source,
            }
            .into());
        }
    }
    Ok(backend)
}
