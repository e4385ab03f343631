//! One client TCP connection: the optional PROXY header, TLS, HTTP/1.1 (and HTTP/2 when
//! on) until the client leaves, the connection is upgraded, or shutdown. Everything before
//! the first complete request shares one deadline (`limits.handshake_timeout` from
//! accept). Each request is answered by [`upgrade`]: a probe, the demo page, or an upgrade
//! request.

mod activity;
mod builders;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

use crate::generation::{Generation, Shared};
use crate::proxy_protocol;
use crate::tls::{self, ClientIdentity, Transport};

pub use activity::OpenStream;
use activity::{Activity, Expiry};
use builders::{auto_builder, http1_builder};

/// Where a connection comes from and where it arrived.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The client as far as the transport knows: the PROXY header's source if the listener
    /// takes one, else the TCP peer.
    pub client: SocketAddr,
    /// The gateway's own address on this connection, looked up only when a route sends
    /// it to its backend (PROXY v2): one system call less per connection otherwise.
    pub local: Option<SocketAddr>,
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
    // Connection-level settings are those current when it arrived.
    let generation = shared.current();
    let local = generation
        .routes_send_proxy_header()
        .then(|| tcp.local_addr().unwrap_or(peer));
    // PROXY header, TLS, protocol detection and request headers all fit in this one
    // deadline, so a client slow at every step is still dropped on time.
    let deadline = accepted + generation.cfg.limits.handshake_timeout;
    let activity = Activity::new(pending);
    let client = if generation.cfg.proxy_protocol {
        match read_proxy_header(&mut tcp, peer, deadline, &generation, &shared).await {
            Some(client) => client,
            None => return,
        }
    } else {
        peer
    };
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
            let h2 = stream.alpn_protocol() == Some(b"h2");
            let ends = Endpoints {
                client,
                local,
                identity: tls::client_identity(&stream),
                transport: http2_transport(h2, stream.tcp()),
            };
            http.serve(*stream, ends).await;
        }
        Err(e) => {
            shared.metrics.tls_handshake_failed();
            debug!(error = %e, %client, "dropped: TLS handshake");
        }
    }
}

/// The client a PROXY header names (its source, or `peer` for `UNKNOWN`/`LOCAL`); `None`,
/// counted and logged, when the header is bad, late, or from a peer not allowed to send one.
async fn read_proxy_header(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    generation: &Generation,
    shared: &Shared,
) -> Option<SocketAddr> {
    let senders = &generation.proxy_senders;
    let read = timeout_at(
        deadline,
        proxy_protocol::read_header_from(peer.ip(), senders, tcp),
    );
    match read.await {
        Ok(Ok(header)) => Some(header.client_or(peer)),
        Ok(Err(e)) => {
            shared.metrics.proxy_header_error();
            debug!(error = %e, "dropped: bad PROXY protocol header");
            None
        }
        Err(_) => {
            shared.metrics.proxy_header_error();
            debug!("dropped: no PROXY protocol header in time");
            None
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
            async move { Ok::<_, Infallible>(upgrade::answer(req, ends, stream, &shared).await) }
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
