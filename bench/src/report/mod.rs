//! The markdown report: how it was run and on what, the issues' targets with pass or fail,
//! the charts, and every scenario's figures, absolute and as ratios, with the CPU each side
//! used, in all and per unit of work.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

pub mod charts;
mod targets;

use crate::Plan;
use crate::procfs::{self, CpuUse, Machine};
use crate::results::Results;
use crate::scenario::{Metric, Scenario, Target, tunnel};

pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";

/// What is known before the run starts.
pub struct Context {
    command: String,
    date: String,
    machine: Machine,
    rustc: String,
    gateway: String,
    commit: String,
}

/// First line of a command's output, or `unknown`.
fn output_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

impl Context {
    pub fn now(gateway: &Path) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let dirty = output_of("git", &["status", "--porcelain", "--untracked-files=no"]);
        let commit = output_of("git", &["rev-parse", "--short", "HEAD"]);
        let gw = gateway.display().to_string();
        Self {
            command: format!("wsgate-bench {}", args.join(" "))
                .trim()
                .to_string(),
            date: output_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            machine: procfs::machine(),
            rustc: output_of("rustc", &["--version"]),
            gateway: format!("{gw} ({})", output_of(&gw, &["--version"])),
            commit: if dirty == "unknown" {
                commit
            } else {
                format!("{commit} (with uncommitted changes)")
            },
        }
    }
}

pub fn num(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), num)
}

fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |r| format!("{r:.2}×"))
}

fn title(s: Scenario) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match s {
        Scenario::BulkUp(n) => format!(
            "Bulk client->backend, 64 KiB messages, {}",
            plural(n, "connection")
        ),
        Scenario::BulkDown(n) => format!(
            "Bulk backend->client, 64 KiB reads, {}",
            plural(n, "connection")
        ),
        Scenario::Echo(n) => format!("32-byte echo round trips, {}", plural(n, "connection")),
        Scenario::Idle(n) => format!("{} idle connections, each verified by one echo", n),
        Scenario::Churn(n) => format!("Connect, one echo, close: {}", plural(n, "worker")),
        Scenario::WssBulkUp(n) => format!("wss: {}", title(Scenario::BulkUp(n))),
        Scenario::WssBulkDown(n) => format!("wss: {}", title(Scenario::BulkDown(n))),
        Scenario::WssEcho(n) => format!("wss: {}", title(Scenario::Echo(n))),
        Scenario::WssIdle(n) => format!("wss: {}", title(Scenario::Idle(n))),
        Scenario::Tunnel(load, n) => tunnel::title(title(tunnel::plain(load, n))),
    }
}

fn label(s: Scenario, m: Metric) -> String {
    let (unit, _) = s.work_unit();
    let text = match m {
        Metric::MiddleCpuPerUnit => return format!("middle process CPU {unit}"),
        Metric::ClientCpuPerUnit => return format!("load generator CPU {unit}"),
        Metric::MegabytesPerSec => "MB/s (10^6 payload bytes), where they arrive",
        Metric::P50Micros => "p50 round trip (µs)",
        Metric::P99Micros => "p99 round trip (µs)",
        Metric::P999Micros => "p99.9 round trip (µs)",
        Metric::MessagesPerSec => "round trips/s",
        Metric::ConnsPerSec => "connections established/s (64 at a time)",
        Metric::KibPerConn => "middle process RSS growth per connection (KiB)",
        Metric::CyclesPerSec => "connect-echo-close cycles/s",
        Metric::FdsBefore => "middle process open files before",
        Metric::FdsAfter => "middle process open files after",
        Metric::FdsBackMillis => "ms until back to that count",
        Metric::SynRetransmits => "SYN retransmissions, machine-wide (full accept queues)",
    };
    text.to_string()
}

/// Whether a ratio between targets means something for this figure.
fn has_ratio(m: Metric) -> bool {
    !matches!(
        m,
        Metric::FdsBefore | Metric::FdsAfter | Metric::FdsBackMillis | Metric::SynRetransmits
    )
}

const ALL_METRICS: [Metric; 14] = [
    Metric::MegabytesPerSec,
    Metric::P50Micros,
    Metric::P99Micros,
    Metric::P999Micros,
    Metric::MessagesPerSec,
    Metric::ConnsPerSec,
    Metric::KibPerConn,
    Metric::CyclesPerSec,
    Metric::MiddleCpuPerUnit,
    Metric::ClientCpuPerUnit,
    Metric::FdsBefore,
    Metric::FdsAfter,
    Metric::FdsBackMillis,
    Metric::SynRetransmits,
];

/// A chart written beside the report: its title, and its path from the report's folder.
pub struct ChartLink {
    pub title: String,
    pub path: String,
}

pub fn render(plan: &Plan, results: &Results, ctx: &Context, charts: &[ChartLink]) -> String {
    let mut out = String::new();
    header(&mut out, plan, ctx);
    targets::table(&mut out, plan, results);
    targets::table_issue6(&mut out, plan, results);
    if !charts.is_empty() {
        let _ = writeln!(
            out,
            "\n### Charts\n\nMedians over the repeats; the figures behind them are in the \
             tables below.\n"
        );
        for chart in charts {
            let _ = writeln!(out, "![{}]({})\n", chart.title, chart.path);
        }
    }
    let _ = writeln!(out, "\n### Figures\n");
    let _ = writeln!(
        out,
        "Columns: the gateway (WebSocket client), raw TCP (the same client logic straight to the \
         backend), the copy proxy (raw client through tokio's `copy_bidirectional` in its own \
         process), HAProxy in TCP mode (raw client; no WebSocket at all: the L4 anchor), then \
         the gateway's figure divided by each of the others'. CPU is in percent of one core over \
         the measuring window (the opening phase for idle): the middle process (gateway, copy \
         proxy or HAProxy, all its threads), this benchmark's clients (the load generator) and \
         its backends, everything else the machine did (other processes, kernel threads: \
         noise), and time stolen by the hypervisor. The same CPU per unit of work: µs per \
         round trip (echo), per connect-echo-close cycle (churn), per connection opened \
         (idle), core-seconds per GB of payload (bulk); the load generator's row compares the \
         WebSocket client with the raw one. CPU times are read in nanoseconds from the \
         kernel's per-process CPU clock (`clock_gettime` on the process's CPU-time clock: all \
         its threads, exited ones included, up to the instant of reading), not /proc's 10 ms \
         ticks."
    );
    if plan.scenarios.iter().any(|s| s.tls()) {
        let negotiated = crate::client::NEGOTIATED
            .get()
            .map_or_else(String::new, |n| format!(", negotiated: {n}"));
        let _ = writeln!(
            out,
            "\nThe wss scenarios (`wss-*`) have other columns: the gateway serving wss:// \
             (`--tls-cert`, `--tls-key`: a certificate for localhost made at run time by \
             `wsgate::devcert`, the client trusting its CA; rustls with ring on both \
             sides{negotiated}), the same gateway serving ws://, and raw TCP (no TLS), \
             interleaved in the same way. Their MB/s count WebSocket payload bytes, as for ws."
        );
    }
    for &s in &plan.scenarios {
        scenario_table(&mut out, plan, results, s);
    }
    let _ = writeln!(out, "\n### Not measured\n");
    let websocat = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("websocat").is_file()));
    let _ = writeln!(
        out,
        "- websocat as a comparison peer: {}.",
        if websocat {
            "installed, but not wired in"
        } else {
            "not installed, skipped"
        }
    );
    failures(&mut out, results);
    out
}

fn header(out: &mut String, plan: &Plan, ctx: &Context) {
    let _ = writeln!(out, "### Run\n");
    if plan.smoke {
        let _ = writeln!(
            out,
            "**Smoke run: every scenario tiny, figures meaningless.**\n"
        );
    }
    run_lines(out, ctx);
    let names = |targets: Vec<Target>| {
        targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wss = plan
        .scenarios
        .iter()
        .find(|s| s.tls())
        .map(|s| format!("; wss scenarios: {}", names(s.targets(&plan.targets))))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "- each target started fresh for each run; runs interleaved ({}{wss}), {} repeats of bulk \
         and echo, {} of idle and churn; warm-up {:?}, window {:?}; figures are medians over \
         repeats, ratios the median of the per-repeat ratios",
        names(plan.targets.clone()),
        plan.repeats.0,
        plan.repeats.1,
        plan.timing.warmup,
        plan.timing.window,
    );
    for note in &plan.notes {
        let _ = writeln!(out, "- note: {note}");
    }
}

/// The command, date, machine, gateway and commit of a run, and the load average before
/// it and now.
pub fn run_lines(out: &mut String, ctx: &Context) {
    let m = &ctx.machine;
    let _ = writeln!(out, "- command: `{}`", ctx.command);
    let _ = writeln!(out, "- date: {}", ctx.date);
    let _ = writeln!(
        out,
        "- machine: {} CPUs, {}, Linux {}, {}",
        m.cpus, m.cpu_model, m.kernel, ctx.rustc
    );
    let _ = writeln!(out, "- gateway: {}, commit {}", ctx.gateway, ctx.commit);
    let _ = writeln!(
        out,
        "- load average (1, 5, 15 min) before: {}; after: {}",
        m.load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        procfs::machine()
            .load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Picks one part of a run's CPU use.
type CpuPart = fn(&CpuUse) -> Option<f64>;

/// A target's short name, for ratio headers.
fn short(s: Scenario, t: Target) -> &'static str {
    match t {
        Target::Gateway if s.tls() => "ws",
        Target::Gateway => "gateway",
        Target::Wss => "wss",
        Target::Raw => "raw",
        Target::Proxy => "proxy",
        Target::Haproxy => "HAProxy",
        Target::Tunnel => "chain",
        Target::Websocat => "websocat",
    }
}

/// The table of one scenario: a column per measured target (the gateway first), then the
/// gateway's figure divided by each baseline's.
fn scenario_table(out: &mut String, plan: &Plan, r: &Results, s: Scenario) {
    let _ = writeln!(out, "\n#### {} (`{s}`)\n", title(s));
    let columns = s.targets(&plan.targets);
    let Some((&main, bases)) = columns.split_first() else {
        return;
    };
    let header = |t: Target| match t {
        Target::Gateway if s.tls() => "gateway ws",
        _ => t.name(),
    };
    let mut head = String::from("| figure |");
    let mut rule = String::from("|---|");
    for &t in &columns {
        let _ = write!(head, " {} |", header(t));
        rule.push_str("---:|");
    }
    for &b in bases {
        let _ = write!(head, " {} / {} |", short(s, main), short(s, b));
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    // One row: the figure's name, a value per column, a ratio per baseline.
    let row =
        |out: &mut String, name: &str, f: &dyn Fn(Target) -> Option<f64>, ratios: Vec<String>| {
            let cells: Vec<String> = columns.iter().map(|&t| opt(f(t))).chain(ratios).collect();
            let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
        };
    let no_ratios = || vec!["—".to_string(); bases.len()];
    for m in ALL_METRICS {
        // Retransmissions are shown only where there were some: then they explain the rest.
        let empty = |v: Option<f64>| v.is_none() || (m == Metric::SynRetransmits && v == Some(0.0));
        if columns.iter().all(|&t| empty(r.median(s, t, m))) {
            continue;
        }
        let ratios = if has_ratio(m) {
            bases
                .iter()
                .map(|&b| times(r.ratio(s, main, b, m)))
                .collect()
        } else {
            no_ratios()
        };
        row(out, &label(s, m), &|t| r.median(s, t, m), ratios);
    }
    let parts: [(&str, CpuPart); 5] = [
        ("CPU %: middle process", |c| c.middle),
        ("CPU %: load generator (clients)", |c| Some(c.clients)),
        ("CPU %: backends", |c| Some(c.backends)),
        ("CPU %: rest of the machine", |c| Some(c.others)),
        ("CPU %: stolen by the hypervisor", |c| Some(c.steal)),
    ];
    for (name, part) in parts {
        row(out, name, &|t| r.cpu(s, t, part), no_ratios());
    }
}

fn failures(out: &mut String, results: &Results) {
    let failed: Vec<_> = results.failures().collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Failed runs\n");
    for o in failed {
        let err = o.result.as_ref().err().map_or("", String::as_str);
        let _ = writeln!(
            out,
            "- `{}` {} repeat {}: {}",
            o.scenario,
            o.target.name(),
            o.repeat + 1,
            err
        );
    }
}

/// Writes `text` to `path`, between the markers if the file has them.
pub fn write(path: &Path, text: &str) -> Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{BEGIN}\n{text}\n{}", &existing[..b], &existing[e..])
        }
        _ => format!("# wsgate benchmark report\n\n{BEGIN}\n{text}\n{END}\n"),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

/// Writes `text` between `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->` in
/// `path`, or, if the file lacks them, appends it there with them: a section of its own,
/// which leaves the rest of the file (the full run's section above all) as it was.
pub fn write_section(path: &Path, name: &str, text: &str) -> Result<()> {
    let (begin, end) = (
        format!("<!-- bench:{name}:begin -->"),
        format!("<!-- bench:{name}:end -->"),
    );
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (existing.find(&begin), existing.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{begin}\n{text}\n{}", &existing[..b], &existing[e..])
        }
        _ => {
            let sep = if existing.is_empty() || existing.ends_with("\n\n") {
                ""
            } else if existing.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{existing}{sep}{begin}\n{text}\n{end}\n")
        }
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_appended_once_then_replaced_in_place() {
        let dir = std::env::temp_dir().join(format!("wsgate-bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("B.md");
        std::fs::write(
            &path,
            "# B\n\n<!-- bench:begin -->\nfull\n<!-- bench:end -->\n\n## Notes\n",
        )
        .unwrap();
        write_section(&path, "soak-mixed", "one").unwrap();
        write_section(&path, "soak-mixed", "two").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            text,
            "# B\n\n<!-- bench:begin -->\nfull\n<!-- bench:end -->\n\n## Notes\n\n\
             <!-- bench:soak-mixed:begin -->\ntwo\n<!-- bench:soak-mixed:end -->\n"
        );
    }
}
