//! wsgate: a WebSocket-to-TCP gateway. Clients connect with WebSocket; each session gets
//! its own connection to a configured TCP backend, and bytes flow both ways until either
//! side ends, with ping/pong liveness and a proper close on both.
//!
//! [`run`] is the whole server over a listener the caller binds; the binary is a thin
//! shell over it.
#![forbid(unsafe_code)]

pub mod admission;
pub mod auth;
pub mod backend;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod demo;
pub mod error;
pub mod handshake;
pub mod http;
pub mod lifecycle;
pub mod listener;
pub mod logging;
pub mod proxy_protocol;
pub mod pump;
pub mod session;
pub mod state;

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::info;

pub use config::{Config, ConfigError};
use lifecycle::Lifecycle;
use state::Shared;

/// Why [`run`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("listener: {0}")]
    Io(#[from] io::Error),
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting, closes every
/// session with 1001 and waits at most `shutdown.grace` for them.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let life = Lifecycle::default();
    let shared = Arc::new(Shared::new(cfg, life.clone())?);
    let addr = listener.local_addr()?;
    info!(%addr, routes = shared.cfg.routes.len(), "listening");
    tokio::spawn(shared.admission.clone().maintain(life.clone()));
    tokio::select! {
        () = listener::accept_loop(listener, shared.clone()) => {}
        () = shutdown => info!("shutdown requested; draining"),
    }
    life.drain(shared.cfg.shutdown.grace).await;
    info!("stopped");
    Ok(())
}
