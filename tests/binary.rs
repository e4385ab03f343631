//! The `wsgate` binary as an operator runs it: serving until SIGTERM, refusing bad
//! configuration with exit code 64 before binding, `check`, and `demo`.

mod common;

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const EXIT_BAD_CONFIG: i32 = 64;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary with `args`, run from the crate root, with none of the test runner's
/// `WSGATE_*` or `RUST_LOG` variables (they would change its config or its log output).
fn wsgate(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsgate"));
    cmd.args(args)
        .current_dir(manifest_dir())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WSGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Owns a started child process and kills it (by its pid) when dropped, so a failed
/// assertion never leaves a gateway running.
struct Running {
    child: Child,
    pid: u32,
}

impl Running {
    fn start(mut cmd: Command) -> Self {
        let child = cmd.spawn().expect("cannot start the wsgate binary");
        let pid = child.id().expect("a just-started child has a pid");
        Self { child, pid }
    }

    fn stdout(&mut self) -> Lines {
        Lines::new(self.child.stdout.take().expect("stdout is piped"))
    }

    fn stderr(&mut self) -> Lines {
        Lines::new(self.child.stderr.take().expect("stderr is piped"))
    }

    fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid);
    }

    async fn wait(&mut self) -> ExitStatus {
        timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("wsgate (pid {}) did not exit in time", self.pid))
            .expect("cannot wait for wsgate")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Fails harmlessly if the child has already exited and been waited for.
        let _ = self.child.start_kill();
    }
}

/// The lines a child writes to one of its pipes, read as they come.
struct Lines {
    rx: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(pipe: impl AsyncRead + Unpin + Send + 'static) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// Reads until a line satisfies `pred` and returns it.
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let found = timeout(PATIENCE, async {
            while let Some(line) = self.rx.recv().await {
                self.seen.push(line.clone());
                if pred(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("output ended before {what}; got:\n{}", self.seen.join("\n")),
            Err(_) => panic!("no {what} in time; got:\n{}", self.seen.join("\n")),
        }
    }

    /// Reads to the end of the output (the process has exited) and returns every line.
    async fn all(&mut self) -> String {
        timeout(PATIENCE, async {
            while let Some(line) = self.rx.recv().await {
                self.seen.push(line);
            }
        })
        .await
        .expect("output did not end in time");
        self.seen.join("\n")
    }
}

/// The value of the JSON string field `field` in a log line (no escapes expected).
fn json_str<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// After the gateway's close frame: keeps reading so the client's reply goes out, until the
/// gateway ends the connection.
async fn finish_close(ws: &mut Client) {
    timeout(PATIENCE, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
    .expect("gateway did not end the connection after the close handshake");
}

/// Runs a command that must exit by itself and returns its status, stdout and stderr.
async fn run_to_end(cmd: Command) -> (ExitStatus, String, String) {
    let mut child = Running::start(cmd);
    let mut out = child.stdout();
    let mut err = child.stderr();
    let status = child.wait().await;
    (status, out.all().await, err.all().await)
}

#[tokio::test]
async fn serves_until_sigterm_then_drains_and_exits_zero() {
    let echo = echo_backend().await;
    let mut gw = Running::start(wsgate(&[
        "--listen",
        "127.0.0.1:0",
        "--backend",
        &echo.to_string(),
        "--log-format",
        "json",
    ]));
    let mut stderr = gw.stderr();
    let listening = stderr
        .wait_for("listening line", |l| {
            l.contains("\"message\":\"listening\"")
        })
        .await;
    let addr = json_str(&listening, "addr")
        .unwrap_or_else(|| panic!("no addr in {listening}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{listening}");
    assert!(!addr.ends_with(":0"), "not the bound port: {listening}");

    let mut ws = connect(&format!("ws://{addr}/")).await;
    send_binary(&mut ws, b"through the binary").await;
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(&b"through the binary"[..])
    );

    // The session is open (the echo came back through it) when the signal arrives.
    gw.sigterm();
    let frame = next_close(&mut ws)
        .await
        .expect("close frame without a code");
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    finish_close(&mut ws).await;

    let status = gw.wait().await;
    let log = stderr.all().await;
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{log}");
    let access = log
        .lines()
        .find(|l| l.contains("\"message\":\"session closed\""))
        .unwrap_or_else(|| panic!("no access line in:\n{log}"));
    assert!(access.contains("\"close_code\":1001"), "{access}");
    assert!(access.contains("\"end\":\"shutdown\""), "{access}");
    assert!(log.contains("\"message\":\"stopped\""), "{log}");
}

#[tokio::test]
async fn bad_environment_value_exits_64_naming_key_and_value() {
    let mut cmd = wsgate(&["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"]);
    cmd.env("WSGATE_LIMITS__MAX_FRAME_SIZE", "lots");
    let (status, _, stderr) = run_to_end(cmd).await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stderr.contains("limits.max_frame_size"), "{stderr}");
    assert!(stderr.contains("lots"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[tokio::test]
async fn missing_config_file_exits_64_naming_the_flag() {
    let (status, _, stderr) = run_to_end(wsgate(&[
        "--config",
        "/nonexistent.yaml",
        "--listen",
        "127.0.0.1:0",
    ]))
    .await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stderr.contains("--config"), "{stderr}");
    assert!(stderr.contains("/nonexistent.yaml"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[tokio::test]
async fn check_accepts_the_example_config() {
    let (status, stdout, stderr) =
        run_to_end(wsgate(&["check", "--config", "config/wsgate.yaml"])).await;
    assert_eq!(status.code(), Some(0), "{status}; {stderr}");
    assert!(stdout.starts_with("configuration ok"), "{stdout}");
    assert!(stdout.contains("route / -> 127.0.0.1:5900"), "{stdout}");
}

#[tokio::test]
async fn check_refuses_an_invalid_fixture_naming_its_key() {
    let (status, stdout, stderr) = run_to_end(wsgate(&[
        "check",
        "--config",
        "tests/fixtures/invalid/frame_larger_than_message.yaml",
    ]))
    .await;
    assert_eq!(status.code(), Some(EXIT_BAD_CONFIG), "{status}; {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("limits.max_frame_size"), "{stderr}");
}

#[tokio::test]
async fn demo_echoes_then_exits_zero_on_sigterm() {
    let mut demo = Running::start(wsgate(&["demo", "--listen", "127.0.0.1:0"]));
    let mut stdout = demo.stdout();
    let mut stderr = demo.stderr();
    let banner = stdout
        .wait_for("demo banner", |l| l.starts_with("wsgate demo: ws://"))
        .await;
    let url = banner
        .strip_prefix("wsgate demo: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no url in {banner}"));
    assert!(url.starts_with("ws://127.0.0.1:"), "{banner}");
    assert!(url.ends_with('/'), "{banner}");
    assert!(!url.starts_with("ws://127.0.0.1:0/"), "{banner}");

    let mut ws = connect(url).await;
    send_binary(&mut ws, b"hello demo").await;
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(&b"hello demo"[..])
    );

    demo.sigterm();
    let frame = next_close(&mut ws)
        .await
        .expect("close frame without a code");
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    finish_close(&mut ws).await;
    let status = demo.wait().await;
    let log = stderr.all().await;
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{log}");
}
