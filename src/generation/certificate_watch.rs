//! Certificate renewal without a restart: the files the TLS setup was built from are
//! checked every `tls.watch_interval`; when one changes (cert-manager and ACME clients
//! replace them in place or swap a symlink), the TLS setup of the running generation is
//! rebuilt from them (see [`Shared::refresh_certificates`]), so new connections get the
//! new certificate. A replacement that does not load (bad PEM, key not matching) is
//! refused and the running certificate stays.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::time::sleep;
use tracing::{debug, info};

use super::Shared;

/// The certificate-related files of the current config, with their contents.
fn snapshot(shared: &Shared) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let generation = shared.current();
    let t = &generation.cfg.tls;
    let mut paths: Vec<PathBuf> = t
        .cert
        .iter()
        .chain(&t.key)
        .chain(&t.client_ca)
        .cloned()
        .collect();
    for c in &t.certificates {
        paths.push(c.cert.clone());
        paths.push(c.key.clone());
    }
    paths
        .into_iter()
        .map(|p| {
            let content = std::fs::read(&p)
                .inspect_err(|e| debug!(file = %p.display(), error = %e, "cannot read"))
                .ok();
            (p, content)
        })
        .collect()
}

/// Watches until shutdown. Does nothing while TLS is off or watching is.
pub async fn run(shared: Arc<Shared>) {
    let mut last = snapshot(&shared);
    loop {
        let interval = shared.current().cfg.tls.watch_interval.map(|s| s.0);
        let wait = async {
            match interval {
                Some(every) => sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait => {}
            () = shared.life.stopping() => return,
        }
        let now = snapshot(&shared);
        // A changed config (reload) changes the list too; compare contents per path.
        if now != last {
            if now.iter().map(|(p, _)| p).eq(last.iter().map(|(p, _)| p)) {
                info!("certificate files changed: loading them");
                shared.refresh_certificates();
            }
            last = now;
        }
    }
}
