//! One client TCP connection as HTTP/1.1: the optional PROXY header, header limits and
//! timeout, probes, the upgrade request and the answer to it. A valid upgrade passes
//! admission and connects the backend first, and only then is answered 101, so a refusal
//! or a dead backend is an HTTP status, never a 101 followed by a close.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout};
use tracing::debug;

use crate::backend::{self, BackendError};
use crate::config::Limits;
use crate::error::Reject;
use crate::session::{self, SessionInfo};
use crate::state::{Generation, RoutePlan, Shared};
use crate::tls::{self, ClientIdentity, Transport};
use crate::{admission, client_ip, handshake, probes, proxy_protocol};

/// Where a connection comes from and where it arrived.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The client as far as the transport knows: the PROXY header's source if the listener
    /// takes one, else the TCP peer.
    pub client: SocketAddr,
    /// The gateway's own address on this connection.
    pub local: SocketAddr,
    /// The names in the client's verified TLS certificate, if it presented one.
    pub identity: Option<ClientIdentity>,
}

/// Serves HTTP on `tcp` until the client leaves, the connection is upgraded, or shutdown.
/// `pending` is this connection's place under `max_pending_handshakes`, given back when it
/// is upgraded or closed.
pub async fn serve_connection(
    mut tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    pending: OwnedSemaphorePermit,
) {
    shared.metrics.connections_accepted.inc();
    let local = tcp.local_addr().unwrap_or(peer);
    // Connection-level settings are those current when it arrived.
    let generation = shared.current();
    let limits = &generation.cfg.limits;
    let mut client = peer;
    if generation.cfg.proxy_protocol {
        let read = timeout(
            limits.handshake_timeout,
            proxy_protocol::read_header_from(peer.ip(), &generation.proxy_senders, &mut tcp),
        )
        .await;
        match read {
            Ok(Ok(header)) => client = header.client_or(peer),
            Ok(Err(e)) => {
                shared.metrics.proxy_header_errors.inc();
                return debug!(error = %e, "dropped: bad PROXY protocol header");
            }
            Err(_) => {
                shared.metrics.proxy_header_errors.inc();
                return debug!("dropped: no PROXY protocol header in time");
            }
        }
    }
    let tls_on = generation.tls.clone();
    let Some(setup) = tls_on else {
        let ends = Endpoints {
            client,
            local,
            identity: None,
        };
        return serve_http(tcp, ends, &generation, &shared, pending).await;
    };
    let t = &generation.cfg.tls;
    match tls::accept(tcp, &setup.server, t.handshake_timeout, t.allow_plaintext).await {
        Ok(Transport::Plain(tcp)) => {
            let ends = Endpoints {
                client,
                local,
                identity: None,
            };
            serve_http(tcp, ends, &generation, &shared, pending).await;
        }
        Ok(Transport::Tls(stream)) => {
            shared.metrics.tls_handshakes.inc();
            let ends = Endpoints {
                client,
                local,
                identity: tls::client_identity(&stream),
            };
            serve_http(*stream, ends, &generation, &shared, pending).await;
        }
        Err(e) => {
            shared.metrics.tls_handshake_errors.inc();
            debug!(error = %e, %client, "dropped: TLS handshake");
        }
    }
}

/// Per HTTP/2 stream, at most this much unread data is buffered before the client must
/// wait: the same bound on memory as TCP gives an HTTP/1.1 session.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// And for all streams of one connection together.
const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// WebSocket streams one HTTP/2 connection may carry at once.
const H2_MAX_STREAMS: u32 = 256;

/// HTTP on an established transport (plain or TLS): HTTP/1.1, and HTTP/2 when `http2` is
/// on (by ALPN, or prior knowledge on plain connections) with extended CONNECT (RFC 8441).
async fn serve_http<IO>(
    io: IO,
    ends: Endpoints,
    generation: &Generation,
    shared: &Arc<Shared>,
    pending: OwnedSemaphorePermit,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &generation.cfg.limits;
    // The connection stops counting as a pending handshake at its first request (an
    // HTTP/2 connection carrying sessions must not hold a place for its whole life).
    let pending = Arc::new(Mutex::new(Some(pending)));
    let svc_shared = shared.clone();
    let svc = service_fn(move |req| {
        let shared = svc_shared.clone();
        let ends = ends.clone();
        drop(
            pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        async move { Ok::<_, Infallible>(answer(req, ends, &shared).await) }
    });
    // Both connection types end the same way: on shutdown, finish what is in flight.
    macro_rules! drive {
        ($conn:expr) => {{
            let conn = $conn;
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => r.map_err(|e| e.to_string()),
                () = shared.life.stopping() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await.map_err(|e| e.to_string())
                }
            }
        }};
    }
    let io = TokioIo::new(io);
    let result = if generation.cfg.http2 {
        let builder = auto_builder(limits);
        drive!(builder.serve_connection_with_upgrades(io, svc))
    } else {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(limits.handshake_timeout)
            .max_buf_size(limits.max_header_size.as_usize())
            .max_headers(limits.max_headers);
        drive!(http1.serve_connection(io, svc).with_upgrades())
    };
    if let Err(e) = result {
        debug!(error = %e, "http connection ended with an error");
    }
}

/// HTTP/1.1 and HTTP/2 (chosen by ALPN or the client's first bytes), with extended CONNECT.
fn auto_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .max_buf_size(limits.max_header_size.as_usize())
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_header_list_size(u32::try_from(limits.max_header_size.0).unwrap_or(u32::MAX))
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_concurrent_streams(H2_MAX_STREAMS);
    builder
}

async fn answer(
    mut req: Request<Incoming>,
    ends: Endpoints,
    shared: &Arc<Shared>,
) -> Response<Full<Bytes>> {
    if let Some(resp) = probes::probe(&req, shared) {
        return resp;
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
    match upgrade(&mut req, client, &ends, &generation, shared).await {
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
    let backend = connect_backend(&route, client, ends.local)
        .await
        .inspect_err(|e| {
            let reason = crate::metrics::ReasonLabel { reason: e.reason() };
            shared
                .metrics
                .backend_connect_errors
                .get_or_create(&reason)
                .inc();
        })?;
    shared
        .metrics
        .backend_connect_seconds
        .observe(started.elapsed().as_secs_f64());
    let id = shared.next_id();
    let info = SessionInfo {
        id,
        client,
        route,
        backend_addr: backend.addr,
        slot: admitted.slot,
        protocol: opening.protocol(),
    };
    let on_upgrade = hyper::upgrade::on(req);
    let session = session::run(on_upgrade, backend.stream, info, shared.clone());
    shared.life.spawn(session);
    Ok(handshake::accepted(&opening, admitted.protocol))
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
        let header = proxy_protocol::v2_header(client, local);
        if let Err(source) = backend.stream.write_all(&header).await {
            return Err(BackendError::Connect {
                addr: backend.addr.to_string(),
                source,
            }
            .into());
        }
    }
    Ok(backend)
}
