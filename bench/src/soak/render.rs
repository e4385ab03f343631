//! The soaks' report sections: how each was run, what the load did, the series summarised
//! with its growth per minute and whether that is flat, drops, and what liveness costs;
//! every sample in a folded table below.

use std::fmt::Write as _;
use std::time::Duration;

use super::liveness::{self, Hold};
use super::mixed;
use super::series::{Sample, span, trend};
use super::{Outcome, Soak};
use crate::gatewaylog::Ended;
use crate::procfs::FdKinds;
use crate::report::{self, num};
use crate::results::median;

/// Growth of the gateway's RSS per minute, in KiB, below which it is called flat. A leak
/// of one allocation per session (malloc's smallest chunk is 32 bytes) at the mixed load's
/// rate (about 25,000 sessions a minute) grows RSS by about 750 KiB a minute, over ten
/// times this; 64 KiB a minute is under 4 MiB an hour, 90 MiB a day.
pub const FLAT_RSS_KIB_PER_MIN: f64 = 64.0;
/// Growth of the gateway's open files per minute below which they are called flat: one
/// descriptor leaked in a minute's tens of thousands of sessions would show; the count at
/// any instant varies by the sessions in flight, so the regression's noise is a fraction
/// of this. The count after the load (every session closed) must also be back.
pub const FLAT_FDS_PER_MIN: f64 = 1.0;
/// Smallest chunk glibc's malloc hands out: what one leaked allocation costs at least.
const SMALLEST_ALLOCATION: f64 = 32.0;

/// The section of `soak`'s report: `ctx` says how and where it was run, `notes` what was
/// changed from the defaults (`--gateway-env`, fitted counts).
pub fn section(
    soak: Soak,
    ctx: &report::Context,
    outcome: &Result<Outcome, String>,
    smoke: bool,
    notes: &[String],
) -> String {
    let mut out = String::new();
    let title = match soak {
        Soak::Mixed => "Soak: mixed churn, bulk and idle sessions",
        Soak::Liveness => "Soak: liveness of idle sessions answering pings",
    };
    let _ = writeln!(out, "### {title} (`{soak}`)\n");
    if smoke {
        let _ = writeln!(out, "**Smoke run: tiny and short, figures meaningless.**\n");
    }
    report::run_lines(&mut out, ctx);
    for note in notes {
        let _ = writeln!(
            out,
            "- note: {note} (it has the last word over the settings below)"
        );
    }
    match outcome {
        Ok(Outcome::Mixed(run)) => mixed_section(&mut out, run),
        Ok(Outcome::Liveness(run)) => liveness_section(&mut out, run),
        Err(e) => {
            let _ = writeln!(out, "\n**The soak failed:** {e}");
        }
    }
    out
}

fn secs(d: Duration) -> String {
    num(d.as_secs_f64())
}

fn mixed_section(out: &mut String, run: &mixed::Run) {
    let l = &run.load;
    let minutes = run.duration.as_secs_f64() / 60.0;
    let _ = writeln!(
        out,
        "- load, all on 127.0.0.1, for {} min: {} churn workers, each at most {} \
         connect-echo-close cycles/s; {} bulk sessions each way at {} MB/s each (64 KiB \
         messages; backend->client paced by the client's reading), each closed after {} s \
         and another opened; {} idle sessions, each living {}-{} s (answering pings) between \
         two echoes, then closed and replaced",
        num(minutes),
        l.churn_workers,
        num(l.churn_rate),
        l.bulk_each_way,
        num(l.bulk_rate / 1e6),
        secs(l.bulk_life),
        l.idle,
        secs(l.idle_life.0),
        secs(l.idle_life.1),
    );
    let _ = writeln!(
        out,
        "- gateway: the default configuration but `liveness.ping_interval` {} and the admin \
         listener on (scraped once, at the end); samples every {} s",
        l.ping_interval,
        secs(run.every)
    );
    let per_sec = |n: u64| num(n as f64 / run.duration.as_secs_f64());
    let _ = writeln!(
        out,
        "- done: {} churn cycles ({}/s), {} bulk sessions ({} MB client->backend, {} MB \
         backend->client), {} idle sessions completed, {} pings answered by them",
        run.churn_cycles,
        per_sec(run.churn_cycles),
        run.bulk_sessions,
        num(run.bytes_up as f64 / 1e6),
        num(run.bytes_down as f64 / 1e6),
        run.idle_sessions,
        run.pings_answered
    );
    let failed = super::load::describe(&run.failures);
    let _ = writeln!(
        out,
        "- failed sessions: {}",
        failed.as_deref().unwrap_or("none")
    );
    if let Some(m) = &run.metrics {
        let closes: Vec<String> = m
            .by_labels("wsgate_sessions_closed_total")
            .iter()
            .filter(|(_, v)| *v > 0.0)
            .map(|(labels, v)| format!("{} {}", labels.replace('"', ""), v))
            .collect();
        let _ = writeln!(
            out,
            "- the gateway's counters at the end: sessions closed by code and side: {}; \
             clients dropped for not answering pings: {}; pings sent: {}; upgrades refused: {}",
            closes.join(", "),
            m.get("wsgate_pong_timeouts_total"),
            m.get("wsgate_pings_sent_total"),
            m.get("wsgate_upgrades_rejected_total"),
        );
    }
    log_lines(out, "", &run.ended, &run.notable);
    cpu_line(out, &run.samples);
    growth_table(out, run);
    let peak = run.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let kinds = |k: &FdKinds| {
        format!(
            "{} ({} sockets, {} pipes, {} other)",
            k.sockets + k.pipes + k.other,
            k.sockets,
            k.pipes,
            k.other
        )
    };
    let _ = writeln!(
        out,
        "\nAfter the load stopped and every session had closed: open files {} (before the \
         load, after one warm-up session: {}; the gateway keeps up to 4 spare splice pipes \
         per worker thread once bulk data has gone to a client, so pipes may stay); RSS {} \
         KiB (before: {} KiB; highest sample: {} KiB).",
        kinds(&run.fds_after),
        kinds(&run.fds_before),
        run.rss_after,
        run.rss_before,
        peak
    );
    let sessions_per_min = (run.churn_cycles + run.bulk_sessions + run.idle_sessions) as f64
        / (run.duration.as_secs_f64() / 60.0);
    let _ = writeln!(
        out,
        "\nFlat: growth after warm-up (every idle session replaced at least once) below \
         {FLAT_RSS_KIB_PER_MIN} KiB/min for RSS, and below {FLAT_FDS_PER_MIN} file/min for \
         open files with the sockets and other files (pipes aside) back to their count from \
         before the load. At this run's {} sessions a minute, one leaked {SMALLEST_ALLOCATION}-byte \
         allocation per session would grow RSS by {} KiB/min, one leaked descriptor per \
         10,000 sessions the open files by {} a minute. The ± is two standard errors of the \
         slope.",
        num(sessions_per_min),
        num(sessions_per_min * SMALLEST_ALLOCATION / 1024.0),
        num(sessions_per_min / 10_000.0),
    );
    samples_table(out, "Every sample", &run.samples);
}

/// What the gateway's log said: sessions closed by how they ended (with when the first
/// and last of each kind ended), and its first warnings and errors.
fn log_lines(out: &mut String, which: &str, ended: &[(String, Ended)], notable: &[String]) {
    let kinds: Vec<String> = ended
        .iter()
        .map(|(how, e)| {
            if e.count == 1 {
                format!("`{how}`: 1 (at {})", e.first)
            } else {
                format!("`{how}`: {} ({} to {})", e.count, e.first, e.last)
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "- the gateway's access log{which}: sessions closed by how they ended: {}",
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join("; ")
        }
    );
    if notable.is_empty() {
        let _ = writeln!(out, "- its warnings and errors{which}: none");
    } else {
        let _ = writeln!(out, "- its first warnings and errors{which}:");
        for line in notable {
            let _ = writeln!(out, "  - `{}`", line.replace('`', "'"));
        }
    }
}

/// Median and highest CPU use over the sample intervals, and the machine's load.
fn cpu_line(out: &mut String, samples: &[Sample]) {
    // The first sample's interval is the start itself: left out.
    let later = samples.get(1..).unwrap_or_default();
    let stat = |f: &dyn Fn(&Sample) -> f64| {
        let v: Vec<f64> = later.iter().map(f).collect();
        let max = v.iter().copied().fold(f64::NAN, f64::max);
        format!("{} ({})", median(v).map_or("—".into(), num), num(max))
    };
    let _ = writeln!(
        out,
        "- CPU in % of one core, median (highest) over the sample intervals: gateway {}, load \
         generator {}, backends {}, rest of the machine {}, stolen by the hypervisor {}; load \
         average (1 min) {}",
        stat(&|s| s.cpu.middle.unwrap_or(0.0)),
        stat(&|s| s.cpu.clients),
        stat(&|s| s.cpu.backends),
        stat(&|s| s.cpu.others),
        stat(&|s| s.cpu.steal),
        stat(&|s| s.load1),
    );
}

/// A row of the growth table: its name, its value in a sample, its flatness threshold.
type Series = (&'static str, fn(&Sample) -> f64, Option<f64>);

fn growth_table(out: &mut String, run: &mixed::Run) {
    let settle = run.load.settle().min(run.duration / 2).as_secs_f64();
    let _ = writeln!(
        out,
        "\n| series | first | lowest | highest | last | growth/min, all samples | growth/min \
         after the first {} s | flat? |",
        num(settle)
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    let fds_back = run.fds_after.sockets <= run.fds_before.sockets
        && run.fds_after.other <= run.fds_before.other;
    let rows: [Series; 3] = [
        (
            "gateway RSS (KiB)",
            |s| s.rss_kib as f64,
            Some(FLAT_RSS_KIB_PER_MIN),
        ),
        (
            "gateway open files",
            |s| s.fds as f64,
            Some(FLAT_FDS_PER_MIN),
        ),
        ("sessions the load held open", |s| s.sessions as f64, None),
    ];
    for (name, get, threshold) in rows {
        let all: Vec<(f64, f64)> = run.samples.iter().map(|s| (s.secs, get(s))).collect();
        let settled: Vec<(f64, f64)> = all.iter().copied().filter(|p| p.0 >= settle).collect();
        let [first, lo, hi, last] = span(all.iter().map(|p| p.1)).unwrap_or([f64::NAN; 4]);
        let show = |points: &[(f64, f64)]| {
            trend(points).map_or("—".into(), |t| {
                format!("{:+.2} ± {}", t.per_minute, num(t.plus_minus))
            })
        };
        let verdict = match (threshold, trend(&settled)) {
            (Some(limit), Some(t)) => {
                let flat = t.per_minute.abs() < limit && (name != "gateway open files" || fds_back);
                format!(
                    "{} (< {limit}/min)",
                    if flat { "**yes**" } else { "**no**" }
                )
            }
            (Some(_), None) => "too few samples".into(),
            (None, _) => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {verdict} |",
            num(first),
            num(lo),
            num(hi),
            num(last),
            show(&all),
            show(&settled),
        );
    }
}

fn samples_table(out: &mut String, summary: &str, samples: &[Sample]) {
    let _ = writeln!(out, "\n<details><summary>{summary}</summary>\n");
    let _ = writeln!(
        out,
        "| s | RSS (KiB) | open files | sessions held | CPU %: gateway | load generator | \
         stolen | load (1 min) | backlog drops | timed out |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let count = |v: Option<u64>| v.map_or("—".into(), |v| v.to_string());
    for s in samples {
        let _ = writeln!(
            out,
            "| {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.secs,
            s.rss_kib,
            s.fds,
            s.sessions,
            num(s.cpu.middle.unwrap_or(0.0)),
            num(s.cpu.clients),
            num(s.cpu.steal),
            num(s.load1),
            count(s.backlog_drops),
            count(s.timed_out),
        );
    }
    let _ = writeln!(
        out,
        "\nCPU in % of one core since the previous sample. Backlog drops: packets the kernel \
         dropped at a full input backlog (`net.core.netdev_max_backlog`; loopback's pass \
         there), machine-wide; timed out: TCP connections the kernel ended for unanswered \
         keepalive probes or retransmissions (`TCPAbortOnTimeout`), machine-wide; both \
         since the previous sample."
    );
    let _ = writeln!(out, "\n</details>");
}

fn liveness_section(out: &mut String, run: &liveness::Run) {
    let opening = run.open_rate.map_or_else(
        || "64 at a time, as fast as they open,".to_string(),
        |rate| {
            format!(
                "at {} a second ({} s),",
                num(rate),
                num(run.sessions as f64 / rate)
            )
        },
    );
    let _ = writeln!(
        out,
        "- two holds, one after the other, each by a fresh gateway (the default configuration \
         but the liveness settings below, and the admin listener on): one warm-up session, \
         then {} sessions opened {opening} each verified by an echo and from then on \
         answering every ping; held {} s once all were open; then each verified by one \
         more echo",
        run.sessions,
        secs(run.hold)
    );
    let (p, q) = (&run.pinging, &run.quiet);
    let _ = writeln!(
        out,
        "\n| figure | pings every {} | pings off ({}) |",
        p.liveness.ping_interval, q.liveness.ping_interval
    );
    let _ = writeln!(out, "|---|---:|---:|");
    let row = |out: &mut String, name: &str, f: &dyn Fn(&Hold) -> String| {
        let _ = writeln!(out, "| {name} | {} | {} |", f(p), f(q));
    };
    let metric = |h: &Hold, i: usize, name: &str| {
        h.metrics
            .as_ref()
            .map_or("—".into(), |m| num(m[i].get(name)))
    };
    row(out, "`liveness.ping_interval` / `pong_timeout`", &|h| {
        format!("{} / {}", h.liveness.ping_interval, h.liveness.pong_timeout)
    });
    row(out, "sessions opened", &|h| h.opened.to_string());
    row(out, "ended by the gateway during the hold", &|h| {
        h.dropped.to_string()
    });
    row(out, "still open after the hold (answered an echo)", &|h| {
        h.verified.to_string()
    });
    row(out, "pings the gateway sent in the hold", &|h| {
        num(h.pings_sent())
    });
    row(out, "pongs the clients sent in the hold", &|h| {
        h.pongs.to_string()
    });
    row(out, "`wsgate_pong_timeouts_total` after the hold", &|h| {
        metric(h, 2, "wsgate_pong_timeouts_total")
    });
    row(out, "`wsgate_sessions_active` after the hold", &|h| {
        metric(h, 2, "wsgate_sessions_active")
    });
    row(out, "hold (s)", &|h| num(h.hold_secs));
    let count = |v: Option<u64>| v.map_or("—".into(), |v| v.to_string());
    row(
        out,
        "packets dropped at a full input backlog in the hold (machine-wide)",
        &|h| count(h.backlog_drops),
    );
    row(
        out,
        "TCP connections timed out by the kernel in the hold (machine-wide)",
        &|h| count(h.timed_out),
    );
    let cpu = |name: &str, f: fn(&Hold) -> f64| (name.to_string(), f);
    for (name, f) in [
        cpu("CPU %: gateway, over the hold", |h| {
            h.cpu.middle.unwrap_or(f64::NAN)
        }),
        cpu("CPU %: load generator (clients)", |h| h.cpu.clients),
        cpu("CPU %: backends", |h| h.cpu.backends),
        cpu("CPU %: rest of the machine", |h| h.cpu.others),
        cpu("CPU %: stolen by the hypervisor", |h| h.cpu.steal),
    ] {
        row(out, &name, &|h| num(f(h)));
    }
    row(out, "gateway RSS at the end of the hold (KiB)", &|h| {
        h.samples
            .last()
            .map_or("—".into(), |s| s.rss_kib.to_string())
    });
    row(out, "gateway open files at the end of the hold", &|h| {
        h.samples.last().map_or("—".into(), |s| s.fds.to_string())
    });
    row(
        out,
        "load average (1 min), first and last sample",
        &|h| match (h.samples.first(), h.samples.last()) {
            (Some(a), Some(b)) => format!("{} / {}", num(a.load1), num(b.load1)),
            _ => "—".into(),
        },
    );
    let lost = run.lost();
    let _ = writeln!(
        out,
        "\n- sessions lost: {lost} of {} (a session is lost if the gateway ended it or it did \
         not answer the echo after the hold)",
        2 * run.sessions
    );
    for (h, which) in [(p, " (pinging)"), (q, " (pings off)")] {
        if let Some(e) = &h.first_drop {
            let _ = writeln!(out, "- first session ended during the hold{which}: {e}");
        }
        if let Some(e) = &h.first_unverified {
            let _ = writeln!(out, "- first failed echo after the hold{which}: {e}");
        }
        log_lines(out, which, &h.ended, &h.notable);
    }
    match (run.extra_cpu(), run.extra_cpu_per_thousand()) {
        (Some(extra), Some(per_thousand)) => {
            let per_ping = run
                .micros_per_ping()
                .map_or("—".into(), |us| format!("{} µs", num(us)));
            let _ = writeln!(
                out,
                "- what liveness costs the gateway: {} % of one core for {} sessions ({} pings/s), \
                 that is **{} % of a core per 1,000 idle sessions** and **{per_ping} of CPU per \
                 ping** (gateway CPU while pinging minus while not, over holds of equal length)",
                num(extra),
                run.sessions,
                num(run.pings_per_sec()),
                num(per_thousand),
            );
        }
        _ => {
            let _ = writeln!(out, "- the gateway's CPU time could not be read");
        }
    }
    samples_table(out, "Every sample, pinging", &p.samples);
    samples_table(out, "Every sample, pings off", &q.samples);
}
