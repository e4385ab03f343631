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
    NotMeasured(&'static str),
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
            "wss bulk, 1 connection each way",
            "≥ 2× best existing, ≥ 0.30×",
            "about 400 MB/s",
            None,
            Check::NotMeasured("not measured: the benchmark does not drive wss:// yet"),
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
        return match row.check {
            Check::NotMeasured(why) => (why.to_string(), None),
            _ => ("not run".to_string(), None),
        };
    };
    let ratio = |m| r.ratio(s, Target::Gateway, Target::Raw, m);
    match row.check {
        Check::RatioAtLeast(m, min) => (times(ratio(m)), ratio(m).map(|v| v >= min)),
        Check::RatioAtMost(m, max) => (times(ratio(m)), ratio(m).map(|v| v <= max)),
        Check::AtMost(m, max) => {
            let v = r.median(s, Target::Gateway, m);
            (
                v.map_or_else(|| "—".into(), |v| format!("{v:.1} KiB")),
                v.map(|v| v <= max),
            )
        }
        Check::NotMeasured(why) => (why.to_string(), None),
    }
}
