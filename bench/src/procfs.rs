//! What /proc says about a process: CPU time (read in nanoseconds through [`cpuclock`],
//! /proc's ticks only where that fails), resident memory, open files and listening
//! sockets; and about the machine, for the report.

use std::fs;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cpuclock;

/// /proc reports CPU time in USER_HZ ticks, 100 a second on Linux for every architecture
/// the kernel exports to user space this way.
const TICKS_PER_SECOND: f64 = 100.0;

/// The name prefix of the threads that run the in-process backends (see `main.rs`).
pub const BACKEND_THREADS: &str = "bench-backend";

/// utime + stime from the text of a `stat` file. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn stat_ticks(text: &str) -> Option<u64> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_of(path: &str) -> Result<u64> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    stat_ticks(&text).with_context(|| format!("unexpected format of {path}"))
}

/// CPU ticks `pid` has used, all threads together.
pub fn process_ticks(pid: u32) -> Result<u64> {
    ticks_of(&format!("/proc/{pid}/stat"))
}

/// Resident memory of `pid` in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// How many files `pid` has open.
pub fn open_fds(pid: u32) -> Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(fs::read_dir(&path)
        .with_context(|| format!("reading {path}"))?
        .count())
}

/// A process's open files by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FdKinds {
    pub sockets: usize,
    pub pipes: usize,
    /// Everything else: epoll and event descriptors, files, terminals.
    pub other: usize,
}

/// `pid`'s open files by kind, from where each /proc/<pid>/fd entry points. Entries that
/// close while they are read are left out.
pub fn open_fd_kinds(pid: u32) -> Result<FdKinds> {
    let path = format!("/proc/{pid}/fd");
    let mut kinds = FdKinds::default();
    for entry in fs::read_dir(&path).with_context(|| format!("reading {path}"))? {
        let Ok(target) = entry.and_then(|e| fs::read_link(e.path())) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target.starts_with("socket:") {
            kinds.sockets += 1;
        } else if target.starts_with("pipe:") {
            kinds.pipes += 1;
        } else {
            kinds.other += 1;
        }
    }
    Ok(kinds)
}

/// Whether `pid` holds a TCP socket listening on `port` (IPv4): its listening socket's
/// inode, from /proc/PID/net/tcp, is among the sockets its open files point to.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return false;
    };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            let listening = *f.get(3)? == "0A";
            let inode = f.get(9)?;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| format!("socket:[{inode}]"))
        })
        .collect();
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
}

/// A machine-wide TCP counter from the `TcpExt` lines of /proc/net/netstat.
pub fn tcp_ext(name: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Packets the kernel dropped because a CPU's input backlog was full
/// (`net.core.netdev_max_backlog`), all CPUs together, from /proc/net/softnet_stat. Loopback
/// traffic passes through that backlog, so bursts of it are dropped there.
pub fn backlog_drops() -> Option<u64> {
    let text = fs::read_to_string("/proc/net/softnet_stat").ok()?;
    text.lines()
        .map(|l| {
            let dropped = l.split_whitespace().nth(1)?;
            u64::from_str_radix(dropped, 16).ok()
        })
        .sum()
}

/// This process's soft limit on open files, if /proc says.
pub fn open_file_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Machine-wide ticks from /proc/stat: (busy, steal), all CPUs together. Busy is user,
/// nice, system, irq and softirq time (guest time is part of user).
fn machine_ticks() -> (u64, u64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    (at(0) + at(1) + at(2) + at(5) + at(6), at(7))
}

/// Threads of this process that are not the load generator: the backends, and the readers
/// of the middle processes' output (whose work grows with the gateway's log, not the load).
const NOT_CLIENT_THREADS: [&str; 2] = [BACKEND_THREADS, crate::child::LOG_READER_THREADS];

/// CPU time at one instant, in nanoseconds: this process (split into backends and the
/// rest), if there is one the process between client and backend (gateway, copy proxy or
/// HAProxy), and the machine (in ticks: /proc/stat has nothing finer).
#[derive(Debug, Clone, Copy)]
pub struct CpuSnap {
    at: Instant,
    bench: u64,
    backends: u64,
    not_clients: u64,
    middle: Option<u64>,
    machine_busy: u64,
    steal: u64,
}

/// CPU use over a window, in percent of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// Length of the window, in seconds.
    pub secs: f64,
    /// The load generator: every thread of this process except the backends' and the
    /// readers of the middle process's output.
    pub clients: f64,
    pub backends: f64,
    pub middle: Option<f64>,
    /// Everything else the machine did meanwhile: other processes, kernel threads. Large
    /// values mean the figures are disturbed.
    pub others: f64,
    /// Time the hypervisor gave to other guests.
    pub steal: f64,
}

impl CpuUse {
    /// CPU seconds of a part given in percent of one core over this window.
    pub fn seconds(&self, percent: f64) -> f64 {
        percent / 100.0 * self.secs
    }
}

/// Ticks to nanoseconds, for the fallback to /proc/PID/stat.
fn ticks_ns(ticks: u64) -> u64 {
    ticks * (1e9 / TICKS_PER_SECOND) as u64
}

impl CpuSnap {
    pub fn take(middle: Option<u32>) -> Self {
        let (machine_busy, steal) = machine_ticks();
        let bench = cpuclock::own_ns()
            .unwrap_or_else(|| ticks_ns(ticks_of("/proc/self/stat").unwrap_or(0)));
        Self {
            machine_busy,
            steal,
            at: Instant::now(),
            bench,
            backends: cpuclock::own_threads_ns(&[BACKEND_THREADS]),
            not_clients: cpuclock::own_threads_ns(&NOT_CLIENT_THREADS),
            middle: middle.and_then(|pid| {
                cpuclock::process_ns(pid).or_else(|| process_ticks(pid).ok().map(ticks_ns))
            }),
        }
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    /// Use between `earlier` and this snapshot.
    pub fn since(&self, earlier: &CpuSnap) -> CpuUse {
        let secs = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let pct = |ns: u64| ns as f64 / 1e9 / secs * 100.0;
        let pct_ticks = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / secs * 100.0;
        let backends = self.backends.saturating_sub(earlier.backends);
        let not_clients = self.not_clients.saturating_sub(earlier.not_clients);
        let bench = self.bench.saturating_sub(earlier.bench);
        let middle = match (self.middle, earlier.middle) {
            (Some(now), Some(then)) => Some(now.saturating_sub(then)),
            _ => None,
        };
        let busy = self.machine_busy.saturating_sub(earlier.machine_busy);
        let ours = pct(bench + middle.unwrap_or(0));
        CpuUse {
            secs,
            clients: pct(bench.saturating_sub(not_clients)),
            backends: pct(backends),
            middle: middle.map(pct),
            others: (pct_ticks(busy) - ours).max(0.0),
            steal: pct_ticks(self.steal.saturating_sub(earlier.steal)),
        }
    }
}

/// The machine, as the report describes it.
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub load: String,
}

pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_string(), |(_, m)| m.trim().to_string());
    let read = |p: &str| {
        fs::read_to_string(p).map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string())
    };
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model,
        kernel: read("/proc/sys/kernel/osrelease"),
        load: read("/proc/loadavg"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_a_command_name_with_spaces() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0";
        assert_eq!(stat_ticks(line), Some(10));
    }

    #[test]
    fn a_listening_socket_is_found_by_its_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listens_on(std::process::id(), port));
        drop(listener);
        assert!(!listens_on(std::process::id(), port));
    }
}
