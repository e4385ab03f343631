//! Every metric the gateway exports, in one registry, rendered in the Prometheus text
//! (OpenMetrics) format by the admin listener. Hot paths (bytes and messages per route)
//! use counter handles fetched once per route, so a message costs an atomic add and never
//! a lock.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::{Reject, SessionEnd};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    pub route: String,
    /// `up` (client to backend) or `down` (backend to client).
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The close code, bucketed by [`close_code_label`].
    pub code: &'static str,
    /// `client`, `backend` or `gateway`.
    pub side: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub connections_accepted: Counter,
    pub upgrades_rejected: Family<ReasonLabel, Counter>,
    pub proxy_header_errors: Counter,
    sessions_active: Family<RouteLabel, Gauge>,
    sessions_closed: Family<CloseLabels, Counter>,
    session_duration: Histogram,
    bytes: Family<TrafficLabels, Counter>,
    messages: Family<TrafficLabels, Counter>,
    pub backend_connect_seconds: Histogram,
    pub backend_connect_errors: Family<ReasonLabel, Counter>,
    pings_sent: Counter,
    pong_timeouts: Counter,
    pub config_reloads: Family<ResultLabel, Counter>,
    pub tls_handshakes: Counter,
    pub tls_handshake_errors: Counter,
    pub certificate_reloads: Family<ResultLabel, Counter>,
    certificate_expiry: Family<CertLabel, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabel {
    /// The certificate's server names (`default` for `tls.cert`).
    pub names: String,
}

/// One route's counters, fetched once when the route is built and shared by its sessions.
#[derive(Clone)]
pub struct RouteMetrics {
    pub active: Gauge,
    pub bytes_up: Counter,
    pub bytes_down: Counter,
    pub messages_up: Counter,
    pub messages_down: Counter,
    pub pings_sent: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wsgate");
        let m = Self {
            connections_accepted: Counter::default(),
            upgrades_rejected: Family::default(),
            proxy_header_errors: Counter::default(),
            sessions_active: Family::default(),
            sessions_closed: Family::default(),
            // 10 ms to about 1.5 days.
            session_duration: Histogram::new(exponential_buckets(0.01, 4.0, 12)),
            bytes: Family::default(),
            messages: Family::default(),
            // 100 µs to about 1.6 s.
            backend_connect_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            backend_connect_errors: Family::default(),
            pings_sent: Counter::default(),
            pong_timeouts: Counter::default(),
            config_reloads: Family::default(),
            tls_handshakes: Counter::default(),
            tls_handshake_errors: Counter::default(),
            certificate_reloads: Family::default(),
            certificate_expiry: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "connections_accepted",
            "TCP connections accepted",
            m.connections_accepted.clone(),
        );
        r.register(
            "upgrades_rejected",
            "Upgrade requests refused, by reason",
            m.upgrades_rejected.clone(),
        );
        r.register(
            "proxy_header_errors",
            "Connections dropped for a missing or bad PROXY header",
            m.proxy_header_errors.clone(),
        );
        r.register(
            "sessions_active",
            "Open WebSocket sessions",
            m.sessions_active.clone(),
        );
        r.register(
            "sessions_closed",
            "Sessions ended, by close code and the side that ended them",
            m.sessions_closed.clone(),
        );
        r.register(
            "session_duration_seconds",
            "Session lifetimes",
            m.session_duration.clone(),
        );
        r.register(
            "bytes",
            "Payload bytes moved, by route and direction",
            m.bytes.clone(),
        );
        r.register(
            "messages",
            "WebSocket data messages moved, by route and direction",
            m.messages.clone(),
        );
        r.register(
            "backend_connect_seconds",
            "Time to connect a backend",
            m.backend_connect_seconds.clone(),
        );
        r.register(
            "backend_connect_errors",
            "Backend connects that failed, by kind",
            m.backend_connect_errors.clone(),
        );
        r.register("pings_sent", "Pings sent to clients", m.pings_sent.clone());
        r.register(
            "pong_timeouts",
            "Clients dropped for not answering a ping",
            m.pong_timeouts.clone(),
        );
        r.register(
            "config_reloads",
            "Config reloads, by result",
            m.config_reloads.clone(),
        );
        r.register(
            "tls_handshakes",
            "TLS handshakes completed",
            m.tls_handshakes.clone(),
        );
        r.register(
            "tls_handshake_errors",
            "TLS handshakes that failed or timed out",
            m.tls_handshake_errors.clone(),
        );
        r.register(
            "tls_certificate_reloads",
            "Certificate file reloads, by result",
            m.certificate_reloads.clone(),
        );
        r.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When each certificate in service expires (Unix time)",
            m.certificate_expiry.clone(),
        );
        Self { registry, ..m }
    }

    /// The counter handles for one route.
    pub fn route(&self, path: &str) -> RouteMetrics {
        // One statement per handle: `get_or_create` returns a read guard, and holding one
        // while creating another label set in the same family would deadlock.
        let counter = |family: &Family<TrafficLabels, Counter>, direction| {
            let labels = TrafficLabels {
                route: path.to_string(),
                direction,
            };
            family.get_or_create(&labels).clone()
        };
        let bytes_up = counter(&self.bytes, "up");
        let bytes_down = counter(&self.bytes, "down");
        let messages_up = counter(&self.messages, "up");
        let messages_down = counter(&self.messages, "down");
        let active = self
            .sessions_active
            .get_or_create(&RouteLabel {
                route: path.to_string(),
            })
            .clone();
        RouteMetrics {
            active,
            bytes_up,
            bytes_down,
            messages_up,
            messages_down,
            pings_sent: self.pings_sent.clone(),
        }
    }

    /// Records the expiry of every certificate now in service.
    pub fn certificate_expiries(&self, expiries: &[(String, i64)]) {
        self.certificate_expiry.clear();
        for (names, not_after) in expiries {
            self.certificate_expiry
                .get_or_create(&CertLabel {
                    names: names.clone(),
                })
                .set(*not_after);
        }
    }

    pub fn rejected(&self, reject: &Reject) {
        self.upgrades_rejected
            .get_or_create(&ReasonLabel {
                reason: reject.reason(),
            })
            .inc();
    }

    /// Records a finished session.
    pub fn session_closed(&self, end: &SessionEnd, seconds: f64) {
        let labels = CloseLabels {
            code: close_code_label(end.logged_code()),
            side: end.ended_by().as_str(),
        };
        self.sessions_closed.get_or_create(&labels).inc();
        self.session_duration.observe(seconds);
        if *end == SessionEnd::PeerGone {
            self.pong_timeouts.inc();
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The close codes RFC 6455 and the IANA registry define (1000-1015), each its own label.
const REGISTERED_CLOSE_CODES: [&str; 16] = [
    "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010", "1011",
    "1012", "1013", "1014", "1015",
];

/// The `code` label for a close code. A client chooses the code it closes with, so codes
/// outside the registered range are bucketed: `3xxx` (registered for libraries and
/// frameworks), `4xxx` (private use) and `other`. A client can then create at most 19
/// series, not one per code.
pub fn close_code_label(code: u16) -> &'static str {
    match code {
        1000..=1015 => REGISTERED_CLOSE_CODES[usize::from(code - 1000)],
        3000..=3999 => "3xxx",
        4000..=4999 => "4xxx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::close_code_label;

    #[test]
    fn registered_codes_are_themselves_and_the_rest_are_bucketed() {
        for code in 1000..=1015u16 {
            assert_eq!(close_code_label(code), code.to_string());
        }
        assert_eq!(close_code_label(3000), "3xxx");
        assert_eq!(close_code_label(3999), "3xxx");
        assert_eq!(close_code_label(4000), "4xxx");
        assert_eq!(close_code_label(4321), "4xxx");
        for other in [0, 999, 1016, 2999, 5000, u16::MAX] {
            assert_eq!(close_code_label(other), "other");
        }
    }
}
