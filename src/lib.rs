//! wsgate: a WebSocket-to-TCP gateway. Clients connect with WebSocket; each session gets
//! its own connection to a configured TCP backend, and bytes flow both ways until either
//! side ends, with ping/pong liveness and a proper close on both.
//!
//! [`Server`] is the whole gateway over listeners the caller binds ([`Server::new`], then
//! [`Server::serve`]); the binary is a thin shell over it, and the tests bind port 0.
//!
//! # Module map, in the order a connection meets them
//!
//! - `config`: the typed configuration, its layers and validation; `cli` parses the command
//!   line into it, `reload` re-reads it on SIGHUP or a file change.
//! - `generation`: everything built from one config (routes, TLS setup, trusted proxies,
//!   credentials, admission rules), swapped whole on reload or certificate renewal, and
//!   the state that outlives reloads (caps, metrics, readiness, lifecycle).
//! - `listener`: binding and the accept loop, with its pending-handshake cap;
//!   `socket_options` the options every client socket inherits.
//! - `connection`: one client connection: PROXY header (`proxy_protocol`), TLS (`tls`),
//!   HTTP/1.1 and HTTP/2, then each request, probe or upgrade (`connection::upgrade`).
//! - `client_ip`: the real client address behind trusted proxies.
//! - `handshake`: the RFC 6455 / RFC 8441 upgrade checks and the 101.
//! - `admission`: the checks before the 101, applying `policy` (Origin allowlist, rates,
//!   session caps) and `auth` (tokens, JWT, client certificate names).
//! - `backend`: connecting a route's backend.
//! - `session`: one session from the upgrade to its log line; `pump` moves the bytes both
//!   ways with liveness and the close, `frame` reads and writes WebSocket frames, and
//!   `tcp_info` reads the kernel's view of a socket.
//! - `error`: every refusal (`Reject`) and session end (`SessionEnd`), each with one table
//!   of what it means on the wire; `metrics` counts them.
//! - `ops`: probes, `/metrics`, the admin listener and the backend check; `health` holds
//!   the readiness they report.
//! - `lifecycle`: signals, and the drain that ends every tracked task; `exposure` and
//!   `logging` speak at startup.
//! - `client`: `wsgate client`, the other end of the tunnel: local TCP ports carried over
//!   WebSocket to a gateway, on the same `pump` and `frame` with the roles turned around.
//! - `demo` and `devcert`: `wsgate demo`'s echo backend and page, and development
//!   certificates. `internals` (hidden) lets the fuzz targets and tests reach parsers.
#![deny(unsafe_code)] // allowed in `tcp_info` alone: two syscalls with no safe wrapper

pub(crate) mod admission;
pub(crate) mod auth;
pub(crate) mod backend;
pub mod cli;
pub mod client;
pub(crate) mod client_ip;
pub mod config;
pub(crate) mod connection;
pub mod demo;
pub mod devcert;
pub(crate) mod error;
pub(crate) mod exposure;
pub(crate) mod frame;
pub(crate) mod generation;
pub(crate) mod handshake;
pub(crate) mod health;
#[doc(hidden)]
pub mod internals;
pub mod lifecycle;
pub mod listener;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod ops;
pub(crate) mod policy;
pub(crate) mod proxy_protocol;
pub(crate) mod pump;
pub mod reload;
pub(crate) mod session;
pub(crate) mod socket_options;
pub(crate) mod tcp_info;
pub(crate) mod tls;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::sleep;
use tracing::{info, warn};

pub use config::{Config, ConfigError};
pub use generation::ReloadReport;
use generation::Shared;
use lifecycle::Lifecycle;

/// How often idle per-client rate-limit state is dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("listener: {0}")]
    Io(#[from] io::Error),
}

/// The sockets a server serves on. The caller binds them (port 0 in tests).
pub struct Listeners {
    pub main: TcpListener,
    /// Metrics and probes; `None` serves probes on the main listener only.
    pub admin: Option<TcpListener>,
}

/// A gateway built from a config, not yet serving.
pub struct Server {
    shared: Arc<Shared>,
}

/// Reaches into a running server: reload its config, read its metrics and readiness.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Server {
    /// Checks `cfg` fully (files it names are read) and builds the serving state.
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        Ok(Self {
            shared: Arc::new(Shared::new(cfg, Lifecycle::default())?),
        })
    }

    /// As [`Server::new`], also answering a browser's plain GET of `/` with the demo's
    /// page; `wsgate demo` uses this.
    pub fn demo(cfg: Config) -> Result<Self, ConfigError> {
        let mut shared = Shared::new(cfg, Lifecycle::default())?;
        shared.demo_page = true;
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` resolves, then drains: not ready at once, still accepting
    /// for `shutdown.delay`, then sessions close with 1001 and get `shutdown.grace` to end.
    ///
    /// The listener's socket options, which every connection inherits, are set here,
    /// before the returned future first runs: call this before clients may arrive.
    pub fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> impl Future<Output = Result<(), StartError>> {
        listener::tune(&listeners.main, &self.shared);
        self.serve_tuned(listeners, shutdown)
    }

    async fn serve_tuned(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartError> {
        let shared = self.shared;
        let addr = listeners.main.local_addr()?;
        let admin_addr = listeners
            .admin
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let routes = shared.current().cfg.routes.len();
        let admin_text = admin_addr.map_or_else(|| "off".to_string(), |a| a.to_string());
        info!(%addr, admin = %admin_text, routes, "listening");
        exposure::warn_about(&shared.current().cfg, addr);
        log_warnings(&shared.current().cfg);
        let admin = listeners
            .admin
            .map(|l| tokio::spawn(ops::admin::serve(l, shared.clone())));
        tokio::spawn(prune_rates(shared.clone()));
        tokio::spawn(ops::backend_check::run(shared.clone()));
        tokio::spawn(generation::certificate_watch::run(shared.clone()));

        // On a worker thread, not this one: a connection spawned from a worker starts on
        // that worker without waking another thread, where one spawned from here would
        // cost two cross-thread wake-ups (the worker that saw the listener ready waking
        // this thread, this thread waking a worker to run the connection).
        let mut accept = tokio::spawn(listener::accept_loop(
            listeners.main,
            shared.clone(),
            connection::serve_connection,
        ));
        tokio::select! {
            _ = &mut accept => {}
            () = shutdown => {}
        }
        shared.health.start_draining();
        let shutdown_cfg = shared.current().cfg.shutdown.clone();
        info!(delay = ?shutdown_cfg.delay, "shutdown requested; not ready, still accepting until the delay ends");
        tokio::select! {
            _ = &mut accept => {}
            () = sleep(shutdown_cfg.delay) => {}
        }
        // Closes the listener once the aborted task is gone: new connections are refused
        // from here.
        accept.abort();
        let _ = accept.await;
        shared.life.drain(shutdown_cfg.grace).await;
        if let Some(admin) = admin {
            admin.abort();
        }
        info!("stopped");
        Ok(())
    }
}

impl Handle {
    /// Applies `cfg` to new connections, or keeps the running config if it has problems
    /// (each logged with its key). Open sessions keep the settings they started with.
    pub fn reload(&self, cfg: Config) -> Result<ReloadReport, ConfigError> {
        match self.shared.reload(cfg) {
            Ok(report) => {
                info!("configuration reloaded");
                log_warnings(&self.shared.current().cfg);
                for key in &report.needs_restart {
                    warn!(
                        key,
                        "this setting changed but takes effect only after a restart"
                    );
                }
                Ok(report)
            }
            Err(e) => {
                self.log_refusal(&e);
                Err(e)
            }
        }
    }

    /// Reloads the certificate files of the running config, as the certificate watcher
    /// does when they change. A pair that does not load is refused (logged and counted in
    /// `wsgate_tls_certificate_reloads_total`) and the running certificates stay.
    pub fn refresh_certificates(&self) {
        self.shared.refresh_certificates();
    }

    /// Records a reload that failed before a config could even be built (bad file).
    pub fn refuse_reload(&self, e: &ConfigError) {
        self.shared.metrics.config_reload(false);
        self.log_refusal(e);
    }

    fn log_refusal(&self, e: &ConfigError) {
        for p in &e.problems {
            warn!(key = %p.key, problem = %p.message, "reload refused; keeping the running configuration");
        }
    }

    /// The configuration new connections use now.
    pub fn config(&self) -> Config {
        self.shared.current().cfg.clone()
    }

    /// The Prometheus exposition text.
    pub fn metrics(&self) -> String {
        self.shared.metrics.render()
    }

    pub fn ready(&self) -> bool {
        self.shared.health.ready()
    }
}

/// Logs what is valid in `cfg` but weakens the gateway (see [`Config::warnings`]).
fn log_warnings(cfg: &Config) {
    for w in cfg.warnings() {
        warn!(key = %w.key, warning = %w.message, "unsafe configuration accepted");
    }
}

/// Drops idle per-client rate-limit state every minute, until shutdown.
async fn prune_rates(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => shared.current().rates.prune(),
            () = shared.life.stopping() => return,
        }
    }
}
