//! deploy/systemd/wsgate.service: the settings operators rely on (reload, stop timeout,
//! restart policy, hardening), and `systemd-analyze verify` when systemd-analyze is here.

use crate::common::process::run_to_end;
use crate::common::tools::require_tool;
use crate::files::{GateSettings, duration, read, repo_file};

const UNIT: &str = "deploy/systemd/wsgate.service";
const BINARY: &str = "/usr/local/bin/wsgate";

/// `[Service]` settings, in order; a key may repeat (ExecReload=, SystemCallFilter=).
fn service_settings() -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in read(UNIT).lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[Service]" {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{UNIT}: {line}"));
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn values<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn only<'a>(settings: &'a [(String, String)], key: &str) -> &'a str {
    match values(settings, key).as_slice() {
        [one] => one,
        other => panic!("{UNIT}: {key}= set {} times: {other:?}", other.len()),
    }
}

/// The config the unit runs with: the example config installed as /etc/wsgate/wsgate.yaml,
/// and any WSGATE_* the unit sets with Environment=.
fn gate_settings(settings: &[(String, String)]) -> GateSettings {
    let env: Vec<(String, String)> = values(settings, "Environment")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .filter_map(|kv| kv.trim_matches('"').split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    GateSettings::from_config(&read("config/wsgate.yaml"), &env)
}

#[test]
fn unit_reloads_stops_and_restarts_as_documented() {
    let s = service_settings();
    assert_eq!(
        only(&s, "ExecStart"),
        format!("{BINARY} --config /etc/wsgate/wsgate.yaml")
    );
    let reload = values(&s, "ExecReload");
    assert!(
        reload
            .last()
            .is_some_and(|r| r.contains("kill -HUP $MAINPID")),
        "the last ExecReload= must send SIGHUP to the main process: {reload:?}"
    );
    assert_eq!(only(&s, "KillSignal"), "SIGTERM");
    let gate = gate_settings(&s);
    let stop = duration(only(&s, "TimeoutStopSec"));
    assert!(
        stop > gate.stop_time(),
        "TimeoutStopSec {stop:?} must exceed shutdown.delay {:?} + shutdown.grace {:?}",
        gate.shutdown_delay,
        gate.shutdown_grace
    );
    assert_eq!(only(&s, "Restart"), "on-failure");
    assert!(
        only(&s, "RestartPreventExitStatus")
            .split_whitespace()
            .any(|c| c == "64"),
        "exit 64 (invalid configuration) must not be restarted"
    );
    assert!(["exec", "simple"].contains(&only(&s, "Type")));
}

#[test]
fn unit_is_hardened() {
    let s = service_settings();
    let user = values(&s, "DynamicUser") == ["yes"] || !values(&s, "User").is_empty();
    assert!(
        user,
        "the service must not run as root: DynamicUser=yes or User="
    );
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("LimitNOFILE", "65536"),
    ] {
        assert_eq!(only(&s, key), want, "{key}=");
    }
    assert!(
        values(&s, "SystemCallFilter").contains(&"@system-service"),
        "SystemCallFilter=@system-service"
    );
}

#[tokio::test]
async fn unit_passes_systemd_analyze() {
    let test = "unit_passes_systemd_analyze";
    let Some(analyze) = require_tool("systemd-analyze", "apt-get install systemd", test) else {
        return;
    };
    // verify insists that ExecStart= and ExecReload= name an executable: use the built
    // binary in a copy of the unit, changing nothing else.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("wsgate.service");
    let text = read(UNIT);
    assert!(text.contains(BINARY));
    std::fs::write(&unit, text.replace(BINARY, env!("CARGO_BIN_EXE_wsgate"))).unwrap();
    let unit = unit.to_str().unwrap();

    let mut verify = tokio::process::Command::new(&analyze);
    verify
        .args(["verify", unit])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (status, stdout, stderr) = run_to_end(verify).await;
    assert!(
        status.success(),
        "systemd-analyze verify {}: {status}\n{stdout}{stderr}",
        repo_file(UNIT).display()
    );
    assert!(
        !stderr.contains("wsgate.service"),
        "systemd-analyze verify warns:\n{stderr}"
    );

    // The exposure score systemd computes from the sandboxing settings: 0 (locked down) to
    // 10 (unprotected); below 2 it calls "OK".
    let mut security = tokio::process::Command::new(&analyze);
    security
        .args(["security", "--offline=yes", "--no-pager", unit])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (_, report, stderr) = run_to_end(security).await;
    let score: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for wsgate.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}{stderr}"));
    assert!(score < 2.0, "exposure {score} (want below 2.0):\n{report}");
}
