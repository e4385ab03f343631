//! deploy/nginx/nginx.conf: its WebSocket settings as written, then the file itself (ports
//! and paths filled in) run by a real nginx in front of two real wsgates.

use std::path::Path;

use tokio::process::Command;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::tools::require_tool;
use crate::files::{GateSettings, duration, markdown_yaml_block, read, replace_each_once};
use crate::lb::{Balancer, Instance, open_sessions, spread_over_both, wait_refusing};

const CFG: &str = "deploy/nginx/nginx.conf";
/// The first line of the README's config for wsgate behind nginx.
const GATE_CONFIG: &str = "# /etc/wsgate/wsgate.yaml behind nginx (instance 1 of 2)";

/// The value of `directive` (its single occurrence), without the `;`.
fn directive<'a>(text: &'a str, directive: &str) -> &'a str {
    let mut found = text.lines().map(str::trim).filter_map(|l| {
        l.strip_prefix(directive)
            .filter(|rest| rest.starts_with(' '))
            .map(|rest| rest.trim().trim_end_matches(';'))
    });
    let value = found
        .next()
        .unwrap_or_else(|| panic!("{CFG}: no {directive}"));
    assert!(found.next().is_none(), "{CFG}: {directive} twice");
    value
}

#[test]
fn nginx_config_suits_websockets_and_forwards_the_client() {
    let text = read(CFG);
    let gate =
        GateSettings::from_config(&markdown_yaml_block("deploy/README.md", GATE_CONFIG), &[]);
    assert_eq!(directive(&text, "proxy_http_version"), "1.1");
    assert_eq!(
        directive(&text, "map"),
        "$http_upgrade $connection_upgrade {"
    );
    let headers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("proxy_set_header "))
        .collect();
    for want in [
        "Upgrade $http_upgrade;",
        "Connection $connection_upgrade;",
        "X-Forwarded-For $proxy_add_x_forwarded_for;",
    ] {
        assert!(headers.contains(&want), "no proxy_set_header {want}");
    }
    for timeout in ["proxy_read_timeout", "proxy_send_timeout"] {
        let value = duration(directive(&text, timeout));
        assert!(
            value > gate.ping_interval,
            "{timeout} {value:?} <= ping_interval"
        );
    }
    assert!(
        directive(&text, "proxy_next_upstream")
            .split_whitespace()
            .any(|w| w == "error")
    );
    let servers = text
        .lines()
        .filter(|l| l.trim().starts_with("server 127.0.0.1:"))
        .count();
    assert_eq!(servers, 2, "two wsgate instances in the upstream");
    // The balancer as wsgate sees it must be what the README's config trusts.
    let cfg = crate::files::parse_yaml(
        &markdown_yaml_block("deploy/README.md", GATE_CONFIG),
        "README",
    );
    assert_eq!(cfg["trusted_proxies"], serde_json::json!(["127.0.0.1"]));
}

/// The shipped file with this test's ports, and every path nginx writes inside `dir`.
fn templated(dir: &Path, lb: &str, a: &str, b: &str) -> String {
    let d = dir.display();
    let temp_paths = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .map(|kind| format!("    {kind}_temp_path {d}/{kind};\n"))
        .concat();
    replace_each_once(
        &read(CFG),
        CFG,
        &[
            ("listen 127.0.0.1:18080;", format!("listen {lb};")),
            ("server 127.0.0.1:18081 ", format!("server {a} ")),
            ("server 127.0.0.1:18082 ", format!("server {b} ")),
            (
                "access_log /var/log/nginx/access.log;",
                format!("access_log {d}/access.log;"),
            ),
            ("http {\n", format!("http {{\n{temp_paths}")),
        ],
    )
}

#[tokio::test]
async fn nginx_balances_forwards_the_client_and_fails_over() {
    let test = "nginx_balances_forwards_the_client_and_fails_over";
    let Some(nginx) = require_tool("nginx", "apt-get install nginx", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = Instance::pair(dir.path(), GATE_CONFIG).await;

    let lb_addr = crate::lb::free_port();
    let cfg = templated(
        dir.path(),
        &lb_addr.to_string(),
        &a.addr.to_string(),
        &b.addr.to_string(),
    );
    let cfg_path = dir.path().join("nginx.conf");
    std::fs::write(&cfg_path, cfg).unwrap();
    let error_log = dir.path().join("error.log");
    let mut cmd = Command::new(nginx);
    cmd.arg("-c")
        .arg(&cfg_path)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(&error_log)
        .arg("-g")
        .arg(format!(
            "daemon off; pid {}/nginx.pid;",
            dir.path().display()
        ));
    let lb = Balancer::start(cmd, lb_addr).await;

    let (survivor, mut on_b) = spread_over_both(lb.addr, &mut a, &b).await;

    // SIGTERM: A keeps accepting for shutdown.delay, then refuses. nginx has no active
    // checks: it meets the refusal and retries the other server.
    a.proc.sigterm();
    wait_refusing(a.addr).await;
    // A has at most one session and B two: least-connections tries A first.
    let moved = open_sessions(lb.addr, 3).await;
    assert!(
        moved.iter().all(|s| s.tag == b.tag),
        "a new session reached the stopped instance"
    );
    let errors = std::fs::read_to_string(&error_log).unwrap_or_default();
    assert!(
        errors
            .lines()
            .any(|l| l.contains("Connection refused") && l.contains(&a.addr.to_string())),
        "nginx never tried the stopped instance, so failover was not exercised:\n{errors}"
    );
    on_b.extend(moved);

    assert_eq!(survivor.closed_by_gateway().await, CloseCode::Away);
    let line = a.sessions_closed(1).await.remove(0);
    assert!(line.contains("\"close_code\":1001"), "{line}");
    a.exits_cleanly().await;

    let n = on_b.len();
    for session in on_b {
        session.close().await;
    }
    b.sessions_closed(n).await;
    drop(lb);
}
