//! SVG charts of the report's medians, one per scenario family (bulk throughput, echo
//! latency, echo rate, churn, idle memory, CPU per unit of work): for each scenario a group
//! of bars, one per target, each labelled with its value. Drawn with plotters' SVG backend,
//! which writes text as SVG text elements (the viewer's sans-serif font): no font files.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ChartLink, num};
use crate::Plan;
use crate::results::Results;
use crate::scenario::{Metric, Scenario, Target};

/// One chart: its file name, title, and SVG text.
pub struct Chart {
    pub file: &'static str,
    pub title: &'static str,
    pub svg: String,
}

/// A chart's plot: which scenarios, which figure, and what its axis says.
struct Panel {
    caption: &'static str,
    axis: &'static str,
    metric: Metric,
    scenarios: fn(Scenario) -> bool,
}

struct Family {
    file: &'static str,
    title: &'static str,
    panels: Vec<Panel>,
}

fn bulk_scenario(s: Scenario) -> bool {
    matches!(
        s,
        Scenario::BulkUp(_)
            | Scenario::BulkDown(_)
            | Scenario::WssBulkUp(_)
            | Scenario::WssBulkDown(_)
    )
}

fn families() -> Vec<Family> {
    let bulk = bulk_scenario;
    let echo = |s| matches!(s, Scenario::Echo(_) | Scenario::WssEcho(_));
    let idle = |s| matches!(s, Scenario::Idle(_) | Scenario::WssIdle(_));
    let one = |caption, axis, metric, scenarios| Panel {
        caption,
        axis,
        metric,
        scenarios,
    };
    vec![
        Family {
            file: "bulk.svg",
            title: "Bulk throughput (higher is better)",
            panels: vec![one("", "MB/s of payload", Metric::MegabytesPerSec, bulk)],
        },
        Family {
            file: "echo-latency.svg",
            title: "32-byte echo, median round trip (lower is better)",
            panels: vec![one("", "p50 round trip (µs)", Metric::P50Micros, echo)],
        },
        Family {
            file: "echo-rate.svg",
            title: "32-byte echo, round trips per second (higher is better)",
            panels: vec![one("", "round trips/s", Metric::MessagesPerSec, echo)],
        },
        Family {
            file: "churn.svg",
            title: "Connect, one echo, close: cycles per second (higher is better)",
            panels: vec![one("", "cycles/s", Metric::CyclesPerSec, |s| {
                matches!(s, Scenario::Churn(_))
            })],
        },
        Family {
            file: "idle-memory.svg",
            title: "Memory per idle connection, middle process RSS (lower is better)",
            panels: vec![one("", "KiB per connection", Metric::KibPerConn, idle)],
        },
        Family {
            file: "cpu-per-unit.svg",
            title: "Middle process CPU per unit of work (lower is better)",
            panels: vec![
                one(
                    "per round trip (echo), cycle (churn), connection opened (idle)",
                    "CPU µs",
                    Metric::MiddleCpuPerUnit,
                    |s| !bulk_scenario(s),
                ),
                one(
                    "per GB of payload (bulk)",
                    "CPU core-seconds per GB",
                    Metric::MiddleCpuPerUnit,
                    bulk,
                ),
            ],
        },
    ]
}

/// The targets in the order of their bars, with their names and colours.
const BARS: [(Target, &str, RGBColor); 5] = [
    (Target::Gateway, "wsgate ws", RGBColor(31, 119, 180)),
    (Target::Wss, "wsgate wss", RGBColor(148, 103, 189)),
    (Target::Haproxy, "HAProxy (TCP)", RGBColor(214, 39, 40)),
    (Target::Proxy, "copy proxy", RGBColor(255, 127, 14)),
    (Target::Raw, "raw TCP", RGBColor(127, 127, 127)),
];

const FONT: &str = "sans-serif";
/// Font sizes as plotters takes them (it writes 1/1.24 of them: 19, 14.5, 13.7 px).
const TITLE_SIZE: f64 = 24.0;
const CAPTION_SIZE: f64 = 18.0;
const TEXT_SIZE: f64 = 17.0;
const PANEL_HEIGHT: u32 = 400;
const TITLE_HEIGHT: u32 = 40;
const LEGEND_HEIGHT: u32 = 34;
/// Width of one bar and the gap around a group, in pixels.
const BAR_WIDTH: u32 = 44;
const GROUP_GAP: u32 = 40;
/// Width of a scenario's group in x units (bars are placed in whole units).
const GROUP: i32 = 1200;

/// One scenario's bars: (target, median) of every target measured in it.
type Group = (Scenario, Vec<(Target, f64)>);

/// The charts of every family this run has figures for.
pub fn draw(plan: &Plan, results: &Results) -> Result<Vec<Chart>> {
    let mut charts = Vec::new();
    for family in families() {
        let panels: Vec<(&Panel, Vec<Group>)> = family
            .panels
            .iter()
            .map(|p| (p, groups(plan, results, p)))
            .filter(|(_, g)| !g.is_empty())
            .collect();
        if panels.is_empty() {
            continue;
        }
        let repeats = match plan.repeats {
            (1, 1) => "1 run".to_string(),
            (a, b) if a == b => format!("{a} repeats"),
            (a, b) => format!("{a} repeats ({b} for idle and churn)"),
        };
        let svg = render(family.title, &panels, &repeats)
            .map_err(|e| anyhow!("drawing {}: {e}", family.file))?;
        charts.push(Chart {
            file: family.file,
            title: family.title,
            svg,
        });
    }
    Ok(charts)
}

fn groups(plan: &Plan, results: &Results, panel: &Panel) -> Vec<Group> {
    plan.scenarios
        .iter()
        .filter(|&&s| (panel.scenarios)(s))
        .map(|&s| {
            let bars = BARS
                .iter()
                .filter_map(|&(t, _, _)| Some((t, results.median(s, t, panel.metric)?)))
                .collect();
            (s, bars)
        })
        .filter(|(_, bars): &Group| !bars.is_empty())
        .collect()
}

type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One row under the title: a swatch and name per target in the chart, and what the bars
/// are.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panels: &[(&Panel, Vec<Group>)],
    repeats: &str,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let shown = |target: Target| {
        panels.iter().any(|(_, groups)| {
            groups
                .iter()
                .any(|(_, bars)| bars.iter().any(|(t, _)| *t == target))
        })
    };
    let style =
        TextStyle::from((FONT, TEXT_SIZE).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let y = (LEGEND_HEIGHT / 2) as i32;
    let mut x = LEGEND_LEFT;
    for &(_, name, colour) in BARS.iter().filter(|(t, _, _)| shown(*t)) {
        area.draw(&Rectangle::new(
            [(x, y - 7), (x + 14, y + 7)],
            colour.filled(),
        ))?;
        area.draw(&Text::new(name, (x + 20, y), style.clone()))?;
        x += legend_entry_width(name);
    }
    let note = format!("bars: medians of {repeats}");
    area.draw(&Text::new(note, (x, y), style.color(&BLACK.mix(0.6))))?;
    Ok(())
}

/// Where the legend starts, in pixels from the left.
const LEGEND_LEFT: i32 = 100;

/// Pixels one legend entry takes: swatch, name (at most 9 px a character at this size),
/// gap.
fn legend_entry_width(name: &str) -> i32 {
    40 + 9 * name.chars().count() as i32
}

fn render(title: &str, panels: &[(&Panel, Vec<Group>)], repeats: &str) -> DrawResult<String> {
    let widest = panels
        .iter()
        .map(|(_, groups)| {
            let bars: usize = groups.iter().map(|(_, b)| b.len()).sum();
            bars as u32 * BAR_WIDTH + groups.len() as u32 * GROUP_GAP
        })
        .max()
        .unwrap_or(0);
    // Wide enough for every bar, and for the legend row with its note.
    let legend_width = LEGEND_LEFT as u32
        + BARS
            .iter()
            .map(|(_, n, _)| legend_entry_width(n) as u32)
            .sum::<u32>()
        + 9 * ("bars: medians of ".len() + repeats.len()) as u32;
    let size = (
        (widest + 220).max(legend_width).max(720),
        TITLE_HEIGHT + LEGEND_HEIGHT + PANEL_HEIGHT * panels.len() as u32,
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, TITLE_SIZE))?;
        let (legend_area, root) = root.split_vertically(LEGEND_HEIGHT);
        legend(&legend_area, panels, repeats)?;
        let areas = root.split_evenly((panels.len(), 1));
        for (area, (panel, groups)) in areas.iter().zip(panels) {
            draw_panel(area, panel, groups)?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    groups: &[Group],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let top = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.18 } else { 1.0 };
    // Each group spans `GROUP` units of x; its label sits at its middle.
    let n = groups.len() as i32;
    let centres: Vec<i32> = (0..n).map(|i| i * GROUP + GROUP / 2).collect();
    let mut builder = ChartBuilder::on(area);
    if !panel.caption.is_empty() {
        builder.caption(panel.caption, (FONT, CAPTION_SIZE));
    }
    let mut chart = builder
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d((0..n * GROUP).with_key_points(centres), 0.0..top)?;
    let name_of = |x: &i32| {
        let i = usize::try_from(x / GROUP).unwrap_or(0);
        groups
            .get(i)
            .map_or_else(String::new, |(s, _)| s.to_string())
    };
    let value = |y: &f64| if *y == 0.0 { "0".into() } else { num(*y) };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len())
        .x_label_formatter(&name_of)
        .y_label_formatter(&value)
        .y_desc(panel.axis)
        .label_style((FONT, TEXT_SIZE))
        .axis_desc_style((FONT, TEXT_SIZE))
        .light_line_style(TRANSPARENT)
        .draw()?;
    // Bars of one group share its middle 80 %, one slot per target it has.
    let slots = |bars: usize| GROUP * 8 / 10 / bars.max(1) as i32;
    for &(target, _, colour) in &BARS {
        let mut rects = Vec::new();
        for (i, (_, bars)) in groups.iter().enumerate() {
            let Some(k) = bars.iter().position(|(t, _)| *t == target) else {
                continue;
            };
            let w = slots(bars.len());
            let x0 = i as i32 * GROUP + GROUP / 10 + k as i32 * w;
            rects.push((x0 + w / 12, x0 + w - w / 12, bars[k].1));
        }
        if rects.is_empty() {
            continue;
        }
        chart.draw_series(
            rects
                .iter()
                .map(|&(x0, x1, v)| Rectangle::new([(x0, 0.0), (x1, v)], colour.filled())),
        )?;
        let above = TextStyle::from((FONT, TEXT_SIZE).into_font())
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(
            rects
                .iter()
                .map(|&(x0, x1, v)| Text::new(num(v), ((x0 + x1) / 2, v), above.clone())),
        )?;
    }
    Ok(())
}

/// Where the charts go by default, from the report's folder.
pub const DEFAULT_DIR: &str = "docs/bench";

/// Writes `charts` into `dir` if given, else into [`DEFAULT_DIR`] beside the report `out`
/// if given, else nowhere; returns how the report links them (paths from its folder).
pub fn place(dir: Option<&Path>, out: Option<&Path>, charts: &[Chart]) -> Result<Vec<ChartLink>> {
    let report_dir = out.map(|o| o.parent().unwrap_or(Path::new("")).to_path_buf());
    let dir = match (dir, &report_dir) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(report_dir)) => report_dir.join(DEFAULT_DIR),
        (None, None) => return Ok(Vec::new()),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let base = report_dir.unwrap_or_default();
    charts
        .iter()
        .map(|c| {
            let path = dir.join(c.file);
            std::fs::write(&path, &c.svg).with_context(|| format!("writing {}", path.display()))?;
            Ok(ChartLink {
                title: c.title.to_string(),
                path: relative(&path, &base),
            })
        })
        .collect()
}

/// `path` as seen from the folder `base` (empty: the current one) if it lies inside it,
/// else absolute.
fn relative(path: &Path, base: &Path) -> String {
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    let path = absolute(path);
    match path.strip_prefix(absolute(base)) {
        Ok(inside) => inside
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_labelled_bar_per_target_and_scenario() {
        let panel = Panel {
            caption: "",
            axis: "CPU µs",
            metric: Metric::MiddleCpuPerUnit,
            scenarios: |_| true,
        };
        let groups: Vec<Group> = vec![
            (
                Scenario::Echo(1),
                vec![(Target::Gateway, 46.4), (Target::Haproxy, 44.3)],
            ),
            (
                Scenario::Churn(16),
                vec![
                    (Target::Gateway, 258.0),
                    (Target::Proxy, 207.0),
                    (Target::Haproxy, 155.0),
                ],
            ),
        ];
        let svg = render("CPU per unit", &[(&panel, groups)], "5 repeats").unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        // Text elements hold their text on a line of its own.
        let text = svg.replace('\n', "");
        // Five bars, their five values, both group names, the legend and the axis, as text.
        for want in [
            ">46.4<",
            ">44.3<",
            ">258<",
            ">207<",
            ">155<",
            ">echo-1<",
            ">churn-16<",
            ">wsgate ws<",
            ">HAProxy (TCP)<",
            ">copy proxy<",
            ">CPU µs<",
            ">CPU per unit<",
        ] {
            assert!(text.contains(want), "{want} missing from the chart");
        }
        let bars = ["#1F77B4", "#D62728", "#FF7F0E"]
            .map(|fill| svg.matches(&format!("fill=\"{fill}\"")).count());
        // Each target's bars, plus one swatch in the legend.
        assert_eq!(bars, [3, 3, 2]);
        assert!(text.contains(">bars: medians of 5 repeats<"));
    }
}
