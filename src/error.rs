//! The two ways a connection ends badly, each mapped once: [`Reject`] before the 101 (an HTTP
//! status) and [`SessionEnd`] after it (a close code, who ended it, and how loudly to log it).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, SEC_WEBSOCKET_VERSION, UPGRADE,
    WWW_AUTHENTICATE,
};
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

impl Reject {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::UpgradeRequired | Self::Version => StatusCode::UPGRADE_REQUIRED,
            Self::Handshake(_) => StatusCode::BAD_REQUEST,
            Self::Draining | Self::Overloaded { .. } | Self::Capacity => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Origin | Self::ClientCertificate => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } | Self::ClientCapacity => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Backend(BackendError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            Self::Backend(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short, stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Method => "method",
            Self::UpgradeRequired => "not_upgrade",
            Self::Version => "version",
            Self::Handshake(_) => "handshake",
            Self::Draining => "draining",
            Self::Origin => "origin",
            Self::ClientCertificate => "client_certificate",
            Self::RateLimited { .. } => "rate",
            Self::Overloaded { .. } => "global_rate",
            Self::Capacity => "cap",
            Self::ClientCapacity => "client_cap",
            Self::Unauthorized => "auth",
            Self::Backend(BackendError::Timeout { .. }) => "backend_timeout",
            Self::Backend(_) => "backend_refused",
        }
    }

    /// The response sent to the client: a fixed body that never carries internal detail,
    /// and `Connection: close`, since a refused handshake has nothing more to say.
    pub fn into_response(self, version: Version) -> Response<Full<Bytes>> {
        let body = match &self {
            Self::NotFound => "not found\n",
            Self::Method => "method not allowed: use GET with a websocket upgrade\n",
            Self::UpgradeRequired => "this path only accepts websocket connections\n",
            Self::Version => "unsupported websocket version: use 13\n",
            Self::Handshake(_) => "bad websocket handshake\n",
            Self::Draining => "shutting down\n",
            Self::Origin => "origin not allowed\n",
            Self::ClientCertificate => "client certificate not allowed\n",
            Self::RateLimited { .. } => "too many new sessions from this client; retry later\n",
            Self::Overloaded { .. } | Self::Capacity => "gateway at capacity; retry later\n",
            Self::ClientCapacity => "too many open sessions from this client\n",
            Self::Unauthorized => "unauthorized\n",
            Self::Backend(BackendError::Timeout { .. }) => "backend did not answer in time\n",
            Self::Backend(_) => "backend unavailable\n",
        };
        let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if version == Version::HTTP_2 {
            // Connection-level headers do not exist in HTTP/2; the stream simply ends.
            if let Self::Version = self {
                h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            return resp;
        }
        h.insert(CONNECTION, HeaderValue::from_static("close"));
        match self {
            Self::UpgradeRequired => {
                h.insert(UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            Self::Version => {
                h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            Self::Method => {
                h.insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::RateLimited { retry_after } | Self::Overloaded { retry_after } => {
                // Whole seconds, rounded up: "0" would invite an immediate retry.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            Self::Unauthorized => {
                h.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
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

impl SessionEnd {
    /// The close frame the gateway sends, if any. Reasons are short fixed strings.
    pub fn close_frame(&self) -> Option<(u16, &'static str)> {
        Some(match self {
            Self::ClientClosed(_) | Self::ClientGone | Self::PeerGone => return None,
            Self::TooBig => (1009, "message too big"),
            Self::TextRefused => (1003, "text messages not accepted"),
            Self::InvalidUtf8 => (1007, "invalid utf-8"),
            Self::Protocol => (1002, "protocol error"),
            Self::BackendEof => (1000, "backend closed"),
            Self::BackendIo(_) => (1011, "backend error"),
            Self::BackendInvalidUtf8 => (1011, "backend sent invalid utf-8"),
            Self::Idle => (1000, "idle"),
            Self::Shutdown => (1001, "going away"),
        })
    }

    /// The close code recorded in the access log: the one either side sent, or 1006
    /// (abnormal closure) when the connection dropped without one.
    pub fn logged_code(&self) -> u16 {
        match (self, self.close_frame()) {
            (Self::ClientClosed(code), _) => code.unwrap_or(1005),
            (_, Some((code, _))) => code,
            (_, None) => 1006,
        }
    }

    pub fn ended_by(&self) -> Side {
        match self {
            Self::ClientClosed(_)
            | Self::ClientGone
            | Self::PeerGone
            | Self::TooBig
            | Self::TextRefused
            | Self::InvalidUtf8
            | Self::Protocol => Side::Client,
            Self::BackendEof | Self::BackendIo(_) | Self::BackendInvalidUtf8 => Side::Backend,
            Self::Idle | Self::Shutdown => Side::Gateway,
        }
    }

    /// After sending our close frame, whether to keep reading the client (forwarding its data)
    /// until its own close frame arrives. Not after client errors: its stream is unusable.
    pub fn awaits_client_close(&self) -> bool {
        matches!(
            self,
            Self::BackendEof
                | Self::BackendIo(_)
                | Self::BackendInvalidUtf8
                | Self::Idle
                | Self::Shutdown
        )
    }

    /// A short label for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ClientClosed(_) => "client_closed",
            Self::ClientGone => "client_gone",
            Self::PeerGone => "ping_timeout",
            Self::TooBig => "too_big",
            Self::TextRefused => "text_refused",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Protocol => "protocol_error",
            Self::BackendEof => "backend_eof",
            Self::BackendIo(_) => "backend_error",
            Self::BackendInvalidUtf8 => "backend_invalid_utf8",
            Self::Idle => "idle",
            Self::Shutdown => "shutdown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_cause() {
        let timeout = BackendError::Timeout { addr: "x:1".into() };
        assert_eq!(
            Reject::Backend(timeout).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        let refused = BackendError::Connect {
            addr: "x:1".into(),
            source: io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(Reject::Backend(refused).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            Reject::Version.into_response(Version::HTTP_11).headers()[SEC_WEBSOCKET_VERSION],
            "13"
        );
    }

    #[test]
    fn close_codes_follow_the_cause() {
        assert_eq!(SessionEnd::TooBig.logged_code(), 1009);
        assert_eq!(SessionEnd::BackendEof.logged_code(), 1000);
        assert_eq!(
            SessionEnd::BackendIo(io::ErrorKind::ConnectionReset).logged_code(),
            1011
        );
        assert_eq!(SessionEnd::Shutdown.logged_code(), 1001);
        assert_eq!(SessionEnd::ClientGone.logged_code(), 1006);
        assert_eq!(SessionEnd::ClientClosed(Some(4000)).logged_code(), 4000);
        assert_eq!(SessionEnd::PeerGone.ended_by(), Side::Client);
    }
}
