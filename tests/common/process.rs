//! The built `wsgate` binary as a child process: started with a clean environment, its
//! output read line by line as it comes, killed by PID if a test fails.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::PATIENCE;

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary with `args`, run from the crate root, with none of the test runner's
/// `WSGATE_*` or `RUST_LOG` variables (they would change its config or its log output).
pub fn wsgate(args: &[&str]) -> Command {
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
    // Parallel tests must not share the admin port, nor wait out the drain delay.
    cmd.env("WSGATE_ADMIN__LISTEN", "127.0.0.1:0")
        .env("WSGATE_SHUTDOWN__DELAY", "0s");
    cmd
}

/// Owns a started child process and kills it (by its pid) when dropped, so a failed
/// assertion never leaves a gateway running.
pub struct Running {
    child: Child,
    pub pid: u32,
}

impl Running {
    pub fn start(mut cmd: Command) -> Self {
        let child = cmd.spawn().expect("cannot start the wsgate binary");
        let pid = child.id().expect("a just-started child has a pid");
        Self { child, pid }
    }

    pub fn stdout(&mut self) -> Lines {
        Lines::new(self.child.stdout.take().expect("stdout is piped"))
    }

    pub fn stderr(&mut self) -> Lines {
        Lines::new(self.child.stderr.take().expect("stderr is piped"))
    }

    /// Closes the only reader of the child's stderr: its writes fail from now on (EPIPE).
    pub fn close_stderr(&mut self) {
        drop(self.child.stderr.take().expect("stderr is piped"));
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// SIGINT, as Ctrl-C in a terminal sends.
    pub fn sigint(&self) {
        self.signal("INT");
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status()
            .expect("cannot run kill");
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid
        );
    }

    pub async fn wait(&mut self) -> ExitStatus {
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
pub struct Lines {
    rx: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Lines {
    pub fn new(pipe: impl AsyncRead + Unpin + Send + 'static) -> Self {
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
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
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

    /// As [`wait_for`](Self::wait_for), but lines already read by earlier waits count too,
    /// so lines can be looked for in any order.
    pub async fn find(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.take_ready();
        if let Some(line) = self.seen.iter().find(|l| pred(l)) {
            return line.clone();
        }
        self.wait_for(what, pred).await
    }

    /// Every line written so far (without waiting for more).
    pub fn so_far(&mut self) -> &[String] {
        self.take_ready();
        &self.seen
    }

    fn take_ready(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
    }

    /// Reads to the end of the output (the process has exited) and returns every line.
    pub async fn all(&mut self) -> String {
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
pub fn json_str<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// Runs a command that must exit by itself and returns its status, stdout and stderr.
pub async fn run_to_end(cmd: Command) -> (ExitStatus, String, String) {
    let mut child = Running::start(cmd);
    let mut out = child.stdout();
    let mut err = child.stderr();
    let status = child.wait().await;
    (status, out.all().await, err.all().await)
}

/// A started `wsgate` serving: the process, its stderr, and its two addresses.
pub struct Started {
    pub proc: Running,
    pub stderr: Lines,
    pub addr: String,
    /// The admin listener (the harness binds it to an ephemeral port).
    pub admin: String,
}

/// Starts `wsgate --log-format json` with `args` (and any extra environment) and waits for
/// its listening line.
pub async fn start_serving(args: &[&str], env: &[(&str, &str)]) -> Started {
    let mut all = args.to_vec();
    all.extend(["--log-format", "json"]);
    let mut cmd = wsgate(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut proc = Running::start(cmd);
    let mut stderr = proc.stderr();
    let listening = stderr
        .wait_for("listening line", |l| {
            l.contains("\"message\":\"listening\"")
        })
        .await;
    let field = |name| {
        json_str(&listening, name)
            .unwrap_or_else(|| panic!("no {name} in {listening}"))
            .to_string()
    };
    let (addr, admin) = (field("addr"), field("admin"));
    Started {
        proc,
        stderr,
        addr,
        admin,
    }
}

/// As [`start_serving`] with no extra environment; returns the process, its stderr and the
/// main address.
pub async fn start_listening(args: &[&str]) -> (Running, Lines, String) {
    let s = start_serving(args, &[]).await;
    (s.proc, s.stderr, s.addr)
}

/// The resident memory of process `pid`, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line in /proc/<pid>/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in KiB");
    kib * 1024
}

/// Raises this process's soft RLIMIT_NOFILE to `need` if the hard limit allows it.
pub fn raise_fd_limit(need: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_none_or(|soft| soft >= need) {
        return;
    }
    assert!(
        now.maximum.is_none_or(|hard| hard >= need),
        "the test needs {need} file descriptors; the hard limit is {:?}",
        now.maximum
    );
    let raised = Rlimit {
        current: Some(need),
        maximum: now.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raising RLIMIT_NOFILE");
}
