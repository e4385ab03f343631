//! The targets table, each row judged against this run's figures.

use std::fmt::Write as _;

use super::times;
use crate::Plan;
use crate::results::Results;
use crate::scenario::{Metric, Scenario, Target};

/// A row: what, the target, how it is checked.
struct Row {
    what: &'static str,
    target: &'static str,
    best_existing: &'static str,
    scenario: Option<Scenario>,
    check: Check,
}

enum Check {
    /// Gateway / raw TCP ratio at least this.
    RatioAtLeast(Metric, f64),
    /// Gateway / raw TCP ratio at most this.
    RatioAtMost(Metric, f64),
    /// Gateway's absolute figure at most this.
    AtMost(Metric, f64),
    /// Gateway's absolute figure at least this, and its ratio to raw TCP at least that.
    AtLeastAndRatio(Metric, f64, f64),
}

fn rows(plan: &Plan) -> Vec<Row> {
    let largest_idle = plan
        .scenarios
        .iter()
        .filter_map(|s| match s {
            Scenario::Idle(n) => Some(*n),
            _ => None,
        })
        .max()
        .map(Scenario::Idle);
    let row = |what, target, best_existing, scenario, check| Row {
        what,
        target,
        best_existing,
        scenario,
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

pub fn table(out: &mut String, plan: &Plan, r: &Results) {
    let _ = writeln!(
        out,
        "\n### Targets (issue #6; ratios to raw TCP in the same run)\n"
    );
    let _ = writeln!(
        out,
        "| scenario | target | best existing | measured | result |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---|");
    for row in rows(plan) {
        let (measured, pass) = judge(&row, plan, r);
        let result = match pass {
            Some(true) => "pass",
            Some(false) => "**fail**",
            None => "—",
        };
        let what = match row.scenario {
            Some(Scenario::Idle(n)) => format!("{} (N = {n})", row.what),
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
    // The gateway as this scenario measures it (ws, or wss for the wss scenarios).
    let gateway = s.columns()[0];
    let ratio = |m| r.ratio(s, gateway, Target::Raw, m);
    match row.check {
        Check::RatioAtLeast(m, min) => (times(ratio(m)), ratio(m).map(|v| v >= min)),
        Check::RatioAtMost(m, max) => (times(ratio(m)), ratio(m).map(|v| v <= max)),
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
