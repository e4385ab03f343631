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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabel {
    /// The certificate's server names (`default` for `tls.cert`).
    pub names: String,
}

/// One route's counters, fetched once when the route is built and shared by its sessions.
#[derive(Clone)]
pub struct RouteMetrics {
    active: Gauge,
    bytes_up: Counter,
    bytes_down: Counter,
    messages_up: Counter,
    messages_down: Counter,
    pings_sent: Counter,
}

impl RouteMetrics {
    pub fn session_opened(&self) {
        self.active.inc();
    }

    pub fn session_ended(&self) {
        self.active.dec();
    }

    /// `bytes` of payload and `messages` whole data messages went from client to backend.
    pub fn moved_up(&self, bytes: u64, messages: u64) {
        add(&self.bytes_up, bytes);
        add(&self.messages_up, messages);
    }

    /// `bytes` of payload and `messages` whole data messages went from backend to client.
    pub fn moved_down(&self, bytes: u64, messages: u64) {
        add(&self.bytes_down, bytes);
        add(&self.messages_down, messages);
    }

    pub fn ping_sent(&self) {
        self.pings_sent.inc();
    }
}

/// Adds `n`, skipping the atomic add for nothing (most reads complete no message).
fn add(counter: &Counter, n: u64) {
    if n > 0 {
        counter.inc_by(n);
    }
}

/// The metrics table: each row is a field of [`Metrics`], its type and initial value, and
/// the name (after the `wsgate_` prefix) and help text it is registered under, in the order
/// they are exported. Declaring a metric here is all it takes to export it.
macro_rules! metrics_table {
    ($($field:ident: $ty:ty = $init:expr, $name:literal, $help:literal;)*) => {
        /// Every metric the gateway exports. Updated through its methods only.
        pub struct Metrics {
            registry: Registry,
            $($field: $ty,)*
        }

        impl Metrics {
            pub fn new() -> Self {
                let mut registry = Registry::with_prefix("wsgate");
                $(
                    let $field: $ty = $init;
                    registry.register($name, $help, $field.clone());
                )*
                Self { registry, $($field,)* }
            }
        }
    };
}

metrics_table! {
    connections_accepted: Counter = Counter::default(),
        "connections_accepted", "TCP connections accepted";
    upgrades_rejected: Family<ReasonLabel, Counter> = Family::default(),
        "upgrades_rejected", "Upgrade requests refused, by reason";
    proxy_header_errors: Counter = Counter::default(),
        "proxy_header_errors", "Connections dropped for a missing or bad PROXY header";
    sessions_active: Family<RouteLabel, Gauge> = Family::default(),
        "sessions_active", "Open WebSocket sessions";
    sessions_closed: Family<CloseLabels, Counter> = Family::default(),
        "sessions_closed", "Sessions ended, by close code and the side that ended them";
    // 10 ms to about 1.5 days.
    session_duration: Histogram = Histogram::new(exponential_buckets(0.01, 4.0, 12)),
        "session_duration_seconds", "Session lifetimes";
    bytes: Family<TrafficLabels, Counter> = Family::default(),
        "bytes", "Payload bytes moved, by route and direction";
    messages: Family<TrafficLabels, Counter> = Family::default(),
        "messages", "WebSocket data messages moved, by route and direction";
    // 100 µs to about 1.6 s.
    backend_connect_seconds: Histogram = Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
        "backend_connect_seconds", "Time to connect a backend";
    backend_connect_errors: Family<ReasonLabel, Counter> = Family::default(),
        "backend_connect_errors", "Backend connects that failed, by kind";
    pings_sent: Counter = Counter::default(),
        "pings_sent", "Pings sent to clients";
    pong_timeouts: Counter = Counter::default(),
        "pong_timeouts", "Clients dropped for not answering a ping";
    config_reloads: Family<ResultLabel, Counter> = Family::default(),
        "config_reloads", "Config reloads, by result";
    tls_handshakes: Counter = Counter::default(),
        "tls_handshakes", "TLS handshakes completed";
    tls_handshake_errors: Counter = Counter::default(),
        "tls_handshake_errors", "TLS handshakes that failed or timed out";
    certificate_reloads: Family<ResultLabel, Counter> = Family::default(),
        "tls_certificate_reloads", "Certificate file reloads, by result";
    certificate_expiry: Family<CertLabel, Gauge> = Family::default(),
        "tls_certificate_expiry_timestamp_seconds",
        "When each certificate in service expires (Unix time)";
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A TCP connection was accepted on the main listener.
    pub fn connection_accepted(&self) {
        self.connections_accepted.inc();
    }

    /// A connection was dropped for a missing or bad PROXY header, or an unlisted sender.
    pub fn proxy_header_error(&self) {
        self.proxy_header_errors.inc();
    }

    pub fn tls_handshake_completed(&self) {
        self.tls_handshakes.inc();
    }

    /// A TLS handshake failed or timed out.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_errors.inc();
    }

    /// A backend connected after `seconds`.
    pub fn backend_connected(&self, seconds: f64) {
        self.backend_connect_seconds.observe(seconds);
    }

    /// Connecting a backend failed; `reject` is the refusal the client gets for it.
    pub fn backend_connect_failed(&self, reject: &Reject) {
        let reason = ReasonLabel {
            reason: reject.reason(),
        };
        self.backend_connect_errors.get_or_create(&reason).inc();
    }

    /// A config reload was applied (`ok`) or refused.
    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.config_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Changed certificate files were taken into service (`ok`) or refused.
    pub fn certificate_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.certificate_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
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
