//! hyper's settings for client connections: header limits and timeouts for HTTP/1.1,
//! flow-control windows, stream count, extended CONNECT and keep-alive pings for HTTP/2.

use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use crate::config::Config;

/// Per HTTP/2 stream, at most this much unread data is buffered before the client must
/// wait: the same bound on memory as TCP gives an HTTP/1.1 session.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// And for all streams of one connection together.
const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// WebSocket streams one HTTP/2 connection may carry at once.
const H2_MAX_STREAMS: u32 = 256;

/// HTTP/1.1 with header limits. hyper's header timeout runs from the moment it waits for
/// a request head, so it also bounds how long a keep-alive connection may sit idle
/// between requests (the first request is under the connection's deadline as well).
pub fn http1_builder(cfg: &Config) -> http1::Builder {
    let limits = &cfg.limits;
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .max_buf_size(limits.max_header_size.as_usize())
        .max_headers(limits.max_headers);
    http1
}

/// HTTP/1.1 and HTTP/2 (chosen by ALPN or the client's first bytes), with extended CONNECT
/// and keep-alive pings on HTTP/2 (a peer that does not answer within `pong_timeout` is
/// dropped, sessions and all).
pub fn auto_builder(cfg: &Config) -> auto::Builder<TokioExecutor> {
    let limits = &cfg.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .max_buf_size(limits.max_header_size.as_usize())
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .keep_alive_interval(cfg.liveness.ping_interval)
        .keep_alive_timeout(cfg.liveness.pong_timeout)
        .max_header_list_size(u32::try_from(limits.max_header_size.0).unwrap_or(u32::MAX))
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_concurrent_streams(H2_MAX_STREAMS);
    builder
}
