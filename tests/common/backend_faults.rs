//! Backends that fail the way real ones do: a connection reset, a socket closed with bytes
//! still unread, a process that exits and comes back on the same port.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

use super::PATIENCE;

/// Closes `sock` with an RST instead of a FIN (`SO_LINGER` 0): what a peer's kernel sends
/// when it aborts a connection.
pub fn reset(sock: TcpStream) {
    SockRef::from(&sock)
        .set_linger(Some(Duration::ZERO))
        .expect("set SO_LINGER 0");
    drop(sock);
}

/// Waits until `sock` holds bytes it has not read. A socket closed in that state sends an
/// RST rather than a FIN (Linux, RFC 2525 2.17), as a process killed mid-transfer does.
pub async fn wait_unread(sock: &TcpStream) {
    let mut byte = [0u8; 1];
    let n = timeout(PATIENCE, sock.peek(&mut byte))
        .await
        .expect("no bytes arrived at the backend")
        .expect("peek failed");
    assert_eq!(n, 1, "the backend's peer closed instead of sending");
}

/// A backend that can go down and come back on the same port, as a restarted process does.
pub struct Restartable {
    pub addr: SocketAddr,
    listener: Option<TcpListener>,
    /// While down: bound but not listening, so the port stays ours and connections to it
    /// are refused.
    reserved: Option<TcpSocket>,
}

impl Restartable {
    /// Listens on an ephemeral port of 127.0.0.1. Must run inside the tokio runtime.
    pub fn bind() -> Self {
        let socket = reusable_socket();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        Self {
            addr,
            listener: Some(socket.listen(1024).unwrap()),
            reserved: None,
        }
    }

    pub async fn accept(&self) -> TcpStream {
        let listener = self
            .listener
            .as_ref()
            .expect("accept on a backend that is down");
        let (sock, _) = timeout(PATIENCE, listener.accept())
            .await
            .expect("gateway never connected the backend")
            .unwrap();
        sock
    }

    /// Stops listening: new connections are refused until [`start`](Self::start). The
    /// caller drops the connections it accepted, as the kernel does for an exiting process.
    pub fn stop(&mut self) {
        // The listener must be gone before the port is bound again: Linux refuses a bind to
        // a port someone listens on, even with SO_REUSEADDR.
        drop(self.listener.take().expect("backend already down"));
        // SO_REUSEADDR on both lets the port be bound while old connections still close.
        let socket = reusable_socket();
        socket
            .bind(self.addr)
            .expect("rebinding the backend's port failed");
        self.reserved = Some(socket);
    }

    /// Listens again on the same port.
    pub fn start(&mut self) {
        let socket = self.reserved.take().expect("backend already listening");
        self.listener = Some(socket.listen(1024).unwrap());
    }
}

fn reusable_socket() -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
}
