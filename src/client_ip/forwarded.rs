//! Reading the hop lists out of `Forwarded` (RFC 7239) and `X-Forwarded-For`. Each entry
//! is an address or `None` for anything else (obfuscated, `unknown`, unparseable); what a
//! `None` means is the caller's decision.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hyper::HeaderMap;
use hyper::header::FORWARDED;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// One hop's address, if it names one.
pub(crate) type Hop = Option<IpAddr>;

/// The `for=` of every `Forwarded` element, left to right across all header lines; `None`
/// if no element has a `for` parameter (the header is absent or only says e.g. `proto=`).
/// An element without `for`, with a broken `for`, or breaking the syntax, is a `None` hop.
pub(crate) fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut hops = Vec::new();
    let mut any_for = false;
    for line in headers.get_all(FORWARDED) {
        let Ok(text) = line.to_str() else {
            hops.push(None);
            continue;
        };
        for element in split_unquoted(text, ',') {
            if element.trim().is_empty() {
                continue; // empty list elements are allowed (RFC 9110 §5.6.1)
            }
            hops.push(match for_param(element) {
                ForParam::Value(node) => {
                    any_for = true;
                    parse_node(&node)
                }
                ForParam::BadValue => {
                    any_for = true;
                    None
                }
                ForParam::Absent | ForParam::Invalid => None,
            });
        }
    }
    any_for.then_some(hops)
}

/// Every `X-Forwarded-For` entry, left to right across all header lines.
pub(crate) fn x_forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut hops = Vec::new();
    for line in headers.get_all(X_FORWARDED_FOR) {
        let Ok(text) = line.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(
            text.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(parse_node),
        );
    }
    hops
}

enum ForParam {
    /// No `for` parameter.
    Absent,
    /// The value, unquoted.
    Value(String),
    /// A `for` parameter whose value is not a token or quoted string, or a second one.
    BadValue,
    /// A pair that is not `name=value`.
    Invalid,
}

/// The `for` parameter of one element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn for_param(element: &str) -> ForParam {
    let mut found = ForParam::Absent;
    for pair in split_unquoted(element, ';') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once('=') else {
            return ForParam::Invalid;
        };
        if !name.trim().eq_ignore_ascii_case("for") {
            continue;
        }
        if !matches!(found, ForParam::Absent) {
            return ForParam::BadValue; // a parameter occurs at most once per element
        }
        found = match unquote(value.trim()) {
            Some(node) => ForParam::Value(node),
            None => ForParam::BadValue,
        };
    }
    found
}

/// Splits on `sep` where it is not inside a quoted string.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token as is, or a quoted string's content with its `\` escapes undone; `None` for an
/// unterminated quote or a quote inside a token.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// An address with an optional port: `192.0.2.60`, `192.0.2.60:8080`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`. RFC 7239 obfuscated ports (`:_abc`) are accepted;
/// obfuscated nodes (`_hidden`), `unknown` and IPv6 zone ids are not addresses.
pub(crate) fn parse_node(node: &str) -> Hop {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    let (ip, port) = match node.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (IpAddr::V6(host.parse::<Ipv6Addr>().ok()?), port)
        }
        None => {
            let (host, port) = node.split_once(':')?;
            (IpAddr::V4(host.parse::<Ipv4Addr>().ok()?), Some(port))
        }
    };
    port.is_none_or(is_port).then_some(ip)
}

/// A decimal port, or an RFC 7239 obfuscated one (`_` then letters, digits, `.`, `_`, `-`).
fn is_port(port: &str) -> bool {
    let decimal =
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    let obfuscated = port.len() > 1
        && port.starts_with('_')
        && port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    decimal || obfuscated
}
