//! Connecting the backend: each configured address in order, each with the route's connect
//! timeout, and the socket options a long-lived tunnel needs.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpStream, lookup_host};
use tokio::time::timeout;
use tracing::debug;

use crate::socket_options;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Every attempt ran out of time (answered 504).
    #[error("connecting {addr} timed out")]
    Timeout { addr: String },
    /// The address did not resolve or refused the connection (answered 502).
    #[error("connecting {addr} failed: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
}

/// A connected backend and the address it was reached at.
pub struct Backend {
    pub stream: TcpStream,
    pub addr: SocketAddr,
}

/// Tries `addrs` in order, allowing `per_attempt` for each (name resolution included).
/// Fails with [`BackendError::Timeout`] only if every attempt timed out; otherwise with the
/// last other failure.
pub async fn connect(addrs: &[String], per_attempt: Duration) -> Result<Backend, BackendError> {
    let mut failure = None;
    for addr in addrs {
        let err = match timeout(per_attempt, connect_one(addr)).await {
            Ok(Ok(backend)) => return Ok(backend),
            Ok(Err(source)) => BackendError::Connect {
                addr: addr.clone(),
                source,
            },
            Err(_) => BackendError::Timeout { addr: addr.clone() },
        };
        debug!(backend = %addr, error = %err, "backend attempt failed");
        failure = match (failure, err) {
            (Some(prev @ BackendError::Connect { .. }), BackendError::Timeout { .. }) => Some(prev),
            (_, err) => Some(err),
        };
    }
    Err(failure.unwrap_or_else(|| BackendError::Connect {
        addr: String::new(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "no backend configured"),
    }))
}

/// Resolves `addr` and connects to the first of its addresses that accepts.
async fn connect_one(addr: &str) -> io::Result<Backend> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "name resolved to no address");
    for sa in lookup_host(addr).await? {
        match TcpStream::connect(sa).await {
            Ok(stream) => {
                socket_options::tune_backend(&stream, sa.ip())?;
                return Ok(Backend { stream, addr: sa });
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
