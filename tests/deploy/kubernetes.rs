//! deploy/kubernetes/: the manifests parse, refer to each other by the right names, and
//! agree with the wsgate config they carry (probe paths and ports, the shutdown timing).

use std::time::Duration;

use serde_json::Value;

use crate::common::process::{run_to_end, wsgate};
use crate::files::str_at;
use crate::manifests::{
    SIDECAR, container, containers, objects, pod_spec, prestop_sleep, probe_target,
    sidecar_config_text, sidecar_settings, the_one, volume,
};

#[test]
fn manifests_parse_and_name_each_other() {
    let all = objects();
    let kinds: Vec<&str> = all.iter().filter_map(|(_, o)| str_at(o, "/kind")).collect();
    for kind in ["ConfigMap", "Deployment", "Service", "Secret"] {
        assert!(kinds.contains(&kind), "no {kind} among {kinds:?}");
    }
    let deployment = the_one("Deployment");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selector = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    for (k, v) in selector {
        assert_eq!(
            &labels[k], v,
            "Deployment selector {k} does not match its Pod labels"
        );
    }
    let service = the_one("Service");
    for (k, v) in service["spec"]["selector"]
        .as_object()
        .expect("Service selector")
    {
        assert_eq!(
            &labels[k], v,
            "Service selector {k} does not match the Pod labels"
        );
    }
    let pod = pod_spec();
    let ws_ports: Vec<&Value> = container(&pod, SIDECAR)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    for port in service["spec"]["ports"].as_array().unwrap() {
        let target = &port["targetPort"];
        assert!(
            ws_ports
                .iter()
                .any(|p| p["name"] == *target || p["containerPort"] == *target),
            "Service targetPort {target} is not a wsgate container port"
        );
    }
    let secret = the_one("Secret");
    assert_eq!(
        volume(&pod, "tls")["secret"]["secretName"],
        secret["metadata"]["name"],
        "the TLS volume names another Secret than secret-tls.example.yaml"
    );
    // Parses, and names the ConfigMap the volume mounts.
    sidecar_config_text(&pod);
}

#[test]
fn sidecar_probes_hit_the_health_endpoints() {
    let pod = pod_spec();
    let gate = sidecar_settings(&pod);
    let c = container(&pod, SIDECAR);
    for (probe, admin_path, main_path) in [
        ("readinessProbe", "/readyz", &gate.ready_path),
        ("livenessProbe", "/healthz", &gate.health_path),
    ] {
        let (path, port) = probe_target(c, probe);
        if port == gate.admin_port {
            assert_eq!(path, admin_path, "{probe} on the admin port {port}");
        } else {
            assert_eq!(
                port, gate.listen_port,
                "{probe} targets neither wsgate listener"
            );
            assert_eq!(&path, main_path, "{probe} on the main port {port}");
        }
    }
}

#[test]
fn termination_grace_outlasts_delay_plus_grace() {
    let pod = pod_spec();
    let gate = sidecar_settings(&pod);
    let period = Duration::from_secs(
        pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds is not set (the default 30s is too short)"),
    );
    let sidecar_sleep = prestop_sleep(container(&pod, SIDECAR));
    let needed = sidecar_sleep + gate.stop_time();
    assert!(
        period > needed,
        "terminationGracePeriodSeconds {period:?} must exceed preStop {sidecar_sleep:?} + \
         shutdown.delay {:?} + shutdown.grace {:?}",
        gate.shutdown_delay,
        gate.shutdown_grace
    );
    // Without its own preStop sleep, wsgate keeps accepting only thanks to shutdown.delay.
    assert!(
        sidecar_sleep > Duration::ZERO || gate.shutdown_delay > Duration::ZERO,
        "neither a preStop sleep nor shutdown.delay keeps wsgate accepting after SIGTERM"
    );
    // The backend beside wsgate must outlive the accepting window (else new sessions get
    // 502) and still get SIGTERM before the kubelet's SIGKILL.
    for c in containers(&pod).iter().filter(|c| c["name"] != SIDECAR) {
        let sleep = prestop_sleep(c);
        assert!(
            sleep >= sidecar_sleep + gate.shutdown_delay,
            "container {}: preStop sleep {sleep:?} ends before wsgate stops accepting",
            c["name"]
        );
        assert!(
            sleep < period,
            "container {}: preStop sleep {sleep:?} outlasts the Pod",
            c["name"]
        );
    }
}

#[test]
fn containers_run_unprivileged_with_limits() {
    let pod = pod_spec();
    assert_eq!(
        pod["enableServiceLinks"], false,
        "service links inject WSGATE_* variables for a Service named wsgate (exit 64)"
    );
    let pod_ctx = &pod["securityContext"];
    for c in containers(&pod) {
        let name = &c["name"];
        let ctx = &c["securityContext"];
        let non_root = if ctx["runAsNonRoot"].is_null() {
            &pod_ctx["runAsNonRoot"]
        } else {
            &ctx["runAsNonRoot"]
        };
        assert_eq!(non_root, true, "{name}: runAsNonRoot");
        assert_eq!(
            ctx["allowPrivilegeEscalation"], false,
            "{name}: allowPrivilegeEscalation"
        );
        assert_eq!(
            ctx["readOnlyRootFilesystem"], true,
            "{name}: readOnlyRootFilesystem"
        );
        let drop = ctx["capabilities"]["drop"].as_array();
        assert!(
            drop.is_some_and(|d| d.iter().any(|c| c == "ALL")),
            "{name}: capabilities.drop must hold ALL"
        );
        for (kind, res) in [
            ("requests", "cpu"),
            ("requests", "memory"),
            ("limits", "memory"),
        ] {
            assert!(
                c["resources"][kind][res].is_string(),
                "{name}: resources.{kind}.{res}"
            );
        }
    }
}

#[test]
fn tls_secret_is_mounted_read_only() {
    let pod = pod_spec();
    let mounts = container(&pod, SIDECAR)["volumeMounts"].as_array().unwrap();
    let tls = mounts
        .iter()
        .find(|m| m["mountPath"] == "/etc/wsgate/tls")
        .expect("nothing is mounted at /etc/wsgate/tls");
    assert_eq!(tls["readOnly"], true, "the TLS mount must be read-only");
    let source = volume(&pod, tls["name"].as_str().unwrap());
    assert!(
        source["secret"]["secretName"].is_string(),
        "the TLS volume is not a Secret"
    );
}

#[tokio::test]
async fn configmap_config_passes_wsgate_check() {
    let text = sidecar_config_text(&pod_spec());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.yaml");
    std::fs::write(&file, text).unwrap();
    let (status, stdout, stderr) =
        run_to_end(wsgate(&["check", "--config", file.to_str().unwrap()])).await;
    assert_eq!(status.code(), Some(0), "{status}; {stdout}{stderr}");
}
