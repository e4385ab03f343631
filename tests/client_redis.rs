//! A real program end to end: `redis-cli` → `wsgate client` → the gateway → a real
//! `redis-server`, with results compared byte for byte against `redis-cli` talking to the
//! same server directly. Skipped without redis, except under CI, where that fails.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;

use common::process::Lines;
use common::tools::require_tool;
use common::tunnel::tunnel_to;
use common::*;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// A throwaway redis-server on its own port, no persistence; killed (by pid) when dropped.
struct Redis {
    _child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

async fn redis_server(program: &std::path::Path) -> Redis {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(program)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.path().to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start redis-server");
    let mut log = Lines::new(child.stdout.take().unwrap());
    log.wait_for("redis ready", |l| l.contains("Ready to accept connections"))
        .await;
    Redis {
        _child: child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: dir,
    }
}

/// Runs `redis-cli -h ADDR -p PORT ARGS` with `stdin` and returns its stdout.
async fn redis_cli(
    cli: &std::path::Path,
    addr: SocketAddr,
    args: &[&str],
    stdin: &[u8],
) -> Vec<u8> {
    let mut child = Command::new(cli)
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start redis-cli");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeding = tokio::spawn(async move {
        let _ = input.write_all(&stdin).await;
    });
    let out = timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("redis-cli did not finish")
        .unwrap();
    feeding.await.unwrap();
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Commands whose replies cover every RESP type; `{db}` keeps the two runs apart.
const SCRIPT: &str = "PING\nSET greeting \"hello world\"\nGET greeting\nINCR visits\nINCR visits\n\
    RPUSH letters a b c\nLRANGE letters 0 -1\nHSET h f1 v1 f2 v2\nHGETALL h\nGET missing\n\
    EXPIRE greeting 100\nTYPE letters\nNOSUCHCOMMAND\nDBSIZE\n";

#[tokio::test]
async fn redis_cli_through_the_tunnel_gets_exactly_what_it_gets_directly() {
    let test = "redis_cli_through_the_tunnel_gets_exactly_what_it_gets_directly";
    let Some(server) = require_tool("redis-server", "apt-get install redis-server", test) else {
        return;
    };
    let Some(cli) = require_tool("redis-cli", "apt-get install redis-tools", test) else {
        return;
    };
    let redis = redis_server(&server).await;
    let gw = spawn_gateway(config_for(redis.addr)).await;
    let client = tunnel_to(&gw.url("/"), &[]).await;
    let tunnel = client.addr();

    let direct = redis_cli(&cli, redis.addr, &["-n", "1"], SCRIPT.as_bytes()).await;
    let tunneled = redis_cli(&cli, tunnel, &["-n", "2"], SCRIPT.as_bytes()).await;
    assert!(
        String::from_utf8_lossy(&direct).contains("hello world"),
        "{}",
        String::from_utf8_lossy(&direct)
    );
    assert_eq!(
        String::from_utf8_lossy(&tunneled),
        String::from_utf8_lossy(&direct)
    );

    // A 3 MB value in through the tunnel (-x reads it from stdin), out directly and back.
    let value: Vec<u8> = (0..3_000_000u32)
        .map(|i| b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26)
        .collect();
    let set = redis_cli(&cli, tunnel, &["-x", "SET", "big"], &value).await;
    assert_eq!(set, b"OK\n");
    let direct = redis_cli(&cli, redis.addr, &["--raw", "GET", "big"], b"").await;
    let tunneled = redis_cli(&cli, tunnel, &["--raw", "GET", "big"], b"").await;
    assert_eq!(direct.len(), value.len() + 1);
    assert!(
        direct[..value.len()] == value[..],
        "the value stored differs"
    );
    assert!(
        tunneled == direct,
        "the value read through the tunnel differs"
    );

    // Pipelined: 10,000 commands in one stream (redis-cli --pipe waits for every reply).
    let mut mass = Vec::new();
    for i in 0..10_000 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        mass.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    let piped = redis_cli(&cli, tunnel, &["-n", "3", "--pipe"], &mass).await;
    let report = String::from_utf8_lossy(&piped);
    assert!(report.contains("errors: 0, replies: 10000"), "{report}");
    let size = redis_cli(&cli, redis.addr, &["-n", "3", "DBSIZE"], b"").await;
    assert_eq!(size, b"10000\n");
}
