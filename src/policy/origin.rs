//! The `Origin` check: which web pages may open sessions, compared as RFC 6454 serialised
//! origins (scheme, host, port; default ports equal absent ones; host case-insensitive).
//! This is the defence against cross-site WebSocket hijacking: a browser sends the page's
//! origin, and a page from anywhere else is refused.

use std::collections::HashSet;

/// One parsed origin: lowercase scheme and host, and the port (the scheme's default if the
/// text had none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// Parses `scheme://host[:port]` as browsers send it. Anything else (a path, credentials,
/// an unknown scheme without a port) is not an origin.
fn parse(text: &str) -> Option<Origin> {
    let (scheme, rest) = text.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (rest.to_ascii_lowercase(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port(&scheme)?,
    };
    if host.is_empty() || host.trim_end_matches('.').is_empty() {
        return None;
    }
    Some(Origin { scheme, host, port })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// An allowlist of origins, built from config entries.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    any: bool,
    null: bool,
    exact: HashSet<Origin>,
    /// `https://*.example.com`: scheme, the suffix `.example.com`, port.
    subdomains: Vec<Origin>,
    allow_missing: bool,
}

/// What the check decided.
#[derive(Debug, PartialEq, Eq)]
pub enum OriginCheck {
    Allowed,
    Refused,
}

impl OriginPolicy {
    /// Builds the policy; on failure returns each bad entry's index and why.
    pub fn new(entries: &[String], allow_missing: bool) -> Result<Self, Vec<(usize, String)>> {
        let mut policy = Self {
            allow_missing,
            ..Self::default()
        };
        let mut bad = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let e = entry.trim();
            if e == "*" {
                policy.any = true;
            } else if e == "null" {
                policy.null = true;
            } else if let Some((scheme, rest)) = e.split_once("://*.") {
                match parse(&format!("{scheme}://wildcard.{rest}")) {
                    Some(mut o) if !o.host.ends_with('.') && !o.host.starts_with("wildcard.[") => {
                        // Keep the leading dot: `.example.com` never matches `xexample.com`.
                        o.host = o.host["wildcard".len()..].to_string();
                        policy.subdomains.push(o);
                    }
                    _ => bad.push((i, format!("{entry:?} is not scheme://*.domain[:port]"))),
                }
            } else {
                match parse(e) {
                    Some(o) => {
                        policy.exact.insert(o);
                    }
                    None => bad.push((
                        i,
                        format!(
                            "{entry:?} is not an origin (scheme://host[:port], *.host, * or null)"
                        ),
                    )),
                }
            }
        }
        if bad.is_empty() { Ok(policy) } else { Err(bad) }
    }

    /// Checks the request's `Origin` header value (`None` if absent).
    pub fn check(&self, origin: Option<&[u8]>) -> OriginCheck {
        let allowed = match origin.map(|o| std::str::from_utf8(o).map(str::trim)) {
            None => self.allow_missing,
            Some(Err(_)) => false,
            Some(Ok("null")) => self.null,
            Some(Ok(text)) => match parse(text) {
                None => false,
                Some(o) => self.any || self.exact.contains(&o) || self.matches_subdomain(&o),
            },
        };
        if allowed {
            OriginCheck::Allowed
        } else {
            OriginCheck::Refused
        }
    }

    fn matches_subdomain(&self, o: &Origin) -> bool {
        self.subdomains.iter().any(|w| {
            w.scheme == o.scheme
                && w.port == o.port
                && o.host.len() > w.host.len()
                && o.host.ends_with(&w.host)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OriginPolicy {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        OriginPolicy::new(&entries, false).unwrap()
    }

    fn allowed(p: &OriginPolicy, origin: &str) -> bool {
        p.check(Some(origin.as_bytes())) == OriginCheck::Allowed
    }

    #[test]
    fn exact_match_follows_rfc6454_serialisation() {
        let p = policy(&["https://App.Example.com"]);
        assert!(allowed(&p, "https://app.example.com"));
        assert!(allowed(&p, "https://app.example.com:443"));
        assert!(allowed(&p, "HTTPS://APP.EXAMPLE.COM"));
        assert!(!allowed(&p, "http://app.example.com"));
        assert!(!allowed(&p, "https://app.example.com:8443"));
        assert!(!allowed(&p, "https://app.example.com.evil.net"));
        assert!(!allowed(&p, "https://app.example.com/path"));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let p = policy(&["https://*.example.com"]);
        assert!(allowed(&p, "https://a.example.com"));
        assert!(allowed(&p, "https://a.b.example.com"));
        assert!(!allowed(&p, "https://example.com"));
        assert!(!allowed(&p, "https://example.com.evil.net"));
        assert!(!allowed(&p, "https://evilexample.com"));
        assert!(!allowed(&p, "http://a.example.com"));
    }

    #[test]
    fn star_allows_any_origin_but_not_null() {
        let p = policy(&["*"]);
        assert!(allowed(&p, "https://anything.example"));
        assert!(!allowed(&p, "null"));
        assert!(allowed(&policy(&["*", "null"]), "null"));
    }

    #[test]
    fn missing_origin_follows_the_setting() {
        assert_eq!(policy(&["*"]).check(None), OriginCheck::Refused);
        let p = OriginPolicy::new(&[], true).unwrap();
        assert_eq!(p.check(None), OriginCheck::Allowed);
        assert_eq!(p.check(Some(b"https://a.example")), OriginCheck::Refused);
    }

    #[test]
    fn ipv6_and_ports() {
        let p = policy(&["http://[::1]:8080", "http://localhost:3000"]);
        assert!(allowed(&p, "http://[::1]:8080"));
        assert!(allowed(&p, "http://localhost:3000"));
        assert!(!allowed(&p, "http://localhost:3001"));
    }

    #[test]
    fn bad_entries_are_reported_by_index() {
        let entries = vec![
            "https://ok.example".to_string(),
            "ok.example".into(),
            "https://*.".into(),
        ];
        let bad = OriginPolicy::new(&entries, true).unwrap_err();
        assert_eq!(bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
    }
}
