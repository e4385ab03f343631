//! What every connection reads and nothing changes while serving: the config, the route
//! table built from it, the WebSocket settings, and the connection id counter.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::{Config, ConfigError};
use crate::lifecycle::Lifecycle;
use crate::pump::PumpConfig;

/// One route, resolved against the top-level defaults.
#[derive(Debug)]
pub struct RoutePlan {
    pub path: String,
    pub backends: Vec<String>,
    pub connect_timeout: Duration,
    pub subprotocols: Vec<String>,
    pub pump: PumpConfig,
}

pub struct Shared {
    pub cfg: Config,
    routes: HashMap<String, Arc<RoutePlan>>,
    pub ws_config: WebSocketConfig,
    pub life: Lifecycle,
    next_id: AtomicU64,
}

impl Shared {
    /// Validates `cfg` and builds the route table.
    pub fn new(cfg: Config, life: Lifecycle) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let routes = cfg
            .routes
            .iter()
            .map(|route| {
                let plan = RoutePlan {
                    path: route.path.clone(),
                    backends: route.backend.0.clone(),
                    connect_timeout: cfg.connect_timeout_for(route),
                    subprotocols: route.subprotocols.clone(),
                    pump: PumpConfig::new(&cfg, route),
                };
                (route.path.clone(), Arc::new(plan))
            })
            .collect();
        let l = &cfg.limits;
        // Writes go out per message (write_buffer_size 0): the pump already sends one
        // message at a time, and buffering would only hold bytes back from the client.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(l.read_buffer_size.as_usize())
            .write_buffer_size(0)
            .max_message_size(Some(l.max_message_size.as_usize()))
            .max_frame_size(Some(l.max_frame_size.as_usize()));
        Ok(Self {
            cfg,
            routes,
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
