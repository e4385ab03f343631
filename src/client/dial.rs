//! Opening one session to one gateway URL: TCP (directly or through a proxy's CONNECT),
//! TLS when the URL is wss://, then the upgrade. Each failure says whether trying again may
//! help ([`DialError::retryable`]): a refused connection or a gateway answering 503 may,
//! a 401 or a certificate the client does not trust will not.

use std::io;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::handshake::{self, Opened};
use super::plan::TunnelPlan;
use super::proxy;
use crate::config::GatewayUrl;
use crate::socket_options;

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("proxy: {0}")]
    Proxy(io::Error),
    #[error("proxy refused the tunnel with status {0}")]
    ProxyRefused(u16),
    #[error("tls: {0}")]
    Tls(io::Error),
    #[error("{0}")]
    Io(io::Error),
    #[error("gateway answered {0} instead of 101")]
    Refused(u16),
    #[error("bad handshake: {0}")]
    Handshake(&'static str),
    #[error("the connection closed before an answer")]
    ClosedEarly,
    #[error("no answer within the connect timeout")]
    Timeout,
    #[error("{0}")]
    Setup(String),
}

impl DialError {
    /// Whether another attempt may succeed: the gateway or the path to it is down or busy,
    /// not refusing us for what we are.
    pub fn retryable(&self) -> bool {
        match self {
            // A gateway (or a load balancer) closing without an answer is often one that
            // is restarting.
            Self::Connect(_) | Self::Proxy(_) | Self::Timeout | Self::ClosedEarly => true,
            // TLS refusing us after the handshake (TLS 1.3 checks a client certificate
            // then) surfaces on the first read as invalid data; a reset is worth a retry.
            Self::Io(e) => e.kind() != io::ErrorKind::InvalidData,
            Self::Refused(code) | Self::ProxyRefused(code) => {
                matches!(code, 408 | 429 | 500..=599)
            }
            // A certificate problem is not fixed by waiting; a TLS connection reset is.
            Self::Tls(e) => e.kind() != io::ErrorKind::InvalidData,
            Self::Handshake(_) | Self::Setup(_) => false,
        }
    }

    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Proxy(_) | Self::ProxyRefused(_) => "proxy",
            Self::Tls(_) => "tls",
            Self::Io(e) if e.kind() == io::ErrorKind::InvalidData => "tls",
            Self::Io(_) => "io",
            Self::Refused(_) => "refused",
            Self::Handshake(_) => "handshake",
            Self::ClosedEarly => "closed",
            Self::Timeout => "timeout",
            Self::Setup(_) => "setup",
        }
    }
}

/// The gateway connection, as the pump takes it.
pub enum GatewayStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open session: the stream, and what the handshake said.
pub struct Dialed {
    pub stream: GatewayStream,
    pub opened: Opened,
}

/// One attempt at `url`, without a deadline (the caller sets one).
pub async fn dial(plan: &TunnelPlan, url: &GatewayUrl) -> Result<Dialed, DialError> {
    let tcp = match proxy::choose(plan.proxy.as_deref(), url).map_err(DialError::Setup)? {
        Some(p) => proxy::connect(&p, url).await?,
        None => TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(DialError::Connect)?,
    };
    // As the gateway's own sockets: no Nagle, keepalive probes spread in time (none to a
    // peer on loopback), and at most `limits.max_unsent_to_client` unsent in the kernel,
    // so our pings, pongs and close never wait behind megabytes queued towards the gateway.
    let peer = tcp.peer_addr().map_err(DialError::Connect)?;
    socket_options::tune_backend(&tcp, peer.ip()).map_err(DialError::Connect)?;
    SockRef::from(&tcp)
        .set_tcp_notsent_lowat(plan.max_unsent)
        .map_err(DialError::Connect)?;
    let extras = &plan.extras;
    if !url.tls {
        let mut tcp = tcp;
        let opened = handshake::open(&mut tcp, url, extras).await?;
        return Ok(Dialed {
            stream: GatewayStream::Plain(tcp),
            opened,
        });
    }
    let tls = plan
        .tls
        .as_ref()
        .ok_or_else(|| DialError::Setup("no TLS settings for a wss:// URL".into()))?;
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| DialError::Setup(format!("{:?} is not a server name", url.host)))?;
    let mut stream = TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .map_err(DialError::Tls)?;
    let opened = handshake::open(&mut stream, url, extras).await?;
    Ok(Dialed {
        stream: GatewayStream::Tls(Box::new(stream)),
        opened,
    })
}
