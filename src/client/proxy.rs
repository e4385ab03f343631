//! Reaching the gateway through an HTTP proxy with `CONNECT` (a corporate network's way
//! out): which proxy applies (the tunnel's `proxy`, else `https_proxy`/`http_proxy` minus
//! `no_proxy`), and the tunnel request itself, with basic auth from the proxy URL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::dial::DialError;
use super::handshake::read_head;
use crate::config::{GatewayUrl, ProxyUrl};

/// The proxy to use for `url`: the configured one (`off`: none), else the environment's.
/// An unparsable proxy variable is an error, not a silent direct connection.
pub fn choose(configured: Option<&str>, url: &GatewayUrl) -> Result<Option<ProxyUrl>, String> {
    match configured {
        Some("off") => Ok(None),
        Some(proxy) => ProxyUrl::parse(proxy).map(Some),
        None => from_env(url, |name| std::env::var(name).ok()),
    }
}

fn from_env(
    url: &GatewayUrl,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<ProxyUrl>, String> {
    let names = if url.tls {
        ["https_proxy", "HTTPS_PROXY"]
    } else {
        ["http_proxy", "HTTP_PROXY"]
    };
    let Some((name, value)) = names
        .iter()
        .find_map(|n| var(n).filter(|v| !v.is_empty()).map(|v| (*n, v)))
    else {
        return Ok(None);
    };
    let no_proxy = var("no_proxy")
        .or_else(|| var("NO_PROXY"))
        .unwrap_or_default();
    if bypassed(&no_proxy, &url.host) {
        return Ok(None);
    }
    ProxyUrl::parse(&value)
        .map(Some)
        .map_err(|why| format!("environment variable {name} {why}"))
}

/// Whether `host` is in a `no_proxy` list (`*`, exact names, domain suffixes).
fn bypassed(no_proxy: &str, host: &str) -> bool {
    no_proxy.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches('.');
        entry == "*"
            || (!entry.is_empty()
                && (host.eq_ignore_ascii_case(entry)
                    || host
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", entry.to_ascii_lowercase()))))
    })
}

/// Connects to `proxy` and asks it for a tunnel to `url`'s host and port.
pub async fn connect(proxy: &ProxyUrl, url: &GatewayUrl) -> Result<TcpStream, DialError> {
    let mut tcp = TcpStream::connect(&proxy.address)
        .await
        .map_err(DialError::Proxy)?;
    let target = url.host_port();
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(credentials) = &proxy.credentials {
        request.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            STANDARD.encode(credentials)
        ));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .map_err(DialError::Proxy)?;
    let (head, rest) = read_head(&mut tcp).await?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    if !matches!(response.parse(&head), Ok(httparse::Status::Complete(_))) {
        return Err(DialError::Handshake("the proxy's answer is not HTTP"));
    }
    match response.code {
        Some(200..=299) if rest.is_empty() => Ok(tcp),
        Some(200..=299) => Err(DialError::Handshake(
            "the proxy sent bytes before the tunnel",
        )),
        code => Err(DialError::ProxyRefused(code.unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_environment_proxy_follows_the_scheme_and_no_proxy() {
        let wss = GatewayUrl::parse("wss://gw.corp.example/x").unwrap();
        let ws = GatewayUrl::parse("ws://gw.corp.example/x").unwrap();
        let vars = env(&[
            ("https_proxy", "http://p:3128"),
            ("http_proxy", "http://q:8080"),
        ]);
        assert_eq!(from_env(&wss, &vars).unwrap().unwrap().address, "p:3128");
        assert_eq!(from_env(&ws, &vars).unwrap().unwrap().address, "q:8080");
        let bypass = env(&[
            ("https_proxy", "http://p:3128"),
            ("no_proxy", "localhost,.example"),
        ]);
        assert_eq!(from_env(&wss, &bypass).unwrap(), None);
        assert_eq!(from_env(&wss, env(&[])).unwrap(), None);
        assert!(from_env(&wss, env(&[("https_proxy", "https://p")])).is_err());
    }

    #[test]
    fn no_proxy_matches_names_and_suffixes() {
        assert!(bypassed("*", "anything"));
        assert!(bypassed("a.com, b.org", "x.b.org"));
        assert!(bypassed(".b.org", "B.org"));
        assert!(!bypassed("b.org", "xb.org"));
        assert!(!bypassed("", "b.org"));
    }
}
