//! The issues' targets tables, each row judged against this run's figures: issue #12's
//! (CPU per unit of work and latency against HAProxy in TCP mode, wss idle memory), then
//! issue #6's (ratios to raw TCP).

use std::fmt::Write as _;

use super::{num, times};
use crate::Plan;
use crate::results::Results;
use crate::scenario::{Metric, Scenario, Target};

/// A row: what, the target, how it is checked.
struct Row {
    what: &'static str,
    target: &'static str,
    best_existing: &'static str,
    scenario: Option<Scenario>,
    /// What ratios are taken against.
    base: Target,
    check: Check,
}

enum Check {
    /// Gateway / base ratio at least this.
    RatioAtLeast(Metric, f64),
    /// Gateway / base ratio at most this.
    RatioAtMost(Metric, f64),
    /// Gateway / base ratio at most this, both figures shown in this unit.
    RatioAtMostShown(Metric, f64, &'static str),
    /// Gateway's absolute figure at most this (KiB).
    AtMost(Metric, f64),
    /// Gateway's absolute figure at least this, and its ratio to raw TCP at least that.
    AtLeastAndRatio(Metric, f64, f64),
}

/// The largest of the planned idle scenarios `kind` makes (plain or wss).
fn largest(plan: &Plan, kind: fn(usize) -> Scenario) -> Option<Scenario> {
    plan.scenarios
        .iter()
        .filter_map(|&s| match s {
            Scenario::Idle(n) | Scenario::WssIdle(n) => (kind(n) == s).then_some(n),
            _ => None,
        })
        .max()
        .map(kind)
}

fn rows_issue12(plan: &Plan) -> Vec<Row> {
    let row = |what, target, best_existing, scenario, check| Row {
        what,
        target,
        best_existing,
        scenario,
        base: Target::Haproxy,
        check,
    };
    let cpu = |max| Check::RatioAtMostShown(Metric::MiddleCpuPerUnit, max, "µs");
    vec![
        row(
            "CPU per connect-echo-close cycle, 16 workers",
            "≤ 1.0× HAProxy",
            "1.67×",
            Some(Scenario::Churn(16)),
            cpu(1.0),
        ),
        row(
            "CPU per echo round trip, 1 connection",
            "≤ 1.0× HAProxy",
            "1.05×",
            Some(Scenario::Echo(1)),
            cpu(1.0),
        ),
        row(
            "CPU per echo round trip, 64 connections",
            "≤ 1.0× HAProxy",
            "1.23×",
            Some(Scenario::Echo(64)),
            cpu(1.0),
        ),
        row(
            "echo p50, 1 connection",
            "≤ 1.1× HAProxy",
            "1.28×",
            Some(Scenario::Echo(1)),
            Check::RatioAtMostShown(Metric::P50Micros, 1.1, "µs"),
        ),
        row(
            "wss idle memory per session (gateway RSS)",
            "≤ 8 KiB",
            "11 KiB",
            largest(plan, Scenario::WssIdle),
            Check::AtMost(Metric::KibPerConn, 8.0),
        ),
    ]
}

fn rows_issue6(plan: &Plan) -> Vec<Row> {
    let largest_idle = largest(plan, Scenario::Idle);
    let row = |what, target, best_existing, scenario, check| Row {
        what,
        target,
        best_existing,
        scenario,
        base: Target::Raw,
        check,
    };
    vec![
        row(
            "bulk client->backend, 1 connection",
            "≥ 0.50×",
            "0.39×",
            Some(Scenario::BulkUp(1)),
            Check::RatioAtLeast(Metric::MegabytesPerSec, 0.5),
        ),
        row(
            "bulk client->backend, 8 connections",
            "≥ 0.50×",
            "0.35×",
            Some(Scenario::BulkUp(8)),
            Check::RatioAtLeast(Metric::MegabytesPerSec, 0.5),
        ),
        row(
            "bulk backend->client, 1 connection",
            "≥ 0.50×",
            "0.36×",
            Some(Scenario::BulkDown(1)),
            Check::RatioAtLeast(Metric::MegabytesPerSec, 0.5),
        ),
        row(
            "bulk backend->client, 8 connections",
            "≥ 0.80×",
            "0.62×",
            Some(Scenario::BulkDown(8)),
            Check::RatioAtLeast(Metric::MegabytesPerSec, 0.8),
        ),
        row(
            "echo round trip, 1 connection: p50",
            "≤ 1.15× raw TCP's",
            "1.25×",
            Some(Scenario::Echo(1)),
            Check::RatioAtMost(Metric::P50Micros, 1.15),
        ),
        row(
            "echo round trips per second, 64 connections",
            "≥ 0.50×",
            "0.36×",
            Some(Scenario::Echo(64)),
            Check::RatioAtLeast(Metric::MessagesPerSec, 0.5),
        ),
        row(
            "memory per idle connection (gateway RSS)",
            "≤ 4 KiB",
            "18.6 KiB",
            largest_idle,
            Check::AtMost(Metric::KibPerConn, 4.0),
        ),
        row(
            "connect-echo-close cycles per second, 16 workers",
            "≥ 0.65×",
            "0.45×",
            Some(Scenario::Churn(16)),
            Check::RatioAtLeast(Metric::CyclesPerSec, 0.65),
        ),
        row(
            "wss bulk client->backend, 1 connection",
            "≥ 2× best existing (800 MB/s), ≥ 0.30×",
            "about 400 MB/s",
            Some(Scenario::WssBulkUp(1)),
            Check::AtLeastAndRatio(Metric::MegabytesPerSec, 800.0, 0.30),
        ),
        row(
            "wss bulk backend->client, 1 connection",
            "≥ 2× best existing (800 MB/s), ≥ 0.30×",
            "about 400 MB/s",
            Some(Scenario::WssBulkDown(1)),
            Check::AtLeastAndRatio(Metric::MegabytesPerSec, 800.0, 0.30),
        ),
    ]
}

/// Issue #12's targets: the middle process's CPU per unit of work and the latency against
/// HAProxy's, wss idle memory.
pub fn table(out: &mut String, plan: &Plan, r: &Results) {
    let _ = writeln!(
        out,
        "\n### Targets (issue #12; ratios to HAProxy in TCP mode in the same run, medians of \
         per-repeat ratios)\n"
    );
    rows_table(out, plan, r, rows_issue12(plan));
}

/// Issue #6's targets: ratios to raw TCP.
pub fn table_issue6(out: &mut String, plan: &Plan, r: &Results) {
    let _ = writeln!(
        out,
        "\n### Targets (issue #6; ratios to raw TCP in the same run)\n"
    );
    rows_table(out, plan, r, rows_issue6(plan));
}

fn rows_table(out: &mut String, plan: &Plan, r: &Results, rows: Vec<Row>) {
    let _ = writeln!(
        out,
        "| scenario | target | best existing | measured | result |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---|");
    for row in rows {
        let (measured, pass) = judge(&row, plan, r);
        let result = match pass {
            Some(true) => "pass",
            Some(false) => "**fail**",
            None => "—",
        };
        let what = match row.scenario {
            Some(Scenario::Idle(n) | Scenario::WssIdle(n)) => format!("{} (N = {n})", row.what),
            _ => row.what.to_string(),
        };
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {measured} | {result} |",
            row.target, row.best_existing
        );
    }
}

fn judge(row: &Row, plan: &Plan, r: &Results) -> (String, Option<bool>) {
    let present = row.scenario.filter(|s| plan.scenarios.contains(s));
    let Some(s) = present else {
        return ("not run".to_string(), None);
    };
    let ratio_check = !matches!(row.check, Check::AtMost(..));
    if ratio_check && !plan.targets.contains(&row.base) {
        return (format!("{} not measured", row.base.name()), None);
    }
    // The gateway as this scenario measures it (ws, or wss for the wss scenarios).
    let gateway = s.columns()[0];
    let ratio = |m| r.ratio(s, gateway, row.base, m);
    match row.check {
        Check::RatioAtLeast(m, min) => (times(ratio(m)), ratio(m).map(|v| v >= min)),
        Check::RatioAtMost(m, max) => (times(ratio(m)), ratio(m).map(|v| v <= max)),
        Check::RatioAtMostShown(m, max, unit) => {
            let value = |t| r.median(s, t, m).map_or_else(|| "—".into(), num);
            let measured = format!(
                "{} ({} against {} {unit})",
                times(ratio(m)),
                value(gateway),
                value(row.base)
            );
            (measured, ratio(m).map(|v| v <= max))
        }
        Check::AtMost(m, max) => {
            let v = r.median(s, gateway, m);
            (
                v.map_or_else(|| "—".into(), |v| format!("{v:.1} KiB")),
                v.map(|v| v <= max),
            )
        }
        Check::AtLeastAndRatio(m, min, min_ratio) => {
            let (v, to_raw) = (r.median(s, gateway, m), ratio(m));
            let to_ws = r.ratio(s, gateway, Target::Gateway, m);
            let measured = format!(
                "{} MB/s, {} (ws: {})",
                v.map_or_else(|| "—".into(), |v| format!("{v:.0}")),
                times(to_raw),
                times(to_ws)
            );
            let pass = v.zip(to_raw).map(|(v, q)| v >= min && q >= min_ratio);
            (measured, pass)
        }
    }
}
