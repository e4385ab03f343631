//! Checks that go beyond types: ranges, consistency between keys, addresses that parse.
//! Every problem is collected with its dotted key before anything is reported.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::units::{ByteSize, format_duration};
use super::{Config, ConfigError, Route};

/// Upper bound for message and frame limits: one message is buffered whole in memory.
const MAX_MESSAGE_CEILING: ByteSize = ByteSize::mib(1024);
/// Bounds for per-read buffer sizes.
const MIN_BUFFER: ByteSize = ByteSize(256);
const MAX_BUFFER: ByteSize = ByteSize::mib(16);
/// Below this, a client socket would wake the gateway for every few segments.
const MIN_UNSENT: ByteSize = ByteSize::kib(4);

impl Config {
    /// Every problem with this config, each naming its key and value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut bad = ConfigError::default();
        if self.listen.parse::<SocketAddr>().is_err() {
            bad.push(
                "listen",
                format!("{:?} is not an ip:port address", self.listen),
            );
        }
        check_positive(&mut bad, "connect_timeout", self.connect_timeout);
        check_routes(&mut bad, &self.routes);
        self.check_limits(&mut bad);
        self.check_timers(&mut bad);
        self.check_operations(&mut bad);
        self.check_tls(&mut bad);
        self.check_proxy_protocol(&mut bad);
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            bad.push(
                "log.level",
                format!("{:?} is not a log filter: {e}", self.log.level),
            );
        }
        bad.into_result()
    }

    fn check_limits(&self, bad: &mut ConfigError) {
        let l = &self.limits;
        for (key, size) in [
            ("limits.max_message_size", l.max_message_size),
            ("limits.max_frame_size", l.max_frame_size),
        ] {
            if size.0 == 0 || size > MAX_MESSAGE_CEILING {
                bad.push(
                    key,
                    format!("{size} is out of range (1 byte to {MAX_MESSAGE_CEILING})"),
                );
            }
        }
        if l.max_frame_size > l.max_message_size {
            bad.push(
                "limits.max_frame_size",
                format!(
                    "{} is larger than limits.max_message_size ({})",
                    l.max_frame_size, l.max_message_size
                ),
            );
        }
        for (key, size) in [
            ("limits.read_buffer_size", l.read_buffer_size),
            ("limits.backend_read_size", l.backend_read_size),
        ] {
            if size < MIN_BUFFER || size > MAX_BUFFER {
                bad.push(
                    key,
                    format!("{size} is out of range ({MIN_BUFFER} to {MAX_BUFFER})"),
                );
            }
        }
        let unsent = l.max_unsent_to_client;
        if unsent < MIN_UNSENT || unsent > MAX_BUFFER {
            bad.push(
                "limits.max_unsent_to_client",
                format!("{unsent} is out of range ({MIN_UNSENT} to {MAX_BUFFER})"),
            );
        }
        check_positive(bad, "limits.handshake_timeout", l.handshake_timeout);
        check_positive(bad, "limits.http2_idle_timeout", l.http2_idle_timeout);
        // hyper cannot read a request head in less than 8 KiB.
        if l.max_header_size < ByteSize::kib(8) || l.max_header_size > ByteSize::mib(1) {
            bad.push(
                "limits.max_header_size",
                format!("{} is out of range (8KiB to 1MiB)", l.max_header_size),
            );
        }
        if l.listen_backlog == 0 || l.listen_backlog > 1 << 20 {
            bad.push(
                "limits.listen_backlog",
                format!("{} is out of range (1 to 1048576)", l.listen_backlog),
            );
        }
        if !(1..=10_000).contains(&l.max_headers) {
            bad.push(
                "limits.max_headers",
                format!("{} is out of range (1 to 10000)", l.max_headers),
            );
        }
        for (key, n) in [
            ("limits.max_pending_handshakes", l.max_pending_handshakes),
            ("limits.max_connections", l.max_connections),
        ] {
            // tokio's semaphore holds at most usize::MAX >> 3 permits.
            if n == 0 || n > 100_000_000 {
                bad.push(key, format!("{n} is out of range (1 to 100000000)"));
            }
        }
        if l.max_connections_per_ip == Some(0) {
            bad.push(
                "limits.max_connections_per_ip",
                "0 would refuse everyone; use off for no limit",
            );
        }
        for (key, rate) in [
            ("limits.per_ip_rate", l.per_ip_rate),
            ("limits.global_rate", l.global_rate),
        ] {
            if let Some(rate) = rate {
                if rate.count == 0 {
                    bad.push(
                        key,
                        format!("{rate} would refuse everyone; use off for no limit"),
                    );
                }
            }
        }
        for (key, burst) in [
            ("limits.per_ip_burst", l.per_ip_burst),
            ("limits.global_burst", l.global_burst),
        ] {
            if burst == 0 {
                bad.push(key, "0 is not allowed: must be at least 1");
            }
        }
        if l.ipv6_prefix == 0 || l.ipv6_prefix > 128 {
            bad.push(
                "limits.ipv6_prefix",
                format!("{} is out of range (1 to 128)", l.ipv6_prefix),
            );
        }
        if let Some(bps) = l.max_bytes_per_second {
            if bps < ByteSize::kib(1) {
                bad.push(
                    "limits.max_bytes_per_second",
                    format!("{bps} is too low (at least 1KiB)"),
                );
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

fn check_positive(bad: &mut ConfigError, key: &str, d: Duration) {
    if d.is_zero() {
        bad.push(key, "0s is not allowed: must be longer than zero");
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
            if proto.starts_with(crate::auth::credential::SUBPROTOCOL_PREFIX) {
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
    fn defaults_with_a_route_are_valid() {
        Config::single_route("127.0.0.1:0", "127.0.0.1:9")
            .validate()
            .unwrap();
    }
}
