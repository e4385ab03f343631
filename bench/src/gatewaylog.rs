//! What the gateway's JSON log says while a run drains it: closed sessions counted by why
//! they ended (`end`, `close_code`, `ended_by` of each `session closed` line), with the
//! times of the first and last of each kind, and the first warnings and errors verbatim.
//! Fields are found by plain text search, so that following a log of thousands of lines a
//! second costs the load generator next to nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Warnings and errors kept verbatim.
const NOTABLE_KEPT: usize = 10;

/// Sessions that ended one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub count: u64,
    /// Timestamps of the first and the last such line.
    pub first: String,
    pub last: String,
}

#[derive(Debug, Default)]
struct Seen {
    /// By `end close_code ended_by`.
    ended: BTreeMap<String, Ended>,
    notable: Vec<String>,
}

/// Follows one gateway's log; cloned handles share it.
#[derive(Debug, Clone, Default)]
pub struct GatewayLog(Arc<Mutex<Seen>>);

impl GatewayLog {
    /// Takes note of one line of the log.
    pub fn note(&self, line: &str) {
        let closed = line.contains(r#""message":"session closed""#);
        let notable = line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#);
        if !closed && !notable {
            return;
        }
        let Ok(mut seen) = self.0.lock() else { return };
        if notable && seen.notable.len() < NOTABLE_KEPT {
            seen.notable.push(line.to_string());
        }
        if closed {
            let key = format!(
                "end={} close_code={} ended_by={}",
                field(line, "end").unwrap_or("?"),
                field(line, "close_code").unwrap_or("?"),
                field(line, "ended_by").unwrap_or("?"),
            );
            let at = field(line, "timestamp").unwrap_or("?");
            seen.ended
                .entry(key)
                .and_modify(|e| {
                    e.count += 1;
                    e.last = at.to_string();
                })
                .or_insert_with(|| Ended {
                    count: 1,
                    first: at.to_string(),
                    last: at.to_string(),
                });
        }
    }

    /// Closed sessions by how they ended, so far.
    pub fn ended(&self) -> Vec<(String, Ended)> {
        self.0
            .lock()
            .map(|s| {
                s.ended
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first warnings and errors, so far.
    pub fn notable(&self) -> Vec<String> {
        self.0.lock().map(|s| s.notable.clone()).unwrap_or_default()
    }
}

/// The value of top-level `"key":` in a JSON line, quotes removed: the text up to the
/// next `,` or `}` (or the closing quote of a string).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":");
    let rest = &line[line.find(&needle)? + needle.len()..];
    match rest.strip_prefix('"') {
        Some(s) => s.split('"').next(),
        None => rest.split([',', '}']).next().map(str::trim),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOSED: &str = r#"{"timestamp":"T1","level":"INFO","message":"session closed","conn_id":7,"backend":"127.0.0.1:5900","duration_ms":81,"close_code":1000,"ended_by":"backend","end":"backend_eof","target":"wsgate::session"}"#;

    #[test]
    fn closed_sessions_are_counted_by_how_they_ended() {
        let log = GatewayLog::default();
        log.note(CLOSED);
        log.note(&CLOSED.replace("T1", "T2"));
        log.note(r#"{"timestamp":"T3","level":"INFO","message":"listening"}"#);
        let ended = log.ended();
        assert_eq!(ended.len(), 1);
        assert_eq!(
            ended[0].0,
            "end=backend_eof close_code=1000 ended_by=backend"
        );
        assert_eq!(
            ended[0].1,
            Ended {
                count: 2,
                first: "T1".into(),
                last: "T2".into()
            }
        );
        assert!(log.notable().is_empty());
    }

    #[test]
    fn warnings_are_kept_and_fields_found_whatever_their_kind() {
        let log = GatewayLog::default();
        let warn = CLOSED.replace("INFO", "WARN");
        log.note(&warn);
        assert_eq!(log.notable(), [warn]);
        assert_eq!(field(CLOSED, "end"), Some("backend_eof"));
        assert_eq!(field(CLOSED, "backend"), Some("127.0.0.1:5900"));
        assert_eq!(field(r#"{"close_code":null}"#, "close_code"), Some("null"));
        assert_eq!(field(CLOSED, "missing"), None);
    }
}
