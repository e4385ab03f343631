//! Checks that go beyond types: ranges, consistency between keys, addresses that parse.
//! Every problem is collected with its dotted key before anything is reported.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::units::{ByteSize, Rate, format_duration};
use super::{Config, ConfigError, Route};

/// Upper bound for message and frame limits: one message is buffered whole in memory.
const MAX_MESSAGE_CEILING: ByteSize = ByteSize::mib(1024);
/// Bounds for per-read buffer sizes.
const MIN_BUFFER: ByteSize = ByteSize(256);
const MAX_BUFFER: ByteSize = ByteSize::mib(16);
/// Below this, a client socket would wake the gateway for every few segments.
const MIN_UNSENT: ByteSize = ByteSize::kib(4);
/// Bounds for the request head: hyper cannot read one in less than 8 KiB.
const MIN_HEADER: ByteSize = ByteSize::kib(8);
const MAX_HEADER: ByteSize = ByteSize::mib(1);
/// Upper bound for connection counts (tokio's semaphore holds at most `usize::MAX >> 3`).
const MAX_PERMITS: u64 = 100_000_000;

/// One rule a value must follow, for the table in `check_limits`.
enum Check {
    /// A size from `min` to `max`.
    Size(ByteSize, ByteSize, ByteSize),
    /// A size no larger than the one under another key.
    NotAbove(ByteSize, &'static str, ByteSize),
    /// A count from `min` to `max`.
    Count(u64, u64, u64),
    /// A duration longer than zero.
    Positive(Duration),
    /// A limit that can be `off` but is zero, which would refuse everyone: its value as
    /// written (`None` when it is not zero).
    ZeroLimit(Option<String>),
    /// A count of at least 1.
    AtLeastOne(u64),
    /// A size, when set, of at least `min`.
    AtLeast(Option<ByteSize>, ByteSize),
}

impl Check {
    /// What is wrong with the value, if anything.
    fn problem(self) -> Option<String> {
        match self {
            Self::Size(size, min, max) => (size < min || size > max).then(|| {
                // 1B reads better in words.
                let low = if min.0 == 1 {
                    "1 byte".into()
                } else {
                    min.to_string()
                };
                format!("{size} is out of range ({low} to {max})")
            }),
            Self::NotAbove(size, other_key, other) => {
                (size > other).then(|| format!("{size} is larger than {other_key} ({other})"))
            }
            Self::Count(n, min, max) => {
                (n < min || n > max).then(|| format!("{n} is out of range ({min} to {max})"))
            }
            Self::Positive(d) => d.is_zero().then(|| NOT_ZERO.into()),
            Self::ZeroLimit(zero) => {
                zero.map(|zero| format!("{zero} would refuse everyone; use off for no limit"))
            }
            Self::AtLeastOne(n) => (n == 0).then(|| "0 is not allowed: must be at least 1".into()),
            Self::AtLeast(size, min) => size
                .filter(|size| *size < min)
                .map(|size| format!("{size} is too low (at least {min})")),
        }
    }
}

/// What a zero duration gets where a duration must be longer than zero.
const NOT_ZERO: &str = "0s is not allowed: must be longer than zero";

impl Config {
    /// Every problem with this config, each naming its key and value.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let mut bad = ConfigError::default();
        if self.listen.parse::<SocketAddr>().is_err() {
            bad.push(
                "listen",
                format!("{:?} is not an ip:port address", self.listen),
            );
        }
        check_positive(&mut bad, "connect_timeout", self.connect_timeout);
        // A file for `wsgate client` alone needs no routes.
        if !self.routes.is_empty() || self.tunnels.is_empty() {
            check_routes(&mut bad, &self.routes);
        }
        super::tunnel::check_tunnels(&mut bad, &self.tunnels);
        self.check_limits(&mut bad);
        self.check_timers(&mut bad);
        self.check_operations(&mut bad);
        self.check_tls(&mut bad);
        self.check_proxy_protocol(&mut bad);
        if self.log.flush_interval > MAX_LOG_FLUSH_INTERVAL {
            bad.push(
                "log.flush_interval",
                format!(
                    "{} is too long: at most {} (0 writes every line at once)",
                    format_duration(self.log.flush_interval),
                    format_duration(MAX_LOG_FLUSH_INTERVAL)
                ),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            bad.push(
                "log.level",
                format!("{:?} is not a log filter: {e}", self.log.level),
            );
        }
        bad.into_result()
    }

    fn check_limits(&self, bad: &mut ConfigError) {
        use Check::*;
        let l = &self.limits;
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let zero_limit = |n: Option<u32>| n.filter(|n| *n == 0).map(|n| n.to_string());
        let zero_rate = |r: Option<Rate>| r.filter(|r| r.count == 0).map(|r| r.to_string());
        let (message, frame) = (l.max_message_size, l.max_frame_size);
        #[rustfmt::skip] // one row per rule
        let checks = [
            ("max_message_size", Size(message, ByteSize(1), MAX_MESSAGE_CEILING)),
            ("max_frame_size", Size(frame, ByteSize(1), MAX_MESSAGE_CEILING)),
            ("max_frame_size", NotAbove(frame, "limits.max_message_size", message)),
            ("read_buffer_size", Size(l.read_buffer_size, MIN_BUFFER, MAX_BUFFER)),
            ("backend_read_size", Size(l.backend_read_size, MIN_BUFFER, MAX_BUFFER)),
            ("max_unsent_to_client", Size(l.max_unsent_to_client, MIN_UNSENT, MAX_BUFFER)),
            ("handshake_timeout", Positive(l.handshake_timeout)),
            ("http2_idle_timeout", Positive(l.http2_idle_timeout)),
            ("max_header_size", Size(l.max_header_size, MIN_HEADER, MAX_HEADER)),
            ("listen_backlog", Count(l.listen_backlog.into(), 1, 1 << 20)),
            ("max_headers", Count(count(l.max_headers), 1, 10_000)),
            ("max_pending_handshakes", Count(count(l.max_pending_handshakes), 1, MAX_PERMITS)),
            ("max_connections", Count(count(l.max_connections), 1, MAX_PERMITS)),
            ("max_connections_per_ip", ZeroLimit(zero_limit(l.max_connections_per_ip))),
            ("per_ip_rate", ZeroLimit(zero_rate(l.per_ip_rate))),
            ("global_rate", ZeroLimit(zero_rate(l.global_rate))),
            ("per_ip_burst", AtLeastOne(l.per_ip_burst.into())),
            ("global_burst", AtLeastOne(l.global_burst.into())),
            ("ipv6_prefix", Count(l.ipv6_prefix.into(), 1, 128)),
            ("max_bytes_per_second", AtLeast(l.max_bytes_per_second, ByteSize::kib(1))),
        ];
        for (key, check) in checks {
            if let Some(problem) = check.problem() {
                bad.push(format!("limits.{key}"), problem);
            }
        }
    }

    fn check_tls(&self, bad: &mut ConfigError) {
        let t = &self.tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => bad.push("tls.key", "tls.cert is set but tls.key is not"),
            (None, Some(_)) => bad.push("tls.cert", "tls.key is set but tls.cert is not"),
            _ => {}
        }
        for (i, c) in t.certificates.iter().enumerate() {
            if c.names.is_empty() || c.names.iter().any(|n| n.trim().is_empty()) {
                bad.push(
                    format!("tls.certificates.{i}.names"),
                    "needs at least one server name",
                );
            }
        }
        check_positive(bad, "tls.handshake_timeout", t.handshake_timeout);
        if t.client_ca.is_some() && !t.enabled() {
            bad.push(
                "tls.client_ca",
                "client certificates need TLS: set tls.cert and tls.key",
            );
        }
        if t.allow_plaintext && !t.enabled() {
            bad.push(
                "tls.allow_plaintext",
                "only means something with TLS on: set tls.cert and tls.key",
            );
        }
        if t.allow_plaintext && t.client_ca.is_some() {
            // A ws:// client presents no certificate: every route without client_names
            // would be open to it, in clear text, while the CA suggests otherwise.
            bad.push(
                "tls.allow_plaintext",
                "cannot be combined with tls.client_ca: plain ws:// clients present no \
                 certificate, so mutual TLS would not hold; remove one of the two",
            );
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !route.client_names.is_empty() && t.client_ca.is_none() {
                bad.push(
                    format!("routes.{i}.client_names"),
                    "needs tls.client_ca (clients must present certificates)",
                );
            }
        }
    }

    fn check_operations(&self, bad: &mut ConfigError) {
        if let Some(admin) = &self.admin.listen {
            if admin.parse::<SocketAddr>().is_err() {
                bad.push(
                    "admin.listen",
                    format!("{admin:?} is not an ip:port address (or off)"),
                );
            }
        }
        for (key, probe) in [
            ("health.path", &self.health.path),
            ("ready.path", &self.ready.path),
        ] {
            if !probe.starts_with('/') || probe.contains(['?', '#', ' ']) {
                bad.push(key, format!("{probe:?} must be a path starting with '/'"));
            } else if let Some(i) = self.routes.iter().position(|r| &r.path == probe) {
                bad.push(key, format!("{probe:?} is also routes.{i}.path"));
            }
        }
        if self.health.path == self.ready.path {
            bad.push(
                "ready.path",
                format!("{:?} is also health.path", self.ready.path),
            );
        }
        check_positive(bad, "readiness.interval", self.readiness.interval);
        check_positive(bad, "reload.interval", self.reload.interval);
    }

    fn check_timers(&self, bad: &mut ConfigError) {
        let lv = &self.liveness;
        check_positive(bad, "liveness.ping_interval", lv.ping_interval);
        check_positive(bad, "liveness.pong_timeout", lv.pong_timeout);
        check_positive(bad, "liveness.close_timeout", lv.close_timeout);
        if let Some(idle) = lv.idle_timeout {
            check_positive(bad, "liveness.idle_timeout", idle);
        }
        if self.shutdown.grace <= lv.close_timeout {
            bad.push(
                "shutdown.grace",
                format!(
                    "{} must be longer than liveness.close_timeout ({})",
                    format_duration(self.shutdown.grace),
                    format_duration(lv.close_timeout)
                ),
            );
        }
    }
}

/// Longer, and log lines would reach their reader too late to follow a live problem.
const MAX_LOG_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

fn check_positive(bad: &mut ConfigError, key: &str, d: Duration) {
    if d.is_zero() {
        bad.push(key, NOT_ZERO);
    }
}

fn check_routes(bad: &mut ConfigError, routes: &[Route]) {
    if routes.is_empty() {
        bad.push(
            "routes",
            "no routes: add at least one { path, backend } (or pass --backend)",
        );
    }
    let mut seen = HashSet::new();
    for (i, route) in routes.iter().enumerate() {
        let key = |field: &str| format!("routes.{i}.{field}");
        if !route.path.starts_with('/') || route.path.contains(['?', '#', ' ']) {
            bad.push(
                key("path"),
                format!("{:?} must be a path starting with '/'", route.path),
            );
        } else if !seen.insert(route.path.as_str()) {
            bad.push(
                key("path"),
                format!("{:?} is used by an earlier route", route.path),
            );
        }
        if route.backend.0.is_empty() {
            bad.push(key("backend"), "no backend address given");
        }
        for (j, addr) in route.backend.0.iter().enumerate() {
            if let Err(why) = check_host_port(addr) {
                let k = if route.backend.0.len() == 1 {
                    key("backend")
                } else {
                    key(&format!("backend.{j}"))
                };
                bad.push(k, format!("{addr:?} {why}"));
            }
        }
        for (j, proto) in route.subprotocols.iter().enumerate() {
            if proto.starts_with(super::route::SUBPROTOCOL_PREFIX) {
                // The entry itself may be a credential: it is not repeated here.
                bad.push(
                    key(&format!("subprotocols.{j}")),
                    "\"bearer.***\": bearer.* entries carry credentials",
                );
            } else if !is_token(proto) {
                bad.push(
                    key(&format!("subprotocols.{j}")),
                    format!("{proto:?} is not a valid subprotocol token"),
                );
            }
        }
        if let Some(t) = route.connect_timeout {
            check_positive(bad, &key("connect_timeout"), t);
        }
        if let Some(name) = route.tokens.as_ref().and_then(|t| t.env.as_deref()) {
            if let Some(config_key) = super::env::config_key_of(name) {
                bad.push(
                    key("tokens.env"),
                    format!(
                        "{name} is the environment variable of config key {config_key}; \
                         name a variable that is not a config key"
                    ),
                );
            }
        }
    }
}

/// An HTTP token (RFC 9110 section 5.6.2), which is what a subprotocol name must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Accepts `1.2.3.4:80`, `[::1]:80` and `name.example:80`.
fn check_host_port(addr: &str) -> Result<(), &'static str> {
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("is not host:port (the port is missing)");
    };
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err("has no valid port (1-65535)"),
        Ok(_) => {}
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if name_ok {
        Ok(())
    } else {
        Err("has an invalid host name (IPv6 needs brackets: [::1]:80)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert!(check_host_port("127.0.0.1:5900").is_ok());
        assert!(check_host_port("[::1]:5900").is_ok());
        assert!(check_host_port("db.internal:5432").is_ok());
        assert!(check_host_port("db.internal").is_err());
        assert!(check_host_port("db:0").is_err());
        assert!(check_host_port("::1:80").is_err());
        assert!(check_host_port(":80").is_err());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut cfg = Config::single_route("nowhere", "x");
        cfg.limits.max_frame_size = ByteSize::mib(2);
        cfg.liveness.ping_interval = Duration::ZERO;
        let err = cfg.validate().unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listen",
                "routes.0.backend",
                "limits.max_frame_size",
                "liveness.ping_interval"
            ]
        );
        assert!(err.problems[0].message.contains("\"nowhere\""));
    }

    #[test]
    fn client_certificates_and_plaintext_are_refused_together() {
        let mut cfg = Config::single_route("127.0.0.1:0", "127.0.0.1:9");
        cfg.tls.cert = Some("server.pem".into());
        cfg.tls.key = Some("server-key.pem".into());
        cfg.tls.allow_plaintext = true;
        cfg.validate()
            .expect("plaintext beside TLS alone is allowed");
        cfg.tls.client_ca = Some("ca.pem".into());
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].key, "tls.allow_plaintext");
        assert!(err.problems[0].message.contains("tls.client_ca"), "{err}");
        cfg.tls.allow_plaintext = false;
        cfg.validate().expect("mutual TLS alone is allowed");
    }

    #[test]
    fn a_token_variable_cannot_be_a_config_variable() {
        let mut cfg = Config::single_route("127.0.0.1:0", "127.0.0.1:9");
        cfg.routes[0].tokens = Some(crate::config::TokenSource {
            file: None,
            env: Some("WSGATE_LISTEN".into()),
        });
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.problems[0].key, "routes.0.tokens.env");
        assert!(
            err.problems[0].message.contains("config key listen"),
            "{err}"
        );
        cfg.routes[0].tokens.as_mut().unwrap().env = Some("WSGATE_DB_TOKENS".into());
        cfg.validate().unwrap();
    }

    #[test]
    fn every_limits_rule_names_its_key_and_value() {
        let mut cfg = Config::single_route("127.0.0.1:0", "127.0.0.1:9");
        let l = &mut cfg.limits;
        (l.max_message_size, l.max_frame_size) = (ByteSize(0), ByteSize::mib(2048));
        (l.read_buffer_size, l.backend_read_size) = (ByteSize(10), ByteSize::mib(32));
        (l.max_unsent_to_client, l.max_header_size) = (ByteSize(1), ByteSize::kib(4));
        (l.handshake_timeout, l.http2_idle_timeout) = (Duration::ZERO, Duration::ZERO);
        (l.listen_backlog, l.max_headers, l.ipv6_prefix) = (0, 10_001, 129);
        (l.max_pending_handshakes, l.max_connections) = (0, 100_000_001);
        let zero = |secs| {
            Some(Rate {
                count: 0,
                per: Duration::from_secs(secs),
            })
        };
        (l.per_ip_rate, l.global_rate) = (zero(1), zero(60));
        (l.max_connections_per_ip, l.per_ip_burst, l.global_burst) = (Some(0), 0, 0);
        l.max_bytes_per_second = Some(ByteSize(512));
        let err = cfg.validate().unwrap_err();
        let problems: Vec<String> = err
            .problems
            .iter()
            .filter(|p| p.key.starts_with("limits."))
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect();
        #[rustfmt::skip]
        let expected = [
            "max_message_size: 0B is out of range (1 byte to 1GiB)",
            "max_frame_size: 2GiB is out of range (1 byte to 1GiB)",
            "max_frame_size: 2GiB is larger than limits.max_message_size (0B)",
            "read_buffer_size: 10B is out of range (256B to 16MiB)",
            "backend_read_size: 32MiB is out of range (256B to 16MiB)",
            "max_unsent_to_client: 1B is out of range (4KiB to 16MiB)",
            "handshake_timeout: 0s is not allowed: must be longer than zero",
            "http2_idle_timeout: 0s is not allowed: must be longer than zero",
            "max_header_size: 4KiB is out of range (8KiB to 1MiB)",
            "listen_backlog: 0 is out of range (1 to 1048576)",
            "max_headers: 10001 is out of range (1 to 10000)",
            "max_pending_handshakes: 0 is out of range (1 to 100000000)",
            "max_connections: 100000001 is out of range (1 to 100000000)",
            "max_connections_per_ip: 0 would refuse everyone; use off for no limit",
            "per_ip_rate: 0/s would refuse everyone; use off for no limit",
            "global_rate: 0/m would refuse everyone; use off for no limit",
            "per_ip_burst: 0 is not allowed: must be at least 1",
            "global_burst: 0 is not allowed: must be at least 1",
            "ipv6_prefix: 129 is out of range (1 to 128)",
            "max_bytes_per_second: 512B is too low (at least 1KiB)",
        ];
        let expected: Vec<String> = expected.iter().map(|e| format!("limits.{e}")).collect();
        assert_eq!(problems, expected);
    }

    #[test]
    fn defaults_with_a_route_are_valid() {
        Config::single_route("127.0.0.1:0", "127.0.0.1:9")
            .validate()
            .unwrap();
    }
}
