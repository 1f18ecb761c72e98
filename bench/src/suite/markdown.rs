//! The suite's report as markdown: the machine, the summary of ratios, one
//! table per metric (workloads down, allocators across) and the `phased`
//! table, with the charts beside it.

use std::fmt::Write as _;

use super::charts;
use super::results::{Metric, SuiteReport, BASELINE};

/// The whole report, with links to the charts (files in the same folder).
pub fn render(report: &SuiteReport) -> String {
    let m = &report.machine;
    let c = &report.config;
    let mut out = String::from("# spanalloc benchmark suite\n\n");
    let _ = writeln!(
        out,
        "Measured {} on {} ({} cores), {}, {}, {} build. Each workload runs as its own \
         process, {} run{} per allocator, the allocators taking turns run by run; every \
         figure is the median of the runs{}.\n",
        m.date,
        m.cpu_model,
        m.cores,
        m.kernel,
        m.rustc,
        m.profile,
        c.runs,
        if c.runs == 1 { "" } else { "s" },
        if c.quick {
            " (`--quick`: smoke-test sizes, the numbers mean nothing)"
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "Load average (1 minute) {:.2} at the start, {:.2} at the end: the machine is \
         shared, and above about 1 other work competes for its two cores.\n",
        m.load_average, c.load_average_at_end
    );
    if !c.preloads.is_empty() {
        out.push_str(
            "C allocators run the workloads built with Rust's `System` allocator (the C \
             library's `malloc`) with a library preloaded:\n\n",
        );
        for (name, lib) in &c.preloads {
            let _ = writeln!(out, "- {name}: `LD_PRELOAD={lib}`");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Command: `{}`\n", c.command);

    out.push_str("## Summary\n\n");
    let _ = writeln!(
        out,
        "Geometric mean over {} workloads of each allocator's median over spanalloc's: \
         below 1.00 the allocator is faster or smaller than spanalloc, above it slower or \
         bigger.\n",
        report.workloads.len()
    );
    let mut header = vec!["allocator".to_owned()];
    header.extend(Metric::ALL.iter().map(|m| m.title().to_owned()));
    let rows = report
        .geomean_ratio_to_spanalloc
        .iter()
        .map(|(a, g)| {
            let mut row = vec![a.clone()];
            row.extend(Metric::ALL.iter().map(|&m| format!("{:.2}", g.get(m))));
            row
        })
        .collect::<Vec<_>>();
    out.push_str(&table(&header, &rows, 1));
    out.push('\n');
    for metric in Metric::ALL {
        let _ = writeln!(
            out,
            "![{}, ratio to spanalloc]({})\n",
            metric.title(),
            charts::bar_chart_file(metric)
        );
    }

    for metric in Metric::ALL {
        let _ = writeln!(out, "## {}\n", metric.title());
        out.push_str(
            "Median of the runs; in brackets, over spanalloc's median. The lowest is in bold.\n\n",
        );
        out.push_str(&metric_table(report, metric));
        out.push('\n');
    }

    if !report.phased.is_empty() {
        out.push_str(&phased_section(report));
    }
    out.push_str(&workloads_section(report));
    out
}

/// What each workload does.
fn workloads_section(report: &SuiteReport) -> String {
    let mut out = String::from("\n## The workloads\n\n");
    out.push_str(
        "Each runs in a process of its own; `tN` is the number of threads (of \
         producer/consumer pairs for `prodcons`). Source: `bench/workloads/src/`.\n\n",
    );
    let header = ["workload", "what it does", "operations per run"].map(String::from);
    let rows: Vec<Vec<String>> = report
        .workloads
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.description.clone(),
                format!("{} {}", w.ops, w.unit),
            ]
        })
        .collect();
    out.push_str(&table(&header, &rows, 2));
    out
}

/// Workloads down, allocators across, for one metric.
fn metric_table(report: &SuiteReport, metric: Metric) -> String {
    let allocators = &report.config.allocators;
    let mut header = vec!["workload".to_owned()];
    header.extend(allocators.iter().cloned());
    let rows: Vec<Vec<String>> = report
        .workloads
        .iter()
        .map(|w| {
            let values: Vec<Option<f64>> = allocators
                .iter()
                .map(|a| w.of(a).map(|r| r.median.get(metric)))
                .collect();
            let best = values
                .iter()
                .flatten()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let mut row = vec![w.name.clone()];
            for (a, v) in allocators.iter().zip(&values) {
                let Some(v) = *v else {
                    row.push("–".to_owned());
                    continue;
                };
                let mut cell = metric.format(v);
                if a != BASELINE {
                    if let Some(r) = w.of(a).and_then(|r| r.ratio_to_spanalloc.as_ref()) {
                        let _ = write!(cell, " ({:.2})", r.get(metric));
                    }
                }
                if v == best {
                    cell = format!("**{cell}**");
                }
                row.push(cell);
            }
            row
        })
        .collect();
    table(&header, &rows, 1)
}

/// The `phased` table and chart.
fn phased_section(report: &SuiteReport) -> String {
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1 << 20) as f64);
    let mut out = String::from("## Phased memory: resident size over time\n\n");
    out.push_str(
        "`phased` grows to 1 GiB of live objects (16 B–16 KiB), frees 90% at random, \
         idles 0.3 s, grows back to 1 GiB (64 B–64 KiB), frees 90% again and idles 2 s. \
         Resident size at the end of each phase, from the run with the median peak:\n\n",
    );
    let header = [
        "allocator",
        "peak",
        "1: grown",
        "2: 90% freed",
        "3: regrown",
        "4: 90% freed, 2 s idle (final)",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = report
        .phased
        .iter()
        .map(|p| {
            let mut row = vec![p.allocator.clone(), mib(p.peak_rss)];
            row.extend(p.rss_after_phase.iter().map(|&b| mib(b)));
            row
        })
        .collect();
    out.push_str(&table(&header, &rows, 1));
    let _ = writeln!(
        out,
        "\n![resident size over time in phased]({})",
        charts::PHASED_FILE
    );
    out
}

/// A markdown table whose first `left` columns are left-aligned and the
/// others (numbers) right-aligned.
fn table(header: &[String], rows: &[Vec<String>], left: usize) -> String {
    let mut out = format!("| {} |\n|", header.join(" | "));
    for i in 0..header.len() {
        out.push_str(if i < left { "---|" } else { "---:|" });
    }
    out.push('\n');
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::results::{tests::workload, SuiteConfig};
    use super::*;
    use crate::machine::Machine;

    #[test]
    fn tables_have_a_row_per_workload_and_bold_the_best() {
        let config = SuiteConfig {
            runs: 3,
            quick: true,
            allocators: vec!["spanalloc".into(), "system".into()],
            preloads: vec![("spanalloc".into(), "/x/libspanalloc.so".into())],
            command: "suite".into(),
            load_average_at_end: 0.5,
        };
        let report = SuiteReport::new(Machine::detect(), config, vec![workload()], vec![]);
        let md = render(&report);
        assert!(
            md.contains("| batch | **2.000 s** | 4.000 s (2.00) |"),
            "{md}"
        );
        assert!(
            md.contains("| batch | 100.0 MiB | **50.0 MiB (0.50)** |"),
            "{md}"
        );
        assert!(md.contains("| system | 2.00 |"), "{md}");
        assert!(md.contains("(time.svg)"));
        assert!(
            md.contains("- spanalloc: `LD_PRELOAD=/x/libspanalloc.so`"),
            "{md}"
        );
    }
}
