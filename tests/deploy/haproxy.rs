//! deploy/haproxy/haproxy.cfg: its WebSocket timeouts and health check as written, then the
//! file itself (ports filled in) run by a real HAProxy in front of two real wsgates.

use std::time::Duration;

use tokio::process::Command;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::tools::require_tool;
use crate::files::{GateSettings, duration, markdown_yaml_block, read, replace_each_once};
use crate::lb::{
    Balancer, Instance, free_port, open_sessions, spread_over_both, status_behind_proxy_protocol,
};

const CFG: &str = "deploy/haproxy/haproxy.cfg";
/// The first line of the README's config for wsgate behind HAProxy.
const GATE_CONFIG: &str = "# /etc/wsgate/wsgate.yaml behind HAProxy (instance 1 of 2)";

/// The words after `directive` on its (single) line.
fn directive<'a>(text: &'a str, directive: &str) -> Vec<&'a str> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(directive) && l[directive.len()..].starts_with(' '));
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("{CFG}: no `{directive}`"));
    assert!(lines.next().is_none(), "{CFG}: `{directive}` twice");
    line[directive.len()..].split_whitespace().collect()
}

fn default_gate() -> GateSettings {
    GateSettings::from_config(&markdown_yaml_block("deploy/README.md", GATE_CONFIG), &[])
}

#[test]
fn haproxy_config_suits_websockets_and_draining() {
    let text = read(CFG);
    let gate = default_gate();
    let tunnel = duration(directive(&text, "timeout tunnel")[0]);
    assert!(
        tunnel > gate.ping_interval,
        "timeout tunnel {tunnel:?} <= ping_interval"
    );
    directive(&text, "timeout client-fin");
    assert_eq!(directive(&text, "mode"), ["http"]);
    assert_eq!(
        &directive(&text, "option httpchk")[..2],
        ["GET", &gate.ready_path]
    );
    assert_eq!(directive(&text, "http-check expect"), ["status", "200"]);

    let defaults = directive(&text, "default-server");
    let servers: Vec<Vec<&str>> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("server "))
        .map(|l| {
            l.split_whitespace()
                .chain(defaults.iter().copied())
                .collect()
        })
        .collect();
    assert_eq!(servers.len(), 2, "two wsgate instances");
    for server in &servers {
        for word in ["check", "send-proxy-v2"] {
            assert!(server.contains(&word), "{server:?} lacks {word}");
        }
    }
    // Marked DOWN before the draining instance stops accepting.
    let after = |word: &str| {
        let i = defaults
            .iter()
            .position(|w| *w == word)
            .unwrap_or_else(|| panic!("no {word}"));
        defaults[i + 1]
    };
    let detect = duration(after("inter")) * after("fall").parse::<u32>().unwrap();
    assert!(
        detect + Duration::from_secs(1) < gate.shutdown_delay,
        "inter * fall = {detect:?} leaves too little of shutdown.delay {:?}",
        gate.shutdown_delay
    );
}

#[tokio::test]
async fn haproxy_balances_carries_the_client_and_drains_by_health_check() {
    let test = "haproxy_balances_carries_the_client_and_drains_by_health_check";
    let Some(haproxy) = require_tool("haproxy", "apt-get install haproxy", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = Instance::pair(dir.path(), GATE_CONFIG).await;

    let lb_addr = free_port();
    let cfg = replace_each_once(
        &read(CFG),
        CFG,
        &[
            ("bind 127.0.0.1:18080", format!("bind {lb_addr}")),
            (
                "server wsgate1 127.0.0.1:18081",
                format!("server wsgate1 {}", a.addr),
            ),
            (
                "server wsgate2 127.0.0.1:18082",
                format!("server wsgate2 {}", b.addr),
            ),
            // Quick checks, so the move happens well within the test's 2s shutdown.delay.
            ("inter 1s", "inter 100ms".to_string()),
        ],
    );
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut cmd = Command::new(haproxy);
    cmd.arg("-db").arg("-f").arg(&cfg_path);
    let mut lb = Balancer::start(cmd, lb_addr).await;

    let (survivor, mut on_b) = spread_over_both(lb.addr, &mut a, &b).await;

    // SIGTERM: A answers /readyz with 503 at once but keeps accepting for shutdown.delay.
    a.proc.sigterm();
    lb.err
        .wait_for("HAProxy marking wsgate1 DOWN", |l| {
            l.contains("wsgate/wsgate1 is DOWN")
        })
        .await;
    // A has one session and B two: were A still in rotation, least-connections would pick it.
    let moved = open_sessions(lb.addr, 3).await;
    assert!(
        moved.iter().all(|s| s.tag == b.tag),
        "a new session reached the draining instance"
    );
    assert_eq!(
        status_behind_proxy_protocol(a.addr, "/readyz").await,
        503,
        "the draining instance must still accept, and report not ready"
    );
    on_b.extend(moved);

    // Then A closes its open session with 1001 (through HAProxy) and exits 0.
    assert_eq!(survivor.closed_by_gateway().await, CloseCode::Away);
    let line = a.sessions_closed(1).await.remove(0);
    assert!(line.contains("\"close_code\":1001"), "{line}");
    a.exits_cleanly().await;

    let n = on_b.len();
    for session in on_b {
        session.close().await;
    }
    b.sessions_closed(n).await;
}
