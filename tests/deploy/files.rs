//! Reading the files under deploy/: YAML documents as JSON values, durations, and the
//! wsgate settings a supervisor's timeouts and probes must agree with.

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Yaml};
use serde_json::Value;

use crate::common::process::manifest_dir;

/// A file of the repository, by its path from the root.
pub fn repo_file(rel: &str) -> PathBuf {
    manifest_dir().join(rel)
}

pub fn read(rel: &str) -> String {
    let path = repo_file(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every document of a (possibly multi-document) YAML file; documents holding only
/// comments are left out.
pub fn yaml_documents(rel: &str) -> Vec<Value> {
    let text = read(rel);
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            let has_content = current
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
            if has_content {
                docs.push(parse_yaml(
                    &current,
                    &format!("{rel} document {}", docs.len()),
                ));
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// One YAML document (a mapping at the top) as a JSON value.
pub fn parse_yaml(text: &str, what: &str) -> Value {
    Figment::from(Yaml::string(text))
        .extract()
        .unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
}

/// A wsgate duration ("5s", "1m 30s", "500ms").
pub fn duration(text: &str) -> Duration {
    humantime::parse_duration(text.trim())
        .unwrap_or_else(|e| panic!("{text:?} is not a duration: {e}"))
}

/// The string at a JSON pointer, if there is one.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// The wsgate settings that deployment files depend on: from a wsgate YAML config, then
/// `WSGATE_*` variables set beside it, else wsgate's defaults.
#[derive(Debug)]
pub struct GateSettings {
    pub listen_port: u16,
    pub admin_port: u16,
    pub health_path: String,
    pub ready_path: String,
    pub shutdown_delay: Duration,
    pub shutdown_grace: Duration,
    pub ping_interval: Duration,
}

impl GateSettings {
    pub fn from_config(yaml: &str, env: &[(String, String)]) -> Self {
        let cfg = parse_yaml(yaml, "wsgate config");
        let get = |pointer: &str, var: &str, default: &str| -> String {
            env.iter()
                .find(|(k, _)| k == var)
                .map(|(_, v)| v.clone())
                .or_else(|| str_at(&cfg, pointer).map(str::to_string))
                .unwrap_or_else(|| default.to_string())
        };
        Self {
            listen_port: port_of(&get("/listen", "WSGATE_LISTEN", "127.0.0.1:8080")),
            admin_port: port_of(&get(
                "/admin/listen",
                "WSGATE_ADMIN__LISTEN",
                "127.0.0.1:9090",
            )),
            health_path: get("/health/path", "WSGATE_HEALTH__PATH", "/healthz"),
            ready_path: get("/ready/path", "WSGATE_READY__PATH", "/readyz"),
            shutdown_delay: duration(&get("/shutdown/delay", "WSGATE_SHUTDOWN__DELAY", "5s")),
            shutdown_grace: duration(&get("/shutdown/grace", "WSGATE_SHUTDOWN__GRACE", "30s")),
            ping_interval: duration(&get(
                "/liveness/ping_interval",
                "WSGATE_LIVENESS__PING_INTERVAL",
                "30s",
            )),
        }
    }

    /// How long a stop can take: the accepting window, then the drain.
    pub fn stop_time(&self) -> Duration {
        self.shutdown_delay + self.shutdown_grace
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr:?} has no port"))
}

/// `text` with each `(from, to)` replaced; every `from` must occur exactly once, so a test
/// that adapts a shipped file notices when the file changes under it.
pub fn replace_each_once(text: &str, what: &str, pairs: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        let n = out.matches(from).count();
        assert_eq!(n, 1, "{what}: expected {from:?} exactly once, found {n}");
        out = out.replace(from, to);
    }
    out
}

/// The fenced ```yaml blocks of a Markdown file whose first line is `first_line`.
pub fn markdown_yaml_block(rel: &str, first_line: &str) -> String {
    let text = read(rel);
    let mut blocks = text.split("```yaml\n").skip(1).filter_map(|rest| {
        let block = rest.split("```").next()?;
        (block.lines().next()? == first_line).then(|| block.to_string())
    });
    let block = blocks
        .next()
        .unwrap_or_else(|| panic!("{rel} has no ```yaml block starting with {first_line:?}"));
    assert!(
        blocks.next().is_none(),
        "{rel}: two blocks start with {first_line:?}"
    );
    block
}
