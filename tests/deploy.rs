//! The files under deploy/ (container image, Kubernetes, systemd, HAProxy, nginx): each is
//! read and checked against wsgate's settings, systemd-analyze verifies the unit, and the
//! HAProxy and nginx configs run for real in front of two wsgate processes.
//!
//! HAProxy, nginx and systemd-analyze come from Debian (`.ci/run` installs them). Without
//! one, its test says so on stderr and passes, except under CI=true, where it fails.

mod common;

#[path = "deploy/files.rs"]
mod files;
#[path = "deploy/haproxy.rs"]
mod haproxy;
#[path = "deploy/image.rs"]
mod image;
#[path = "deploy/kubernetes.rs"]
mod kubernetes;
#[path = "deploy/lb.rs"]
mod lb;
#[path = "deploy/manifests.rs"]
mod manifests;
#[path = "deploy/nginx.rs"]
mod nginx;
#[path = "deploy/systemd.rs"]
mod systemd;

/// Only placeholders and instructions are committed: nothing under deploy/ holds key or
/// certificate material.
#[test]
fn no_key_material_under_deploy() {
    let mut stack = vec![files::repo_file("deploy")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for marker in ["-----BEGIN", "PRIVATE KEY-----"] {
                assert!(!text.contains(marker), "{} holds {marker}", path.display());
            }
        }
    }
}
