use hyper::header::{HeaderName, HeaderValue};

use super::forwarded::parse_node;
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn trusted(entries: &[&str]) -> TrustedProxies {
    let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
    TrustedProxies::parse(&entries).unwrap()
}

/// Headers from `(name, value)` lines, repeated names kept as separate lines in order.
fn headers(lines: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

const LB: &str = "10.0.0.2";

/// The load balancer 10.0.0.2 and the internal proxies in 10.1.0.0/16 are trusted.
fn lb() -> TrustedProxies {
    trusted(&[LB, "10.1.0.0/16", "2001:db8:ffff::/48"])
}

fn via_lb(lines: &[(&str, &[u8])]) -> IpAddr {
    resolve(ip(LB), &headers(lines), &lb())
}

/// As [`via_lb`], with the proxies setting `Forwarded` (RFC 7239) instead of XFF.
fn via_lb_forwarded(lines: &[(&str, &[u8])]) -> IpAddr {
    resolve(
        ip(LB),
        &headers(lines),
        &lb().reading(ClientIpHeader::Forwarded),
    )
}

#[test]
fn parse_accepts_cidrs_and_bare_addresses() {
    let t = trusted(&[
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.7",
        "::1",
        " 172.16.0.0/12 ",
    ]);
    assert!(!t.is_empty());
    for yes in [
        "10.255.0.1",
        "2001:db8:1::5",
        "192.0.2.7",
        "::1",
        "172.20.0.1",
    ] {
        assert!(t.contains(ip(yes)), "{yes}");
    }
    for no in ["11.0.0.1", "2001:db9::1", "192.0.2.8", "::2", "172.32.0.1"] {
        assert!(!t.contains(ip(no)), "{no}");
    }
    assert!(TrustedProxies::parse(&[]).unwrap().is_empty());
    assert!(TrustedProxies::default().is_empty());
}

#[test]
fn parse_reports_every_bad_entry_with_its_index() {
    let entries: Vec<String> = ["10.0.0.0/8", "10.0.0.0/33", "nope", "::1", "10.0.0.1/8", ""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let bad = TrustedProxies::parse(&entries).unwrap_err();
    let indexes: Vec<usize> = bad.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [1, 2, 4, 5]);
    assert!(bad[0].1.contains("\"10.0.0.0/33\""), "{}", bad[0].1);
    assert!(bad[1].1.contains("\"nope\""), "{}", bad[1].1);
    assert!(
        bad[2].1.contains("10.0.0.0/8") && bad[2].1.contains("10.0.0.1"),
        "{}",
        bad[2].1
    );
}

#[test]
fn ipv4_mapped_addresses_are_ipv4() {
    let t = trusted(&["10.0.0.0/8", "::ffff:192.0.2.0/120"]);
    assert!(t.contains(ip("::ffff:10.1.2.3")));
    assert!(t.contains(ip("192.0.2.200")));
    assert!(t.contains(ip("::ffff:192.0.2.200")));
    assert!(!t.contains(ip("::ffff:192.0.3.1")));
    // IPv4-compatible (::a.b.c.d) is a plain IPv6 address.
    assert!(!t.contains(ip("::10.1.2.3")));
}

#[test]
fn untrusted_peer_is_the_client_whatever_it_sends() {
    let h = headers(&[
        ("x-forwarded-for", b"1.2.3.4"),
        ("forwarded", b"for=5.6.7.8"),
    ]);
    assert_eq!(resolve(ip("203.0.113.9"), &h, &lb()), ip("203.0.113.9"));
    assert_eq!(resolve(ip(LB), &h, &TrustedProxies::default()), ip(LB));
}

#[test]
fn trusted_peer_without_headers_is_the_client() {
    assert_eq!(via_lb(&[]), ip(LB));
    assert_eq!(via_lb(&[("x-forwarded-for", b"")]), ip(LB));
    assert_eq!(via_lb(&[("x-forwarded-for", b" , ,")]), ip(LB));
}

#[test]
fn one_xff_entry() {
    assert_eq!(
        via_lb(&[("x-forwarded-for", b"203.0.113.9")]),
        ip("203.0.113.9")
    );
}

#[test]
fn chain_through_several_trusted_hops() {
    let xff = b"198.51.100.1, 203.0.113.9, 10.1.0.5, 10.1.3.3";
    // 198.51.100.1 is whatever the client claimed; 203.0.113.9 is who reached our first proxy.
    assert_eq!(via_lb(&[("x-forwarded-for", xff)]), ip("203.0.113.9"));
}

#[test]
fn all_trusted_gives_the_left_most() {
    let xff = b"10.1.9.9, 10.1.0.5, 10.0.0.2";
    assert_eq!(via_lb(&[("x-forwarded-for", xff)]), ip("10.1.9.9"));
}

#[test]
fn xff_entries_with_ports_and_whitespace() {
    for (xff, want) in [
        (&b"  203.0.113.9  "[..], "203.0.113.9"),
        (b"203.0.113.9:5678", "203.0.113.9"),
        (b"2001:db8::9", "2001:db8::9"),
        (b"[2001:db8::9]", "2001:db8::9"),
        (b"[2001:db8::9]:80", "2001:db8::9"),
        (b"\t203.0.113.9 ,\t10.1.0.5\t", "203.0.113.9"),
    ] {
        assert_eq!(via_lb(&[("x-forwarded-for", xff)]), ip(want), "{xff:?}");
    }
}

#[test]
fn several_header_lines_are_one_list_in_order() {
    let lines: &[(&str, &[u8])] = &[
        ("x-forwarded-for", b"198.51.100.1"),
        ("x-forwarded-for", b"203.0.113.9, 10.1.0.5"),
        ("x-forwarded-for", b"10.1.0.6"),
    ];
    assert_eq!(via_lb(lines), ip("203.0.113.9"));
    let lines: &[(&str, &[u8])] = &[
        ("forwarded", b"for=198.51.100.1"),
        ("forwarded", b"for=203.0.113.9;proto=https, for=10.1.0.5"),
    ];
    assert_eq!(via_lb_forwarded(lines), ip("203.0.113.9"));
}

#[test]
fn only_the_configured_header_is_read() {
    let lines: &[(&str, &[u8])] = &[
        ("x-forwarded-for", b"198.51.100.1"),
        ("forwarded", b"for=203.0.113.9"),
    ];
    // A client-supplied Forwarded is ignored where the proxies set XFF, and the reverse.
    assert_eq!(via_lb(lines), ip("198.51.100.1"));
    assert_eq!(via_lb_forwarded(lines), ip("203.0.113.9"));
}

#[test]
fn forwarded_without_for_gives_the_peer() {
    let lines: &[(&str, &[u8])] = &[
        ("forwarded", b"proto=https;host=example.com"),
        ("x-forwarded-for", b"203.0.113.9"),
    ];
    assert_eq!(via_lb_forwarded(lines), ip(LB));
}

#[test]
fn forwarded_value_forms() {
    for (value, want) in [
        (
            &b"for=192.0.2.60;proto=http;by=203.0.113.43"[..],
            "192.0.2.60",
        ),
        (b"For=\"192.0.2.60:8080\"", "192.0.2.60"),
        (b"for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
        (b"for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17"),
        (b"proto=https; for=192.0.2.60 ;by=\"a;b,c\"", "192.0.2.60"),
        (b"for=\"192.0.2.60:_port-1\"", "192.0.2.60"),
        (b"for=\"\\192.0.2.60\"", "192.0.2.60"), // quoted-pair escapes
        (
            b"for=192.0.2.43, for=198.51.100.17;by=10.1.0.5",
            "198.51.100.17",
        ),
    ] {
        assert_eq!(
            via_lb_forwarded(&[("forwarded", value)]),
            ip(want),
            "{value:?}"
        );
    }
}

#[test]
fn obfuscated_identifiers_stop_the_walk() {
    // The right-most hop is hidden by our own load balancer: the balancer is all we know.
    for value in [&b"for=_hidden"[..], b"for=unknown", b"for=\"_x.y-z\""] {
        assert_eq!(
            via_lb_forwarded(&[("forwarded", value)]),
            ip(LB),
            "{value:?}"
        );
    }
    // A trusted proxy further in hid its client: that proxy is the answer, and the
    // (client-writable) entries left of the hidden one are never read.
    let value = b"for=198.51.100.1, for=_hidden, for=10.1.0.5";
    assert_eq!(via_lb_forwarded(&[("forwarded", value)]), ip("10.1.0.5"));
    // 10.1.0.5 wrote the `unknown` (each proxy appends its own client's address).
    let value = b"for=198.51.100.1, for=unknown, for=10.1.0.5, for=10.1.0.6";
    assert_eq!(via_lb_forwarded(&[("forwarded", value)]), ip("10.1.0.5"));
}

#[test]
fn malformed_entries_stop_the_walk() {
    for (xff, want) in [
        (&b"garbage"[..], LB),
        (b"203.0.113.9, garbage", LB),
        (b"198.51.100.1, garbage, 10.1.0.5", "10.1.0.5"),
        (b"198.51.100.1, 300.1.2.3, 10.1.0.5", "10.1.0.5"),
        (b"198.51.100.1, 1.2.3.4:99999, 10.1.0.5", "10.1.0.5"),
        (b"198.51.100.1, fe80::1%eth0, 10.1.0.5", "10.1.0.5"),
        (b"198.51.100.1, [1.2.3.4], 10.1.0.5", "10.1.0.5"),
        (b"\xff\xfe", LB), // not visible ASCII: the whole line is one bad entry
        (b"203.0.113.9, 10.1.0.5, _hidden", LB),
    ] {
        assert_eq!(via_lb(&[("x-forwarded-for", xff)]), ip(want), "{xff:?}");
    }
}

#[test]
fn unreadable_line_is_one_bad_entry() {
    let lines: &[(&str, &[u8])] = &[
        ("x-forwarded-for", b"198.51.100.1"),
        ("x-forwarded-for", b"203.0.113.9, \xff\xfe"),
        ("x-forwarded-for", b"10.1.0.5"),
    ];
    assert_eq!(via_lb(lines), ip("10.1.0.5"));
}

#[test]
fn malformed_forwarded_elements() {
    for (value, want) in [
        (&b"for=\"192.0.2.60"[..], LB),           // unterminated quote
        (b"for=192.0.2.60;for=198.51.100.1", LB), // for twice in one element
        (b"for=198.51.100.1, for, for=10.1.0.5", "10.1.0.5"), // no value
        (b"for=198.51.100.1, proto=http, for=10.1.0.5", "10.1.0.5"), // element without for
        (b"for=2001:db8::1", "2001:db8::1"),      // unquoted IPv6: lenient
    ] {
        assert_eq!(
            via_lb_forwarded(&[("forwarded", value)]),
            ip(want),
            "{value:?}"
        );
    }
}

#[test]
fn ipv4_mapped_peers_and_hops() {
    let h = headers(&[("x-forwarded-for", b"::ffff:203.0.113.9, ::ffff:10.1.0.5")]);
    assert_eq!(resolve(ip("::ffff:10.0.0.2"), &h, &lb()), ip("203.0.113.9"));
    // An untrusted mapped peer is returned as IPv4 too.
    assert_eq!(
        resolve(ip("::ffff:203.0.113.7"), &h, &lb()),
        ip("203.0.113.7")
    );
}

#[test]
fn ipv6_proxies() {
    let h = headers(&[(
        "forwarded",
        b"for=\"[2001:db8:1::5]:1234\", for=\"[2001:db8:ffff::1]\"",
    )]);
    let trusted = lb().reading(ClientIpHeader::Forwarded);
    assert_eq!(
        resolve(ip("2001:db8:ffff::2"), &h, &trusted),
        ip("2001:db8:1::5")
    );
}

#[test]
fn node_parsing() {
    for good in [
        "1.2.3.4",
        "1.2.3.4:0",
        "1.2.3.4:65535",
        "::1",
        "[::1]",
        "[::1]:80",
    ] {
        assert!(parse_node(good).is_some(), "{good}");
    }
    for bad in [
        "",
        "1.2.3.4:",
        "1.2.3.4:+80",
        "1.2.3.4:65536",
        "[::1]80",
        "[::1",
        "::1]:80",
    ] {
        assert_eq!(parse_node(bad), None, "{bad}");
    }
    for bad in [
        "1.2.3.4:_",
        "1.2.3.4:_a b",
        "unknown",
        "_hidden",
        "01.2.3.4",
        "example.com",
    ] {
        assert_eq!(parse_node(bad), None, "{bad}");
    }
}

#[test]
fn prefix_key_masks_ipv6_only() {
    let v6 = ip("2001:db8:1234:5678:9abc:def0:1234:5678");
    assert_eq!(ipv6_prefix_key(v6, 64), ip("2001:db8:1234:5678::"));
    assert_eq!(ipv6_prefix_key(v6, 48), ip("2001:db8:1234::"));
    assert_eq!(ipv6_prefix_key(v6, 56), ip("2001:db8:1234:5600::"));
    assert_eq!(ipv6_prefix_key(v6, 128), v6);
    assert_eq!(ipv6_prefix_key(v6, 200), v6);
    assert_eq!(ipv6_prefix_key(v6, 0), ip("::"));
    assert_eq!(ipv6_prefix_key(ip("203.0.113.9"), 64), ip("203.0.113.9"));
    assert_eq!(
        ipv6_prefix_key(ip("::ffff:203.0.113.9"), 64),
        ip("203.0.113.9")
    );
    // Two addresses in one /64 share a key; the next /64 does not.
    assert_eq!(
        ipv6_prefix_key(ip("2001:db8::1"), 64),
        ipv6_prefix_key(ip("2001:db8::ffff:1"), 64)
    );
    assert_ne!(
        ipv6_prefix_key(ip("2001:db8::1"), 64),
        ipv6_prefix_key(ip("2001:db8:0:1::1"), 64)
    );
}
