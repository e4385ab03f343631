//! The seam through which the fuzz crate (`fuzz/`, outside this workspace) and the
//! integration tests reach parsers of untrusted input that are otherwise private to the
//! crate. Hidden from the docs and not part of the API: nothing else should use it, and it
//! may change with any release.

use std::net::IpAddr;

use hyper::HeaderMap;

pub use crate::client_ip::{ClientIpHeader, TrustedProxies, resolve};
pub use crate::error::Reject;
pub use crate::frame::close::{ClientClose, frame as close_frame, parse as parse_close};
pub use crate::frame::pings::MAX_UNANSWERED as MAX_UNANSWERED_PINGS;
pub use crate::frame::reader::{FrameLimits, FrameReader, Stop};
pub use crate::frame::utf8::{Utf8Stream, complete_prefix};
pub use crate::handshake::{Opening, accepted, check_upgrade, choose_subprotocol};
pub use crate::proxy_protocol::{
    ProxyError, ProxyHeader, V1_MAX_LEN, V2_MAX_LEN, V2_SIGNATURE, read_header, v2_header,
};

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
