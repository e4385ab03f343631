//! The two ways a connection ends badly, each described once: [`Reject`] before the 101 and
//! [`SessionEnd`] after it. Each enum has one exhaustive `match` ([`Reject::facts`],
//! [`SessionEnd::facts`]) returning every fact about the outcome: the HTTP status, labels
//! and headers of a refusal; the close frame, who ended the session and how the close
//! handshake goes. Everything else reads those facts, so a new variant cannot be half
//! described, and the README's tables of statuses and close codes are tested against them
//! (`error/tests.rs`).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode, Version};

use crate::backend::BackendError;

/// Why an HTTP request did not become a WebSocket session.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    #[error("no route for this path")]
    NotFound,
    #[error("method not allowed")]
    Method,
    #[error("not a websocket upgrade request")]
    UpgradeRequired,
    #[error("unsupported websocket version")]
    Version,
    #[error("bad websocket handshake: {0}")]
    Handshake(&'static str),
    #[error("shutting down")]
    Draining,
    #[error("origin not allowed")]
    Origin,
    #[error("client certificate not allowed on this route")]
    ClientCertificate,
    #[error("client opens sessions too fast")]
    RateLimited { retry_after: Duration },
    #[error("sessions are being opened too fast overall")]
    Overloaded { retry_after: Duration },
    #[error("session limit reached")]
    Capacity,
    #[error("session limit for this client reached")]
    ClientCapacity,
    #[error("missing or invalid credential")]
    Unauthorized,
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Everything a refusal implies, from the one `match` in [`Reject::facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectFacts {
    pub status: StatusCode,
    /// A short, stable label for logs and `wsgate_upgrades_rejected_total{reason}`.
    pub reason: &'static str,
    /// The fixed response body; never internal detail.
    pub body: &'static str,
    /// Headers (lowercase names) that tell the client what would work, besides
    /// `Content-Type` and, on HTTP/1.1, `Connection: close`.
    pub headers: &'static [(&'static str, &'static str)],
    /// `Retry-After`, sent in whole seconds rounded up (at least 1: "0" would invite an
    /// immediate retry).
    pub retry_after: Option<Duration>,
    /// Whether an answer on HTTP/2 carries `headers` and `Retry-After` too. Only the
    /// version refusal's `Sec-WebSocket-Version` does; HTTP/2 answers carry no other.
    pub headers_on_http2: bool,
}

impl RejectFacts {
    const fn new(status: StatusCode, reason: &'static str, body: &'static str) -> Self {
        Self {
            status,
            reason,
            body,
            headers: &[],
            retry_after: None,
            headers_on_http2: false,
        }
    }

    const fn headers(self, headers: &'static [(&'static str, &'static str)]) -> Self {
        Self { headers, ..self }
    }

    const fn retry_after(self, after: Duration) -> Self {
        Self {
            retry_after: Some(after),
            ..self
        }
    }
}

impl Reject {
    /// Every fact about this refusal.
    pub fn facts(&self) -> RejectFacts {
        use RejectFacts as F;
        use StatusCode as S;
        const VERSION_13: (&str, &str) = ("sec-websocket-version", "13");
        match self {
            Self::NotFound => F::new(S::NOT_FOUND, "not_found", "not found\n"),
            Self::Method => F::new(
                S::METHOD_NOT_ALLOWED,
                "method",
                "method not allowed: use GET with a websocket upgrade\n",
            )
            .headers(&[("allow", "GET")]),
            Self::UpgradeRequired => F::new(
                S::UPGRADE_REQUIRED,
                "not_upgrade",
                "this path only accepts websocket connections\n",
            )
            .headers(&[("upgrade", "websocket"), VERSION_13]),
            Self::Version => F {
                headers_on_http2: true,
                ..F::new(
                    S::UPGRADE_REQUIRED,
                    "version",
                    "unsupported websocket version: use 13\n",
                )
                .headers(&[VERSION_13])
            },
            Self::Handshake(_) => F::new(S::BAD_REQUEST, "handshake", "bad websocket handshake\n"),
            Self::Draining => F::new(S::SERVICE_UNAVAILABLE, "draining", "shutting down\n"),
            Self::Origin => F::new(S::FORBIDDEN, "origin", "origin not allowed\n"),
            Self::ClientCertificate => F::new(
                S::FORBIDDEN,
                "client_certificate",
                "client certificate not allowed\n",
            ),
            Self::RateLimited { retry_after } => F::new(
                S::TOO_MANY_REQUESTS,
                "rate",
                "too many new sessions from this client; retry later\n",
            )
            .retry_after(*retry_after),
            Self::Overloaded { retry_after } => F::new(
                S::SERVICE_UNAVAILABLE,
                "global_rate",
                "gateway at capacity; retry later\n",
            )
            .retry_after(*retry_after),
            Self::Capacity => F::new(
                S::SERVICE_UNAVAILABLE,
                "cap",
                "gateway at capacity; retry later\n",
            ),
            Self::ClientCapacity => F::new(
                S::TOO_MANY_REQUESTS,
                "client_cap",
                "too many open sessions from this client\n",
            ),
            Self::Unauthorized => F::new(S::UNAUTHORIZED, "auth", "unauthorized\n")
                .headers(&[("www-authenticate", "Bearer")]),
            Self::Backend(BackendError::Timeout { .. }) => F::new(
                S::GATEWAY_TIMEOUT,
                "backend_timeout",
                "backend did not answer in time\n",
            ),
            Self::Backend(BackendError::Connect { .. }) => {
                F::new(S::BAD_GATEWAY, "backend_refused", "backend unavailable\n")
            }
        }
    }

    pub fn status(&self) -> StatusCode {
        self.facts().status
    }

    /// A short, stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        self.facts().reason
    }

    /// The response sent to the client: a fixed body that never carries internal detail,
    /// and `Connection: close` on HTTP/1.1, since a refused handshake has nothing more to
    /// say (HTTP/2 has no connection-level headers; the stream simply ends).
    pub fn into_response(self, version: Version) -> Response<Full<Bytes>> {
        let facts = self.facts();
        let mut resp = Response::new(Full::new(Bytes::from_static(facts.body.as_bytes())));
        *resp.status_mut() = facts.status;
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let http2 = version == Version::HTTP_2;
        if !http2 {
            h.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if http2 && !facts.headers_on_http2 {
            return resp;
        }
        for &(name, value) in facts.headers {
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        if let Some(after) = facts.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

/// Which side ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Backend,
    Gateway,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Backend => "backend",
            Self::Gateway => "gateway",
        }
    }
}

/// Why a WebSocket session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client sent a close frame (with this code, if any); we reply with close.
    ClientClosed(Option<u16>),
    /// The client's connection dropped without a close frame.
    ClientGone,
    /// The client stopped answering pings.
    PeerGone,
    /// A client message or frame exceeded the configured limit.
    TooBig,
    /// A text message on a route that refuses text.
    TextRefused,
    /// A client text message that is not UTF-8.
    InvalidUtf8,
    /// Any other WebSocket protocol violation by the client.
    Protocol,
    /// The backend closed its side after sending everything it had.
    BackendEof,
    /// The backend connection failed (reset, broken pipe, ...).
    BackendIo(io::ErrorKind),
    /// The backend sent bytes that are not UTF-8 on a text route.
    BackendInvalidUtf8,
    /// No data either way for `liveness.idle_timeout`.
    Idle,
    /// The gateway is shutting down.
    Shutdown,
}

/// The close frame the gateway sends when a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReply {
    /// Our own close frame. Reasons are short fixed strings, never internal error text.
    Code { code: u16, reason: &'static str },
    /// The reply to the client's close frame: its code (if it sent one), no reason.
    Echo(Option<u16>),
    /// None: the client is gone or unresponsive, so the TCP connection is just dropped.
    NoFrame,
}

impl CloseReply {
    /// The code and reason of the frame to send, if any.
    pub fn frame(self) -> Option<(Option<u16>, &'static str)> {
        match self {
            Self::Code { code, reason } => Some((Some(code), reason)),
            Self::Echo(code) => Some((code, "")),
            Self::NoFrame => None,
        }
    }
}

/// Everything a session's end implies, from the one `match` in [`SessionEnd::facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndFacts {
    pub close: CloseReply,
    pub ended_by: Side,
    /// A short label for the access log's `end` field.
    pub label: &'static str,
    /// After sending our close frame, keep reading the client (forwarding its data to the
    /// backend) until its own close frame arrives. Not after client errors: its stream is
    /// unusable.
    pub awaits_client_close: bool,
    /// Half-close the backend once our close frame is out, so it reads a clean EOF (the
    /// client said goodbye first).
    pub shutdown_backend_after_close: bool,
}

impl EndFacts {
    /// An end the client caused: nothing more is read from it, the backend is just closed.
    const fn client(close: CloseReply, label: &'static str) -> Self {
        Self {
            close,
            ended_by: Side::Client,
            label,
            awaits_client_close: false,
            shutdown_backend_after_close: false,
        }
    }

    /// An end on the backend's or our side: we close with `code`, then let the client's
    /// data reach the backend until the client's own close frame.
    const fn ours(ended_by: Side, code: u16, reason: &'static str, label: &'static str) -> Self {
        Self {
            close: CloseReply::Code { code, reason },
            ended_by,
            label,
            awaits_client_close: true,
            shutdown_backend_after_close: false,
        }
    }
}

impl SessionEnd {
    /// Every fact about this end.
    pub fn facts(&self) -> EndFacts {
        use EndFacts as F;
        let client_error =
            |code, reason, label| F::client(CloseReply::Code { code, reason }, label);
        match self {
            Self::ClientClosed(code) => F {
                shutdown_backend_after_close: true,
                ..F::client(CloseReply::Echo(*code), "client_closed")
            },
            Self::ClientGone => F::client(CloseReply::NoFrame, "client_gone"),
            Self::PeerGone => F::client(CloseReply::NoFrame, "ping_timeout"),
            Self::TooBig => client_error(1009, "message too big", "too_big"),
            Self::TextRefused => client_error(1003, "text messages not accepted", "text_refused"),
            Self::InvalidUtf8 => client_error(1007, "invalid utf-8", "invalid_utf8"),
            Self::Protocol => client_error(1002, "protocol error", "protocol_error"),
            Self::BackendEof => F::ours(Side::Backend, 1000, "backend closed", "backend_eof"),
            Self::BackendIo(_) => F::ours(Side::Backend, 1011, "backend error", "backend_error"),
            Self::BackendInvalidUtf8 => F::ours(
                Side::Backend,
                1011,
                "backend sent invalid utf-8",
                "backend_invalid_utf8",
            ),
            Self::Idle => F::ours(Side::Gateway, 1000, "idle", "idle"),
            Self::Shutdown => F::ours(Side::Gateway, 1001, "going away", "shutdown"),
        }
    }

    /// The close code recorded in the access log: the one either side sent, 1005 for a
    /// client close frame without a code, or 1006 (abnormal closure) when the connection
    /// dropped without one.
    pub fn logged_code(&self) -> u16 {
        match self.facts().close {
            CloseReply::Code { code, .. } => code,
            CloseReply::Echo(code) => code.unwrap_or(1005),
            CloseReply::NoFrame => 1006,
        }
    }

    pub fn ended_by(&self) -> Side {
        self.facts().ended_by
    }

    /// A short label for logs.
    pub fn label(&self) -> &'static str {
        self.facts().label
    }
}

#[cfg(test)]
mod tests;
