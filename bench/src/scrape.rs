//! Reads the gateway's counters and gauges from its admin listener's `/metrics` (the
//! Prometheus text format), for the soaks: pings sent, clients dropped for not answering,
//! sessions open and closed, as the gateway itself counts them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long one scrape may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// Every sample of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Scraped {
    /// Each metric's samples summed over their label sets.
    sums: BTreeMap<String, f64>,
    /// Each sample by its label set, e.g. `code="1000",side="client"` (empty for none).
    labelled: BTreeMap<String, Vec<(String, f64)>>,
}

impl Scraped {
    /// The metric's value (summed over labels), 0 if the gateway has not reported it.
    pub fn get(&self, name: &str) -> f64 {
        self.sums.get(name).copied().unwrap_or(0.0)
    }

    /// The metric's samples by label set.
    pub fn by_labels(&self, name: &str) -> &[(String, f64)] {
        self.labelled.get(name).map_or(&[], Vec::as_slice)
    }
}

/// `GET /metrics` from the admin listener at `admin`.
pub async fn metrics(admin: SocketAddr) -> Result<Scraped> {
    let text = timeout(PATIENCE, get(admin))
        .await
        .with_context(|| format!("no answer from {admin}/metrics within {PATIENCE:?}"))??;
    Ok(parse(&text))
}

async fn get(admin: SocketAddr) -> Result<String> {
    let mut sock = TcpStream::connect(admin)
        .await
        .with_context(|| format!("connecting the admin listener {admin}"))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    sock.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("no end of headers in the /metrics answer")?;
    let status = head.lines().next().unwrap_or_default();
    ensure!(status.contains(" 200 "), "/metrics answered {status}");
    ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "/metrics answered in chunks, which this reader does not take apart"
    );
    Ok(body.to_string())
}

/// Reads `name{labels} value` and `name value` lines; comments are skipped.
fn parse(text: &str) -> Scraped {
    let mut scraped = Scraped::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let (labels, values) = match rest.rfind('}') {
            Some(i) => (&rest[1..i], &rest[i + 1..]),
            None => ("", rest),
        };
        let Some(v) = values
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        *scraped.sums.entry(name.to_string()).or_insert(0.0) += v;
        scraped
            .labelled
            .entry(name.to_string())
            .or_default()
            .push((labels.to_string(), v));
    }
    scraped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_summed_over_labels() {
        let text = "# HELP wsgate_pings_sent Pings sent\n\
                    # TYPE wsgate_pings_sent counter\n\
                    wsgate_pings_sent_total 42\n\
                    wsgate_sessions_active{route=\"/\"} 3\n\
                    wsgate_sessions_active{route=\"/b {x}\"} 4\n\
                    # EOF\n";
        let m = parse(text);
        assert_eq!(m.get("wsgate_pings_sent_total"), 42.0);
        assert_eq!(m.get("wsgate_sessions_active"), 7.0);
        assert_eq!(m.get("wsgate_pong_timeouts_total"), 0.0);
        assert_eq!(
            m.by_labels("wsgate_sessions_active")[1],
            ("route=\"/b {x}\"".to_string(), 4.0)
        );
    }
}
