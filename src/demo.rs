//! `wsgate demo`: the real gateway in front of a built-in TCP echo service, so a new user
//! can see it work with nothing else installed.

use std::io::{self, Write};
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tracing::debug;

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
        "Every message you send comes back as a binary message. Try one of:"
    )?;
    writeln!(out, "  websocat ws://{gateway}/")?;
    writeln!(out, "  python3 -m websockets ws://{gateway}/")?;
    writeln!(
        out,
        "  (browser console) s = new WebSocket('ws://{gateway}/'); s.onmessage = e => e.data.text().then(console.log); s.onopen = () => s.send('hello')"
    )?;
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()
}
