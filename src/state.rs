//! What every connection reads and nothing changes while serving: the config, the route
//! table built from it (with each route's origin and credential rules), the admission
//! state, the WebSocket settings, and the connection id counter.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::admission::{Admission, OriginPolicy};
use crate::auth::Authenticator;
use crate::client_ip::TrustedProxies;
use crate::config::{Config, ConfigError, Route};
use crate::lifecycle::Lifecycle;
use crate::pump::PumpConfig;

/// One route, resolved against the top-level defaults.
pub struct RoutePlan {
    pub path: String,
    pub backends: Vec<String>,
    pub connect_timeout: Duration,
    pub subprotocols: Vec<String>,
    pub origins: OriginPolicy,
    pub auth: Option<Authenticator>,
    pub backend_proxy_protocol: bool,
    pub pump: PumpConfig,
}

impl RoutePlan {
    fn build(cfg: &Config, i: usize, route: &Route, bad: &mut ConfigError) -> Option<Self> {
        let (origins, origins_key) = match &route.origins {
            Some(list) => (list.as_slice(), format!("routes.{i}.origins")),
            None => (cfg.origins.as_slice(), "origins".to_string()),
        };
        let origins = OriginPolicy::new(origins, cfg.allow_missing_origin)
            .map_err(|e| {
                for (j, why) in e {
                    bad.push(format!("{origins_key}.{j}"), why);
                }
            })
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
            pump: PumpConfig::new(cfg, route),
        })
    }
}

/// Everything built from a config, before any socket: route plans and trusted proxies.
/// Building it is the full check of a config (files named in it are read).
pub struct Plan {
    routes: HashMap<String, Arc<RoutePlan>>,
    trusted: TrustedProxies,
}

impl Plan {
    pub fn build(cfg: &Config) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut bad = ConfigError::default();
        let trusted = TrustedProxies::parse(&cfg.trusted_proxies)
            .map(|t| t.reading(cfg.client_ip_header))
            .map_err(|e| {
                for (i, why) in e {
                    bad.push(format!("trusted_proxies.{i}"), why);
                }
            })
            .ok();
        let mut routes = HashMap::new();
        for (i, route) in cfg.routes.iter().enumerate() {
            if let Some(plan) = RoutePlan::build(cfg, i, route, &mut bad) {
                routes.insert(route.path.clone(), Arc::new(plan));
            }
        }
        bad.into_result()?;
        Ok(Self {
            routes,
            trusted: trusted.unwrap_or_default(),
        })
    }
}

pub struct Shared {
    pub cfg: Config,
    routes: HashMap<String, Arc<RoutePlan>>,
    pub trusted: TrustedProxies,
    pub admission: Arc<Admission>,
    pub ws_config: WebSocketConfig,
    pub life: Lifecycle,
    next_id: AtomicU64,
}

impl Shared {
    /// Checks `cfg` fully and builds the serving state.
    pub fn new(cfg: Config, life: Lifecycle) -> Result<Self, ConfigError> {
        let Plan { routes, trusted } = Plan::build(&cfg)?;
        let l = &cfg.limits;
        // Writes go out per message (write_buffer_size 0): the pump already sends one
        // message at a time, and buffering would only hold bytes back from the client.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(l.read_buffer_size.as_usize())
            .write_buffer_size(0)
            .max_message_size(Some(l.max_message_size.as_usize()))
            .max_frame_size(Some(l.max_frame_size.as_usize()));
        let admission = Arc::new(Admission::new(&cfg));
        Ok(Self {
            cfg,
            routes,
            trusted,
            admission,
            ws_config,
            life,
            next_id: AtomicU64::new(1),
        })
    }

    /// The route for an exact request path.
    pub fn route(&self, path: &str) -> Option<&Arc<RoutePlan>> {
        self.routes.get(path)
    }

    /// A process-unique connection id for logs.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
