//! `wsgate client`: the other end of the tunnel. Each configured tunnel listens on a local
//! TCP port; every connection accepted there gets its own WebSocket session to the tunnel's
//! gateway URL (`args`: its flags; `plan`: what a tunnel needs, built once; `dial`, `proxy`, `handshake`:
//! opening one session; `retry`: backoff and failover while it does not open; `session`:
//! the pump and the access-log line; `stats`: the counters). Shutdown drains like the
//! gateway: stop accepting, close open sessions with 1001 after the data in flight.

mod args;
mod dial;
mod handshake;
mod plan;
mod proxy;
mod retry;
mod session;
mod stats;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{Instrument, debug, info, info_span};

use crate::config::{Config, ConfigError};
use crate::lifecycle::Lifecycle;
use crate::listener;
pub use args::{ClientArgs, load};
use plan::TunnelPlan;
use stats::StatsRegistry;

const NO_TUNNELS: &str =
    "no tunnels: add at least one { listen, url } (or pass --listen and --url)";

/// Every tunnel of a config, ready to serve.
pub struct Client {
    plans: Vec<Arc<TunnelPlan>>,
    stats: Arc<StatsRegistry>,
    grace: Duration,
    backlog: u32,
}

impl Client {
    /// Builds every tunnel of `cfg` (reading the files they name); every problem is
    /// reported at once, keyed `tunnels.<i>.<field>`.
    pub fn new(cfg: &Config) -> Result<Self, ConfigError> {
        let stats = Arc::new(StatsRegistry::new());
        let mut bad = ConfigError::default();
        let mut plans = Vec::new();
        if cfg.tunnels.is_empty() {
            bad.push("tunnels", NO_TUNNELS);
        }
        for i in 0..cfg.tunnels.len() {
            match TunnelPlan::build(cfg, i, &stats.pump) {
                Ok(plan) => plans.push(Arc::new(plan)),
                Err(e) => bad.extend(e),
            }
        }
        bad.into_result()?;
        Ok(Self {
            plans,
            stats,
            grace: cfg.shutdown.grace,
            backlog: cfg.limits.listen_backlog,
        })
    }

    /// A config loaded for `wsgate client` needs tunnels, not routes: the gateway's "no
    /// routes" problem (raised only when there are no tunnels either) says so instead.
    pub fn explain(e: ConfigError) -> ConfigError {
        let problems = e
            .problems
            .into_iter()
            .map(|mut p| {
                if p.key == "routes" && p.message.starts_with("no routes") {
                    p.key = "tunnels".into();
                    p.message = NO_TUNNELS.into();
                }
                p
            })
            .collect();
        ConfigError { problems }
    }

    /// One line per tunnel, for `wsgate check`.
    pub fn summary(&self) -> Vec<String> {
        self.plans
            .iter()
            .map(|p| {
                let urls: Vec<String> = p
                    .urls
                    .iter()
                    .map(|u| {
                        format!(
                            "{}://{}{}",
                            if u.tls { "wss" } else { "ws" },
                            u.authority,
                            u.path
                        )
                    })
                    .collect();
                format!("tunnel {} -> {}", p.listen, urls.join(", "))
            })
            .collect()
    }

    /// Binds every tunnel's listener, in order. Must run inside the tokio runtime.
    pub fn bind(&self) -> Result<Vec<TcpListener>, String> {
        self.plans
            .iter()
            .map(|p| {
                listener::bind(&p.listen, self.backlog)
                    .map_err(|e| format!("cannot listen on {}: {e}", p.listen))
            })
            .collect()
    }

    /// Serves every tunnel on its listener (as [`Self::bind`] made them) until `shutdown`
    /// resolves, then drains for at most `shutdown.grace`. `metrics`, if given, serves the
    /// counters at `/metrics`.
    pub async fn serve(
        self,
        listeners: Vec<TcpListener>,
        metrics: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) {
        let life = Lifecycle::default();
        for (plan, listener) in self.plans.iter().zip(listeners) {
            if let Ok(addr) = listener.local_addr() {
                let urls: Vec<String> = plan.urls.iter().map(|u| u.host_port()).collect();
                info!(tunnel = %plan.name, %addr, gateway = %urls.join(","), "listening");
            }
            let stats = Arc::new(self.stats.tunnel(&plan.name));
            tokio::spawn(accept_loop(listener, Arc::clone(plan), stats, life.clone()));
        }
        if let Some(listener) = metrics {
            if let Ok(addr) = listener.local_addr() {
                info!(%addr, "metrics listening");
            }
            tokio::spawn(serve_metrics(listener, Arc::clone(&self.stats)));
        }
        shutdown.await;
        info!("shutdown requested; draining");
        life.drain(self.grace).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    plan: Arc<TunnelPlan>,
    stats: Arc<stats::ClientStats>,
    life: Lifecycle,
) {
    loop {
        let (local, peer) = tokio::select! {
            conn = listener::accept(&listener) => conn,
            () = life.stopping() => return,
        };
        let span = info_span!("tunnel", tunnel = %plan.name);
        let task = session::serve(
            local,
            peer,
            Arc::clone(&plan),
            Arc::clone(&stats),
            life.clone(),
        );
        life.spawn(task.instrument(span));
    }
}

/// A minimal HTTP/1.1 responder: `GET /metrics` gets the counters, anything else 404.
async fn serve_metrics(listener: TcpListener, stats: Arc<StatsRegistry>) {
    loop {
        let (mut conn, _) = listener::accept(&listener).await;
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let Ok(n) = conn.read(&mut buf).await else {
                return;
            };
            let wanted = buf[..n].starts_with(b"GET /metrics ");
            let (status, body) = if wanted {
                ("200 OK", stats.render())
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if let Err(e) = conn.write_all(format!("{head}{body}").as_bytes()).await {
                debug!(error = %e, "metrics request failed");
            }
        });
    }
}
