//! What triggers a reload: SIGHUP, and (with `reload.watch`) a change in the config file's
//! content, polled on `reload.interval`. Polling content rather than watching inodes also
//! follows Kubernetes ConfigMap updates, which swap a symlink.

use std::path::PathBuf;

use tokio::time::sleep;
use tracing::{debug, info};

use crate::Handle;
use crate::config::{Config, ConfigError, ConfigFile, Overrides};
use crate::lifecycle::ReloadSignal;

/// Where the config comes from, so it can be read again the same way.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub file: ConfigFile,
    pub overrides: Overrides,
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.file, &self.overrides)
    }

    fn path(&self) -> Option<&PathBuf> {
        match &self.file {
            ConfigFile::Explicit(p) | ConfigFile::Default(p) => Some(p),
            ConfigFile::None => None,
        }
    }
}

/// Reloads on every SIGHUP and, when watching, on every change of the file. Runs until
/// the process ends.
pub async fn run(handle: Handle, source: ConfigSource, mut hup: ReloadSignal) {
    let mut last = read(&source);
    loop {
        let watch = handle.config().reload;
        let changed = async {
            if !watch.watch {
                return std::future::pending().await;
            }
            loop {
                sleep(watch.interval).await;
                let now = read(&source);
                if now != last {
                    return now;
                }
            }
        };
        tokio::select! {
            () = hup.recv() => info!("SIGHUP: reloading the configuration"),
            now = changed => {
                info!("config file changed: reloading the configuration");
                last = now;
            }
        }
        // Problems are logged by `reload`, and the running config stays. Its certificates
        // are still renewed: a SIGHUP may come from a certificate renewal hook, and a
        // problem elsewhere in the config must not keep an expiring certificate in service.
        let reloaded = match source.load() {
            Ok(cfg) => handle.reload(cfg).is_ok(),
            Err(e) => {
                handle.refuse_reload(&e);
                false
            }
        };
        if !reloaded {
            handle.refresh_certificates();
        }
    }
}

fn read(source: &ConfigSource) -> Option<Vec<u8>> {
    let path = source.path()?;
    std::fs::read(path)
        .inspect_err(|e| debug!(error = %e, "cannot read the config file"))
        .ok()
}
