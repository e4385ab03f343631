//! The URLs a tunnel names, taken apart once: the gateway's (`ws://` or `wss://`) and an
//! HTTP proxy's (with its credentials kept out of logs). Shared by validation and the
//! client itself.

use hyper::Uri;

/// A gateway URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets), for TCP, SNI and the proxy.
    pub host: String,
    pub port: u16,
    /// `Host` header value: the authority as written, without a default port.
    pub authority: String,
    /// Path and query for the request line.
    pub path: String,
}

impl GatewayUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let uri: Uri = text
            .parse()
            .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(format!("{text:?} is not a ws:// or wss:// URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{text:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "{text:?}: credentials in the URL are not sent; use token_file or token_env"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let port = authority.port_u16().unwrap_or(default_port);
        let authority = match authority.port_u16() {
            Some(p) if p != default_port => format!("{}:{p}", authority.host()),
            _ => authority.host().to_string(),
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            authority,
            path: if path.is_empty() { "/".into() } else { path },
        })
    }

    /// `host:port` for CONNECT and logs (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// An HTTP proxy for CONNECT, taken apart.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `host:port` to connect to.
    pub address: String,
    /// `user:password`, percent-decoded, for `Proxy-Authorization: Basic`.
    pub credentials: Option<String>,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("address", &self.address)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ProxyUrl {
    /// Parses `http://[user:pass@]host[:port]` (port 80 by default; also without scheme).
    /// Messages never repeat the URL: it may hold a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|_| "is not a proxy URL (http://[user:password@]host:port)".to_string())?;
        if uri.scheme_str() != Some("http") {
            return Err("only http:// proxies are supported (CONNECT over plain HTTP)".into());
        }
        let authority = uri.authority().ok_or("has no host")?;
        let (userinfo, hostport) = match authority.as_str().rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, authority.as_str()),
        };
        let host = authority.host();
        if host.is_empty() {
            return Err("has no host".into());
        }
        let address = match authority.port_u16() {
            Some(_) => hostport.to_string(),
            None => format!("{hostport}:80"),
        };
        let credentials = userinfo.map(|u| {
            percent_encoding::percent_decode_str(u)
                .decode_utf8_lossy()
                .into_owned()
        });
        Ok(Self {
            address,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_come_apart() {
        let u = GatewayUrl::parse("wss://gw.example.com/redis?x=1").unwrap();
        assert_eq!(
            (
                u.tls,
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.path.as_str()
            ),
            (true, "gw.example.com", 443, "gw.example.com", "/redis?x=1")
        );
        let u = GatewayUrl::parse("ws://[::1]:8080").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8080, "/")
        );
        assert_eq!(u.host_port(), "[::1]:8080");
        assert_eq!(u.authority, "[::1]:8080");
        assert!(GatewayUrl::parse("http://x/").is_err());
        assert!(GatewayUrl::parse("ws://u:p@x/").is_err());
    }

    #[test]
    fn proxy_urls_keep_their_credentials_out_of_sight() {
        let p = ProxyUrl::parse("http://al%40ce:s3cret@proxy.local:3128").unwrap();
        assert_eq!(p.address, "proxy.local:3128");
        assert_eq!(p.credentials.as_deref(), Some("al@ce:s3cret"));
        assert!(!format!("{p:?}").contains("s3cret"));
        assert_eq!(
            ProxyUrl::parse("proxy.local").unwrap().address,
            "proxy.local:80"
        );
        assert!(ProxyUrl::parse("https://proxy.local:443").is_err());
    }
}
