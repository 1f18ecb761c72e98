//! The suite's charts, as SVG files made with `plotters` (SVG backend only:
//! text is written as `<text>` elements, so no font is needed to draw).
//!
//! - one horizontal bar chart per [`Metric`]: for every workload, each
//!   allocator's median over spanalloc's, on a log scale (powers of 2
//!   marked), a bar from 1 to the
//!   ratio (right of the line: more than spanalloc);
//! - the `phased` workload's resident size over time, one line per allocator.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::results::{Metric, PhasedSeries, SuiteReport, BASELINE};

/// File name of the `phased` chart.
pub const PHASED_FILE: &str = "phased-rss.svg";

/// File name of `metric`'s bar chart.
pub fn bar_chart_file(metric: Metric) -> &'static str {
    match metric {
        Metric::Wall => "time.svg",
        Metric::Cpu => "cpu.svg",
        Metric::PeakRss => "rss.svg",
        Metric::MinorFaults => "faults.svg",
    }
}

/// The colour of an allocator, the same in every chart.
fn colour(allocator: &str, index: usize) -> RGBColor {
    match allocator {
        "spanalloc" => RGBColor(214, 39, 40),
        "system" | "glibc" => RGBColor(127, 127, 127),
        "mimalloc" => RGBColor(31, 119, 180),
        "jemalloc" => RGBColor(44, 160, 44),
        "tcmalloc" => RGBColor(148, 103, 189),
        _ => {
            let (r, g, b) = Palette99::pick(index).to_rgba().rgb();
            RGBColor(r, g, b)
        }
    }
}

/// Writes every chart of `report` into `dir`.
pub fn write_all(report: &SuiteReport, dir: &Path) -> Result<(), Box<dyn Error>> {
    for metric in Metric::ALL {
        bar_chart(report, metric, &dir.join(bar_chart_file(metric)))?;
    }
    if !report.phased.is_empty() {
        phased_chart(&report.phased, report.config.quick, &dir.join(PHASED_FILE))?;
    }
    Ok(())
}

/// Pixels per workload row in a bar chart.
const ROW: u32 = 30;

/// Empty rows at the bottom of a bar chart, where the legend goes.
const LEGEND_ROWS: f64 = 2.5;

/// `metric`'s ratios to spanalloc, one group of bars per workload.
fn bar_chart(report: &SuiteReport, metric: Metric, path: &Path) -> Result<(), Box<dyn Error>> {
    let others: Vec<(usize, &String)> = report
        .config
        .allocators
        .iter()
        .enumerate()
        .filter(|(_, a)| *a != BASELINE)
        .collect();
    // (workload row from the top, allocator, ratio)
    let mut bars = Vec::new();
    for (row, w) in report.workloads.iter().enumerate() {
        for (slot, (_, a)) in others.iter().enumerate() {
            if let Some(r) = w.of(a).and_then(|r| r.ratio_to_spanalloc.as_ref()) {
                bars.push((row, slot, r.get(metric).max(1e-3)));
            }
        }
    }
    let lo = bars.iter().map(|b| b.2).fold(0.5, f64::min) * 0.9;
    let hi = bars.iter().map(|b| b.2).fold(2.0, f64::max) * 1.1;
    let rows = report.workloads.len();

    // Two empty rows below the workloads hold the legend.
    let height = 110 + (f64::from(ROW) * (rows as f64 + LEGEND_ROWS)) as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{}: each allocator's median over spanalloc's (log scale)",
        metric.title()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(110)
        .build_cartesian_2d((lo..hi).log_scale().base(2.0), -LEGEND_ROWS..rows as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(12)
        .x_label_formatter(&|x| format!("{}", (x * 1000.0).round() / 1000.0))
        .x_desc("ratio to spanalloc (right of 1: more than spanalloc)")
        .draw()?;

    let band = 0.8 / others.len().max(1) as f64;
    let top = |row: usize| rows as f64 - row as f64 - 0.1;
    for (slot, (index, name)) in others.iter().enumerate() {
        let fill = colour(name, *index);
        let mine = bars.iter().filter(|b| b.1 == slot);
        chart
            .draw_series(mine.map(|&(row, _, r)| {
                let y1 = top(row) - band * slot as f64;
                Rectangle::new([(r.min(1.0), y1 - band), (r.max(1.0), y1)], fill.filled())
            }))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill.filled()));
    }
    chart.draw_series(LineSeries::new(
        [(1.0, -LEGEND_ROWS), (1.0, rows as f64)],
        colour(BASELINE, 0).stroke_width(2),
    ))?;
    let label = TextStyle::from(("sans-serif", 13)).pos(Pos::new(HPos::Right, VPos::Center));
    for (row, w) in report.workloads.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(lo, top(row) - 0.4));
        root.draw(&Text::new(w.name.clone(), (x - 6, y), label.clone()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The resident size of `phased` over time, one line per allocator.
fn phased_chart(phased: &[PhasedSeries], quick: bool, path: &Path) -> Result<(), Box<dyn Error>> {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let secs = |ms: u64| ms as f64 / 1000.0;
    let t_max = phased
        .iter()
        .flat_map(|p| p.series.last())
        .map(|s| secs(s.ms))
        .fold(0.1, f64::max);
    let m_max = phased
        .iter()
        .flat_map(|p| p.series.iter().map(|s| mib(s.rss)).chain([mib(p.peak_rss)]))
        .fold(1.0, f64::max)
        * 1.3; // room for the legend above the lines

    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = if quick {
        "phased (--quick): resident size over time"
    } else {
        "phased: resident size over time (1 GiB live, 90% freed, regrown, 90% freed)"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, 0f64..m_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("resident set size, MiB")
        .draw()?;
    for (index, p) in phased.iter().enumerate() {
        let c = colour(&p.allocator, index);
        chart
            .draw_series(LineSeries::new(
                p.series.iter().map(|s| (secs(s.ms), mib(s.rss))),
                c.stroke_width(2),
            ))?
            .label(format!(
                "{}: peak {:.0} MiB, final {:.0} MiB",
                p.allocator,
                mib(p.peak_rss),
                mib(p.final_rss)
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
