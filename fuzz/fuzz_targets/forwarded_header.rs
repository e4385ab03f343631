#![no_main]
//! The `Forwarded` (RFC 7239) and `X-Forwarded-For` parsers, and the client address chosen
//! from them. Header lines come from the fuzz bytes. Checked: hops of one line never depend
//! on the lines after it; `X-Forwarded-For` has one hop per non-empty entry; every address
//! read out reads back the same in each form a proxy writes it, and a `Forwarded` header
//! written from the hops parses to the same hops; the client address is the peer or one of
//! the addresses in the header, and an untrusted peer is always its own client.
//!
//! Input: byte 0 picks the peer and the header believed; the rest is `name: value` lines.

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wsgate::internals::{
    ClientIpHeader, TrustedProxies, forwarded_for, parse_node, resolve, x_forwarded_for,
};

fn headers<'a>(lines: impl Iterator<Item = &'a [u8]>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    map
}

/// Each address reads back the same in the forms proxies write it.
fn reads_back(ip: IpAddr) {
    let forms = match ip {
        IpAddr::V4(v4) => vec![v4.to_string(), format!("{v4}:8080"), format!("{v4}:_port")],
        IpAddr::V6(v6) => vec![v6.to_string(), format!("[{v6}]"), format!("[{v6}]:443")],
    };
    for form in forms {
        assert_eq!(parse_node(&form), Some(ip), "{form}");
    }
}

/// A `Forwarded` value listing `hops`, as a proxy would write it.
fn forwarded_value(hops: &[Option<IpAddr>]) -> String {
    let elements: Vec<String> = hops
        .iter()
        .map(|hop| match hop {
            Some(IpAddr::V4(v4)) => format!("for={v4}"),
            Some(IpAddr::V6(v6)) => format!("for=\"[{v6}]:4711\";proto=https"),
            None => "for=unknown".to_string(),
        })
        .collect();
    elements.join(", ")
}

fuzz_target!(|input: &[u8]| {
    let [choice, text @ ..] = input else {
        return;
    };
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let all = headers(lines.iter().copied());

    let xff = x_forwarded_for(&all);
    let fwd = forwarded_for(&all);
    // Lines after the first `k` never change the hops read from those (a few `k`: each
    // check parses the lines again).
    for k in [1, lines.len() / 2, lines.len() - 1] {
        let head = headers(lines[..k].iter().copied());
        let head_xff = x_forwarded_for(&head);
        assert_eq!(
            head_xff[..],
            xff[..head_xff.len()],
            "x-forwarded-for, first {k} lines"
        );
        if let Some(head_fwd) = forwarded_for(&head) {
            let fwd = fwd.as_ref().expect("a for= in the first lines stays");
            assert_eq!(
                head_fwd[..],
                fwd[..head_fwd.len()],
                "forwarded, first {k} lines"
            );
        }
    }
    let entries = all
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| match v.to_str() {
            Ok(s) => s.split(',').filter(|e| !e.trim().is_empty()).count(),
            Err(_) => 1,
        })
        .sum::<usize>();
    assert_eq!(xff.len(), entries);

    for ip in xff.iter().chain(fwd.iter().flatten()).flatten() {
        reads_back(*ip);
    }
    if let Some(hops) = &fwd {
        let mut again = HeaderMap::new();
        let value = forwarded_value(hops);
        again.append("forwarded", HeaderValue::from_str(&value).expect("ascii"));
        assert_eq!(forwarded_for(&again).as_ref(), Some(hops), "{value}");
    }

    // The address chosen for the client.
    let entries = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"].map(String::from);
    let header = if choice & 1 == 0 {
        ClientIpHeader::XForwardedFor
    } else {
        ClientIpHeader::Forwarded
    };
    let trusted = TrustedProxies::parse(&entries)
        .expect("valid")
        .reading(header);
    let peers: [IpAddr; 4] = [
        [10, 0, 0, 2].into(),
        "::ffff:10.1.2.3".parse().expect("ip"),
        "2001:db8::7".parse().expect("ip"),
        [203, 0, 113, 9].into(),
    ];
    let peer = peers[usize::from(choice >> 1) % peers.len()];
    let client = resolve(peer, &all, &trusted);
    if !trusted.contains(peer) {
        assert_eq!(client, peer.to_canonical());
    }
    let hops = match header {
        ClientIpHeader::XForwardedFor => xff,
        ClientIpHeader::Forwarded => fwd.unwrap_or_default(),
    };
    assert!(
        client == peer.to_canonical()
            || hops.iter().flatten().any(|ip| ip.to_canonical() == client),
        "{client} is neither the peer nor a hop"
    );
});
