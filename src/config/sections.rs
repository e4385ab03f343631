//! The config sections besides routes: limits, liveness, shutdown and logging.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::route::TokenSource;
use super::units::{self, ByteSize, Rate};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest client message (all fragments together); larger closes with 1009.
    pub max_message_size: ByteSize,
    /// Largest single client frame payload; larger closes with 1009.
    pub max_frame_size: ByteSize,
    /// Most bytes read from the client socket at once (from a buffer lent only during the read).
    pub read_buffer_size: ByteSize,
    /// Most bytes read from the backend at once, so the largest message sent to the client.
    pub backend_read_size: ByteSize,
    /// Data that may wait unsent in the kernel towards one client (`TCP_NOTSENT_LOWAT`):
    /// what a ping, pong or close frame can queue behind, and a slow client's kernel memory.
    pub max_unsent_to_client: ByteSize,
    /// One deadline from accept to the first complete request head: the PROXY header, the
    /// TLS handshake, HTTP/1.1-or-2 detection and the headers together. On HTTP/1.1
    /// keep-alive, also the time each later request head has after the previous answer.
    #[serde(with = "units::duration")]
    pub handshake_timeout: Duration,
    /// An HTTP/2 connection with no open stream (no request in progress, no session) for
    /// this long is closed with GOAWAY.
    #[serde(with = "units::duration")]
    pub http2_idle_timeout: Duration,
    /// The listener's accept queue (the kernel caps it at `net.core.somaxconn`): bursts of
    /// new connections, and connections held back by `max_pending_handshakes`, wait here.
    pub listen_backlog: u32,
    /// Largest request head; larger gets 431.
    pub max_header_size: ByteSize,
    /// Most request header lines; more gets 431.
    pub max_headers: usize,
    /// Connections accepted but not yet upgraded (or refused); past this, new connections
    /// wait in the kernel's backlog instead of being read.
    pub max_pending_handshakes: usize,
    /// Concurrent sessions, in all; past this, upgrades get 503.
    pub max_connections: usize,
    /// Concurrent sessions from one client address (see `ipv6_prefix`); past this, 429.
    #[serde(with = "units::off")]
    pub max_connections_per_ip: Option<u32>,
    /// New sessions per client address, e.g. "10/s"; past it (and the burst), 429.
    #[serde(with = "units::off")]
    pub per_ip_rate: Option<Rate>,
    /// How many new sessions a client address may open at once before `per_ip_rate` applies.
    pub per_ip_burst: u32,
    /// New sessions in all, e.g. "500/s"; past it (and the burst), 503.
    #[serde(with = "units::off")]
    pub global_rate: Option<Rate>,
    pub global_burst: u32,
    /// IPv6 clients are counted per prefix of this length (they rotate addresses within one).
    pub ipv6_prefix: u8,
    /// Throughput cap per session, each way, in bytes per second; enforced by reading more
    /// slowly (backpressure), never by dropping data.
    #[serde(with = "units::off")]
    pub max_bytes_per_second: Option<ByteSize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: ByteSize::mib(1),
            max_frame_size: ByteSize::mib(1),
            read_buffer_size: ByteSize::kib(256),
            backend_read_size: ByteSize::kib(64),
            max_unsent_to_client: ByteSize::kib(128),
            handshake_timeout: Duration::from_secs(10),
            http2_idle_timeout: Duration::from_secs(60),
            listen_backlog: 4096,
            max_header_size: ByteSize::kib(16),
            max_headers: 100,
            max_pending_handshakes: 1024,
            max_connections: 10_000,
            max_connections_per_ip: None,
            per_ip_rate: None,
            per_ip_burst: 20,
            global_rate: None,
            global_burst: 200,
            ipv6_prefix: 64,
            max_bytes_per_second: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Liveness {
    /// How often the gateway pings each client.
    #[serde(with = "units::duration")]
    pub ping_interval: Duration,
    /// How long a client may stay silent after a ping before it is dropped.
    #[serde(with = "units::duration")]
    pub pong_timeout: Duration,
    /// Close sessions with no data either way for this long (close 1000 "idle"); off by default.
    #[serde(with = "units::optional_duration")]
    pub idle_timeout: Option<Duration>,
    /// How long the close handshake may take before the TCP connection is dropped.
    #[serde(with = "units::duration")]
    pub close_timeout: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// After a shutdown signal, how long the listener keeps accepting (while `/readyz`
    /// says 503) so load balancers notice before connections are refused.
    #[serde(with = "units::duration")]
    pub delay: Duration,
    /// How long open sessions get to close after that before they are dropped.
    #[serde(with = "units::duration")]
    pub grace: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(5),
            grace: Duration::from_secs(30),
        }
    }
}

/// The admin listener: metrics and probes, kept off the public port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// `ip:port`, or `off`.
    #[serde(with = "units::off")]
    pub listen: Option<String>,
    /// Bearer tokens required for everything on the admin listener but the probes
    /// (`/metrics` and whatever comes later); same sources as a route's `tokens`. None: open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSource>,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            listen: Some("127.0.0.1:9090".into()),
            tokens: None,
        }
    }
}

/// A probe path, served on the main listener and the admin listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub path: String,
}

pub(crate) fn health_default() -> Probe {
    Probe {
        path: "/healthz".into(),
    }
}

pub(crate) fn ready_default() -> Probe {
    Probe {
        path: "/readyz".into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Readiness {
    /// Also report not-ready while some route has no backend accepting connections.
    pub check_backend: bool,
    /// How often backends are probed for that (never per readiness request).
    #[serde(with = "units::duration")]
    pub interval: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            check_backend: false,
            interval: Duration::from_secs(5),
        }
    }
}

/// Live reload, besides SIGHUP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reload {
    /// Re-read the config file when its content changes (checked every `interval`).
    pub watch: bool,
    #[serde(with = "units::duration")]
    pub interval: Duration,
}

impl Default for Reload {
    fn default() -> Self {
        Self {
            watch: false,
            interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `wsgate=debug,hyper=warn`. `RUST_LOG` wins if set.
    pub level: String,
    /// Lines are written in batches at most this far apart (warnings and errors at once);
    /// zero writes every line at once.
    #[serde(with = "units::duration")]
    pub flush_interval: Duration,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            flush_interval: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Which forwarding header trusted proxies set, and so the only one believed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For` (nginx, HAProxy `option forwardfor`, most cloud load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}
