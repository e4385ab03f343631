//! The hidden `proxy` mode: a plain TCP copy proxy (tokio's `copy_bidirectional`, no
//! WebSocket at all) run as its own process, like the gateway, so that the two are compared
//! on equal terms: same runtime flavour, same worker count, own CPU and memory.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Serves until its stdin ends (the benchmark holds it open), so it never outlives the
/// benchmark process however that ends.
pub fn run(listen: &str, backend: SocketAddr) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let served = rt.block_on(async {
        let listener = bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
        println!("listening {}", listener.local_addr()?);
        tokio::select! {
            () = accept_loop(listener, backend) => {}
            () = stdin_closed() => {}
        }
        Ok(())
    });
    // Nothing left worth waiting for (the stdin reader may still be blocked).
    rt.shutdown_background();
    served
}

/// Binds with a long accept queue (`TcpListener::bind` asks for 128): raw clients finish
/// connecting without waiting for the proxy, so bursts of connects would overflow a short
/// queue and measure SYN retransmission timeouts instead of the proxy.
fn bind(listen: &str) -> Result<TcpListener> {
    Ok(wsgate::listener::bind(listen, 4096)?)
}

async fn accept_loop(listener: TcpListener, backend: SocketAddr) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue; // a connection reset before it was taken
        };
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(backend).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut client, mut server) = (client, server);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(1..) = stdin.read(&mut buf).await {}
}
