//! `wsgate demo`: the real gateway in front of a built-in TCP echo service, so a new user
//! can see it work with nothing else installed, and the page a browser gets at `/` there.

use std::io::{self, Write};
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Method, Request, Response};
use tokio::net::TcpListener;
use tracing::debug;

/// A page that opens a WebSocket to the gateway, echoes what is typed and shows how the
/// session ended; self-contained (no outside assets), built into the binary.
const PAGE: &str = include_str!("demo/page.html");

/// Only the page's own inline script and style, and WebSockets to the same host.
const PAGE_POLICY: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'";

/// The demo page, for a plain GET (or HEAD) of `/` that asks for no upgrade. Served only
/// by a server built with [`crate::Server::demo`]; otherwise such a request gets 426.
pub(crate) fn page<B>(req: &Request<B>) -> Option<Response<Full<Bytes>>> {
    let plain_get = req.method() == Method::GET || req.method() == Method::HEAD;
    if !plain_get || req.uri().path() != "/" || req.headers().contains_key(UPGRADE) {
        return None;
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    Some(resp)
}

/// Starts a TCP echo service on an ephemeral loopback port; it runs until the process ends.
pub async fn spawn_echo_backend() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut rd, mut wr) = sock.split();
                if let Err(e) = tokio::io::copy(&mut rd, &mut wr).await {
                    debug!(error = %e, "echo connection ended");
                }
            });
        }
    });
    Ok(addr)
}

/// Tells the user where the demo listens and how to talk to it.
pub fn print_banner(gateway: SocketAddr, echo: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "wsgate demo: ws://{gateway}/  ->  built-in TCP echo service at {echo}"
    )?;
    writeln!(
        out,
        "Open http://{gateway}/ in a browser to try it, or use a WebSocket client:"
    )?;
    writeln!(out, "  websocat ws://{gateway}/")?;
    writeln!(out, "  python3 -m websockets ws://{gateway}/")?;
    writeln!(
        out,
        "Every message comes back as a binary message. Press Ctrl-C to stop."
    )?;
    out.flush()
}
