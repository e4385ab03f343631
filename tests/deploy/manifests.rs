//! The Kubernetes manifests under deploy/kubernetes/ as JSON values, and the lookups the
//! checks need: the Pod template, its containers, volumes and mounts, the wsgate config
//! the sidecar reads, probe targets and preStop sleeps.

use std::time::Duration;

use serde_json::Value;

use crate::files::{GateSettings, duration, str_at, yaml_documents};

const FILES: &[&str] = &[
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/deployment.yaml",
    "deploy/kubernetes/service.yaml",
    "deploy/kubernetes/secret-tls.example.yaml",
];
pub const SIDECAR: &str = "wsgate";

/// Every object in the manifests, each with the file it came from.
pub fn objects() -> Vec<(&'static str, Value)> {
    let mut all = Vec::new();
    for file in FILES {
        let docs = yaml_documents(file);
        assert!(!docs.is_empty(), "{file} holds no object");
        for doc in docs {
            for key in ["/apiVersion", "/kind", "/metadata/name"] {
                assert!(
                    str_at(&doc, key).is_some(),
                    "{file}: an object without {key}"
                );
            }
            all.push((*file, doc));
        }
    }
    all
}

pub fn the_one(kind: &str) -> Value {
    let mut found = objects()
        .into_iter()
        .filter(|(_, o)| str_at(o, "/kind") == Some(kind));
    let (_, object) = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} in {FILES:?}"));
    assert!(found.next().is_none(), "more than one {kind}");
    object
}

pub fn pod_spec() -> Value {
    the_one("Deployment")
        .pointer("/spec/template/spec")
        .cloned()
        .expect("the Deployment has no Pod template")
}

pub fn containers(pod: &Value) -> &Vec<Value> {
    pod["containers"].as_array().expect("containers is a list")
}

pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    containers(pod)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container named {name}"))
}

pub fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("no volume named {name}"))
}

/// The mount of `c` whose path holds `path`.
fn mount_holding<'a>(c: &'a Value, path: &str) -> &'a Value {
    c["volumeMounts"]
        .as_array()
        .and_then(|ms| {
            ms.iter().find(|m| {
                let dir = m["mountPath"].as_str().unwrap_or("").trim_end_matches('/');
                path.starts_with(&format!("{dir}/"))
            })
        })
        .unwrap_or_else(|| panic!("no volume mounted where {path} is"))
}

/// The file the sidecar is told to read with `--config`.
fn sidecar_config_path(pod: &Value) -> String {
    let c = container(pod, SIDECAR);
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .filter_map(|k| c[*k].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let at = words
        .iter()
        .position(|w| *w == "--config")
        .expect("the wsgate container passes no --config");
    words[at + 1].to_string()
}

/// The wsgate config text the sidecar reads: the ConfigMap key behind its `--config` path.
pub fn sidecar_config_text(pod: &Value) -> String {
    let path = sidecar_config_path(pod);
    let mount = mount_holding(container(pod, SIDECAR), &path);
    assert!(
        mount["subPath"].is_null(),
        "a subPath mount never sees ConfigMap updates"
    );
    let map_name = volume(pod, mount["name"].as_str().unwrap())["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not on a ConfigMap volume"))
        .to_string();
    let key = path.rsplit('/').next().unwrap();
    let map = the_one("ConfigMap");
    assert_eq!(
        str_at(&map, "/metadata/name"),
        Some(map_name.as_str()),
        "ConfigMap name"
    );
    map["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {map_name} has no key {key}"))
        .to_string()
}

pub fn sidecar_settings(pod: &Value) -> GateSettings {
    let env: Vec<(String, String)> = container(pod, SIDECAR)["env"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .filter_map(|v| Some((v["name"].as_str()?.into(), v["value"].as_str()?.into())))
                .collect()
        })
        .unwrap_or_default();
    GateSettings::from_config(&sidecar_config_text(pod), &env)
}

/// A probe's HTTP path and the container port number it targets (by name or number).
pub fn probe_target(c: &Value, probe: &str) -> (String, u16) {
    let get = &c[probe]["httpGet"];
    let path = get["path"]
        .as_str()
        .unwrap_or_else(|| panic!("{probe} is not an httpGet"));
    let port = match &get["port"] {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(name) => c["ports"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == *name))
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("{probe}: no container port named {name}")),
        other => panic!("{probe}: port {other}"),
    };
    (path.to_string(), u16::try_from(port).unwrap())
}

/// The seconds of a preStop `sleep`, exec'd or as the sleep action; 0 without one.
pub fn prestop_sleep(c: &Value) -> Duration {
    let hook = &c["lifecycle"]["preStop"];
    if let Some(secs) = hook["sleep"]["seconds"].as_u64() {
        return Duration::from_secs(secs);
    }
    match hook["exec"]["command"].as_array().map(Vec::as_slice) {
        None => Duration::ZERO,
        Some([cmd, secs]) if cmd == "sleep" => duration(&format!("{}s", secs.as_str().unwrap())),
        Some(other) => panic!("preStop of {}: not a plain sleep: {other:?}", c["name"]),
    }
}
