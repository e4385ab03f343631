//! The client's real address behind load balancers: which peers are believed when they say
//! who the client is (`trusted_proxies`), reading that from the one forwarding header they set (`X-Forwarded-For` or `Forwarded`),
//! and the key per-client limits count by.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack listener reports for IPv4
//! clients) are IPv4 throughout: in trust checks, in what [`resolve`] returns, and as keys.

// `pub(crate)` only so that `crate::internals` can hand its parsers to the fuzz crate.
pub(crate) mod forwarded;

use std::net::{IpAddr, Ipv6Addr};

use hyper::HeaderMap;
use ipnet::{IpNet, Ipv4Net};

pub use crate::config::ClientIpHeader;

/// The peers whose forwarding headers are believed: CIDRs and single addresses. Empty (the
/// default) trusts no one, so the TCP peer is always the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ClientIpHeader,
}

impl TrustedProxies {
    /// Believe only `header` (the one the trusted proxies set). Reading whichever is
    /// present would let a client behind a proxy that sets only the other one supply its
    /// own address.
    pub fn reading(mut self, header: ClientIpHeader) -> Self {
        self.header = header;
        self
    }

    /// Parses config entries: a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (one
    /// host). Fails with every bad entry as `(index, message naming the value)`.
    ///
    /// A CIDR with bits set past its prefix (`10.0.0.1/8`) is refused rather than widened:
    /// it is most likely a typo for a single address, and widening it would trust a network.
    pub fn parse(entries: &[String]) -> Result<Self, Vec<(usize, String)>> {
        let mut nets = Vec::with_capacity(entries.len());
        let mut bad = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match parse_entry(entry) {
                Ok(net) => nets.push(net),
                Err(message) => bad.push((i, message)),
            }
        }
        if bad.is_empty() {
            Ok(Self {
                nets,
                header: ClientIpHeader::default(),
            })
        } else {
            Err(bad)
        }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn parse_entry(entry: &str) -> Result<IpNet, String> {
    let text = entry.trim();
    let net = if text.contains('/') {
        let net: IpNet = text.parse().map_err(|_| {
            format!("{entry:?} is not a CIDR; write e.g. 10.0.0.0/8 or 2001:db8::/32")
        })?;
        let network = net.trunc();
        if network != net {
            return Err(format!(
                "{entry:?} has bits set past its /{} prefix; write {network} for the network \
                 or {} for the one address",
                net.prefix_len(),
                net.addr()
            ));
        }
        net
    } else {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| format!("{entry:?} is not an IP address or a CIDR such as 10.0.0.0/8"))?;
        IpNet::from(ip)
    };
    Ok(unmap(net))
}

/// An entry inside `::ffff:0:0/96` as the IPv4 network it stands for, since addresses are
/// compared in their IPv4 form.
fn unmap(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else {
        return net;
    };
    let mapped = v6.addr().to_ipv4_mapped();
    match (mapped, v6.prefix_len().checked_sub(96)) {
        (Some(v4), Some(len)) => Ipv4Net::new(v4, len).map_or(net, IpNet::V4),
        _ => net,
    }
}

/// The client's address for a request that arrived from `peer`.
///
/// If `peer` is not trusted, it is the client and every header is ignored: anyone can send
/// them. If it is, the hops come from `Forwarded` (RFC 7239 `for=`) when any element of it
/// has a `for` parameter, else from `X-Forwarded-For`; all lines of the header in order.
/// Each proxy appends the address it received the request from, so the list is walked from
/// the right (the hop nearest us) and the first address that is not trusted is the client.
/// If every address is trusted, the left-most one is. No header, or a right-most entry that
/// is not an address, gives `peer`.
///
/// An entry that is not an address (`_hidden`, `unknown`, garbage) stops the walk, and the
/// answer is the last address passed: the trusted proxy that wrote that entry, or `peer`.
/// Everything right of the first untrusted address was written by trusted proxies, but
/// everything left of the entry a trusted proxy could not fill in may have been written by
/// the client itself, so reading past it would let a client choose its own address. Using
/// the proxy's address instead may put several clients under one key, which only ever
/// makes limits stricter.
///
/// A trusted proxy must therefore also overwrite (or strip) whichever of the two headers it
/// does not set: a client-sent `Forwarded` header with `for=` is preferred over the proxy's
/// `X-Forwarded-For`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let hops = match trusted.header {
        ClientIpHeader::XForwardedFor => forwarded::x_forwarded_for(headers),
        ClientIpHeader::Forwarded => forwarded::forwarded_for(headers).unwrap_or_default(),
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop else {
            return client;
        };
        let ip = ip.to_canonical();
        if !trusted.contains(ip) {
            return ip;
        }
        client = ip;
    }
    client
}

/// The key per-client limits count `ip` under: IPv6 addresses masked to their first
/// `prefix` bits (one subscriber usually holds a whole /64 and can rotate within it), IPv4
/// addresses (IPv4-mapped ones included, as IPv4) as they are. A `prefix` over 128 is 128.
pub fn ipv6_prefix_key(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let keep = u32::from(prefix.min(128));
            // Shifting a u128 by 128 is out of range: a /0 keeps nothing.
            let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests;
