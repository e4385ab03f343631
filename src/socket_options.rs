//! The TCP options the gateway sets on its sockets: no Nagle delay and keepalive probes on
//! both sides of a session, and towards clients a bound on the data that waits unsent in
//! the kernel (`TCP_NOTSENT_LOWAT`).
//!
//! Client sockets take their options from the listener: Linux copies a listening socket's
//! TCP options into every connection it accepts. One option is set per connection (one
//! system call): the keepalive's first probe, to spread it, or keepalive off for a peer on
//! loopback.
//!
//! Keepalive probes find a peer host that vanished or a path that broke. A peer on
//! loopback has neither: when its process ends, the kernel closes its socket. Such
//! connections get no probes, because on loopback every probe and its answer pass
//! through the kernel's per-CPU input backlog (`net.core.netdev_max_backlog`, 1,000
//! packets). The kernel fires timers in batches (every timer due within the same 1-4 s
//! slot, for timers a minute away), so ten thousand idle loopback connections send
//! their probes in bursts larger than that queue; the probes are dropped again at every
//! retry, and live connections are aborted as timed out (measured: 719 of 9,500 idle
//! sessions in five minutes, `wsgate-bench --only soak-liveness` with pings off).

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};

/// Keepalive probes: a peer host that vanished is noticed in about
/// `KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_RETRIES` even when no data flows and
/// nothing else (a ping, a write) would find out.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
/// Connections spread their first probe over this much time past
/// `KEEPALIVE_IDLE`. Sessions opened together (a reconnect storm, a load test) would
/// otherwise probe together: thousands of probes and answers in one instant overflow the
/// kernel's input backlog (1,000 packets per CPU by default, loopback included), the same
/// probes are lost again at each retry, and every one of those connections is aborted as
/// timed out although both ends are alive.
const KEEPALIVE_SPREAD_SECS: u64 = 30;

fn keepalive(idle: Duration) -> TcpKeepalive {
    TcpKeepalive::new()
        .with_time(idle)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES)
}

/// `KEEPALIVE_IDLE` plus the next second of the spread, in turn: connections opened
/// together get every second of it.
fn spread_idle() -> Duration {
    static OPENED: AtomicU64 = AtomicU64::new(0);
    let turn = OPENED.fetch_add(1, Ordering::Relaxed) % KEEPALIVE_SPREAD_SECS;
    KEEPALIVE_IDLE + Duration::from_secs(turn)
}

/// Whether a connection to `peer` gets keepalive probes: not on loopback (see the module
/// documentation).
pub fn probes(peer: IpAddr) -> bool {
    !peer.to_canonical().is_loopback()
}

/// A connection we opened to `peer` (a backend, or a gateway for `wsgate client`): no
/// Nagle, and unless `peer` is on loopback, keepalive whose first probe is spread (see
/// [`KEEPALIVE_SPREAD_SECS`]).
pub fn tune_backend(stream: &TcpStream, peer: IpAddr) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if !probes(peer) {
        return Ok(());
    }
    SockRef::from(stream).set_tcp_keepalive(&keepalive(spread_idle()))
}

/// The listener, for every client connection it will accept: no Nagle, keepalive, and at
/// most about `max_unsent` bytes waiting unsent in the kernel. A frame (a pong, a ping, the
/// close) then never waits behind more than that plus what is already on its way, a slow
/// client costs at most that much kernel memory, and a drain is not held up by megabytes
/// queued towards one.
pub fn tune_listener(listener: &TcpListener, max_unsent: u32) -> io::Result<()> {
    let socket = SockRef::from(listener);
    socket.set_tcp_nodelay(true)?;
    socket.set_tcp_keepalive(&keepalive(KEEPALIVE_IDLE))?;
    set_max_unsent(listener, max_unsent)
}

/// An accepted client connection from `peer`: its first keepalive probe spread like a
/// backend's, or keepalive off if `peer` is on loopback. The rest of its options came from
/// the listener; the kernel completes a burst of handshakes before they are accepted, so
/// only a per-connection setting can spread them. One system call: keepalive itself, its
/// interval and count came from the listener.
pub fn tune_client(stream: &TcpStream, peer: IpAddr) -> io::Result<()> {
    if !probes(peer) {
        return SockRef::from(stream).set_keepalive(false);
    }
    rustix::net::sockopt::set_tcp_keepidle(stream, spread_idle())?;
    Ok(())
}

/// Changes the unsent bound for connections accepted from now on.
pub fn set_max_unsent(listener: &TcpListener, max_unsent: u32) -> io::Result<()> {
    SockRef::from(listener).set_tcp_notsent_lowat(max_unsent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backend_connections_opened_together_probe_at_different_times() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut idle_times = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let stream = TcpStream::connect(addr).await.unwrap();
            let _accepted = listener.accept().await.unwrap();
            // A peer address off loopback, as a remote backend's would be.
            tune_backend(&stream, "192.0.2.1".parse().unwrap()).unwrap();
            let idle = SockRef::from(&stream).tcp_keepalive_time().unwrap();
            let spread = Duration::from_secs(KEEPALIVE_SPREAD_SECS);
            assert!(
                idle >= KEEPALIVE_IDLE && idle < KEEPALIVE_IDLE + spread,
                "{idle:?}"
            );
            idle_times.insert(idle);
        }
        // Other tests may open backend connections meanwhile and take some turns.
        assert!(
            idle_times.len() >= 20,
            "only {} distinct times",
            idle_times.len()
        );
    }

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
        tune_client(&accepted, "192.0.2.1".parse().unwrap()).unwrap();
        let idle = socket.tcp_keepalive_time().unwrap();
        assert!(idle >= KEEPALIVE_IDLE && idle < KEEPALIVE_IDLE + Duration::from_secs(30));
        assert!(socket.keepalive().unwrap(), "still on");
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
    }

    #[tokio::test]
    async fn loopback_connections_get_no_keepalive_probes() {
        for loopback in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!probes(loopback.parse().unwrap()), "{loopback}");
        }
        for remote in ["10.0.0.1", "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1"] {
            assert!(probes(remote.parse().unwrap()), "{remote}");
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tune_listener(&listener, 96 * 1024).unwrap();
        let addr = listener.local_addr().unwrap();
        let ours = TcpStream::connect(addr).await.unwrap();
        let (accepted, peer) = listener.accept().await.unwrap();
        tune_backend(&ours, addr.ip()).unwrap();
        tune_client(&accepted, peer.ip()).unwrap();
        assert!(!SockRef::from(&ours).keepalive().unwrap(), "backend side");
        assert!(
            !SockRef::from(&accepted).keepalive().unwrap(),
            "client side"
        );
        assert!(SockRef::from(&ours).tcp_nodelay().unwrap());
        assert!(SockRef::from(&accepted).tcp_nodelay().unwrap());
    }
}
