//! The PROXY protocol (HAProxy's `proxy-protocol.txt`, v1 text and v2 binary): reading the
//! header a load balancer sends before the client's bytes, and writing a v2 header for a
//! backend that expects one.
//!
//! [`read_header`] consumes exactly the header and nothing after it, so the same stream can
//! go on to the HTTP server. It has no timeout of its own: the caller bounds it with the
//! handshake timeout. [`read_header_from`] first checks that the peer may send one at all.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

use ppp::v1::{self, Addresses as V1Addresses};
use ppp::v2::{self, Addresses as V2Addresses, Command};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::client_ip::TrustedProxies;

/// The v2 signature, the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix, up to and including the space before the protocol.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header the spec allows, CRLF included.
pub const V1_MAX_LEN: usize = 107;
/// The shortest v1 header, `PROXY UNKNOWN\r\n`: that many bytes can be read at once without
/// reading past a valid header.
const V1_MIN_LEN: usize = 15;
/// The fixed part of a v2 header: signature, version/command, family/protocol, length.
const V2_FIXED_LEN: usize = 16;
/// The largest v2 header accepted, fixed part included. The spec allows 16 + 65535 bytes;
/// addresses take at most 216 and we ignore TLVs, so this only bounds memory per connection.
pub const V2_MAX_LEN: usize = 4096;

/// What the PROXY header says about the connection. `None` means "use the TCP endpoint":
/// v1 `UNKNOWN`, the v2 `LOCAL` command (health checks from the proxy itself), and
/// address families other than IPv4/IPv6 (UNIX sockets, `UNSPEC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client, as the proxy saw it.
    pub source: Option<SocketAddr>,
    /// The address the client connected to, on the proxy.
    pub destination: Option<SocketAddr>,
}

impl ProxyHeader {
    const UNKNOWN: Self = Self {
        source: None,
        destination: None,
    };

    /// The client's address: the header's source if it has one, else `peer` (the TCP peer).
    pub fn client_or(&self, peer: SocketAddr) -> SocketAddr {
        self.source.unwrap_or(peer)
    }
}

/// Why no PROXY header could be read. Every case ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The first bytes are not a PROXY signature: a client talking to us directly, or a
    /// proxy that was not configured to send the header.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// The signature is right but the rest does not follow the spec.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    /// A v1 line with no CRLF within the spec's 107 bytes, or a v2 header announcing more
    /// than we accept (refused before reading it).
    #[error("PROXY header longer than {limit} bytes")]
    TooLong { limit: usize },
    /// The peer closed the connection after `read` bytes, before the header ended
    /// (`read == 0`: it sent nothing, as TCP health checks do).
    #[error("connection closed after {read} bytes, before the PROXY header ended")]
    Closed { read: usize },
    #[error("reading the PROXY header: {0}")]
    Io(#[source] io::Error),
    /// The peer is not in `proxy_protocol_from`: whatever header it sends is its own claim.
    #[error("PROXY header from {0}, which is not in proxy_protocol_from")]
    UnlistedSender(IpAddr),
}

/// Reads the PROXY header of a connection from `peer` if `peer` is one of `senders`.
/// Anyone else who reaches the port could name any client address in a header, so its
/// connection is refused before a byte of it is read.
pub async fn read_header_from<S: AsyncRead + Unpin>(
    peer: IpAddr,
    senders: &TrustedProxies,
    stream: &mut S,
) -> Result<ProxyHeader, ProxyError> {
    if !senders.contains(peer) {
        return Err(ProxyError::UnlistedSender(peer.to_canonical()));
    }
    read_header(stream).await
}

/// Reads one PROXY header (v1 or v2) from `stream` and nothing after it.
///
/// v1 is read a byte at a time once past its shortest possible length, since the CRLF can
/// only be found by looking; v2 announces its length, so it is read in two exact reads.
/// Wrap `stream` in a buffered reader only if that reader is then used for the rest of the
/// connection, or the bytes it read ahead are lost.
pub async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<ProxyHeader, ProxyError> {
    let mut buf = vec![0u8; 1];
    fill(stream, &mut buf, 0).await?;
    match buf[0] {
        b'P' => read_v1(stream, buf).await,
        b'\r' => read_v2(stream, buf).await,
        _ => Err(ProxyError::NotProxy),
    }
}

/// Reads the rest of a v1 line whose first byte is in `line`.
async fn read_v1<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut line: Vec<u8>,
) -> Result<ProxyHeader, ProxyError> {
    line.resize(V1_MIN_LEN, 0);
    fill(stream, &mut line, 1).await?;
    if !line.starts_with(V1_PREFIX) {
        return Err(ProxyError::NotProxy);
    }
    // A line feed ends the line; the spec's terminator is CRLF, checked below.
    while !line.contains(&b'\n') {
        if line.len() >= V1_MAX_LEN {
            return Err(ProxyError::TooLong { limit: V1_MAX_LEN });
        }
        let at = line.len();
        line.push(0);
        fill(stream, &mut line, at).await?;
    }
    if line.last() != Some(&b'\n') {
        // Only possible within the first read: a short, broken line followed by more data.
        return Err(ProxyError::Malformed("v1 line ends early".into()));
    }
    // ppp accepts a bare LF after a space (`... 443 \n`, `UNKNOWN \n`): the spec does not.
    if !line.ends_with(b"\r\n") {
        return Err(ProxyError::Malformed(
            "v1 line does not end with CRLF".into(),
        ));
    }
    let header = v1::Header::try_from(line.as_slice()).map_err(malformed)?;
    // ppp takes the line up to the first CR: a stray CR before the end leaves bytes over.
    if header.header.len() != line.len() {
        return Err(ProxyError::Malformed(
            "v1 line has a stray carriage return".into(),
        ));
    }
    Ok(match header.addresses {
        V1Addresses::Tcp4(a) => ProxyHeader {
            source: Some(SocketAddrV4::new(a.source_address, a.source_port).into()),
            destination: Some(SocketAddrV4::new(a.destination_address, a.destination_port).into()),
        },
        V1Addresses::Tcp6(a) => ProxyHeader {
            source: Some(SocketAddrV6::new(a.source_address, a.source_port, 0, 0).into()),
            destination: Some(
                SocketAddrV6::new(a.destination_address, a.destination_port, 0, 0).into(),
            ),
        },
        V1Addresses::Unknown => ProxyHeader::UNKNOWN,
    })
}

/// Reads the rest of a v2 header whose first byte is in `header`.
async fn read_v2<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut header: Vec<u8>,
) -> Result<ProxyHeader, ProxyError> {
    header.resize(V2_FIXED_LEN, 0);
    fill(stream, &mut header, 1).await?;
    if !header.starts_with(V2_SIGNATURE) {
        return Err(ProxyError::NotProxy);
    }
    let announced = usize::from(u16::from_be_bytes([header[14], header[15]]));
    let total = V2_FIXED_LEN + announced;
    if total > V2_MAX_LEN {
        return Err(ProxyError::TooLong { limit: V2_MAX_LEN });
    }
    header.resize(total, 0);
    fill(stream, &mut header, V2_FIXED_LEN).await?;
    let parsed = v2::Header::try_from(header.as_slice()).map_err(malformed)?;
    if parsed.command == Command::Local {
        // The proxy's own connection (a health check): the spec says to ignore the addresses.
        return Ok(ProxyHeader::UNKNOWN);
    }
    // The transport nibble (stream/datagram/unspec) is not checked: the addresses are the
    // client's either way, and this connection is TCP whatever the proxy says.
    Ok(match parsed.addresses {
        V2Addresses::IPv4(a) => ProxyHeader {
            source: Some(SocketAddrV4::new(a.source_address, a.source_port).into()),
            destination: Some(SocketAddrV4::new(a.destination_address, a.destination_port).into()),
        },
        V2Addresses::IPv6(a) => ProxyHeader {
            source: Some(SocketAddrV6::new(a.source_address, a.source_port, 0, 0).into()),
            destination: Some(
                SocketAddrV6::new(a.destination_address, a.destination_port, 0, 0).into(),
            ),
        },
        V2Addresses::Unix(_) | V2Addresses::Unspecified => ProxyHeader::UNKNOWN,
    })
}

/// Fills `buf[from..]` exactly, telling a clean close apart from other I/O errors.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    from: usize,
) -> Result<(), ProxyError> {
    let mut at = from;
    while at < buf.len() {
        match stream.read(&mut buf[at..]).await {
            Ok(0) => return Err(ProxyError::Closed { read: at }),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ProxyError::Io(e)),
        }
    }
    Ok(())
}

fn malformed(e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Malformed(e.to_string())
}

/// A v2 `PROXY` header for TCP (`STREAM`) from `client` to `gateway_local`, with no TLVs, to
/// send first on a backend connection, built by `ppp`. IPv4 if both addresses are IPv4;
/// otherwise IPv6, with an IPv4 address written as IPv4-mapped (`::ffff:a.b.c.d`). Fails
/// only if the header could not hold its payload, which addresses alone never exceed.
pub fn v2_header(client: SocketAddr, gateway_local: SocketAddr) -> io::Result<Vec<u8>> {
    let (src, dst) = (client.port(), gateway_local.port());
    let addresses: V2Addresses = match (client.ip(), gateway_local.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => v2::IPv4::new(from, to, src, dst).into(),
        (from, to) => v2::IPv6::new(as_v6(from), as_v6(to), src, dst).into(),
    };
    v2::Builder::with_addresses(
        v2::Version::Two | Command::Proxy,
        v2::Protocol::Stream,
        addresses,
    )
    .build()
}

fn as_v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests;
