//! HAProxy in plain TCP mode as a baseline (the best-known L4 proxy, no WebSocket at all):
//! where its binary is, how its threads and connection limit are sized (threads as many as
//! the gateway's runtime has workers, connections within the open-file limit), and the
//! configuration it runs with, written for each run into a directory of its own.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

/// The configuration's file name in a run's directory.
pub const CONFIG_FILE: &str = "haproxy.cfg";
/// Where HAProxy is looked for after PATH (Debian installs it in /usr/sbin, which a
/// non-root PATH may lack).
const SBIN: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];
/// Open files kept aside from the proxied connections (listeners, pollers, pipes, logs).
const SPARE_FILES: u64 = 200;
/// Connections HAProxy accepts at most when the open-file limit is unknown.
const DEFAULT_MAXCONN: u64 = 4096;
/// Accept queue length, as the gateway's and the copy proxy's.
const BACKLOG: u32 = 4096;

/// Tells the runs' directories apart.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// HAProxy as this run starts it.
#[derive(Debug, Clone)]
pub struct Haproxy {
    pub bin: PathBuf,
    /// First line of `haproxy -v`.
    pub version: String,
    /// `nbthread`: the gateway's worker count.
    pub threads: usize,
    /// `maxconn`: two open files per proxied connection, within the open-file limit.
    pub maxconn: u64,
}

impl Haproxy {
    /// HAProxy if it is installed, sized for a gateway run with `gateway_env` and this
    /// process's open-file limit (HAProxy inherits it).
    pub fn find(gateway_env: &[(String, String)], open_files: Option<u64>) -> Option<Self> {
        let bin = find_binary()?;
        let version = Command::new(&bin)
            .arg("-v")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| "version unknown".to_string());
        Some(Self {
            bin,
            version,
            threads: gateway_workers(gateway_env),
            maxconn: maxconn(open_files),
        })
    }

    /// Writes the configuration for a frontend on 127.0.0.1:`port` in front of `backend`
    /// into a new directory, and returns the directory.
    pub fn write_config(&self, port: u16, backend: SocketAddr) -> Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!(
            "wsgate-bench-haproxy-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(CONFIG_FILE);
        std::fs::write(&path, self.config(port, backend))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(dir)
    }

    /// The configuration: TCP mode, one frontend, one server, no logging at all (no `log`
    /// line), timeouts far beyond any run so that idle connections stay.
    pub fn config(&self, port: u16, backend: SocketAddr) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "# Written by wsgate-bench for one measured run.");
        let _ = writeln!(c, "global");
        let _ = writeln!(c, "    nbthread {}", self.threads);
        let _ = writeln!(c, "    maxconn {}", self.maxconn);
        let _ = writeln!(c, "defaults");
        let _ = writeln!(c, "    mode tcp");
        let _ = writeln!(c, "    maxconn {}", self.maxconn);
        let _ = writeln!(c, "    timeout connect 10s");
        let _ = writeln!(c, "    timeout client 1h");
        let _ = writeln!(c, "    timeout server 1h");
        let _ = writeln!(c, "frontend bench");
        let _ = writeln!(c, "    bind 127.0.0.1:{port} backlog {BACKLOG}");
        let _ = writeln!(c, "    default_backend bench_backend");
        let _ = writeln!(c, "backend bench_backend");
        let _ = writeln!(c, "    server backend {backend}");
        c
    }
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join("haproxy"))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The gateway's runtime worker count: it builds tokio's multi-thread runtime with the
/// default size, which is `TOKIO_WORKER_THREADS` if set (the gateway's environment, or
/// this process's, which it inherits), else the number of CPUs.
pub fn gateway_workers(gateway_env: &[(String, String)]) -> usize {
    let set = gateway_env
        .iter()
        .rev()
        .find(|(k, _)| k == "TOKIO_WORKER_THREADS")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("TOKIO_WORKER_THREADS").ok());
    set.and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Two open files per proxied connection (client and server side), the spare ones aside.
fn maxconn(open_files: Option<u64>) -> u64 {
    open_files.map_or(DEFAULT_MAXCONN, |limit| {
        (limit.saturating_sub(SPARE_FILES) / 2).max(64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_follow_the_gateway_and_connections_the_file_limit() {
        let env = |v: &str| vec![("TOKIO_WORKER_THREADS".to_string(), v.to_string())];
        assert_eq!(gateway_workers(&env("3")), 3);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            assert_eq!(gateway_workers(&[]), cpus);
            assert_eq!(gateway_workers(&env("zero")), cpus);
        }
        assert_eq!(maxconn(Some(20_000)), 9_900);
        assert_eq!(maxconn(None), DEFAULT_MAXCONN);
    }

    #[test]
    fn the_configuration_proxies_tcp_without_logging() {
        let h = Haproxy {
            bin: PathBuf::from("haproxy"),
            version: String::new(),
            threads: 2,
            maxconn: 9_900,
        };
        let c = h.config(4567, "127.0.0.1:80".parse().unwrap());
        for line in [
            "nbthread 2",
            "maxconn 9900",
            "mode tcp",
            "bind 127.0.0.1:4567 backlog 4096",
            "server backend 127.0.0.1:80",
            "timeout client 1h",
        ] {
            assert!(c.contains(line), "{line:?} missing from:\n{c}");
        }
        let logs = c.lines().any(|l| l.trim_start().starts_with("log"));
        assert!(!logs, "HAProxy must log nothing:\n{c}");
    }
}
