//! Faults on real loopback connections with nftables: packets of one connection dropped in
//! both directions, so it is cut silently (no FIN, no RST). Each fault is its own table,
//! named for the test process and the ports, and removed when the guard is dropped.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// A silent cut in place; dropping it removes the rules.
pub struct SilentCut {
    table: String,
}

impl SilentCut {
    /// Drops every packet between `a` and `b` (both on loopback). `None`, with `test`
    /// skipped, where nft cannot be used (not root, or not installed) outside CI; under CI
    /// that is a failure.
    pub fn between(a: SocketAddr, b: SocketAddr, test: &str) -> Option<Self> {
        let table = format!(
            "wsgate_test_{}_{}_{}",
            std::process::id(),
            a.port(),
            b.port()
        );
        let script = format!(
            "table inet {table} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
             tcp sport {ap} tcp dport {bp} drop\n    tcp sport {bp} tcp dport {ap} drop\n  }}\n}}\n",
            ap = a.port(),
            bp = b.port(),
        );
        match nft(&["-f", "-"], Some(&script)) {
            Ok(()) => Some(Self { table }),
            Err(why) => {
                let why = format!("cannot use nft (.ci/run installs nftables; needs root): {why}");
                super::tools::skip(test, &why);
                None
            }
        }
    }
}

impl Drop for SilentCut {
    fn drop(&mut self) {
        if let Err(why) = nft(&["delete", "table", "inet", &self.table], None) {
            eprintln!("could not remove nft table {}: {why}", self.table);
        }
    }
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("nft stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
