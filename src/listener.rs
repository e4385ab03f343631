//! The accept loops: take connections, never stop on an accept error, and hand each one to
//! its own task, tracked by the lifecycle, so a slow client never holds up the next accept
//! and the drain waits for every connection. `accept` is shared by the main listener's
//! loop here and the admin listener's.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep};
use tracing::{Instrument, error, info_span, warn};

use crate::generation::Shared;
use crate::socket_options;

/// How long to back off when accepting fails for a reason that is not one connection's
/// (out of file descriptors, out of memory): retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Binds `addr` (`ip:port`) with an accept queue of `backlog` (std and tokio use 128,
/// too small for a burst of reconnecting clients). Must run inside the tokio runtime.
pub fn bind(addr: &str, backlog: u32) -> io::Result<TcpListener> {
    let addr: SocketAddr = addr.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr:?} is not ip:port"),
        )
    })?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Sets the options every accepted client connection inherits (see [`socket_options`]).
/// Connections that completed their handshake in the kernel before this do not get them.
pub(crate) fn tune(listener: &TcpListener, shared: &Shared) {
    let max_unsent = max_unsent_to_client(shared);
    if let Err(e) = socket_options::tune_listener(listener, max_unsent) {
        warn!(error = %e, "could not set client socket options on the listener");
    }
}

/// Accepts until the future is dropped, handing each connection to `serve` (the client
/// connection, [`crate::connection::serve_connection`]) in a task of its own. The listener was
/// [`tune`]d.
pub(crate) async fn accept_loop<S, F>(listener: TcpListener, shared: Arc<Shared>, serve: S)
where
    S: Fn(TcpStream, SocketAddr, Instant, Arc<Shared>, OwnedSemaphorePermit) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    // Connections not yet upgraded or refused. At the cap, accepting pauses and the kernel
    // backlog absorbs the burst, so a flood of half-open handshakes cannot take every slot
    // from real clients forever: each one is bounded by the handshake timeout.
    let pending = Arc::new(Semaphore::new(
        shared.current().cfg.limits.max_pending_handshakes,
    ));
    // A reload that changes the unsent bound re-tunes the listener at the next accept.
    let mut max_unsent = max_unsent_to_client(&shared);
    loop {
        let Ok(permit) = pending.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = accept(&listener).await;
        // The connection's handshake deadline counts from here.
        let accepted = Instant::now();
        if let Err(e) = socket_options::tune_client(&tcp, peer.ip()) {
            warn!(error = %e, %peer, "could not set the connection's keepalive");
        }
        let wanted = max_unsent_to_client(&shared);
        if wanted != max_unsent {
            max_unsent = wanted;
            if let Err(e) = socket_options::set_max_unsent(&listener, max_unsent) {
                warn!(error = %e, "could not change limits.max_unsent_to_client");
            }
            // This connection was accepted before the change.
            if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(max_unsent) {
                warn!(error = %e, %peer, "could not set TCP_NOTSENT_LOWAT");
            }
        }
        let task = serve(tcp, peer, accepted, shared.clone(), permit);
        shared
            .life
            .spawn(task.instrument(info_span!("conn", %peer)));
    }
}

/// The next connection on `listener`. An error that concerns only the connection being
/// accepted skips it; any other (out of file descriptors, out of memory) pauses before the
/// next try, since retrying at once would spin. Never fails: an accept loop never ends on
/// an accept error. Cancel-safe.
pub(crate) async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(conn) => return conn,
            Err(e) if is_per_connection(&e) => {}
            Err(e) => {
                if e.raw_os_error() == Some(24) || e.raw_os_error() == Some(23) {
                    warn!(error = %e, "out of file descriptors; pausing accepts");
                } else {
                    error!(error = %e, "accept failed; pausing");
                }
                sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

fn max_unsent_to_client(shared: &Shared) -> u32 {
    let bytes = shared.current().cfg.limits.max_unsent_to_client.0;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Errors that concern only the connection being accepted (it was reset or aborted
/// before we got to it).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
