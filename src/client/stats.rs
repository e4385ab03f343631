//! What `wsgate client` counts, for `--metrics-listen`: attempts to open sessions (so
//! reconnects), sessions that could not be opened, and sessions closed by how they ended,
//! per tunnel; with the per-tunnel bytes, messages and open sessions the pump counts in the
//! shared registry (as the gateway's `route` label, set to the tunnel's name).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::session::end_label;
use crate::metrics::Metrics;
use crate::pump::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TunnelLabel {
    tunnel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    tunnel: String,
    end: &'static str,
}

/// The families the pump's counters land in that mean something on the client side.
const PUMP_FAMILIES: [&str; 4] = [
    "wsgate_sessions_active",
    "wsgate_bytes_total",
    "wsgate_messages_total",
    "wsgate_pings_sent_total",
];

pub struct ClientStats {
    tunnel: String,
    attempts: Counter,
    retries: Counter,
    open_failures: Counter,
    closed: Family<EndLabels, Counter>,
}

/// Every tunnel's stats, and the registry they render from.
pub struct StatsRegistry {
    registry: Registry,
    attempts: Family<TunnelLabel, Counter>,
    retries: Family<TunnelLabel, Counter>,
    open_failures: Family<TunnelLabel, Counter>,
    closed: Family<EndLabels, Counter>,
    pub pump: Metrics,
}

impl StatsRegistry {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let attempts = Family::<TunnelLabel, Counter>::default();
        let retries = Family::<TunnelLabel, Counter>::default();
        let open_failures = Family::<TunnelLabel, Counter>::default();
        let closed = Family::<EndLabels, Counter>::default();
        registry.register(
            "wsgate_client_open_attempts",
            "Attempts to open a session to a gateway, first tries and retries",
            attempts.clone(),
        );
        registry.register(
            "wsgate_client_reconnect_attempts",
            "Attempts beyond the first to open a session (retries after a failure)",
            retries.clone(),
        );
        registry.register(
            "wsgate_client_open_failures",
            "Local connections closed because no session could be opened",
            open_failures.clone(),
        );
        registry.register(
            "wsgate_client_sessions_closed",
            "Sessions ended, by how they ended",
            closed.clone(),
        );
        Self {
            registry,
            attempts,
            retries,
            open_failures,
            closed,
            pump: Metrics::new(),
        }
    }

    /// The counters of the tunnel named `tunnel`.
    pub fn tunnel(&self, tunnel: &str) -> ClientStats {
        let label = TunnelLabel {
            tunnel: tunnel.to_string(),
        };
        ClientStats {
            tunnel: tunnel.to_string(),
            attempts: self.attempts.get_or_create(&label).clone(),
            retries: self.retries.get_or_create(&label).clone(),
            open_failures: self.open_failures.get_or_create(&label).clone(),
            closed: self.closed.clone(),
        }
    }

    /// The exposition text: these counters, then the pump's that apply to a client.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let pump = self.pump.render();
        for line in pump.lines() {
            let family = line
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ")
                .trim_start_matches("# UNIT ");
            if PUMP_FAMILIES.iter().any(|f| family.starts_with(f)) {
                // The pump's "up" is towards its backend, here the local program: named
                // from the client's side, "up" is towards the gateway.
                let line = line
                    .replace("direction=\"up\"", "direction=\"\u{0}\"")
                    .replace("direction=\"down\"", "direction=\"up\"")
                    .replace("direction=\"\u{0}\"", "direction=\"down\"");
                out.push_str(&line);
                out.push('\n');
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

impl Default for StatsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientStats {
    /// One attempt to open a session is starting; `retry` when it is not the first.
    pub fn attempt(&self, retry: bool) {
        self.attempts.inc();
        if retry {
            self.retries.inc();
        }
    }

    pub fn open_failed(&self) {
        self.open_failures.inc();
    }

    pub fn closed(&self, outcome: &Outcome) {
        let labels = EndLabels {
            tunnel: self.tunnel.clone(),
            end: end_label(&outcome.end),
        };
        self.closed.get_or_create(&labels).inc();
    }
}
