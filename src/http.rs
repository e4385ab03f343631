//! One client TCP connection: the optional PROXY header, TLS, HTTP/1.1 (and HTTP/2 when
//! on), probes, the upgrade request and the answer to it. Everything before the first
//! complete request shares one deadline (`limits.handshake_timeout` from accept). A valid
//! upgrade passes admission and connects the backend first, and only then is answered
//! 101, so a refusal or a dead backend is an HTTP status, never a 101 followed by a close.

mod activity;
mod builders;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

use crate::backend::{self, BackendError};
use crate::error::Reject;
use crate::generation::{Generation, RoutePlan, Shared};
use crate::ops::probes;
use crate::session::{self, SessionInfo};
use crate::tls::{self, ClientIdentity, Transport};
use crate::{admission, client_ip, demo, handshake, proxy_protocol};

pub use activity::OpenStream;
use activity::{Activity, Expiry};
use builders::{auto_builder, http1_builder};

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
    /// The client's TCP socket, for HTTP/2 sessions to read its kernel's view of the client
    /// (hyper keeps the connection itself). Only where HTTP/2 may be spoken.
    pub transport: Option<Arc<OwnedFd>>,
}

/// Serves HTTP on `tcp` until the client leaves, the connection is upgraded, or shutdown.
/// `pending` is this connection's place under `max_pending_handshakes`, given back at its
/// first complete request or when it is closed. `accepted` starts the handshake deadline.
pub async fn serve_connection(
    mut tcp: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    shared: Arc<Shared>,
    pending: OwnedSemaphorePermit,
) {
    shared.metrics.connection_accepted();
    let local = tcp.local_addr().unwrap_or(peer);
    // Connection-level settings are those current when it arrived.
    let generation = shared.current();
    // PROXY header, TLS, protocol detection and request headers all fit in this one
    // deadline, so a client slow at every step is still dropped on time.
    let deadline = accepted + generation.cfg.limits.handshake_timeout;
    let activity = Activity::new(pending);
    let mut client = peer;
    if generation.cfg.proxy_protocol {
        let read = timeout_at(
            deadline,
            proxy_protocol::read_header_from(peer.ip(), &generation.proxy_senders, &mut tcp),
        )
        .await;
        match read {
            Ok(Ok(header)) => client = header.client_or(peer),
            Ok(Err(e)) => {
                shared.metrics.proxy_header_error();
                return debug!(error = %e, "dropped: bad PROXY protocol header");
            }
            Err(_) => {
                shared.metrics.proxy_header_error();
                return debug!("dropped: no PROXY protocol header in time");
            }
        }
    }
    let http = Http {
        generation: &generation,
        shared: &shared,
        activity,
        deadline,
    };
    let tls_on = generation.tls.clone();
    let Some(setup) = tls_on else {
        let ends = Endpoints {
            client,
            local,
            identity: None,
            transport: http2_transport(generation.cfg.http2, &tcp),
        };
        return http.serve(tcp, ends).await;
    };
    let t = &generation.cfg.tls;
    // `tls.handshake_timeout` still bounds the TLS step on its own, inside the deadline.
    let tls_deadline = deadline.min(Instant::now() + t.handshake_timeout);
    match tls::accept(tcp, &setup.server, tls_deadline, t.allow_plaintext).await {
        Ok(Transport::Plain(tcp)) => {
            let ends = Endpoints {
                client,
                local,
                identity: None,
                transport: http2_transport(generation.cfg.http2, &tcp),
            };
            http.serve(tcp, ends).await;
        }
        Ok(Transport::Tls(stream)) => {
            shared.metrics.tls_handshake_completed();
            let (tcp, tls_state) = stream.get_ref();
            let h2 = tls_state.alpn_protocol() == Some(b"h2");
            let ends = Endpoints {
                client,
                local,
                identity: tls::client_identity(&stream),
                transport: http2_transport(h2, tcp),
            };
            http.serve(*stream, ends).await;
        }
        Err(e) => {
            shared.metrics.tls_handshake_failed();
            debug!(error = %e, %client, "dropped: TLS handshake");
        }
    }
}

/// A second handle on the client's socket when the connection may carry HTTP/2 sessions
/// (`may_be_http2`), which liveness reads through; HTTP/1.1 sessions reach the socket
/// itself and drop this at the upgrade.
fn http2_transport(may_be_http2: bool, tcp: &TcpStream) -> Option<Arc<OwnedFd>> {
    if !may_be_http2 {
        return None;
    }
    tcp.as_fd().try_clone_to_owned().ok().map(Arc::new)
}

/// The HTTP stage of one connection, on an established transport.
struct Http<'a> {
    generation: &'a Generation,
    shared: &'a Arc<Shared>,
    activity: Arc<Activity>,
    /// The first complete request must arrive by then.
    deadline: Instant,
}

impl Http<'_> {
    /// HTTP/1.1, and HTTP/2 when `http2` is on (by ALPN, or prior knowledge on plain
    /// connections) with extended CONNECT (RFC 8441), until the client leaves, the
    /// connection is upgraded, a timer ends it, or shutdown.
    async fn serve<IO>(self, io: IO, ends: Endpoints)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let cfg = &self.generation.cfg;
        let (svc_shared, svc_activity) = (self.shared.clone(), self.activity.clone());
        let svc = service_fn(move |req: Request<Incoming>| {
            let shared = svc_shared.clone();
            let ends = ends.clone();
            let stream = svc_activity.request(req.version());
            async move { Ok::<_, Infallible>(answer(req, ends, stream, &shared).await) }
        });
        // Both connection types end the same ways: on shutdown or when idle, finish what
        // is in flight; with no complete request by the deadline, drop the connection.
        macro_rules! drive {
            ($conn:expr) => {{
                let conn = $conn;
                tokio::pin!(conn);
                let limits = &cfg.limits;
                let expiry = self
                    .activity
                    .expired(self.deadline, limits.http2_idle_timeout);
                tokio::pin!(expiry);
                let mut closing = false;
                loop {
                    tokio::select! {
                        r = conn.as_mut() => break r.map_err(|e| e.to_string()),
                        end = expiry.as_mut() => match end {
                            Expiry::Handshake => {
                                break Err("no complete request by the handshake deadline".into())
                            }
                            Expiry::Idle if closing => {
                                break Err("idle connection did not close in time".into())
                            }
                            Expiry::Idle => {
                                debug!("closing idle http/2 connection");
                                conn.as_mut().graceful_shutdown();
                                closing = true;
                                // Whatever slips in before the GOAWAY is served; an
                                // idle connection still open after this is dropped.
                                let close = cfg.liveness.close_timeout;
                                expiry.set(self.activity.expired(self.deadline, close));
                            }
                        },
                        () = self.shared.life.stopping(), if !closing => {
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                }
            }};
        }
        let io = TokioIo::new(io);
        let result: Result<(), String> = if cfg.http2 {
            let builder = auto_builder(cfg);
            drive!(builder.serve_connection_with_upgrades(io, svc))
        } else {
            drive!(http1_builder(cfg).serve_connection(io, svc).with_upgrades())
        };
        if let Err(e) = result {
            debug!(error = %e, "http connection ended with an error");
        }
    }
}

/// Answers one request. `stream` counts it as open on its connection until it is
/// answered, or, if it is upgraded, until its session ends.
async fn answer(
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
    let backend = connect_backend(&route, client, ends.local)
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
async fn holding<T: Send>(session: impl Future<Output = ()> + Send, held: T) {
    session.await;
    drop(held);
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
