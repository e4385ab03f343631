//! The config generation and its replacement. What connections read: the current
//! [`Generation`] (everything built from one config, swapped whole on reload) and what outlives reloads (session caps, metrics, health, the
//! lifecycle, connection ids). A connection takes the generation current when it arrives;
//! a session keeps the route plan it started with until it ends.
//!
//! Two tasks replace the generation: config reloads and certificate renewals. They take
//! turns (one lock around reading the current generation, building the next and storing
//! it), so neither can store a generation built from what the other has just replaced. A
//! renewal rebuilds only the TLS part of the current generation: the rest, credentials
//! included, stays as the last good config built it, so a broken token or key file
//! never holds back a renewed certificate.

pub mod certificate_watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tracing::{error, info};

use crate::auth::{AdminTokens, Authenticator};
use crate::client_ip::TrustedProxies;
use crate::config::{Config, ConfigError, Limits, Route};
use crate::health::Health;
use crate::lifecycle::Lifecycle;
use crate::metrics::{Metrics, RouteMetrics};
use crate::policy::{OriginPolicy, RateLimits, SessionCaps};
use crate::pump::PumpConfig;
use crate::tls::{self, TlsSetup};

/// One route, resolved against the top-level defaults.
pub struct RoutePlan {
    pub path: String,
    pub backends: Vec<String>,
    pub connect_timeout: Duration,
    pub subprotocols: Vec<String>,
    pub origins: OriginPolicy,
    pub auth: Option<Authenticator>,
    pub backend_proxy_protocol: bool,
    /// Client certificate names allowed (empty: any verified certificate, or none).
    pub client_names: Vec<String>,
    pub pump: PumpConfig,
    pub metrics: RouteMetrics,
}

impl RoutePlan {
    fn build(
        cfg: &Config,
        i: usize,
        route: &Route,
        metrics: &Metrics,
        bad: &mut ConfigError,
    ) -> Option<Self> {
        let (origins, origins_key) = match &route.origins {
            Some(list) => (list.as_slice(), format!("routes.{i}.origins")),
            None => (cfg.origins.as_slice(), "origins".to_string()),
        };
        let origins = OriginPolicy::new(origins, cfg.allow_missing_origin)
            .map_err(|e| bad.push_indexed(&origins_key, e))
            .ok();
        let auth = Authenticator::from_route(route, &format!("routes.{i}"))
            .map_err(|problems| bad.problems.extend(problems))
            .ok();
        Some(Self {
            path: route.path.clone(),
            backends: route.backend.0.clone(),
            connect_timeout: cfg.connect_timeout_for(route),
            subprotocols: route.subprotocols.clone(),
            origins: origins?,
            auth: auth?,
            backend_proxy_protocol: route.backend_proxy_protocol,
            client_names: route.client_names.clone(),
            pump: PumpConfig::new(cfg, route),
            metrics: metrics.route(&route.path),
        })
    }
}

/// Everything built from one config. Building it is the full check of a config: files
/// it names (tokens, keys) are read.
pub struct Generation {
    pub cfg: Config,
    routes: HashMap<String, Arc<RoutePlan>>,
    pub trusted: TrustedProxies,
    /// Peers allowed to send a PROXY header (`proxy_protocol_from`).
    pub proxy_senders: TrustedProxies,
    pub rates: Arc<RateLimits>,
    /// The TLS setup, when `tls` is on.
    pub tls: Option<Arc<TlsSetup>>,
    /// What the admin listener asks for besides the probes, when `admin.tokens` is set.
    pub admin_tokens: Option<Arc<AdminTokens>>,
}

impl Generation {
    /// Builds from `cfg`; `previous` lends its rate-limit state when the rates are unchanged.
    pub fn build(
        cfg: Config,
        metrics: &Metrics,
        previous: Option<&Generation>,
    ) -> Result<Self, ConfigError> {
        cfg.validate().map_err(|e| cfg.redact(e))?;
        let mut bad = ConfigError::default();
        let trusted = TrustedProxies::parse(&cfg.trusted_proxies)
            .map(|t| t.reading(cfg.client_ip_header))
            .map_err(|e| bad.push_indexed("trusted_proxies", e))
            .ok();
        let proxy_senders = TrustedProxies::parse(&cfg.proxy_protocol_from)
            .map_err(|e| bad.push_indexed("proxy_protocol_from", e))
            .ok();
        let mut routes = HashMap::new();
        for (i, route) in cfg.routes.iter().enumerate() {
            if let Some(plan) = RoutePlan::build(&cfg, i, route, metrics, &mut bad) {
                routes.insert(route.path.clone(), Arc::new(plan));
            }
        }
        let admin_tokens = match &cfg.admin.tokens {
            None => None,
            Some(source) => AdminTokens::load(source)
                .map(|t| Some(Arc::new(t)))
                .map_err(|problems| bad.problems.extend(problems))
                .unwrap_or_default(),
        };
        let tls = tls::build(&cfg.tls, cfg.http2)
            .map_err(|e| bad.extend(e))
            .ok()
            .flatten()
            .map(Arc::new);
        bad.into_result().map_err(|e| cfg.redact(e))?;
        let rates = match previous {
            Some(p) if same_rates(&p.cfg.limits, &cfg.limits) => p.rates.clone(),
            _ => Arc::new(RateLimits::new(&cfg.limits)),
        };
        Ok(Self {
            cfg,
            routes,
            trusted: trusted.unwrap_or_default(),
            proxy_senders: proxy_senders.unwrap_or_default(),
            rates,
            tls,
            admin_tokens,
        })
    }

    /// This generation serving `tls` instead of its own TLS setup; everything else shared.
    fn with_tls(&self, tls: TlsSetup) -> Self {
        Self {
            cfg: self.cfg.clone(),
            routes: self.routes.clone(),
            trusted: self.trusted.clone(),
            proxy_senders: self.proxy_senders.clone(),
            rates: self.rates.clone(),
            tls: Some(Arc::new(tls)),
            admin_tokens: self.admin_tokens.clone(),
        }
    }

    /// The route for an exact request path.
    pub fn route(&self, path: &str) -> Option<&Arc<RoutePlan>> {
        self.routes.get(path)
    }

    /// Whether some route tells its backend who the client is (PROXY v2), which needs the
    /// gateway's own address on each connection.
    pub fn routes_send_proxy_header(&self) -> bool {
        self.cfg.routes.iter().any(|r| r.backend_proxy_protocol)
    }
}

fn same_rates(a: &Limits, b: &Limits) -> bool {
    (a.per_ip_rate, a.per_ip_burst, a.global_rate, a.global_burst)
        == (b.per_ip_rate, b.per_ip_burst, b.global_rate, b.global_burst)
}

/// What a reload changed that only a restart can apply.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub needs_restart: Vec<&'static str>,
}

pub struct Shared {
    current: ArcSwap<Generation>,
    /// Held from reading the current generation to storing its successor (see the module
    /// doc). Building is synchronous file reading and parsing, so a plain mutex will do.
    replacing: Mutex<()>,
    pub caps: SessionCaps,
    pub metrics: Metrics,
    pub health: Health,
    pub life: Lifecycle,
    /// Answer a plain GET of `/` with the demo's page (`wsgate demo` only).
    pub demo_page: bool,
    next_id: AtomicU64,
}

impl Shared {
    /// Checks `cfg` fully and builds the serving state.
    pub fn new(cfg: Config, life: Lifecycle) -> Result<Self, ConfigError> {
        let metrics = Metrics::new();
        let generation = Generation::build(cfg, &metrics, None)?;
        if let Some(tls) = &generation.tls {
            metrics.certificate_expiries(&tls.expiries);
        }
        let l = &generation.cfg.limits;
        let caps = SessionCaps::new(l.max_connections, l.max_connections_per_ip);
        Ok(Self {
            current: ArcSwap::from_pointee(generation),
            replacing: Mutex::new(()),
            caps,
            metrics,
            health: Health::default(),
            life,
            demo_page: false,
            next_id: AtomicU64::new(1),
        })
    }

    /// The generation new connections use now.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Replaces the generation for new connections, or keeps the running one if `cfg` has
    /// any problem. Open sessions are not touched either way.
    pub fn reload(&self, cfg: Config) -> Result<ReloadReport, ConfigError> {
        let _turn = self.take_turn();
        let old = self.current();
        let built = Generation::build(cfg, &self.metrics, Some(&old));
        self.metrics.config_reload(built.is_ok());
        let new = built?;
        let (a, b) = (&old.cfg, &new.cfg);
        let mut report = ReloadReport::default();
        for (key, changed) in [
            ("listen", a.listen != b.listen),
            ("admin.listen", a.admin.listen != b.admin.listen),
            (
                "limits.max_pending_handshakes",
                a.limits.max_pending_handshakes != b.limits.max_pending_handshakes,
            ),
            (
                "log",
                a.log.format != b.log.format
                    || a.log.level != b.log.level
                    || a.log.flush_interval != b.log.flush_interval,
            ),
        ] {
            if changed {
                report.needs_restart.push(key);
            }
        }
        let l = &b.limits;
        self.caps
            .set_limits(l.max_connections, l.max_connections_per_ip);
        self.install(new);
        Ok(report)
    }

    /// Makes `generation` the one new connections use.
    fn install(&self, generation: Generation) {
        if let Some(tls) = &generation.tls {
            self.metrics.certificate_expiries(&tls.expiries);
        }
        self.current.store(Arc::new(generation));
    }

    /// Waits for any other replacement of the generation to finish, and holds off others
    /// until the returned guard is dropped.
    fn take_turn(&self) -> std::sync::MutexGuard<'_, ()> {
        // Nothing is left half-done by a panic while it is held: the guard protects no data.
        self.replacing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-reads the certificate files of the running config and serves them to new
    /// connections; nothing else in the generation is rebuilt (credential files are not
    /// read). A replacement that does not load is refused (logged and counted) and the
    /// running certificates stay.
    pub fn refresh_certificates(&self) {
        let _turn = self.take_turn();
        let old = self.current();
        let ok = match tls::build(&old.cfg.tls, old.cfg.http2) {
            Ok(None) => return, // TLS is off: nothing to renew
            Ok(Some(setup)) => {
                self.install(old.with_tls(setup));
                info!("certificates reloaded");
                true
            }
            Err(e) => {
                for p in &e.problems {
                    error!(key = %p.key, problem = %p.message, "new certificate refused; keeping the running one");
                }
                false
            }
        };
        self.metrics.certificate_reload(ok);
    }

    /// A process-unique connection id for logs.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
