//! The seam the fuzz crate (`fuzz/`, outside this workspace) uses to reach parsers of
//! untrusted input that are otherwise private to the crate. Hidden from the docs and not
//! part of the API: nothing else should call it. Everything else the fuzz targets drive is
//! already public (`frame`, `proxy_protocol`, `handshake`, `config::units`).

use std::net::IpAddr;

use hyper::HeaderMap;

use crate::client_ip::forwarded;

/// Every `for=` hop of the `Forwarded` header lines, left to right; `None` if no element
/// has a `for` parameter. A hop that is not an address is `None`.
pub fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    forwarded::forwarded_for(headers)
}

/// Every `X-Forwarded-For` entry, left to right across all lines.
pub fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    forwarded::x_forwarded_for(headers)
}

/// One hop's node (`192.0.2.60:8080`, `[2001:db8::1]:4711`, ...) as an address.
pub fn parse_node(node: &str) -> Option<IpAddr> {
    forwarded::parse_node(node)
}
