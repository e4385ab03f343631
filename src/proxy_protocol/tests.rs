use std::net::{Ipv4Addr, Ipv6Addr};

use tokio::io::{AsyncWriteExt, duplex};

use super::*;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Reads a header from `input` followed by [`REQUEST`], and checks the request is left
/// whole in the stream.
async fn read_then_request(input: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let mut bytes = input.to_vec();
    bytes.extend_from_slice(REQUEST);
    let mut reader = bytes.as_slice();
    let header = read_header(&mut reader).await?;
    assert_eq!(reader, REQUEST, "bytes after the header must stay unread");
    Ok(header)
}

/// A v2 header by hand: `ver_cmd`, `fam`, then `body` (addresses and TLVs).
fn v2_raw(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend([ver_cmd, fam]);
    out.extend((body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

const V4_BODY: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 7, 0x30, 0x39, 0x01, 0xbb];

#[tokio::test]
async fn v1_tcp4() {
    let h = read_then_request(b"PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\n").await;
    let h = h.unwrap();
    assert_eq!(h.source, Some(sa("192.0.2.1:12345")));
    assert_eq!(h.destination, Some(sa("198.51.100.7:443")));
}

#[tokio::test]
async fn v1_tcp6() {
    let h = read_then_request(b"PROXY TCP6 2001:db8::1 2001:db8::2 4711 443\r\n").await;
    let h = h.unwrap();
    assert_eq!(h.source, Some(sa("[2001:db8::1]:4711")));
    assert_eq!(h.destination, Some(sa("[2001:db8::2]:443")));
}

#[tokio::test]
async fn v1_unknown_means_use_the_peer() {
    let peer = sa("10.0.0.9:5000");
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n",
    ] {
        let h = read_then_request(line).await.unwrap();
        assert_eq!(h, ProxyHeader::UNKNOWN);
        assert_eq!(h.client_or(peer), peer);
    }
}

#[tokio::test]
async fn v1_longest_legal_line_is_accepted() {
    let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    // The spec's worst case: UNKNOWN with full IPv6 addresses.
    let line = format!("PROXY UNKNOWN {v6} {v6} 65535 65535\r\n");
    assert_eq!(line.len(), V1_MAX_LEN);
    assert_eq!(
        read_then_request(line.as_bytes()).await.unwrap(),
        ProxyHeader::UNKNOWN
    );
    let line = format!("PROXY TCP6 {v6} {v6} 65535 65535\r\n");
    let h = read_then_request(line.as_bytes()).await.unwrap();
    assert_eq!(
        h.source,
        Some(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(u128::MAX)),
            65535
        ))
    );
}

#[tokio::test]
async fn v1_over_long_line_is_refused_after_107_bytes() {
    let mut input = b"PROXY TCP4 ".to_vec();
    input.resize(300, b'1');
    let mut reader = input.as_slice();
    let err = read_header(&mut reader).await.unwrap_err();
    assert!(matches!(err, ProxyError::TooLong { limit: 107 }), "{err}");
    assert_eq!(reader.len(), 300 - V1_MAX_LEN, "stops reading at the limit");
    // One byte too many, even with the CRLF in the right place.
    let line = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 15));
    assert_eq!(line.len(), V1_MAX_LEN + 1);
    let err = read_header(&mut line.as_bytes()).await.unwrap_err();
    assert!(matches!(err, ProxyError::TooLong { .. }), "{err}");
}

#[tokio::test]
async fn v1_malformed_lines() {
    for line in [
        &b"PROXY TCP4 192.0.2.1 198.51.100.7 12345\r\n"[..], // a port missing
        b"PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",       // family mismatch
        b"PROXY TCP4 192.0.2.1 198.51.100.7 99999 443\r\n",  // port out of range
        b"PROXY TCP5 192.0.2.1 198.51.100.7 1 2\r\n",        // no such protocol
        b"PROXY TCP4 192.0.2.1 198.51.100.7 1 2\n",          // LF without CR
        // Regression: a bare LF after a space was accepted (found by fuzzing).
        b"PROXY TCP4 192.0.2.1 198.51.100.7 1 2 \n",
        b"PROXY UNKNOWN \n",
        b"PROXY TCP4 192.0.2.1\r198.51.100.7 1 2\r\n", // stray CR
        b"PROXY \xff\xfe\r\n GET / HTTP/1.1",          // not UTF-8, ends early
    ] {
        let mut reader = line;
        let err = read_header(&mut reader).await.unwrap_err();
        assert!(
            matches!(err, ProxyError::Malformed(_)),
            "{:?}: {err}",
            String::from_utf8_lossy(line)
        );
    }
}

#[tokio::test]
async fn v2_ipv4() {
    let h = read_then_request(&v2_raw(0x21, 0x11, &V4_BODY))
        .await
        .unwrap();
    assert_eq!(h.source, Some(sa("192.0.2.1:12345")));
    assert_eq!(h.destination, Some(sa("198.51.100.7:443")));
}

#[tokio::test]
async fn v2_ipv6() {
    let mut body = Vec::new();
    body.extend("2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    body.extend("2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    body.extend([0x12, 0x67, 0x01, 0xbb]);
    let h = read_then_request(&v2_raw(0x21, 0x21, &body)).await.unwrap();
    assert_eq!(h.source, Some(sa("[2001:db8::1]:4711")));
    assert_eq!(h.destination, Some(sa("[2001:db8::2]:443")));
}

#[tokio::test]
async fn v2_local_ignores_addresses() {
    // A LOCAL header may carry addresses or none; both mean "use the TCP peer".
    for (fam, body) in [(0x00, &[][..]), (0x11, &V4_BODY[..])] {
        let h = read_then_request(&v2_raw(0x20, fam, body)).await.unwrap();
        assert_eq!(h, ProxyHeader::UNKNOWN);
    }
}

#[tokio::test]
async fn v2_unix_and_unspec_families_give_no_address() {
    let h = read_then_request(&v2_raw(0x21, 0x31, &[b'/'; 216]))
        .await
        .unwrap();
    assert_eq!(h, ProxyHeader::UNKNOWN);
    let h = read_then_request(&v2_raw(0x21, 0x00, &[])).await.unwrap();
    assert_eq!(h, ProxyHeader::UNKNOWN);
}

#[tokio::test]
async fn v2_tlvs_are_read_and_ignored() {
    let mut body = V4_BODY.to_vec();
    body.extend([0x02, 0x00, 0x0b]); // AUTHORITY
    body.extend(b"example.com");
    body.extend([0x04, 0x00, 0x03, 0, 0, 0]); // NOOP
    let h = read_then_request(&v2_raw(0x21, 0x11, &body)).await.unwrap();
    assert_eq!(h.source, Some(sa("192.0.2.1:12345")));
}

#[tokio::test]
async fn v2_malformed_headers() {
    for (what, input) in [
        ("version 1", v2_raw(0x11, 0x11, &V4_BODY)),
        ("command 2", v2_raw(0x22, 0x11, &V4_BODY)),
        ("family 4", v2_raw(0x21, 0x41, &V4_BODY)),
        ("too short for IPv6", v2_raw(0x21, 0x21, &V4_BODY)),
    ] {
        let err = read_then_request(&input).await.unwrap_err();
        assert!(matches!(err, ProxyError::Malformed(_)), "{what}: {err}");
    }
}

#[tokio::test]
async fn v2_over_the_cap_is_refused_without_reading_it() {
    let (mut client, mut server) = duplex(64);
    let mut fixed = V2_SIGNATURE.to_vec();
    fixed.extend([0x21, 0x11]);
    fixed.extend(5000u16.to_be_bytes());
    client.write_all(&fixed).await.unwrap();
    // Nothing more is sent: a reader that tried to take the 5000 bytes would wait forever.
    let err = read_header(&mut server).await.unwrap_err();
    assert!(
        matches!(err, ProxyError::TooLong { limit: V2_MAX_LEN }),
        "{err}"
    );
}

#[tokio::test]
async fn v2_at_the_cap_is_accepted() {
    let mut body = V4_BODY.to_vec();
    let tlv_len = V2_MAX_LEN - V2_FIXED_LEN - body.len() - 3;
    body.push(0x04);
    body.extend((tlv_len as u16).to_be_bytes());
    body.resize(V2_MAX_LEN - V2_FIXED_LEN, 0);
    let h = read_then_request(&v2_raw(0x21, 0x11, &body)).await.unwrap();
    assert_eq!(h.source, Some(sa("192.0.2.1:12345")));
}

#[tokio::test]
async fn garbage_is_not_a_proxy_header() {
    for input in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // TLS ClientHello
        b"\r\nGET / HTTP/1.1\r\n\r\n",
        b"proxy TCP4 192.0.2.1 198.51.100.7 1 2\r\n",
    ] {
        let mut reader = input;
        let err = read_header(&mut reader).await.unwrap_err();
        assert!(matches!(err, ProxyError::NotProxy), "{input:?}: {err}");
    }
}

#[tokio::test]
async fn truncated_headers_report_the_close() {
    let full_v2 = v2_raw(0x21, 0x11, &V4_BODY);
    for (input, read) in [
        (&b""[..], 0),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 1", 35),
        (b"PROXY TCP4", 10),
        (&full_v2[..10], 10),
        (&full_v2[..20], 20),
    ] {
        let mut reader = input;
        let err = read_header(&mut reader).await.unwrap_err();
        assert!(
            matches!(err, ProxyError::Closed { read: n } if n == read),
            "{input:?}: {err}"
        );
    }
}

#[tokio::test]
async fn arrives_a_byte_at_a_time() {
    let (mut client, mut server) = duplex(1);
    let line = b"PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\n";
    let writer = tokio::spawn(async move {
        client.write_all(line).await.unwrap();
        client.write_all(REQUEST).await.unwrap();
        client
    });
    let h = read_header(&mut server).await.unwrap();
    assert_eq!(h.source, Some(sa("192.0.2.1:12345")));
    let mut rest = vec![0; REQUEST.len()];
    server.read_exact(&mut rest).await.unwrap();
    assert_eq!(rest, REQUEST);
    drop(writer.await.unwrap());
}

#[test]
fn v2_header_ipv4_exact_bytes() {
    let bytes = v2_header(sa("192.0.2.1:12345"), sa("198.51.100.7:443")).unwrap();
    let mut expected = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    expected.extend([0x21, 0x11, 0x00, 0x0c]);
    expected.extend([192, 0, 2, 1, 198, 51, 100, 7]);
    expected.extend([0x30, 0x39, 0x01, 0xbb]);
    assert_eq!(bytes, expected);
}

#[test]
fn v2_header_ipv6_and_mixed_families() {
    let v6 = v2_header(sa("[2001:db8::1]:4711"), sa("[2001:db8::2]:443")).unwrap();
    assert_eq!(&v6[12..16], &[0x21, 0x21, 0x00, 0x24]);
    assert_eq!(v6.len(), 16 + 36);

    let mixed = v2_header(sa("192.0.2.1:1"), sa("[2001:db8::2]:443")).unwrap();
    assert_eq!(&mixed[12..16], &[0x21, 0x21, 0x00, 0x24]);
    let mapped = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().octets();
    assert_eq!(&mixed[16..32], &mapped);
}

#[tokio::test]
async fn v2_header_round_trips_through_read_header() {
    for (client, local) in [
        ("192.0.2.1:12345", "198.51.100.7:443"),
        ("[2001:db8::1]:4711", "[2001:db8::2]:443"),
        ("[2001:db8::1]:4711", "198.51.100.7:443"),
        ("192.0.2.1:12345", "[::1]:8080"),
    ] {
        let (client, local) = (sa(client), sa(local));
        let h = read_then_request(&v2_header(client, local).unwrap())
            .await
            .unwrap();
        let same = |a: SocketAddr, b: Option<SocketAddr>| {
            let b = b.unwrap();
            a.port() == b.port() && as_v6(a.ip()) == as_v6(b.ip())
        };
        assert!(same(client, h.source), "{client} -> {:?}", h.source);
        assert!(same(local, h.destination), "{local} -> {:?}", h.destination);
    }
}

#[test]
fn v2_header_parses_with_ppp() {
    let bytes = v2_header(sa("[2001:db8::1]:4711"), sa("[2001:db8::2]:443")).unwrap();
    let parsed = v2::Header::try_from(bytes.as_slice()).unwrap();
    assert_eq!(parsed.command, Command::Proxy);
    assert_eq!(parsed.protocol, v2::Protocol::Stream);
    assert_eq!(parsed.len(), bytes.len());
    let expected: V2Addresses = (sa("[2001:db8::1]:4711"), sa("[2001:db8::2]:443")).into();
    assert_eq!(parsed.addresses, expected);
}

#[tokio::test]
async fn only_listed_senders_are_read() {
    let senders = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
    let header = b"PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\n";
    let mut reader = &header[..];
    let outsider = IpAddr::from([192, 0, 2, 1]);
    let refused = read_header_from(outsider, &senders, &mut reader).await;
    assert!(
        matches!(refused, Err(ProxyError::UnlistedSender(ip)) if ip == outsider),
        "{refused:?}"
    );
    assert_eq!(reader, &header[..], "nothing read from an unlisted peer");
    // An IPv4 peer seen through a dual-stack socket is still the listed IPv4 address.
    let mapped = IpAddr::from(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
    let h = read_header_from(mapped, &senders, &mut reader)
        .await
        .unwrap();
    assert_eq!(h.source, Some(sa("192.0.2.1:12345")));
}
