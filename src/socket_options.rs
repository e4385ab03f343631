//! The TCP options the gateway sets on its sockets: no Nagle delay and keepalive probes on
//! both sides of a session, and towards clients a bound on the data that waits unsent in
//! the kernel (`TCP_NOTSENT_LOWAT`).
//!
//! Client sockets take their options from the listener: Linux copies a listening socket's
//! TCP options into every connection it accepts, so they cost nothing per connection.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};

/// Keepalive probes: a peer host that vanished is noticed in about
/// `KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_RETRIES` even when no data flows and
/// nothing else (a ping, a write) would find out.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

fn keepalive() -> TcpKeepalive {
    TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES)
}

/// A backend connection: no Nagle, keepalive.
pub fn tune_backend(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    SockRef::from(stream).set_tcp_keepalive(&keepalive())
}

/// The listener, for every client connection it will accept: no Nagle, keepalive, and at
/// most about `max_unsent` bytes waiting unsent in the kernel. A frame (a pong, a ping, the
/// close) then never waits behind more than that plus what is already on its way, a slow
/// client costs at most that much kernel memory, and a drain is not held up by megabytes
/// queued towards one.
pub fn tune_listener(listener: &TcpListener, max_unsent: u32) -> io::Result<()> {
    let socket = SockRef::from(listener);
    socket.set_tcp_nodelay(true)?;
    socket.set_tcp_keepalive(&keepalive())?;
    set_max_unsent(listener, max_unsent)
}

/// Changes the unsent bound for connections accepted from now on.
pub fn set_max_unsent(listener: &TcpListener, max_unsent: u32) -> io::Result<()> {
    SockRef::from(listener).set_tcp_notsent_lowat(max_unsent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_inherit_the_listener_options() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tune_listener(&listener, 96 * 1024).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let socket = SockRef::from(&accepted);
        assert!(socket.tcp_nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_RETRIES);
        assert_eq!(socket.tcp_notsent_lowat().unwrap(), 96 * 1024);
    }
}
